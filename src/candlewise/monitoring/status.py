"""The monitor's read model: plain frozen values computed from the store only, so the screen is a
pure function of them and every figure can be checked against the database.

Which moment "the last 24 hours" ends at (the *reference*): now (wall-clock UTC) while a
deployment runs (its row says running and its process is alive); otherwise the last stored
event, so a finished deployment or a backtest is shown as it ended instead of as an empty
present. The screen and the report say which one they use.

Figures reuse :func:`candlewise.deployment.metrics.window_metrics` (trades, wins, P&L, error
rate, max drawdown), the definitions the health checks and the phase verdict judge on, so the
monitor, the reports and the verdict agree. Max drawdown is the account's mark-to-market figure
from ``equity_history`` of the engine runs that traded the symbol; P&L % is P&L over the
account's equity at the window's start (the last equity sample before it, else
``paper.starting_balance``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, func, inspect, select

from candlewise.config.app_config import AppConfig
from candlewise.core.errors import UserError
from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.deployment.health import win_fraction
from candlewise.deployment.metrics import HOUR_MS, WindowMetrics, window_metrics
from candlewise.store import deployment_store
from candlewise.store.db import check_connection, create_db_engine, safe_url
from candlewise.store.tables import (
    alerts,
    confidence_history,
    deployments,
    engine_runs,
    equity_history,
    learning_states,
    retraining_history,
    trade_outcomes,
)
from candlewise.system.processes import process_alive

#: Tables the monitor reads; a database without them has no events to show.
REQUIRED_TABLES = frozenset(
    {"engine_runs", "deployments", "trade_outcomes", "retraining_history", "confidence_history",
     "learning_states", "error_log", "equity_history", "alerts", "health_checks", "candles"}
)  # fmt: skip


@dataclass(frozen=True)
class Activity:
    """One line of "Recent Activity": a closed trade or a retrain."""

    at: str
    kind: str
    """``trade`` or ``retrain``."""
    label: str
    """BUY/SELL for a trade, the trigger reason for a retrain."""
    ok: bool | None
    """WIN / challenger accepted; None for a retrain still running."""
    amount: float | None
    """A trade's P&L in $, a retrain's validation confidence (fraction)."""
    timeframe: str


@dataclass(frozen=True)
class SymbolStatus:
    symbol: str
    mode: str | None
    """TRADING or LEARNING; None before the symbol's first signal."""
    mode_since: str | None
    time_in_mode_s: int | None
    confidence: float | None
    """The latest aggregated signal's confidence."""
    trades: int
    wins: int
    pnl: float
    pnl_percent: float
    max_drawdown_percent: float
    activity: tuple[Activity, ...]

    @property
    def win_rate(self) -> float:
        return win_fraction(self.wins, self.trades)


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    phase: int
    symbols: tuple[str, ...]
    status: str
    started_at: str
    ended_at: str | None
    verdict: str | None
    criteria: str | None
    """The verdict's criteria as stored (JSON), when validated."""
    running: bool
    """Marked running and its process is alive."""
    validation_override: str | None = None
    """Why it started without an approved paper-trading validation (``--force --reason``)."""


