"""What health checks and the phase validation judge, computed from the stored events of a
window of candle time (honesty rule: every number shown comes from the store).

Definitions, for the symbols of a deployment and the window ``(start, end]``:

* trades, wins, P&L: closed trades (``trade_outcomes``) whose exit falls in the window;
* error rate: ``error_log`` rows stamped in the window divided by the candle events handled
  (one per symbol and 1m candle), so 0.05 means one failure per twenty candles. Only system
  errors count (engine, feed and exchange components); feed data errors (bad data from the
  exchange, ``error_log.FEED_DATA_ERROR_TYPES``: skipped klines, rejected candles) are counted
  apart in ``feed_data_errors``, shown by the reports but judged by no criterion;
* transitions per hour: the busiest symbol's mode transitions (``learning_states``) divided
  by the window's hours;
* uptime: the share of the window's minutes whose candles the engine handled (a feed outage,
  a crash or a stall lowers it), from the stored 1m candles;
* max drawdown: the mark-to-market drawdown from ``equity_history`` (sampled every 5 minutes),
  or the engine's own exact figure when the caller passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, func, select

from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.health import error_fraction, win_fraction
from candlewise.store.error_log import FEED_DATA_ERROR_TYPES
from candlewise.store.tables import (
    candles,
    equity_history,
    error_log,
    learning_states,
    trade_outcomes,
)

HOUR_MS = 60 * MINUTE_MS
#: Components whose error_log rows are the system's errors (the error rate).
_SYSTEM_COMPONENTS = ("engine", "binance", "feed")


@dataclass(frozen=True)
class WindowMetrics:
    start_ms: int
    end_ms: int
    trades: int
    wins: int
    pnl: float
    errors: int
    events: int
    transitions_per_hour: float
    uptime: float
    max_drawdown_percent: float
    feed_data_errors: int = 0

    @property
    def win_rate(self) -> float:
        return win_fraction(self.wins, self.trades)

    @property
    def error_rate(self) -> float:
        return error_fraction(self.errors, self.events)

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "win_rate": self.win_rate, "error_rate": self.error_rate}


def window_metrics(
    conn: Connection,
    symbols: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    run_id: int | None = None,
    max_drawdown_percent: float | None = None,
) -> WindowMetrics:
    lo, hi = ms_to_text(start_ms), ms_to_text(end_ms)
    names = list(symbols)
    trades, wins, pnl = _trade_totals(conn, names, lo, hi)
    errors, feed_data_errors = _error_counts(conn, names, lo, hi)
    handled = _handled_candles(conn, names, start_ms, end_ms)
    s = learning_states.c
    busiest = conn.execute(
        select(func.count())
        .where(s.symbol.in_(names), s.timestamp > lo, s.timestamp <= hi)
        .group_by(s.symbol)
        .order_by(func.count().desc())
        .limit(1)
    ).scalar()
    minutes = max((end_ms - start_ms) // MINUTE_MS, 0)
    hours = (end_ms - start_ms) / HOUR_MS
    if max_drawdown_percent is None:
        max_drawdown_percent = _stored_max_drawdown(conn, lo, hi, run_id)
    return WindowMetrics(
        start_ms=start_ms,
        end_ms=end_ms,
        trades=int(trades),
        wins=int(wins),
        pnl=float(pnl),
        errors=int(errors),
        feed_data_errors=int(feed_data_errors),
        events=int(handled),
        transitions_per_hour=(busiest or 0) / hours if hours > 0 else 0.0,
        uptime=handled / (minutes * len(names)) if minutes and names else 1.0,
        max_drawdown_percent=max_drawdown_percent,
    )


def _trade_totals(conn: Connection, names: list[str], lo: str, hi: str) -> tuple[int, int, float]:
    """(trades, wins, closed P&L) of the trades that closed in (lo, hi]."""
    t = trade_outcomes.c
    trades, wins, pnl = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum((t.outcome == "WIN").cast(t.id.type)), 0),
            func.coalesce(func.sum(t.pnl_absolute), 0.0),
        ).where(t.symbol.in_(names), t.exit_time > lo, t.exit_time <= hi)
    ).one()
    return trades, wins, pnl


def _error_counts(conn: Connection, names: list[str], lo: str, hi: str) -> tuple[int, int]:
    """(system errors, bad-market-data reports) logged in (lo, hi] for these symbols or none."""
    e = error_log.c
    data_error = e.error_type.in_(FEED_DATA_ERROR_TYPES)
    errors, feed_data_errors = conn.execute(
        select(
            func.count().filter(~data_error & e.component.in_(_SYSTEM_COMPONENTS)),
            func.count().filter(
                data_error & (e.component.in_(_SYSTEM_COMPONENTS) | e.component.like("feed:%"))
            ),
        ).where(
            e.timestamp > lo,
            e.timestamp <= hi,
            (e.symbol.in_(names)) | (e.symbol.is_(None)),
        )
    ).one()
    return errors, feed_data_errors


def _handled_candles(conn: Connection, names: list[str], start_ms: int, end_ms: int) -> int:
    """Stored 1m candles that closed inside [start_ms, end_ms): the minutes handled."""
    c = candles.c
    return conn.execute(
        select(func.count()).where(
            c.symbol.in_(names),
            c.timeframe == "1m",
            c.open_time >= start_ms,
            c.open_time + MINUTE_MS <= end_ms,
        )
    ).scalar_one()


def _stored_max_drawdown(conn: Connection, lo: str, hi: str, run_id: int | None) -> float:
    q = equity_history.c
    where = [q.timestamp > lo, q.timestamp <= hi]
    if run_id is not None:
        where.append(q.run_id == run_id)
    return float(
        conn.execute(
            select(func.coalesce(func.max(q.drawdown_percent), 0.0)).where(*where)
        ).scalar_one()
    )
