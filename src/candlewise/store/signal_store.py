"""Storing what the models said: per-timeframe predictions and the aggregated signals.

``timeframe_predictions`` feeds the dashboard's multi-timeframe view; ``confidence_history``
holds every signal (the guide's "Stuck in LEARNING mode" query reads it). Both are written in
the caller's transaction, so a signal and what it led to are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sqlalchemy import Connection, Table, insert

from candlewise.core.timestamps import ms_to_text
from candlewise.signals.aggregate import Signal, TimeframePrediction
from candlewise.store.tables import confidence_history, timeframe_predictions


def record_predictions(conn: Connection, predictions: Iterable[TimeframePrediction]) -> int:
    rows = [_named(timeframe_predictions, prediction_row(p)) for p in predictions]
    if rows:
        conn.execute(insert(timeframe_predictions), rows)
    return len(rows)


def record_signals(conn: Connection, signals: Iterable[Signal], mode: str | None = None) -> int:
    rows = [_named(confidence_history, signal_row(s, mode)) for s in signals]
    if rows:
        conn.execute(insert(confidence_history), rows)
    return len(rows)


class PredictionRow(NamedTuple):
    """A ``timeframe_predictions`` row, its fields in column order (inserted as it is)."""

    symbol: str
    timeframe: str
    timestamp: str
    p_up: float
    confidence: float
    direction: str
    model_version: int | None


class SignalRow(NamedTuple):
    """A ``confidence_history`` row, its fields in column order (inserted as it is)."""

    symbol: str
    timestamp: str
    confidence_score: float
    direction: str
    mode: str | None


_DIRECTIONS = np.array(["SELL", "BUY"], dtype=object)


def prediction_rows(
    symbol: str,
    timeframe: str,
    timestamps: Iterable[str],
    p_up: ArrayLike,
    model_version: int | None,
) -> list[tuple[object, ...]]:
    """The one builder of ``timeframe_predictions`` rows, for the event path (one at a time)
    and the block replay (a block's closes at once): direction and confidence of each ``p_up``
    as ``TimeframePrediction`` has them (``1.0 - p`` rounds the same in numpy). Plain tuples in
    ``PredictionRow``'s field order, zipped from the columns: a block replay stores one or more
    a minute, and plain tuples build at C speed and go to the writer process as they are
    (``PredictionRow._make`` names a row's fields where a caller needs them)."""
    p = np.asarray(p_up, dtype=np.float64)
    up = p >= 0.5
    columns = (
        repeat(symbol), repeat(timeframe), timestamps, p.tolist(),
        np.where(up, p, 1.0 - p).tolist(), _DIRECTIONS[up.view(np.uint8)].tolist(),
        repeat(model_version),
    )  # fmt: skip
    return list(zip(*columns, strict=False))  # the repeat()s end with the others


def prediction_row(p: TimeframePrediction) -> PredictionRow:
    texts = (ms_to_text(p.made_at),)
    return PredictionRow._make(
        prediction_rows(p.symbol, p.timeframe, texts, (p.p_up,), p.model_version)[0]
    )


def signal_row(s: Signal, mode: str | None) -> SignalRow:
    return SignalRow(s.symbol, ms_to_text(s.timestamp), s.confidence, s.direction, mode)


def _named(table: Table, row: tuple[object, ...]) -> dict[str, object]:
    """A record as ``insert(table)``'s parameters (its fields are the columns but ``id``)."""
    return dict(zip([c.name for c in table.columns if c.name != "id"], row, strict=True))
