"""Positions and trade outcomes in the store: the paper broker's events, made durable.

An exit writes the ``positions`` update and the ``trade_outcomes`` row in the caller's
transaction, so a crash can never leave a closed position without its outcome (or the reverse).
Open positions are reloaded on start, which is how a restarted run resumes them.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, insert, select, update

from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.store.tables import positions, shadow_trades, trade_outcomes
from candlewise.trading.positions import ClosedTrade, Position


def record_open(conn: Connection, position: Position, mode: str) -> None:
    """One ``positions`` row with the broker's id (ids stay equal across a restart)."""
    conn.execute(insert(positions), [open_row(position, mode)])


def open_row(position: Position, mode: str) -> dict[str, object]:
    return {
        "id": position.id,
        "symbol": position.symbol,
        "timeframe": position.timeframe,
        "side": position.side,
        "status": "open",
        "mode": mode,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "entry_time": ms_to_text(position.entry_time_ms),
        "stop_price": position.stop_price,
        "horizon_time": ms_to_text(position.horizon_ms),
        "fees": position.fees_paid,
        "confidence": position.confidence,
    }


def record_close(conn: Connection, trade: ClosedTrade) -> None:
    conn.execute(CLOSE_POSITION, [close_values(trade)])
    conn.execute(insert(trade_outcomes), [outcome_row(trade)])


#: The ``positions`` update of an exit, as one statement for executemany (see ``close_values``).
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


def close_values(trade: ClosedTrade) -> dict[str, object]:
    return {
        "b_id": trade.position_id,
        "b_exit_price": trade.exit_price,
        "b_exit_time": ms_to_text(trade.exit_time_ms),
        "b_exit_reason": trade.exit_reason,
        "b_fees": trade.fees,
        "b_pnl": trade.pnl_absolute,
    }


def outcome_row(trade: ClosedTrade) -> dict[str, object]:
    return {"position_id": trade.position_id, **_outcome(trade)}


def _outcome(trade: ClosedTrade) -> dict[str, object]:
    """The scored-trade row shared by ``trade_outcomes`` and ``shadow_trades``."""
    return {
        "symbol": trade.symbol,
        "timeframe": trade.timeframe,
        "predicted_direction": trade.predicted_direction,
        "confidence": trade.confidence,
        "entry_time": ms_to_text(trade.entry_time_ms),
        "exit_time": ms_to_text(trade.exit_time_ms),
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "quantity": trade.quantity,
        "pnl_absolute": trade.pnl_absolute,
        "pnl_percent": trade.pnl_percent,
        "fees": trade.fees,
        "outcome": trade.outcome,
        "exit_reason": trade.exit_reason,
    }


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
    conn.execute(insert(shadow_trades), [shadow_row(trade)])


def shadow_row(trade: ClosedTrade) -> dict[str, object]:
    return _outcome(trade)
