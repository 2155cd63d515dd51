"""The multi-timeframe signal: the latest calibrated P(up) of each timeframe's model, weighted.

A prediction made at the close of a ``tf`` candle is *fresh* until that timeframe's next candle
is due (``made_at + length(tf)``); stale predictions drop out and the weights of the fresh ones
are renormalised, so a missing or lagging model lowers the evidence instead of freezing an old
opinion into the signal. Callers update every model whose candle closed at time T before asking
for the signals of T (the event order puts 1m first, then 5m..1d).

The weighted P(up) is calibrated once more, per event timeframe: each timeframe's model is
calibrated for its own horizon, but their weighted mix is not calibrated for any horizon. The
mix is mapped through a Platt calibrator fitted on out-of-sample history (see
``calibrate_signals``); without one the raw mix is used and ``calibrated`` is False.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES
from candlewise.models.calibration import PlattCalibrator


@dataclass(frozen=True, slots=True)
class TimeframePrediction:
    symbol: str
    timeframe: str
    made_at: int
    """Close time (ms) of the candle the prediction was made on."""
    p_up: float
    """Calibrated probability that this timeframe's next candle closes up."""
    model_version: int | None = None

    @property
    def valid_until(self) -> int:
        return self.made_at + TIMEFRAME_MS[self.timeframe]

    @property
    def direction(self) -> str:
        return "BUY" if self.p_up >= 0.5 else "SELL"

    @property
    def confidence(self) -> float:
        return max(self.p_up, 1.0 - self.p_up)


@dataclass(frozen=True, slots=True)
class Signal:
    symbol: str
    timeframe: str
    """The event timeframe: the signal is about that timeframe's next candle."""
    timestamp: int
    direction: str
    confidence: float
    p_up: float
    raw_p_up: float
    timeframes_used: tuple[str, ...]
    calibrated: bool


