"""Storing and reading candles: bulk, idempotent, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from candlewise.core.candle import Candle
from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.core.timestamps import FORMAT
from candlewise.store.tables import candles, simulated_regimes

FRAME_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_BATCH = 20_000


def _insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: re-ingesting a candle (backfill overlap) is a no-op."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _time_texts(open_times: np.ndarray) -> np.ndarray:
    return pd.to_datetime(open_times, unit="ms", utc=True).strftime(FORMAT).to_numpy(dtype=object)


CANDLE_COLUMNS = (
    "symbol", "timeframe", "open_time", "timestamp", "open", "high", "low", "close", "volume",
    "source",
)  # fmt: skip
_UPDATABLE = ("open", "high", "low", "close", "volume", "source")


def _bulk_sql(conn: Connection, replace: bool) -> str:
    """Driver-level INSERT for executemany: tuples instead of dicts, 2-3x faster for bulk data.

    The statement is the same on SQLite and PostgreSQL apart from the placeholder style.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c}"' for c in CANDLE_COLUMNS)
    marks = ", ".join([mark] * len(CANDLE_COLUMNS))
    conflict = "ON CONFLICT (symbol, timeframe, open_time) DO "
    if replace:
        conflict += "UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in _UPDATABLE)
    else:
        conflict += "NOTHING"
    return f"INSERT INTO candles ({cols}) VALUES ({marks}) {conflict}"


def insert_frame(
    conn: Connection, frame: pd.DataFrame, symbol: str, timeframe: str, source: str
) -> int:
    """Insert a validated candle frame (``FRAME_COLUMNS``, ms timestamps); returns new rows.

    Rows already stored (same symbol, timeframe, open time) are left untouched.
    """
    return _write_frame(conn, frame, symbol, timeframe, source, replace=False)


def upsert_frame(
    conn: Connection, frame: pd.DataFrame, symbol: str, timeframe: str, source: str
) -> int:
    """Insert or replace (derived candles); returns rows written (new or updated)."""
    return _write_frame(conn, frame, symbol, timeframe, source, replace=True)


def _write_frame(
    conn: Connection,
    frame: pd.DataFrame,
    symbol: str,
    timeframe: str,
    source: str,
    *,
    replace: bool,
) -> int:
    if frame.empty:
        return 0
    open_times = frame["timestamp"].to_numpy(dtype=np.int64)
    n = len(open_times)
    columns = [
        [symbol] * n,
        [timeframe] * n,
        open_times.tolist(),
        _time_texts(open_times).tolist(),
        *(frame[c].to_numpy(dtype=np.float64).tolist() for c in FRAME_COLUMNS[1:]),
        [source] * n,
    ]
    return _execute_bulk(conn, list(zip(*columns, strict=True)), replace=replace)


def _execute_bulk(conn: Connection, rows: list[tuple[Any, ...]], *, replace: bool) -> int:
    """Rows written, from the driver's rowcount (no COUNT(*) over a growing table)."""
    sql = _bulk_sql(conn, replace)
    written = 0
    for lo in range(0, len(rows), _BATCH):
        result = conn.exec_driver_sql(sql, rows[lo : lo + _BATCH])
        written += max(result.rowcount, 0)
    return written


def insert_candles(conn: Connection, items: Sequence[Candle], source: str) -> int:
    """Insert candles of any symbols/timeframes; returns how many were new."""
    if not items:
        return 0
    texts = _time_texts(np.fromiter((c.open_time for c in items), dtype=np.int64, count=len(items)))
    rows = [
        (c.symbol, c.timeframe, c.open_time, t, c.open, c.high, c.low, c.close, c.volume, source)
        for c, t in zip(items, texts.tolist(), strict=True)
    ]
    return _execute_bulk(conn, rows, replace=False)


