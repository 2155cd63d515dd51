"""Continuous learning, pure core: trading/learning modes, drift scores, the retrain policy.

No SQL, HTTP, terminal or wall clock here: every method takes the event time in milliseconds,
so live, accelerated and replay runs make the same decisions from the same events.
"""

from candlewise.learning.drift import DriftConfig, DriftMonitor, DriftReading
from candlewise.learning.modes import (
    Mode,
    ModeMachine,
    ModeTransition,
    format_trading_signal,
    format_transition,
    transitions_per_hour,
)
from candlewise.learning.retrain_policy import (
    Outcome,
    RetrainJob,
    RetrainPolicy,
    RetrainReason,
    TriggerDecision,
    format_failed,
    format_rejected,
    format_started,
    format_succeeded,
    format_triggered,
    model_name,
)

__all__ = [
    "DriftConfig",
    "DriftMonitor",
    "DriftReading",
    "Mode",
    "ModeMachine",
    "ModeTransition",
    "Outcome",
    "RetrainJob",
    "RetrainPolicy",
    "RetrainReason",
    "TriggerDecision",
    "format_failed",
    "format_rejected",
    "format_started",
    "format_succeeded",
    "format_trading_signal",
    "format_transition",
    "format_triggered",
    "model_name",
    "transitions_per_hour",
]
