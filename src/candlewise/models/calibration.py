"""Calibration: making "confidence 0.8" mean "right about 80 % of the time".

The system trades only when confidence >= 0.80, so an over-confident model would trade on noise.
A network trained with cross-entropy is typically over-confident once it starts to overfit;
*temperature scaling* (one parameter, P(up) = sigmoid(logit / T), fitted on held-out data)
fixes that without changing which class is predicted. :class:`PlattCalibrator` (two parameters,
a slope and an offset on logit(p)) is for probabilities that are also biased, e.g. the weighted
mix of several timeframes' models.

All functions take ``p_up`` (the probability of the "up" class) and labels ``y`` in {0, 1} and
are deterministic (no random restarts), so the same data always gives the same calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from candlewise.models.bounded_minimize import minimize_bounded

#: Bounds of the temperature. Below 0.05 a logit of 1 would become a certainty; above 20 the
#: model is effectively a constant 0.5 - both mean the logits carry no usable scale.
T_MIN = 0.05
T_MAX = 20.0
EPS = 1e-12
_ONE_MINUS_EPS = 1.0 - EPS


def _as_xy(a: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != y.shape:
        raise ValueError(f"got {a.size} predictions but {y.size} labels")
    if a.size == 0:
        raise ValueError("no predictions given")
    if not np.all(np.isfinite(a)):
        raise ValueError("predictions contain NaN or inf")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0 or 1")
    return a, y


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings for large |z|)."""
    return np.exp(-np.logaddexp(0.0, -z))


def logit(p: ArrayLike) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def binary_nll(logits: ArrayLike, y: ArrayLike) -> float:
    """Mean negative log-likelihood (binary cross-entropy) of ``sigmoid(logits)``."""
    z, y = _as_xy(logits, y)
    return float(np.mean(np.logaddexp(0.0, -(2.0 * y - 1.0) * z)))


def fit_temperature(logits: ArrayLike, y: ArrayLike) -> float:
    """The temperature T in [0.05, 20] minimising the NLL of ``sigmoid(logits / T)``.

    The search is over u = log T with bounded Brent (:func:`minimize_bounded`, SciPy's method):
    the NLL is convex in 1/T, hence unimodal in log T, so a bracketing 1-D method finds the
    global minimum without a starting guess, and it is deterministic. Searching in log T gives
    the same relative precision for T = 0.1 and T = 10. The endpoints are compared explicitly
    so a minimum on a bound (e.g. pure-noise logits, T -> large) is returned exactly.
    Logits that are all zero carry no scale: T = 1 is returned.
    """
    z, y = _as_xy(logits, y)
    if not np.any(z):
        return 1.0
    sz = (2.0 * y - 1.0) * z

    def nll(u: float) -> float:
        return float(np.mean(np.logaddexp(0.0, -sz * math.exp(-u))))

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    res = minimize_bounded(nll, lo, hi, xatol=1e-4)
    candidates = [(res.fun, res.x), (nll(lo), lo), (nll(hi), hi)]
    best_u = min(candidates, key=lambda c: c[0])[1]
    return float(min(max(math.exp(best_u), T_MIN), T_MAX))


def apply_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    """Calibrated P(up) = sigmoid(logits / T) as float64."""
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def confidence(p_up: ArrayLike) -> np.ndarray:
    """Confidence of the predicted class: max(p, 1 - p), in [0.5, 1]."""
    p = np.asarray(p_up, dtype=np.float64)
    return np.maximum(p, 1.0 - p)


def expected_calibration_error(p_up: ArrayLike, y: ArrayLike, bins: int = 10) -> float:
    """ECE of the predicted class's confidence.

    The predicted class is "up" when p >= 0.5 (as the signal's BUY/SELL rule), its confidence
    is max(p, 1 - p) and it is correct when it equals ``y``. Confidences are put in ``bins``
    equal-width bins over [0.5, 1] (bin i is [0.5 + i w, 0.5 + (i+1) w), the last one closed,
    w = 0.5 / bins); ECE = sum over bins of (bin count / n) * |accuracy - mean confidence|.
    Binning over [0.5, 1] rather than [0, 1] because a binary confidence is never below 0.5:
    half of a [0, 1] binning would stay empty.
    """
    rows = reliability_table(p_up, y, bins)
    n = sum(r.count for r in rows)
    return float(sum(r.count * abs(r.accuracy - r.mean_confidence) for r in rows if r.count) / n)


