"""Rows an engine produced since its last checkpoint, written together with that checkpoint.

Why an outbox instead of a transaction per event: a crash must lose the rows *and* the in-memory
state that produced them together (the restarted run recomputes both from the checkpoint, so no
trade is lost or written twice), and one ``executemany`` per table per checkpoint is what lets a
replay write thousands of events per second. Rows are flushed in an order that satisfies the
foreign keys: positions are inserted before their exits update them and before their outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Table, insert

from candlewise.learning.modes import ModeTransition
from candlewise.market.candle import Candle
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
    positions,
    retraining_history,
    shadow_trades,
    timeframe_predictions,
    trade_outcomes,
)
from candlewise.store.timestamps import ms_to_text
from candlewise.store.trade_store import (
    CLOSE_POSITION,
    close_values,
    open_row,
    outcome_row,
    shadow_row,
)
from candlewise.trading.positions import ClosedTrade, Position

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


class Outbox:
    def __init__(self) -> None:
        self._opens: list[dict[str, object]] = []
        self._closes: list[dict[str, object]] = []
        self._rows: dict[Table, list[dict[str, object]]] = {t: [] for t in _TABLES}
        self._candles: list[tuple[Candle, str]] = []

    def open_position(self, position: Position, mode: str) -> None:
        self._opens.append(open_row(position, mode))

    def close_trade(self, trade: ClosedTrade) -> None:
        """The exit's ``positions`` update and its ``trade_outcomes`` row: never one alone."""
        self._closes.append(close_values(trade))
        self._rows[trade_outcomes].append(outcome_row(trade))

    def shadow_trade(self, trade: ClosedTrade) -> None:
        self._rows[shadow_trades].append(shadow_row(trade))

    def predictions(self, predictions: Iterable[TimeframePrediction]) -> None:
        self._rows[timeframe_predictions].extend(prediction_row(p) for p in predictions)

    def signal(self, signal: Signal, mode: str | None) -> None:
        self._rows[confidence_history].append(signal_row(signal, mode))

    def transition(self, transition: ModeTransition) -> None:
        self._rows[learning_states].append(transition_row(transition))

    def retrain(self, attempt: RetrainAttempt) -> None:
        self._rows[retraining_history].append(retrain_row(attempt))

    def error(self, error_type: str, message: str, symbol: str | None, at_ms: int) -> None:
        row = error_row(error_type, message, symbol, "engine", ms_to_text(at_ms))
        self._rows[error_log].append(row)

    def equity(self, run_id: int | None, at_ms: int, equity: float, drawdown: float) -> None:
        self._rows[equity_history].append(
            {
                "run_id": run_id,
                "timestamp": ms_to_text(at_ms),
                "equity": equity,
                "drawdown_percent": drawdown,
            }
        )

    def candles(self, candles: Sequence[Candle], source: str) -> None:
        self._candles.extend((c, source) for c in candles)

    def __len__(self) -> int:
        rows = sum(len(r) for r in self._rows.values())
        return len(self._opens) + len(self._closes) + rows + len(self._candles)

    def flush(self, conn: Connection) -> int:
        """Write everything in the caller's transaction (the checkpoint's); returns the count."""
        count = len(self)
        by_source: dict[str, list[Candle]] = {}
        for candle, source in self._candles:
            by_source.setdefault(source, []).append(candle)
        for source, items in by_source.items():
            candle_store.insert_candles(conn, items, source)
        if self._opens:
            conn.execute(insert(positions), self._opens)
        if self._closes:
            conn.execute(CLOSE_POSITION, self._closes)
        for table, rows in self._rows.items():
            if rows:
                conn.execute(insert(table), rows)
        self.clear()
        return count

    def clear(self) -> None:
        self._opens.clear()
        self._closes.clear()
        for rows in self._rows.values():
            rows.clear()
        self._candles.clear()
