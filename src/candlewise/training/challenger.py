"""Retraining one model during a run: train a challenger, compare it with the champion, swap.

The challenger trains on the candles *known at the trigger time* (``known_at_ms``): in a replay
the store may already hold later candles, and using them would be lookahead. It replaces the
champion only if, on the challenger's own validation window (the most recent 20 % of its
training rows, which the champion predicts out of sample or nearly so), it is at least as
accurate and not worse calibrated (ECE at most ``ECE_SLACK`` higher). Every attempt, accepted or
rejected, is returned for ``retraining_history``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.retrain_policy import model_name
from candlewise.models.calibration import expected_calibration_error
from candlewise.models.trainer import TrainedModel, train_model
from candlewise.store import candle_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.first_training import candles_needed, guide_line, training_config

#: How much worse (absolute ECE) a challenger may be calibrated and still win on accuracy.
ECE_SLACK = 0.02


@dataclass(frozen=True)
class RetrainResult:
    symbol: str
    timeframe: str
    accepted: bool
    challenger: TrainedModel | None
    new_version: int | None
    val_accuracy: float | None
    val_confidence: float | None
    duration_s: float
    reason: str
    """Why it was accepted or rejected, in words for the log and the history table."""
    training_lines: tuple[str, ...] = ()
    """The trainer's log lines (the guide's "Training data", "Epoch", "Target confidence
    reached"); the engine logs them when it applies the result, also from a worker process."""


def retrain(
    engine: Engine,
    registry: ModelRegistry,
    cfg: AppConfig,
    symbol: str,
    timeframe: str,
    known_at_ms: int,
    champion: TrainedModel | None,
) -> RetrainResult:
    started = time.perf_counter()
    limit = cfg.models.max_samples + FEATURE_SPEC.window + 1
    with engine.connect() as conn:
        frame = candle_store.load_frame(
            conn, symbol, timeframe, limit=limit, known_at_ms=known_at_ms
        )
    if len(frame) < candles_needed():
        return RetrainResult(
            symbol,
            timeframe,
            False,
            None,
            None,
            None,
            None,
            time.perf_counter() - started,
            f"too few candles ({len(frame)} < {candles_needed()})",
        )
    X, y, times = training_matrix(frame, timeframe, max_samples=cfg.models.max_samples)
    lines: list[str] = []
    tag = f"[{model_name(symbol, timeframe)}]"
    challenger = train_model(
        X,
        y,
        training_config(cfg),
        feature_names=FEATURE_SPEC.names,
        feature_fingerprint=FEATURE_SPEC.fingerprint,
        log=lambda line: lines.append(guide_line(tag, line)),
    )
    m = challenger.metrics
    verdict, reason = _judge(challenger, champion, X[-m.val_size :], y[-m.val_size :])
    version = None
    if verdict:
        version = registry.register(
            symbol, timeframe, challenger, train_start_ms=int(times[0]), train_end_ms=int(times[-1])
        )
    return RetrainResult(
        symbol,
        timeframe,
        verdict,
        challenger,
        version,
        m.val_accuracy,
        m.val_confidence,
        time.perf_counter() - started,
        reason,
        tuple(lines),
    )


def _judge(
    challenger: TrainedModel, champion: TrainedModel | None, X: np.ndarray, y: np.ndarray
) -> tuple[bool, str]:
    """Champion/challenger on the same recent window: accuracy first, calibration as a guard."""
    if champion is None:
        return True, "no champion"
    scores = []
    for model in (challenger, champion):
        p = model.predict_proba(X)
        scores.append((float(((p >= 0.5) == (y == 1.0)).mean()), expected_calibration_error(p, y)))
    (acc_new, ece_new), (acc_old, ece_old) = scores
    if acc_new < acc_old:
        return False, f"accuracy {100 * acc_new:.2f}% < champion {100 * acc_old:.2f}%"
    if ece_new > ece_old + ECE_SLACK:
        return False, f"ECE {100 * ece_new:.2f}% > champion {100 * ece_old:.2f}% + slack"
    return True, f"accuracy {100 * acc_new:.2f}% >= champion {100 * acc_old:.2f}%"
