"""Mode transitions and retraining attempts in the store (``learning_states``,
``retraining_history``): what the monitor, reports and the guide's queries read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert

from candlewise.core.timestamps import ms_to_text
from candlewise.learning.modes import ModeTransition
from candlewise.store.tables import learning_states, retraining_history


def record_transition(conn: Connection, transition: ModeTransition) -> None:
    conn.execute(insert(learning_states), [transition_row(transition)])


def transition_row(transition: ModeTransition) -> dict[str, object]:
    return {
        "symbol": transition.symbol,
        "timestamp": ms_to_text(transition.at_ms),
        "mode": str(transition.mode),
        "previous_mode": str(transition.previous),
        "confidence": transition.confidence,
        "reason": transition.reason,
    }


@dataclass(frozen=True)
class RetrainAttempt:
    """One retraining, accepted or not: champion/challenger keeps the result honest."""

    symbol: str
    timeframe: str
    trigger_reason: str
    triggered_at_ms: int
    completed_at_ms: int
    duration_s: float
    success: bool
    validation_confidence: float | None
    val_accuracy: float | None
    old_version: int | None
    new_version: int | None
    rejected_reason: str | None = None


def record_retrain(conn: Connection, attempt: RetrainAttempt) -> None:
    conn.execute(insert(retraining_history), [retrain_row(attempt)])


def retrain_row(attempt: RetrainAttempt) -> dict[str, object]:
    return {
        "symbol": attempt.symbol,
        "timeframe": attempt.timeframe,
        "triggered_at": ms_to_text(attempt.triggered_at_ms),
        "trigger_reason": attempt.trigger_reason,
        "completed_at": ms_to_text(attempt.completed_at_ms),
        "duration_s": attempt.duration_s,
        "success": attempt.success,
        "validation_confidence": attempt.validation_confidence,
        "val_accuracy": attempt.val_accuracy,
        "old_version": attempt.old_version,
        "new_version": attempt.new_version,
        "rejected_reason": attempt.rejected_reason,
    }
