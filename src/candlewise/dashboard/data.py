"""Read-only queries behind the web dashboard: pandas frames and small frozen records.

No streamlit here, so every figure the page shows is unit-testable against plain SQL. The store
is opened read-only (SQLite ``mode=ro``; writers use WAL), so a running deployment is never
blocked or locked by the dashboard. Times are the store's UTC text, parsed to naive UTC
``datetime64`` columns for the charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from candlewise.core.errors import UserError
from candlewise.core.timestamps import FORMAT
from candlewise.store.db import check_connection, create_db_engine, table_names

TIME_RANGES: dict[str, timedelta | None] = {
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "48h": timedelta(hours=48),
    "7d": timedelta(days=7),
    "all": None,
}
"""Sidebar choices; windows end at the latest stored event (see ``latest_event_time``)."""

REQUIRED_TABLES = ("confidence_history", "learning_states", "trade_outcomes", "equity_history")
FILL_HINT = (
    "fill it with `make demo`, or run a deployment: "
    "`python deploy_production.py --phase 1 --symbol BTC/USDT`"
)


class StoreUnavailable(Exception):
    """The dashboard cannot show anything; ``hint`` says what to run."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class ModeStatus:
    """The mode indicator of one symbol."""

    symbol: str
    mode: str
    since: str | None  # the last transition's time, None when the symbol never switched
    confidence: float | None  # latest signal
    direction: str | None
    signal_time: str | None
    transitions: int  # within the selected window


@dataclass(frozen=True)
class Trade:
    """One closed trade, as the "latest trade" line shows it."""

    symbol: str
    timeframe: str
    direction: str
    entry_time: str
    exit_time: str
    pnl: float
    pnl_percent: float
    outcome: str


def open_readonly(url: str) -> Engine:
    """A read-only engine, or StoreUnavailable naming the fix (missing file, no schema)."""
    try:
        engine = create_db_engine(url, read_only=True)
        check_connection(engine)
    except UserError as exc:  # a missing file needs filling; a bad URL or file its own fix
        hint = FILL_HINT if "not found" in exc.message else (exc.hint or FILL_HINT)
        raise StoreUnavailable(exc.message, hint) from None
    missing = [t for t in REQUIRED_TABLES if t not in table_names(engine)]
    if missing:
        engine.dispose()
        raise StoreUnavailable(
            f"the database has no {', '.join(missing)} table",
            "run `candlewise db upgrade`, then " + FILL_HINT,
        )
    return engine


def to_text(moment: datetime) -> str:
    return moment.strftime(FORMAT)


def latest_event_time(engine: Engine) -> datetime | None:
    """The newest signal, equity sample or trade: where time windows end.

    A simulated deployment at ``--speed max`` ends at the present moment and a running one
    writes every minute, so this is "now" for live use and the run's end for a finished one.
    """
    sql = (
        "SELECT MAX(t) FROM (SELECT MAX(timestamp) AS t FROM confidence_history "
        "UNION ALL SELECT MAX(timestamp) FROM equity_history "
        "UNION ALL SELECT MAX(exit_time) FROM trade_outcomes) AS latest"
    )
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    return datetime.strptime(value, FORMAT) if value else None


def window_start(end: datetime | None, range_key: str) -> str | None:
    """Text lower bound of the window ``range_key`` ending at ``end``; None means everything."""
    span = TIME_RANGES[range_key]
    return None if span is None or end is None else to_text(end - span)


def symbols(engine: Engine, configured: Sequence[str] = ()) -> list[str]:
    """Symbols with stored signals or trades, configured ones first in config order."""
    sql = (
        "SELECT symbol FROM confidence_history UNION SELECT symbol FROM learning_states "
        "UNION SELECT symbol FROM trade_outcomes"
    )
    with engine.connect() as conn:
        stored = {row[0] for row in conn.execute(text(sql))}
    return [s for s in configured if s in stored] + sorted(stored - set(configured))


