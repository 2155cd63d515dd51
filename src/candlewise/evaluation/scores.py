"""Scoring probabilistic direction predictions: accuracy against a baseline, and calibration."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from candlewise.models.calibration import brier_score, expected_calibration_error

THRESHOLDS: tuple[float, ...] = (0.55, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class ThresholdScore:
    threshold: float
    count: int
    accuracy: float | None
    """None when no prediction reached the threshold."""


@dataclass(frozen=True)
class Score:
    predictions: int
    accuracy: float
    majority_baseline: float
    """Accuracy of always predicting the majority class of these very outcomes (in hindsight,
    so a generous bar)."""
    by_confidence: tuple[ThresholdScore, ...]
    ece: float
    brier: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def score(p_up: np.ndarray, y: np.ndarray) -> Score:
    """Accuracy, baseline, accuracy among confident predictions, ECE (10 bins) and Brier."""
    p = np.asarray(p_up, dtype=np.float64)
    outcome = np.asarray(y, dtype=np.float64)
    if p.size == 0:
        return Score(0, float("nan"), float("nan"), (), float("nan"), float("nan"))
    correct = (p >= 0.5) == (outcome == 1.0)
    conf = np.maximum(p, 1.0 - p)
    up_share = float(outcome.mean())
    thresholds = tuple(
        ThresholdScore(
            t,
            int((conf >= t).sum()),
            float(correct[conf >= t].mean()) if (conf >= t).any() else None,
        )
        for t in THRESHOLDS
    )
    return Score(
        predictions=int(p.size),
        accuracy=float(correct.mean()),
        majority_baseline=max(up_share, 1.0 - up_share),
        by_confidence=thresholds,
        ece=expected_calibration_error(p, outcome),
        brier=brier_score(p, outcome),
    )