def brier_score(p_up: ArrayLike, y: ArrayLike) -> float:
    """Mean squared error of P(up) against the 0/1 label (0 is perfect, 0.25 is a coin)."""
    p, y = _as_xy(p_up, y)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table; ``mean_confidence``/``accuracy`` are NaN when empty."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


def reliability_table(p_up: ArrayLike, y: ArrayLike, bins: int = 10) -> list[ReliabilityBin]:
    """Per confidence bin (same binning as :func:`expected_calibration_error`): count, mean
    confidence and accuracy of the predicted class. A calibrated model has accuracy ~ confidence
    in every well-populated bin."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p, y = _as_xy(p_up, y)
    conf = np.maximum(p, 1.0 - p)
    correct = ((p >= 0.5) == (y == 1.0)).astype(np.float64)
    width = 0.5 / bins
    # + 1e-9: a confidence written exactly on an edge (0.7 = 0.5 + 2 * 0.1 in decimal) must land
    # in the bin it starts, not in the one below through float rounding ((0.7 - 0.5) / 0.1 < 2).
    idx = np.clip(np.floor((conf - 0.5) / width + 1e-9).astype(np.int64), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    correct_sum = np.bincount(idx, weights=correct, minlength=bins)
    rows = []
    for i in range(bins):
        c = int(counts[i])
        rows.append(
            ReliabilityBin(
                lower=0.5 + i * width,
                upper=0.5 + (i + 1) * width,
                count=c,
                mean_confidence=float(conf_sum[i] / c) if c else math.nan,
                accuracy=float(correct_sum[i] / c) if c else math.nan,
            )
        )
    return rows


@dataclass(frozen=True)
class PlattCalibrator:
    """P' = sigmoid(a * logit(p) + b). The identity is a = 1, b = 0.

    ``fit`` maximises the likelihood with Platt's (1999) target smoothing: labels become
    (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1 and 0, which keeps a and b finite on
    separable or single-class data and is negligible for large samples. The optimiser is
    Newton's method on the convex 2-parameter logistic NLL (deterministic, ~10 iterations).
    """

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, p: ArrayLike, y: ArrayLike, *, max_iter: int = 100) -> PlattCalibrator:
        p, y = _as_xy(p, y)
        x = logit(p)
        n_pos = float(y.sum())
        n_neg = float(y.size - n_pos)
        t = np.where(y == 1.0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
        design = np.column_stack([x, np.ones_like(x)])
        theta = np.array([1.0, 0.0])

        def loss(th: np.ndarray) -> float:
            z = design @ th
            return float(np.sum(np.logaddexp(0.0, z) - t * z))

        current = loss(theta)
        for _ in range(max_iter):
            q = sigmoid(design @ theta)
            grad = design.T @ (q - t)
            hess = (design * (q * (1.0 - q))[:, None]).T @ design + 1e-9 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            scale = 1.0
            while scale > 1e-8:  # backtracking: Newton may overshoot on flat regions
                candidate = theta - scale * step
                new = loss(candidate)
                if new <= current:
                    break
                scale *= 0.5
            else:
                break
            converged = abs(current - new) <= 1e-12 * max(1.0, abs(current))
            theta, current = candidate, new
            if converged:
                break
        return cls(a=float(theta[0]), b=float(theta[1]))

    def apply(self, p: ArrayLike) -> np.ndarray:
        """Calibrated probabilities (float64, same shape as ``p``)."""
        return sigmoid(self.a * logit(p) + self.b)

    def apply_one(self, p: float) -> float:
        """Scalar fast path for the live signal (no numpy array round trip)."""
        return platt_one(self.a, self.b, float(p))

    def to_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> PlattCalibrator:
        return cls(a=float(data["a"]), b=float(data["b"]))


def platt_one(a: float, b: float, p: float) -> float:
    """``sigmoid(a * logit(p) + b)`` of one float: the calibration rule of every scalar caller.

    On plain floats because the block replay calls it for every signal of a minute loop, where
    an object's method and numpy's scalars cost more than the arithmetic; ``PlattCalibrator``
    calls it too, so the live signal and the replay share one definition.
    """
    p = min(max(p, EPS), _ONE_MINUS_EPS)
    z = a * (math.log(p) - math.log1p(-p)) + b
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
