"""Recording errors and data problems in ``error_log`` (read by the monitor and health checks)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert

from candlewise.config.secrets import redact
from candlewise.core.candle import CandleIssue
from candlewise.core.timestamps import now_text
from candlewise.store.tables import error_log

#: A malformed or invalid message or row from the exchange, skipped by the live feed.
BAD_MARKET_DATA = "bad_market_data"
#: Stored candles of minutes that had not closed (klines stamped in the future), removed at start.
FUTURE_CANDLE_REMOVED = "future_candle_removed"
#: Feed data errors: bad data *from the market* (the exchange, a file), not failures of this
#: system. Counted apart: a few garbage frames from Binance must not fail the error-rate
#: criterion, which judges the system's own errors.
FEED_DATA_ERROR_TYPES = (
    BAD_MARKET_DATA,
    FUTURE_CANDLE_REMOVED,
    "candle_rejected",
    "candle_repaired",
)


def record_error(
    conn: Connection,
    error_type: str,
    message: str,
    *,
    symbol: str | None = None,
    component: str | None = None,
    timestamp: str | None = None,
) -> None:
    """One row; the message is redacted so that a secret in an exception never reaches disk."""
    conn.execute(insert(error_log), [error_row(error_type, message, symbol, component, timestamp)])


def error_row(
    error_type: str,
    message: str,
    symbol: str | None = None,
    component: str | None = None,
    timestamp: str | None = None,
) -> dict[str, object]:
    return {
        "timestamp": timestamp or now_text(),
        "error_type": error_type[:64],
        "message": redact(message),
        "symbol": symbol,
        "component": component,
    }


def record_candle_issues(
    conn: Connection, issues: Iterable[CandleIssue], component: str, timestamp: str | None = None
) -> int:
    """Every rejected or repaired candle becomes a row, so data problems are visible later."""
    stamp = timestamp or now_text()
    rows = [
        {
            "timestamp": stamp,
            "error_type": f"candle_{issue.action}",
            "message": redact(
                f"{issue.symbol} {issue.timeframe} open_time={issue.open_time}: "
                f"{issue.kind}: {issue.detail}"
            ),
            "symbol": issue.symbol,
            "component": component,
        }
        for issue in issues
    ]
    if rows:
        conn.execute(insert(error_log), rows)
    return len(rows)
