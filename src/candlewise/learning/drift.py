"""A drift score in [0, 1] per model, from its errors and from its input features.

One ``DriftMonitor`` watches one (symbol, timeframe) model and is reset when that model is
retrained. The score is the larger of two components, each in [0, 1]:

**Error component** (the model got worse). Every candle feeds ``error`` (1 when the predicted
direction was wrong, 0 when right; any value in [0, 1] is accepted) into River's ADWIN, which
keeps an adaptive window of recent errors and drops its older part as soon as the two parts'
means differ significantly. The *reference* error rate ``p_ref`` is the mean of the first
``reference_size`` errors after a reset (or of errors passed to ``reset``, e.g. the new
model's validation errors). With ``p_rec`` = ADWIN's mean over its window of ``w`` errors::

    se          = sqrt(v * (1/w + 1/n_ref)),  v = max(p_rec(1-p_rec), p_ref(1-p_ref), 0.01)
    error_score = clip((p_rec - p_ref - z * se) / error_increase_full, 0, 1)

i.e. the one-sided lower confidence bound (``z`` standard errors) of the error-rate increase, as
a fraction of the increase that counts as full drift (default +0.10: a direction model going
from 45 % to 55 % wrong, i.e. from useful to worse than a coin). An improvement scores 0.
Before the reference is complete, or while ADWIN's window is shorter than
``min_error_samples``, the component is 0.

**Feature component** (the model is seeing inputs unlike those it was judged on). The first
``reference_size`` feature vectors after a reset (or ``reference_features`` given to ``reset``,
e.g. the training window) fix, per feature, ``bins`` quantile bins. The last ``recent_size``
vectors are counted into the same bins and the Population Stability Index per feature is::

    PSI = sum_b (r_b - q_b) * ln(r_b / q_b)     (q: reference share, r: recent share,
                                                  both smoothed by +0.5 per bin)
    feature_score = clip((max_features PSI - psi_none) / (psi_full - psi_none), 0, 1)

using the usual reading of PSI (< 0.1: no shift) and counting PSI >= ``psi_full`` (0.5,
roughly a 0.7 sd mean shift) as full drift. The component is 0 until the reference is
complete and ``recent_size`` vectors have arrived. Vectors holding NaN or inf are skipped.

**Score** = ``max(error_score, feature_score)``: either symptom alone is enough to retrain;
averaging would let a stable component hide a broken one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """Tuning of ``DriftMonitor``; the defaults keep a stationary stream well below 0.5."""

    reference_size: int = 500
    """Errors and feature vectors after a reset that form the reference."""
    recent_size: int = 250
    """Most recent feature vectors compared with the reference."""
    bins: int = 10
    """Quantile bins per feature for PSI."""
    adwin_delta: float = 0.002
    """ADWIN's confidence parameter: smaller cuts the window less often (River's default)."""
    z: float = 2.0
    """Standard errors subtracted from the error-rate increase (one-sided, about 97.7 %)."""
    error_increase_full: float = 0.10
    """Error-rate increase (absolute) that scores 1."""
    min_error_samples: int = 30
    """ADWIN window length below which the error component stays 0."""
    psi_none: float = 0.1
    """PSI at or below which the feature component is 0."""
    psi_full: float = 0.5
    """PSI at or above which the feature component is 1."""

    def __post_init__(self) -> None:
        if self.reference_size < 2 or self.recent_size < 2 or self.bins < 2:
            raise ValueError("reference_size, recent_size and bins must be at least 2")
        if not (0.0 < self.adwin_delta < 1.0):
            raise ValueError(f"adwin_delta must be in (0, 1), got {self.adwin_delta}")
        if self.z < 0 or self.error_increase_full <= 0 or self.min_error_samples < 1:
            raise ValueError("z >= 0, error_increase_full > 0 and min_error_samples >= 1")
        if not (0.0 <= self.psi_none < self.psi_full):
            raise ValueError("need 0 <= psi_none < psi_full")


@dataclass(frozen=True, slots=True)
class DriftReading:
    """The score and how it was formed, for logs and the dashboard."""

    score: float
    error_score: float
    feature_score: float
    reference_error_rate: float | None
    recent_error_rate: float | None
    """ADWIN's mean over its current window."""
    error_window: int
    """ADWIN's current window length."""
    psi: float | None
    """Largest per-feature PSI, None until both feature windows are full."""
    worst_feature: int | None
    """Index of the feature with that PSI."""
    adwin_detections: int
    """Times ADWIN cut its window since the last reset (either direction)."""
    at_ms: int