def _frame(
    conn: Connection, sql: str, params: dict[str, object], times: Sequence[str] = ()
) -> pd.DataFrame:
    stmt = text(sql)
    if "syms" in params:
        stmt = stmt.bindparams(bindparam("syms", expanding=True))
    df = pd.read_sql_query(stmt, conn, params=params)
    for col in times:
        df[col] = pd.to_datetime(df[col], format=FORMAT)
    return df


def _query(
    engine: Engine,
    sql: str,
    syms: Sequence[str] | None,
    since: str | None,
    time_col: str,
    times: Sequence[str],
    order: str,
    sym_col: str = "symbol",
) -> pd.DataFrame:
    """``sql`` + the symbol and window filters + ``order``: every panel's query shape."""
    where, params = [], {}  # type: ignore[var-annotated]
    if syms is not None:
        where.append(f"{sym_col} IN :syms")
        params["syms"] = list(syms) or [""]
    if since is not None:
        where.append(f"{time_col} >= :since")
        params["since"] = since
    sql += (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order}"
    with engine.connect() as conn:
        return _frame(conn, sql, params, times)


def mode_status(engine: Engine, syms: Sequence[str], since: str | None) -> list[ModeStatus]:
    """Mode = the symbol's last ``learning_states`` row (LEARNING before any transition)."""
    out = []
    with engine.connect() as conn:
        for sym in syms:
            last = conn.execute(
                text(
                    "SELECT mode, timestamp FROM learning_states WHERE symbol = :s "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"s": sym},
            ).first()
            signal = conn.execute(
                text(
                    "SELECT confidence_score, direction, timestamp, mode FROM confidence_history "
                    "WHERE symbol = :s ORDER BY id DESC LIMIT 1"
                ),
                {"s": sym},
            ).first()
            count = conn.execute(
                text(
                    "SELECT COUNT(*) FROM learning_states WHERE symbol = :s AND timestamp >= :since"
                ),
                {"s": sym, "since": since or ""},
            ).scalar()
            mode = last[0] if last else (signal[3] if signal and signal[3] else "LEARNING")
            out.append(
                ModeStatus(
                    symbol=sym,
                    mode=mode,
                    since=last[1] if last else None,
                    confidence=signal[0] if signal else None,
                    direction=signal[1] if signal else None,
                    signal_time=signal[2] if signal else None,
                    transitions=int(count or 0),
                )
            )
    return out


def confidence_trend(engine: Engine, syms: Sequence[str], since: str | None) -> pd.DataFrame:
    """Every aggregated signal: time, symbol, confidence, direction, mode (after the signal)."""
    sql = (
        "SELECT timestamp AS time, symbol, confidence_score AS confidence, direction, mode "
        "FROM confidence_history"
    )
    return _query(engine, sql, syms, since, "timestamp", ["time"], "id")


def mode_segments(
    engine: Engine, syms: Sequence[str], since: str | None, end: datetime | None
) -> pd.DataFrame:
    """Spans of each mode (start, end, symbol, mode), clipped to the window, for shading."""
    df = _query(
        engine,
        "SELECT timestamp AS start, symbol, mode FROM learning_states",
        syms,
        None,
        "timestamp",
        ["start"],
        "id",
    )
    if df.empty or end is None:
        return df.assign(end=pd.Series(dtype="datetime64[ns]"))
    df["end"] = df.groupby("symbol")["start"].shift(-1).fillna(pd.Timestamp(end))
    if since is not None:
        lower = pd.Timestamp(datetime.strptime(since, FORMAT))
        df = df[df["end"] > lower].copy()
        df["start"] = df["start"].clip(lower=lower)
    return df.reset_index(drop=True)


