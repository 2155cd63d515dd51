"""Recording errors and data problems in ``error_log`` (read by the monitor and health checks)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert

from candlewise.market.validation import CandleIssue
from candlewise.secrets import redact
from candlewise.store.tables import error_log
from candlewise.store.timestamps import now_text


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
