"""Rows an engine produced since its last checkpoint, written together with that checkpoint.

Why an outbox instead of a transaction per event: a crash must lose the rows *and* the in-memory
state that produced them together (the restarted run recomputes both from the checkpoint, so no
trade is lost or written twice), and one ``executemany`` per table per checkpoint is what lets a
replay write thousands of events per second. Rows are kept as tuples in the column order of
``COLUMNS`` (typed records such as ``trade_store``'s, or plain tuples in a record's field order,
built by one function per table for the event path and the block replay alike) and written
through the driver (``exec_driver_sql``): SQLAlchemy's per-row parameter processing cost more
than SQLite's insert itself. Rows are flushed in an order that satisfies the foreign keys:
positions are inserted before their exits update them and before their outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table

from candlewise.core.candle import Candle
from candlewise.core.timestamps import ms_to_text
from candlewise.learning.modes import ModeTransition
from candlewise.signals.aggregate import Signal, TimeframePrediction
from candlewise.store import candle_store
from candlewise.store.error_log import error_row
from candlewise.store.learning_store import RetrainAttempt, retrain_row, transition_row
from candlewise.store.signal_store import prediction_row, signal_row
from candlewise.store.tables import (
    confidence_history,
    equity_history,
    error_log,
    learning_states,
    retraining_history,
    shadow_trades,
    timeframe_predictions,
    trade_outcomes,
)
from candlewise.store.trade_store import (
    PositionExit,
    PositionRow,
    TimeText,
    close_row,
    open_row,
    outcome_row,
    shadow_row,
)
from candlewise.trading.positions import ClosedTrade, Position

Row = tuple[Any, ...]

#: Insert order after positions: every table an exit or an event writes.
_TABLES: tuple[Table, ...] = (
    trade_outcomes,
    shadow_trades,
    timeframe_predictions,
    confidence_history,
    learning_states,
    retraining_history,
    error_log,
    equity_history,
)
#: The columns of each table's tuples: every column but the autoincrement ``id``.
COLUMNS: dict[Table, tuple[str, ...]] = {
    table: tuple(c.name for c in table.columns if c.name != "id") for table in _TABLES
}
#: A new position keeps the broker's id (ids stay equal across a restart).
OPEN_COLUMNS: tuple[str, ...] = PositionRow._fields
#: An exit's ``positions`` update: the columns it sets, then the row's id.
CLOSE_COLUMNS: tuple[str, ...] = PositionExit._fields


class EquitySample(NamedTuple):
    """An ``equity_history`` row."""

    run_id: int | None
    timestamp: str
    equity: float
    drawdown_percent: float


def as_row(values: Mapping[str, object], columns: Sequence[str]) -> Row:
    return tuple(values[c] for c in columns)


class Outbox:
    def __init__(self) -> None:
        self.opens: list[Row] = []
        """``positions`` inserts (``OPEN_COLUMNS``)."""
        self.closes: list[Row] = []
        """``positions`` exit updates (``CLOSE_COLUMNS``)."""
        self.rows: dict[Table, list[Row]] = {t: [] for t in _TABLES}
        """Per table, tuples in ``COLUMNS`` order; the block replay appends to these directly."""
        self._candles: list[tuple[Candle, str]] = []
        self.candle_rows: list[Row] = []
        """Candles as tuples in ``candle_store.CANDLE_COLUMNS`` order (block replay)."""

    def open_position(self, position: Position, mode: str, text: TimeText = ms_to_text) -> None:
        self.opens.append(open_row(position, mode, text))

    def close_trade(self, trade: ClosedTrade, text: TimeText = ms_to_text) -> None:
        """The exit's ``positions`` update and its ``trade_outcomes`` row: never one alone."""
        self.closes.append(close_row(trade, text))
        self.rows[trade_outcomes].append(outcome_row(trade, text))

    def shadow_trade(self, trade: ClosedTrade, text: TimeText = ms_to_text) -> None:
        self.rows[shadow_trades].append(shadow_row(trade, text))

    def predictions(self, predictions: Iterable[TimeframePrediction]) -> None:
        self.rows[timeframe_predictions].extend(prediction_row(p) for p in predictions)

    def signal(self, signal: Signal, mode: str | None) -> None:
        self.rows[confidence_history].append(signal_row(signal, mode))

    def transition(self, transition: ModeTransition) -> None:
        self._add(learning_states, transition_row(transition))

    def retrain(self, attempt: RetrainAttempt) -> None:
        self._add(retraining_history, retrain_row(attempt))

    def error(self, error_type: str, message: str, symbol: str | None, at_ms: int) -> None:
        self._add(error_log, error_row(error_type, message, symbol, "engine", ms_to_text(at_ms)))

    def equity(
        self,
        run_id: int | None,
        at_ms: int,
        equity: float,
        drawdown: float,
        text: TimeText = ms_to_text,
    ) -> None:
        self.rows[equity_history].append(EquitySample(run_id, text(at_ms), equity, drawdown))

    def candles(self, candles: Sequence[Candle], source: str) -> None:
        self._candles.extend((c, source) for c in candles)

    def _add(self, table: Table, values: Mapping[str, object]) -> None:
        self.rows[table].append(as_row(values, COLUMNS[table]))

    def __len__(self) -> int:
        rows = sum(len(r) for r in self.rows.values())
        candles = len(self._candles) + len(self.candle_rows)
        return len(self.opens) + len(self.closes) + rows + candles

    def flush(self, conn: Connection) -> int:
        """Write everything in the caller's transaction (the checkpoint's); returns the count."""
        count = len(self)
        by_source: dict[str, list[Candle]] = {}
        for candle, source in self._candles:
            by_source.setdefault(source, []).append(candle)
        for source, items in by_source.items():
            candle_store.insert_candles(conn, items, source)
        candle_store.insert_rows(conn, self.candle_rows)
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        if self.opens:
            conn.exec_driver_sql(_insert_sql("positions", OPEN_COLUMNS, mark), self.opens)
        if self.closes:
            conn.exec_driver_sql(_close_sql(mark), self.closes)
        for table, rows in self.rows.items():
            if rows:
                conn.exec_driver_sql(_insert_sql(table.name, COLUMNS[table], mark), rows)
        self.clear()
        return count

    def take(self) -> tuple[Any, ...]:
        """Everything pending, as plain data (for another process), and the outbox emptied."""
        # in table order (Table objects do not pickle well), each table's rows as plain tuples:
        # a record type (``SignalRow``, ...) pickles by name and rebuilds through its
        # constructor, 4x slower; ``tuple`` maps at C speed and hands a plain tuple (the block
        # replay's rows) back as it is
        rows = [list(map(tuple, self.rows[t])) for t in _TABLES]
        taken = (self.opens, self.closes, rows, self._candles, self.candle_rows)
        self.opens, self.closes, self._candles, self.candle_rows = [], [], [], []
        self.rows = {t: [] for t in _TABLES}
        return taken

    def give(self, taken: tuple[Any, ...]) -> None:
        """What ``take`` returned (in the writer process), to be flushed."""
        self.opens, self.closes, rows, self._candles, self.candle_rows = taken
        self.rows = dict(zip(_TABLES, rows, strict=True))

    def clear(self) -> None:
        self.opens.clear()
        self.closes.clear()
        for rows in self.rows.values():
            rows.clear()
        self._candles.clear()
        self.candle_rows.clear()


def _insert_sql(table: str, columns: Sequence[str], mark: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join([mark] * len(columns))})'


def _close_sql(mark: str) -> str:
    sets = ", ".join(f'"{c}" = {mark}' for c in CLOSE_COLUMNS[:-1])
    return f"UPDATE positions SET status = 'closed', {sets} WHERE id = {mark}"