@dataclass(frozen=True)
class Scope:
    """What a screen or a report covers: the reference moment and the symbols."""

    now: str
    reference: str
    live: bool
    empty: bool
    """No schema or no event at all: nothing to show."""
    deployment: DeploymentInfo | None
    """The running deployment, else the latest one (None: no deployment ever, e.g. backtests)."""
    active_symbols: tuple[str, ...]
    symbols: tuple[str, ...]
    candle_time: str = ""
    """The newest candle time handled (the engine's clock); behind ``now`` while a deployment
    replays at ``--speed N``. Durations such as time in mode are measured on it."""

    @property
    def reference_ms(self) -> int:
        return text_to_ms(self.reference)

    @property
    def candle_time_ms(self) -> int:
        return text_to_ms(self.candle_time or self.reference)

    @property
    def candle_lag_s(self) -> int:
        """How far the engine's clock is behind the reference (0 when not live)."""
        return max(0, (self.reference_ms - self.candle_time_ms) // 1000)


@dataclass(frozen=True)
class SystemStatus:
    scope: Scope
    database: str
    uptime_s: int | None
    """Wall time since the running deployment started; None when none runs."""
    error_rate_1h: float
    errors_1h: int
    events_1h: int
    alerts_sent: int
    """Alerts delivered in the performance window."""
    window_hours: float
    feed_data_errors_1h: int = 0
    """Bad data from the exchange in the last hour: skipped and backfilled, not in the rate."""


@dataclass(frozen=True)
class MonitorStatus:
    system: SystemStatus
    symbols: tuple[SymbolStatus, ...]


def open_reader(url: str) -> Engine:
    """A read-only engine (SQLite ``mode=ro``, PostgreSQL read-only transactions): a reader
    never takes a write lock, so it cannot slow a deployment writing the same store."""
    try:
        engine = create_db_engine(url, read_only=True)
    except UserError as exc:
        if exc.message.startswith("database not found"):
            raise UserError(
                exc.message,
                "run from the project folder where the deployment writes, or pass --db URL "
                "(start one with: python deploy_production.py --phase 1 --symbol BTC/USDT)",
            ) from None
        raise
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(postgresql_readonly=True)
    check_connection(engine)
    return engine


def database_label(url: str) -> str:
    return safe_url(url).removeprefix("sqlite:///")


def read_scope(conn: Connection, cfg: AppConfig, now_ms: int, symbol: str | None = None) -> Scope:
    """The reference moment and the symbols to show; UserError for a symbol this store and
    config do not know."""
    now = ms_to_text(now_ms)
    if not set(inspect(conn).get_table_names()) >= REQUIRED_TABLES:
        return Scope(now, now, False, True, None, (), (symbol,) if symbol else ())
    deployment, live_symbols = _deployment(conn)
    live = bool(deployment and deployment.running)
    last = last_event_ms(conn)
    empty = last is None and not live
    reference = now_ms if live or last is None else last
    stored = stored_symbols(conn)
    if symbol is not None:
        if not empty and symbol not in stored and symbol not in cfg.symbols + live_symbols:
            known = ", ".join(stored) or "none"
            raise UserError(
                f"unknown symbol {symbol!r}: no events for it in this database "
                f"(symbols with events: {known})",
                f"use one of them, e.g. --symbol {stored[0] if stored else 'BTC/USDT'}, "
                "or omit --symbol to show every active symbol",
            )
        shown: tuple[str, ...] = (symbol,)
    elif live_symbols:
        shown = live_symbols
    elif deployment is not None:
        shown = deployment.symbols
    else:
        shown = tuple(stored)
    clock = ms_to_text(min(last, reference)) if last is not None else ms_to_text(reference)
    return Scope(now, ms_to_text(reference), live, empty, deployment, live_symbols, shown, clock)


def read_status(
    conn: Connection,
    cfg: AppConfig,
    *,
    now_ms: int,
    symbol: str | None = None,
    hours: float = 24.0,
    activity: int = 5,
    database: str = "",
) -> MonitorStatus:
    """Everything the screen shows, in one read transaction (a consistent snapshot)."""
    scope = read_scope(conn, cfg, now_ms, symbol)
    if scope.empty:
        system = SystemStatus(scope, database, None, 0.0, 0, 0, 0, hours)
        return MonitorStatus(system, ())
    ref = scope.reference_ms
    start = ref - int(hours * HOUR_MS)
    hour = window_metrics(conn, scope.active_symbols or scope.symbols, ref - HOUR_MS, ref)
    uptime = None
    if scope.live and scope.deployment is not None:
        uptime = max(0, (now_ms - text_to_ms(scope.deployment.started_at)) // 1000)
    a = alerts.c
    sent = conn.execute(
        select(func.count()).where(
            a.timestamp > ms_to_text(start), a.timestamp <= scope.reference, a.delivered.is_(True)
        )
    ).scalar_one()
    system = SystemStatus(
        scope,
        database,
        uptime,
        hour.error_rate,
        hour.errors,
        hour.events,
        int(sent),
        hours,
        hour.feed_data_errors,
    )
    symbols = tuple(
        _symbol_status(conn, cfg, s, start, ref, scope.candle_time_ms, activity)
        for s in scope.symbols
    )
    return MonitorStatus(system, symbols)


def symbol_window(conn: Connection, symbol: str, start_ms: int, end_ms: int) -> WindowMetrics:
    """``window_metrics`` for one symbol, its drawdown taken from the runs that traded it."""
    runs = symbol_runs(conn, symbol)
    if not runs:
        return window_metrics(conn, [symbol], start_ms, end_ms, max_drawdown_percent=0.0)
    first = window_metrics(conn, [symbol], start_ms, end_ms, run_id=runs[0])
    deepest = max(
        [first.max_drawdown_percent]
        + [window_metrics(conn, [symbol], start_ms, end_ms, run_id=r).max_drawdown_percent
           for r in runs[1:]]
    )  # fmt: skip
    return replace(first, max_drawdown_percent=deepest)


def starting_equity(conn: Connection, cfg: AppConfig, symbol: str, start_ms: int) -> float:
    """The account's equity at ``start_ms``: the last sample before it, else the paper
    account's starting balance (the window covers the account's start)."""
    q = equity_history.c
    runs = symbol_runs(conn, symbol)
    value = conn.execute(
        select(q.equity)
        .where(q.run_id.in_(runs), q.timestamp <= ms_to_text(start_ms))
        .order_by(q.timestamp.desc())
        .limit(1)
    ).scalar()
    return float(value) if value else cfg.paper.starting_balance


def symbol_runs(conn: Connection, symbol: str) -> list[int]:
    """Engine runs (deployments, backtests) whose symbols include ``symbol``, newest first."""
    rows = conn.execute(
        select(engine_runs.c.id, engine_runs.c.params).order_by(engine_runs.c.id.desc())
    ).all()
    found = []
    for run_id, params in rows:
        try:
            names = json.loads(params).get("symbols", [])
        except (ValueError, AttributeError):
            continue
        if symbol in names:
            found.append(int(run_id))
    return found


def stored_symbols(conn: Connection) -> list[str]:
    names: set[str] = set()
    for table in (confidence_history, learning_states, trade_outcomes):
        names.update(conn.execute(select(table.c.symbol).distinct()).scalars())
    return sorted(names)


def last_event_ms(conn: Connection) -> int | None:
    """The newest candle time any engine run handled or any event carries."""
    stamps = [
        conn.execute(select(func.max(engine_runs.c.cursor_time))).scalar(),
        conn.execute(select(func.max(confidence_history.c.timestamp))).scalar(),
        conn.execute(select(func.max(trade_outcomes.c.exit_time))).scalar(),
        conn.execute(select(func.max(retraining_history.c.triggered_at))).scalar(),
    ]
    present = [text_to_ms(s) for s in stamps if s]
    return max(present) if present else None


def mode_at(conn: Connection, symbol: str, at: str) -> tuple[str | None, str | None]:
    """(mode, since) at ``at``: the last transition, else the first signal's mode."""
    s = learning_states.c
    row = conn.execute(
        select(s.mode, s.timestamp)
        .where(s.symbol == symbol, s.timestamp <= at)
        .order_by(s.timestamp.desc(), s.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return str(row[0]), str(row[1])
    c = confidence_history.c
    first = conn.execute(
        select(c.mode, c.timestamp)
        .where(c.symbol == symbol, c.timestamp <= at)
        .order_by(c.timestamp, c.id)
        .limit(1)
    ).first()
    return (first[0], str(first[1])) if first is not None else (None, None)


def _deployment(conn: Connection) -> tuple[DeploymentInfo | None, tuple[str, ...]]:
    """The running deployment (alive process) else the latest; and the live symbols."""
    alive = [d for d in deployment_store.running(conn) if process_alive(d.pid)]
    live_symbols = tuple(dict.fromkeys(s for d in alive for s in d.symbols))
    if alive:
        chosen_id, running = alive[-1].id, True
    else:
        latest = conn.execute(select(func.max(deployments.c.id))).scalar()
        if latest is None:
            return None, ()
        chosen_id, running = int(latest), False
    d = deployment_store.get_deployment(conn, chosen_id)
    assert d is not None
    info = DeploymentInfo(
        d.id, d.phase, d.symbols, d.status, d.started_at, d.ended_at, d.verdict, d.criteria,
        running, d.validation_override,
    )  # fmt: skip
    return info, live_symbols


def _symbol_status(
    conn: Connection, cfg: AppConfig, symbol: str, start: int, ref: int, clock: int, limit: int
) -> SymbolStatus:
    at = ms_to_text(ref)
    metrics = symbol_window(conn, symbol, start, ref)
    mode, since = mode_at(conn, symbol, at)
    c = confidence_history.c
    confidence = conn.execute(
        select(c.confidence_score)
        .where(c.symbol == symbol, c.timestamp <= at)
        .order_by(c.timestamp.desc(), c.id.desc())
        .limit(1)
    ).scalar()
    equity = starting_equity(conn, cfg, symbol, start)
    return SymbolStatus(
        symbol=symbol,
        mode=mode,
        mode_since=since,
        time_in_mode_s=None if since is None else max(0, (clock - text_to_ms(since)) // 1000),
        confidence=None if confidence is None else float(confidence),
        trades=metrics.trades,
        wins=metrics.wins,
        pnl=metrics.pnl,
        pnl_percent=100 * metrics.pnl / equity if equity else 0.0,
        max_drawdown_percent=metrics.max_drawdown_percent,
        activity=recent_activity(conn, symbol, at, limit),
    )


def recent_activity(conn: Connection, symbol: str, at: str, limit: int) -> tuple[Activity, ...]:
    """The newest ``limit`` trades and retrains up to ``at``, newest first."""
    t = trade_outcomes.c
    trades = conn.execute(
        select(t.exit_time, t.predicted_direction, t.outcome, t.pnl_absolute, t.timeframe)
        .where(t.symbol == symbol, t.exit_time <= at)
        .order_by(t.exit_time.desc(), t.id.desc())
        .limit(limit)
    ).all()
    r = retraining_history.c
    retrains = conn.execute(
        select(r.triggered_at, r.completed_at, r.trigger_reason, r.success,
               r.validation_confidence, r.timeframe)
        .where(r.symbol == symbol, r.triggered_at <= at)
        .order_by(r.triggered_at.desc(), r.id.desc())
        .limit(limit)
    ).all()  # fmt: skip
    items = [  # retrains first: at the same minute, the retrain follows the trade it answers
        Activity(
            str(x[1] or x[0]), "retrain", str(x[2]),
            None if x[1] is None else bool(x[3]),
            None if x[4] is None else float(x[4]), str(x[5]),
        )
        for x in retrains
    ] + [
        Activity(str(x[0]), "trade", str(x[1]), x[2] == "WIN", float(x[3]), str(x[4]))
        for x in trades
    ]  # fmt: skip
    items.sort(key=lambda a: a.at, reverse=True)
    return tuple(items[:limit])