class SignalAggregator:
    """Holds each symbol's latest prediction per timeframe and combines the fresh ones."""

    def __init__(
        self,
        weights: Mapping[str, float],
        calibrators: Mapping[tuple[str, str], PlattCalibrator] | None = None,
    ) -> None:
        unknown = set(weights) - set(TIMEFRAMES)
        if unknown:
            raise ValueError(f"unknown timeframes in weights: {sorted(unknown)}")
        self._weights = dict(weights)
        self._calibrators = dict(calibrators or {})
        self._latest: dict[str, dict[str, TimeframePrediction]] = {}

    def update(self, prediction: TimeframePrediction) -> None:
        self._latest.setdefault(prediction.symbol, {})[prediction.timeframe] = prediction

    def latest_state(self) -> dict[str, dict[str, TimeframePrediction]]:
        return {symbol: dict(latest) for symbol, latest in self._latest.items()}

    def restore_latest(self, latest: Mapping[str, Mapping[str, TimeframePrediction]]) -> None:
        self._latest = {symbol: dict(p) for symbol, p in latest.items()}

    def set_calibrator(self, symbol: str, timeframe: str, calibrator: PlattCalibrator) -> None:
        self._calibrators[(symbol, timeframe)] = calibrator

    def calibrators(self) -> dict[tuple[str, str], PlattCalibrator]:
        """The calibrators in use, per (symbol, event timeframe) (a copy)."""
        return dict(self._calibrators)

    def restore_calibrators(self, calibrators: Mapping[tuple[str, str], PlattCalibrator]) -> None:
        """Use exactly these calibrators (a resumed run's, whatever the file says now)."""
        self._calibrators = dict(calibrators)

    def latest(self, symbol: str, timeframe: str) -> TimeframePrediction | None:
        """The last prediction recorded for ``symbol``'s ``timeframe`` (fresh or not)."""
        return self._latest.get(symbol, {}).get(timeframe)

    def fresh(self, symbol: str, now_ms: int) -> list[TimeframePrediction]:
        """The latest predictions that count at ``now_ms``, in ``TIMEFRAMES`` order (the order
        ``raw_p_up`` sums them in; ``raw_p_up_columns`` applies the same rule to columns)."""
        latest = self._latest.get(symbol, {})
        return [
            p
            for tf in TIMEFRAMES
            if (p := latest.get(tf)) is not None
            and self._weights.get(tf, 0.0) > 0
            and p.made_at <= now_ms < p.valid_until
        ]

    def raw_p_up(self, symbol: str, now_ms: int) -> tuple[float, tuple[str, ...]] | None:
        """Weighted P(up) of the fresh predictions, None when no model has a fresh one."""
        fresh = self.fresh(symbol, now_ms)
        total = sum(self._weights[p.timeframe] for p in fresh)
        if not fresh or total <= 0:
            return None
        p = sum(self._weights[q.timeframe] * q.p_up for q in fresh) / total
        return p, tuple(q.timeframe for q in fresh)

    def raw_p_up_columns(
        self,
        symbol: str,
        times: np.ndarray,
        new: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """``raw_p_up`` at each of the sorted instants ``times`` at once, and how many
        timeframes took part (0 where ``raw_p_up`` gives None; the P(up) is NaN there).

        ``new[tf]`` holds the predictions made since the latest recorded ones: their made-at
        times (ascending) and P(up), NaN for "no prediction". Call it before recording them
        (``update``). The same bits as ``raw_p_up``: the weighted terms are summed in
        ``TIMEFRAMES`` order, and adding ``0.0`` for a stale timeframe changes no bit.
        """
        num = np.zeros(len(times))
        total = np.zeros(len(times))
        used = np.zeros(len(times), dtype=np.int64)
        for tf in TIMEFRAMES:
            w = self._weights.get(tf, 0.0)
            if w <= 0:
                continue
            made_at, p_up = self._timeline(symbol, tf, new.get(tf))
            if made_at.size == 0:
                continue
            idx = np.searchsorted(made_at, times, side="right") - 1  # the latest one made
            known = idx >= 0
            safe = np.where(known, idx, 0)
            valid_until = made_at[safe] + TIMEFRAME_MS[tf]
            fresh = known & (made_at[safe] <= times) & (times < valid_until)
            num = num + np.where(fresh, w * p_up[safe], 0.0)
            total = total + np.where(fresh, w, 0.0)
            used += fresh
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where((used > 0) & (total > 0), num / total, np.nan)
        return raw, used

    def _timeline(
        self, symbol: str, timeframe: str, new: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The latest recorded prediction followed by the new ones that are predictions."""
        made = [np.zeros(0, dtype=np.int64)]
        p_up = [np.zeros(0)]
        old = self.latest(symbol, timeframe)
        if old is not None:
            made.append(np.array([old.made_at], dtype=np.int64))
            p_up.append(np.array([old.p_up]))
        if new is not None:
            new_made, new_p = new
            valid = new_p == new_p  # NaN: no prediction
            made.append(new_made[valid])
            p_up.append(new_p[valid])
        return np.concatenate(made), np.concatenate(p_up)

    def signal(self, symbol: str, timeframe: str, now_ms: int) -> Signal | None:
        """The signal for ``symbol`` at the close of a ``timeframe`` candle at ``now_ms``."""
        raw = self.raw_p_up(symbol, now_ms)
        if raw is None:
            return None
        p_raw, used = raw
        calibrator = self._calibrators.get((symbol, timeframe))
        p = calibrator.apply_one(p_raw) if calibrator is not None else p_raw
        return Signal(
            symbol=symbol,
            timeframe=timeframe,
            timestamp=now_ms,
            direction="BUY" if p >= 0.5 else "SELL",
            confidence=max(p, 1.0 - p),
            p_up=p,
            raw_p_up=p_raw,
            timeframes_used=used,
            calibrated=calibrator is not None,
        )