class DriftMonitor:
    """Drift score of one model; call ``update`` once per scored candle, ``reset`` on retrain."""

    def __init__(self, config: DriftConfig | None = None, at_ms: int = 0) -> None:
        self.config = config or DriftConfig()
        self.reset(at_ms)

    def reset(
        self,
        at_ms: int,
        reference_errors: np.ndarray | None = None,
        reference_features: np.ndarray | None = None,
    ) -> None:
        """Forget everything: a retrained model starts with no drift.

        The references are collected from the next ``reference_size`` updates unless given
        here (a 1d model would otherwise need 500 days): ``reference_errors`` as a 1-D array
        in [0, 1], ``reference_features`` as a 2-D array (rows are candles).
        """
        cfg = self.config
        from river.drift import ADWIN  # here: River's import (~0.35 s) is paid by runs that use it

        self._adwin = ADWIN(delta=cfg.adwin_delta)
        self._detections = 0
        self._ref_errors: list[float] = []
        self._ref_error_rate: float | None = None
        self._ref_error_n = 0
        if reference_errors is not None:
            errs = np.asarray(reference_errors, dtype=float).ravel()
            if errs.size < 2 or not np.all((errs >= 0) & (errs <= 1)):
                raise ValueError("reference_errors needs >= 2 values, all in [0, 1]")
            self._ref_error_rate, self._ref_error_n = float(errs.mean()), int(errs.size)
        self._n_features: int | None = None
        self._ref_rows: list[np.ndarray] = []
        self._edges: list[np.ndarray] | None = None
        self._ref_share: list[np.ndarray] = []
        self._recent: deque[np.ndarray] = deque()
        self._counts: list[np.ndarray] = []
        self._psi: float | None = None
        self._worst: int | None = None
        if reference_features is not None:
            rows = np.asarray(reference_features, dtype=float)
            if rows.ndim != 2 or rows.shape[0] < 2 or not np.all(np.isfinite(rows)):
                raise ValueError("reference_features must be a finite 2-D array of >= 2 rows")
            self._n_features = rows.shape[1]
            self._freeze_feature_reference(rows)
        self._reading = self._read(at_ms)
        self._last_ms = at_ms

    @property
    def score(self) -> float:
        return self._reading.score

    @property
    def reading(self) -> DriftReading:
        return self._reading

    def update(self, error: float | None, features: np.ndarray | None, at_ms: int) -> float:
        """Feed one candle's outcome and/or feature vector; returns the new score.

        ``error`` is None when the outcome is not known yet; ``features`` is None when only
        the error stream is watched.
        """
        if at_ms < self._last_ms:
            raise ValueError(f"event time went backwards ({at_ms} < {self._last_ms})")
        self._last_ms = at_ms
        if error is not None:
            if not (0.0 <= error <= 1.0):  # also rejects NaN
                raise ValueError(f"error must be in [0, 1], got {error!r}")
            self._update_errors(float(error))
        if features is not None:
            self._update_features(np.asarray(features, dtype=float).ravel())
        self._reading = self._read(at_ms)
        return self._reading.score

    # --- error component -------------------------------------------------------------------

    def _update_errors(self, error: float) -> None:
        self._adwin.update(error)
        if self._adwin.drift_detected:
            self._detections += 1
        if self._ref_error_rate is None:
            self._ref_errors.append(error)
            if len(self._ref_errors) >= self.config.reference_size:
                self._ref_error_rate = sum(self._ref_errors) / len(self._ref_errors)
                self._ref_error_n = len(self._ref_errors)
                self._ref_errors = []

    def _error_score(self) -> tuple[float, float | None, int]:
        width = int(self._adwin.width)
        recent = float(self._adwin.estimation) if width else None
        ref = self._ref_error_rate
        if ref is None or recent is None or width < self.config.min_error_samples:
            return 0.0, recent, width
        var = max(recent * (1 - recent), ref * (1 - ref), 0.01)
        se = math.sqrt(var * (1 / width + 1 / self._ref_error_n))
        lower = recent - ref - self.config.z * se
        return _clip01(lower / self.config.error_increase_full), recent, width

    # --- feature component -----------------------------------------------------------------

    def _update_features(self, row: np.ndarray) -> None:
        if self._n_features is None:
            self._n_features = row.size
        elif row.size != self._n_features:
            raise ValueError(f"expected {self._n_features} features, got {row.size}")
        if not np.all(np.isfinite(row)):
            return
        if self._edges is None:
            self._ref_rows.append(row)
            if len(self._ref_rows) >= self.config.reference_size:
                self._freeze_feature_reference(np.vstack(self._ref_rows))
                self._ref_rows = []
            return
        bins = self._bin(row)
        self._recent.append(bins)
        for j, b in enumerate(bins):
            self._counts[j][b] += 1
        if len(self._recent) > self.config.recent_size:
            for j, b in enumerate(self._recent.popleft()):
                self._counts[j][b] -= 1
        if len(self._recent) == self.config.recent_size:
            self._compute_psi()

    def _freeze_feature_reference(self, rows: np.ndarray) -> None:
        """Quantile bin edges per feature and the reference's smoothed share per bin.

        Bins are ``[e_i, e_i+1)``. When the top edge is the reference maximum (a point mass
        there: a constant or 0/1 feature), an extra edge just above it gives values beyond the
        reference their own bin; otherwise a constant feature moving up would go unseen.
        """
        qs = np.linspace(0.0, 1.0, self.config.bins + 1)[1:-1]
        self._edges = []
        for column in rows.T:
            edges = np.unique(np.quantile(column, qs))
            top = column.max()
            if edges[-1] == top:
                edges = np.append(edges, np.nextafter(top, np.inf))
            self._edges.append(edges)
        self._ref_share = []
        for j, edges in enumerate(self._edges):
            idx = np.searchsorted(edges, rows[:, j], side="right")
            counts = np.bincount(idx, minlength=edges.size + 1).astype(float)
            self._ref_share.append(_smoothed(counts))
        self._counts = [np.zeros(e.size + 1, dtype=np.int64) for e in self._edges]
        self._recent.clear()

    def _bin(self, row: np.ndarray) -> list[int]:
        assert self._edges is not None
        return [
            int(np.searchsorted(e, x, side="right")) for e, x in zip(self._edges, row, strict=True)
        ]

    def _compute_psi(self) -> None:
        psis = []
        for ref, counts in zip(self._ref_share, self._counts, strict=True):
            recent = _smoothed(counts.astype(float))
            psis.append(float(np.sum((recent - ref) * np.log(recent / ref))))
        self._worst = int(np.argmax(psis))
        self._psi = psis[self._worst]

    def _feature_score(self) -> float:
        if self._psi is None:
            return 0.0
        cfg = self.config
        return _clip01((self._psi - cfg.psi_none) / (cfg.psi_full - cfg.psi_none))

    def _read(self, at_ms: int) -> DriftReading:
        error_score, recent, width = self._error_score()
        feature_score = self._feature_score()
        return DriftReading(
            score=max(error_score, feature_score),
            error_score=error_score,
            feature_score=feature_score,
            reference_error_rate=self._ref_error_rate,
            recent_error_rate=recent,
            error_window=width,
            psi=self._psi,
            worst_feature=self._worst,
            adwin_detections=self._detections,
            at_ms=at_ms,
        )


def _smoothed(counts: np.ndarray) -> np.ndarray:
    """Bin shares with +0.5 per bin, so an empty bin does not make PSI infinite."""
    counts = counts + 0.5
    return counts / counts.sum()


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def preload() -> None:
    """Import River now, before the first candle (not inside a live decision's 0.35 s)."""
    import river.drift  # noqa: F401
