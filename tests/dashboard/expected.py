"""What the store says, read with plain sqlite3 (independent of candlewise.dashboard)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def db_path(project: Path) -> Path:
    return project / "data" / "trading.db"


def query(project: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path(project)}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def latest_mode(project: Path, symbol: str) -> str:
    return query(
        project,
        "SELECT mode FROM learning_states WHERE symbol = ? ORDER BY id DESC LIMIT 1",
        (symbol,),
    )[0][0]


def latest_trade(project: Path) -> tuple[str, str, str, float]:
    """(exit_time, direction, timeframe, pnl) of the most recently closed trade."""
    return query(
        project,
        "SELECT exit_time, predicted_direction, timeframe, pnl_absolute FROM trade_outcomes "
        "ORDER BY exit_time DESC, id DESC LIMIT 1",
    )[0]


def latest_event(project: Path) -> str:
    return query(
        project,
        "SELECT MAX(t) FROM (SELECT MAX(timestamp) t FROM confidence_history UNION ALL "
        "SELECT MAX(timestamp) FROM equity_history UNION ALL SELECT MAX(exit_time) "
        "FROM trade_outcomes)",
    )[0][0]