def retraining(engine: Engine, syms: Sequence[str], since: str | None) -> pd.DataFrame:
    """Retrain attempts with outcome and confidence before (champion) and after (challenger)."""
    sql = (
        "SELECT r.triggered_at, r.symbol, r.timeframe, r.trigger_reason AS reason, "
        "r.duration_s, CASE WHEN r.success IS NULL THEN 'running' WHEN r.success "
        "THEN 'accepted' ELSE 'rejected' END AS outcome, m.val_confidence AS confidence_before, "
        "r.validation_confidence AS confidence_after, r.val_accuracy, r.old_version, "
        "r.new_version, r.rejected_reason FROM retraining_history r "
        "LEFT JOIN model_registry m ON m.symbol = r.symbol AND m.timeframe = r.timeframe "
        "AND m.version = r.old_version"
    )
    times = ["triggered_at"]
    return _query(engine, sql, syms, since, "r.triggered_at", times, "r.id", "r.symbol")


def timeframe_signals(engine: Engine, syms: Sequence[str], per_timeframe: int = 12) -> pd.DataFrame:
    """The latest ``per_timeframe`` predictions of each symbol's models (``rank`` 1 = newest)."""
    sql = (
        "SELECT * FROM (SELECT symbol, timeframe, timestamp AS time, p_up, confidence, "
        "direction, model_version, ROW_NUMBER() OVER (PARTITION BY symbol, timeframe "
        "ORDER BY id DESC) AS rank FROM timeframe_predictions WHERE symbol IN :syms) "
        "AS p WHERE rank <= :n ORDER BY symbol, rank"
    )
    with engine.connect() as conn:
        return _frame(conn, sql, {"syms": list(syms) or [""], "n": per_timeframe}, ["time"])


def equity(engine: Engine, since: str | None) -> pd.DataFrame:
    """Equity and drawdown of the latest engine run (runs have separate paper accounts)."""
    with engine.connect() as conn:
        run = conn.execute(
            text("SELECT run_id FROM equity_history ORDER BY timestamp DESC, id DESC LIMIT 1")
        ).scalar()
        sql = "SELECT timestamp AS time, equity, drawdown_percent, run_id FROM equity_history "
        sql += "WHERE run_id IS NULL" if run is None else "WHERE run_id = :run"
        sql += " AND timestamp >= :since" if since else ""
        return _frame(conn, sql + " ORDER BY timestamp, id", {"run": run, "since": since}, ["time"])


def recent_trades(
    engine: Engine, syms: Sequence[str], since: str | None, limit: int = 100
) -> pd.DataFrame:
    """Closed trades, newest first (by exit time, then id)."""
    sql = (
        "SELECT exit_time, symbol, timeframe, predicted_direction AS direction, confidence, "
        "entry_time, entry_price, exit_price, quantity, pnl_absolute AS pnl, pnl_percent, fees, "
        "outcome, exit_reason FROM trade_outcomes"
    )
    order = f"exit_time DESC, id DESC LIMIT {int(limit)}"
    return _query(engine, sql, syms, since, "exit_time", ["exit_time", "entry_time"], order)


def latest_trade(engine: Engine, syms: Sequence[str]) -> Trade | None:
    """The most recently closed trade of ``syms`` over the whole store."""
    sql = text(
        "SELECT symbol, timeframe, predicted_direction, entry_time, exit_time, pnl_absolute, "
        "pnl_percent, outcome FROM trade_outcomes WHERE symbol IN :syms "
        "ORDER BY exit_time DESC, id DESC LIMIT 1"
    ).bindparams(bindparam("syms", expanding=True))
    with engine.connect() as conn:
        row = conn.execute(sql, {"syms": list(syms) or [""]}).first()
    return Trade(*row) if row else None


def latest_deployment(engine: Engine) -> dict[str, object] | None:
    """The newest deployment row (phase, symbols, status, verdict) for the page's header."""
    sql = "SELECT phase, symbols, status, verdict, started_at, ended_at FROM deployments "
    with engine.connect() as conn:
        row = conn.execute(text(sql + "ORDER BY id DESC LIMIT 1")).mappings().first()
    return dict(row) if row else None
