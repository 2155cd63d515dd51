"""Storing what the models said: per-timeframe predictions and the aggregated signals.

``timeframe_predictions`` feeds the dashboard's multi-timeframe view; ``confidence_history``
holds every signal (the guide's "Stuck in LEARNING mode" query reads it). Both are written in
the caller's transaction, so a signal and what it led to are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert

from candlewise.core.timestamps import ms_to_text
from candlewise.signals.aggregate import Signal, TimeframePrediction
from candlewise.store.tables import confidence_history, timeframe_predictions


def record_predictions(conn: Connection, predictions: Iterable[TimeframePrediction]) -> int:
    rows = [prediction_row(p) for p in predictions]
    if rows:
        conn.execute(insert(timeframe_predictions), rows)
    return len(rows)


def record_signals(conn: Connection, signals: Iterable[Signal], mode: str | None = None) -> int:
    rows = [signal_row(s, mode) for s in signals]
    if rows:
        conn.execute(insert(confidence_history), rows)
    return len(rows)


def prediction_row(p: TimeframePrediction) -> dict[str, object]:
    return {
        "symbol": p.symbol,
        "timeframe": p.timeframe,
        "timestamp": ms_to_text(p.made_at),
        "p_up": p.p_up,
        "confidence": p.confidence,
        "direction": p.direction,
        "model_version": p.model_version,
    }


def signal_row(s: Signal, mode: str | None) -> dict[str, object]:
    return {
        "symbol": s.symbol,
        "timestamp": ms_to_text(s.timestamp),
        "confidence_score": s.confidence,
        "direction": s.direction,
        "mode": mode,
    }
