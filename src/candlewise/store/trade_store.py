"""Positions and trade outcomes in the store: the paper broker's events, made durable.

An exit writes the ``positions`` update and the ``trade_outcomes`` row in the caller's
transaction, so a crash can never leave a closed position without its outcome (or the reverse).
Open positions are reloaded on start, which is how a restarted run resumes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, insert, select, update

from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.store.tables import positions, shadow_trades, trade_outcomes
from candlewise.trading.positions import ClosedTrade, Position

#: Formats an event time for the store; the block replay passes one that caches its minutes.
TimeText = Callable[[int], str]
#: Builds a row record without its Python-level ``__new__``: a replay builds one a minute.
_new = tuple.__new__


class PositionRow(NamedTuple):
    """A new ``positions`` row: the broker's id (ids stay equal across a restart), open."""

    id: int
    symbol: str
    timeframe: str
    side: str
    status: str
    mode: str
    quantity: float
    entry_price: float
    entry_time: str
    stop_price: float
    horizon_time: str
    fees: float
    confidence: float


class PositionExit(NamedTuple):
    """An exit's ``positions`` update: the values of ``CLOSE_POSITION``, the row's id last."""

    exit_price: float
    exit_time: str
    exit_reason: str
    fees: float
    pnl: float
    id: int


class ScoredTrade(NamedTuple):
    """A ``shadow_trades`` row; the scored-trade columns ``trade_outcomes`` shares."""

    symbol: str
    timeframe: str
    predicted_direction: str
    confidence: float
    entry_time: str
    exit_time: str
    entry_price: float
    exit_price: float
    quantity: float
    pnl_absolute: float
    pnl_percent: float
    fees: float
    outcome: str
    exit_reason: str


class TradeOutcome(NamedTuple):
    """A ``trade_outcomes`` row: a real trade, scored, with its position."""

    position_id: int
    symbol: str
    timeframe: str
    predicted_direction: str
    confidence: float
    entry_time: str
    exit_time: str
    entry_price: float
    exit_price: float
    quantity: float
    pnl_absolute: float
    pnl_percent: float
    fees: float
    outcome: str
    exit_reason: str


def record_open(conn: Connection, position: Position, mode: str) -> None:
    """One ``positions`` row with the broker's id (ids stay equal across a restart)."""
    conn.execute(insert(positions), [open_row(position, mode)._asdict()])


def open_row(position: Position, mode: str, text: TimeText = ms_to_text) -> PositionRow:
    return PositionRow(
        position.id,
        position.symbol,
        position.timeframe,
        position.side,
        "open",
        mode,
        position.quantity,
        position.entry_price,
        text(position.entry_time_ms),
        position.stop_price,
        text(position.horizon_ms),
        position.fees_paid,
        position.confidence,
    )


def record_close(conn: Connection, trade: ClosedTrade) -> None:
    exit_ = close_row(trade)
    conn.execute(CLOSE_POSITION, [{f"b_{k}": v for k, v in exit_._asdict().items()}])
    conn.execute(insert(trade_outcomes), [outcome_row(trade)._asdict()])


#: The ``positions`` update of an exit, as one statement for executemany (``PositionExit``'s
#: fields, prefixed ``b_``: a bound parameter may not share a column's name).
CLOSE_POSITION = (
    update(positions)
    .where(positions.c.id == bindparam("b_id"))
    .values(
        status="closed",
        exit_price=bindparam("b_exit_price"),
        exit_time=bindparam("b_exit_time"),
        exit_reason=bindparam("b_exit_reason"),
        fees=bindparam("b_fees"),
        pnl=bindparam("b_pnl"),
    )
)


def close_row(trade: ClosedTrade, text: TimeText = ms_to_text) -> PositionExit:
    return _new(
        PositionExit,
        (
            trade.exit_price,
            text(trade.exit_time_ms),
            trade.exit_reason,
            trade.fees,
            trade.pnl_absolute,
            trade.position_id,
        ),
    )


def outcome_row(trade: ClosedTrade, text: TimeText = ms_to_text) -> TradeOutcome:
    return _new(TradeOutcome, (trade.position_id, *shadow_row(trade, text)))


def shadow_row(trade: ClosedTrade, text: TimeText = ms_to_text) -> ScoredTrade:
    """The scored-trade row of ``shadow_trades`` (and of ``trade_outcomes``, after its id)."""
    return _new(
        ScoredTrade,
        (
            trade.symbol,
            trade.timeframe,
            trade.predicted_direction,
            trade.confidence,
            text(trade.entry_time_ms),
            text(trade.exit_time_ms),
            trade.entry_price,
            trade.exit_price,
            trade.quantity,
            trade.pnl_absolute,
            trade.pnl_percent,
            trade.fees,
            trade.outcome,
            trade.exit_reason,
        ),
    )


def last_position_id(conn: Connection) -> int:
    """The highest position id stored (0: none): a new account numbers its positions after."""
    return int(conn.execute(select(func.max(positions.c.id))).scalar() or 0)


def open_positions(conn: Connection) -> list[Position]:
    """Every open position, oldest first, as the broker holds them (for resuming a run).

    Stored times have second resolution; candle-driven entries are on whole minutes, so the
    round trip is exact for them.
    """
    c = positions.c
    rows = conn.execute(select(positions).where(c.status == "open").order_by(c.id)).mappings()
    out = []
    for r in rows:
        entry = text_to_ms(r["entry_time"])
        out.append(
            Position(
                id=r["id"],
                symbol=r["symbol"],
                timeframe=r["timeframe"],
                side=r["side"],
                quantity=r["quantity"],
                entry_price=r["entry_price"],
                entry_time_ms=entry,
                stop_price=r["stop_price"],
                fees_paid=r["fees"],
                confidence=r["confidence"],
                predicted_direction="BUY" if r["side"] == "long" else "SELL",
                horizon_ms=text_to_ms(r["horizon_time"])
                if r["horizon_time"]
                else entry + TIMEFRAME_MS[r["timeframe"]],
            )
        )
    return out


def record_shadow(conn: Connection, trade: ClosedTrade) -> None:
    """A LEARNING-mode trade (never an order): scored like a real one, kept apart from it."""
    conn.execute(insert(shadow_trades), [shadow_row(trade)._asdict()])