def insert_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert candle tuples in ``CANDLE_COLUMNS`` order (a block replay builds them directly);
    returns how many were new."""
    return _execute_bulk(conn, rows, replace=False) if rows else 0


def insert_regimes(
    conn: Connection, symbol: str, open_times: np.ndarray, labels: Iterable[str]
) -> None:
    rows = [
        {"symbol": symbol, "open_time": int(t), "regime": r}
        for t, r in zip(open_times.tolist(), labels, strict=True)
    ]
    for lo in range(0, len(rows), _BATCH):
        _insert_ignore(conn, simulated_regimes, rows[lo : lo + _BATCH])


def candles_to_frame(items: Sequence[Candle]) -> pd.DataFrame:
    return pd.DataFrame(
        [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in items],
        columns=list(FRAME_COLUMNS),
    )


def latest_source(conn: Connection, symbol: str) -> str | None:
    """Source label of the newest stored 1m candle of ``symbol`` (None when there is none)."""
    c = candles.c
    stmt = (
        select(c.source)
        .where(c.symbol == symbol, c.timeframe == "1m")
        .order_by(c.open_time.desc())
        .limit(1)
    )
    return conn.execute(stmt).scalar_one_or_none()


def has_symbol(conn: Connection, symbol: str) -> bool:
    """Whether any candle of ``symbol`` is stored (one index probe)."""
    stmt = select(candles.c.symbol).where(candles.c.symbol == symbol).limit(1)
    return conn.execute(stmt).first() is not None


def stored_symbols(conn: Connection) -> list[str]:
    """Every symbol with stored candles, sorted."""
    stmt = select(candles.c.symbol).distinct().order_by(candles.c.symbol)
    return [row[0] for row in conn.execute(stmt)]


def count(conn: Connection, symbol: str | None = None, timeframe: str | None = None) -> int:
    stmt = select(func.count()).select_from(candles)
    if symbol is not None:
        stmt = stmt.where(candles.c.symbol == symbol)
    if timeframe is not None:
        stmt = stmt.where(candles.c.timeframe == timeframe)
    return int(conn.execute(stmt).scalar_one())


def last_close(conn: Connection, symbol: str) -> tuple[int, float] | None:
    """(close time, close) of the newest stored 1m candle of ``symbol``: its last known price."""
    c = candles.c
    stmt = (
        select(c.open_time, c.close)
        .where(c.symbol == symbol, c.timeframe == "1m")
        .order_by(c.open_time.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    return None if row is None else (int(row[0]) + TIMEFRAME_MS["1m"], float(row[1]))


def last_open_time(conn: Connection, symbol: str, timeframe: str) -> int | None:
    stmt = select(func.max(candles.c.open_time)).where(
        candles.c.symbol == symbol, candles.c.timeframe == timeframe
    )
    value = conn.execute(stmt).scalar_one()
    return int(value) if value is not None else None


def remove_unclosed(
    conn: Connection, symbols: Sequence[str], source: str, now_ms: int
) -> list[tuple[str, str, int, int, int]]:
    """Delete ``source``'s stored candles of ``symbols`` that close after ``now_ms``.

    Such a candle cannot be real (its minute has not ended): a feed once accepted a kline
    stamped in the future. Left in place it would be "the newest stored candle", after which a
    resumed feed records nothing until the clock catches up. Returns (symbol, timeframe, rows,
    first open time, last open time) of what was removed, for the error log.
    """
    c = candles.c
    removed: list[tuple[str, str, int, int, int]] = []
    for timeframe, length in TIMEFRAME_MS.items():
        where = (
            c.symbol.in_(list(symbols)),
            c.timeframe == timeframe,
            c.source == source,
            c.open_time > now_ms - length,
        )
        stmt = (
            select(c.symbol, func.count(), func.min(c.open_time), func.max(c.open_time))
            .where(*where)
            .group_by(c.symbol)
            .order_by(c.symbol)
        )
        found = [(s, timeframe, int(n), int(a), int(b)) for s, n, a, b in conn.execute(stmt)]
        if found:
            conn.execute(delete(candles).where(*where))
            removed += found
    return removed


def summary(engine: Engine) -> list[tuple[str, str, int, int, int]]:
    """(symbol, timeframe, rows, first open time, last open time) for every stored series."""
    stmt = (
        select(
            candles.c.symbol,
            candles.c.timeframe,
            func.count(),
            func.min(candles.c.open_time),
            func.max(candles.c.open_time),
        )
        .group_by(candles.c.symbol, candles.c.timeframe)
        .order_by(candles.c.symbol, candles.c.timeframe)
    )
    with engine.connect() as conn:
        return [(s, tf, int(n), int(a), int(b)) for s, tf, n, a, b in conn.execute(stmt)]


def load_frame(
    conn: Connection,
    symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
    *,
    known_at_ms: int | None = None,
) -> pd.DataFrame:
    """Candles with open time in [start_ms, end_ms), oldest first (the last ``limit`` if given).

    ``known_at_ms`` keeps only candles closed by then (open time + length <= known_at): what a
    model may see at that moment. ``end_ms`` alone filters on open times and would let a 1d
    candle that closes tomorrow through.
    """
    c = candles.c
    stmt = select(c.open_time, c.open, c.high, c.low, c.close, c.volume).where(
        c.symbol == symbol, c.timeframe == timeframe
    )
    if start_ms is not None:
        stmt = stmt.where(c.open_time >= start_ms)
    if end_ms is not None:
        stmt = stmt.where(c.open_time < end_ms)
    if known_at_ms is not None:
        stmt = stmt.where(c.open_time <= known_at_ms - TIMEFRAME_MS[timeframe])
    if limit is not None:
        stmt = stmt.order_by(c.open_time.desc()).limit(limit)
    else:
        stmt = stmt.order_by(c.open_time)
    result = conn.execute(stmt)
    try:
        # the driver's plain tuples: SQLAlchemy's Row objects made this ~5x slower (a year of
        # 1m candles: 4.0 s against 0.85 s), and every column is a number
        rows = result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(FRAME_COLUMNS))
    if limit is not None:
        table = table[::-1]
    data = {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(FRAME_COLUMNS)}
    data["timestamp"] = data["timestamp"].astype(np.int64)  # ms < 2**53: exact in float64
    return pd.DataFrame(data)


def iter_candles(
    conn: Connection,
    symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[Candle]:
    """Stored candles as ``Candle`` objects, oldest first (for the replay feed)."""
    frame = load_frame(conn, symbol, timeframe, start_ms, end_ms)
    for t, o, h, lw, cl, v in frame.itertuples(index=False, name=None):
        yield Candle(symbol, timeframe, int(t), o, h, lw, cl, v)
