"""The read model against independent SQL on a real phase 1 store, and the screen's exact lines."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from candlewise.config.loader import load_config
from candlewise.monitoring.screen import activity_line, fmt_duration, fmt_money, render_screen
from candlewise.monitoring.status import (
    Activity,
    DeploymentInfo,
    MonitorStatus,
    Scope,
    SymbolStatus,
    SystemStatus,
    open_reader,
    read_status,
)
from candlewise.store.db import open_store
from tests.monitoring.conftest import query
from tests.phase1_project import SYMBOL

FMT = "%Y-%m-%d %H:%M:%S"

GUIDE_SCREEN = """\
====================================================================================================
PRODUCTION MONITOR - 2026-01-02 12:05:00 UTC
====================================================================================================

📊 SYSTEM STATUS
  Uptime: 5m 0s
  Error Rate (1h): 0.00%
  Active Symbols: 1

====================================================================================================
📈 BTC/USDT
====================================================================================================
  🎯 Mode: TRADING
  Confidence: 82.45%
  Time in mode: 15m 30s

  💰 Performance (24h)
    ✓ P&L: $125.50 (1.26%)
    Win Rate: 58.33% (7/12 trades)
    Max Drawdown: 3.21%

  🎯 Recent Activity
    [11:58] Trade: BUY ✓ WIN ($45.20)
    [11:45] Retrain: ✓ loss_immediate → 82.45%
    [11:30] Trade: SELL ✗ LOSS (-$12.30)

====================================================================================================
Last Update: 12:05:00 | Refresh: 10s | Alerts Sent: 0"""


def _shift(text: str, **delta: float) -> str:
    moment = datetime.strptime(text, FMT).replace(tzinfo=UTC) + timedelta(**delta)
    return moment.strftime(FMT)


def _read(project: Path, now_ms: int, **kwargs: object) -> MonitorStatus:
    cfg = load_config(project / "config.yaml")
    engine = open_reader(f"sqlite:///{project / 'data' / 'trading.db'}")
    try:
        with engine.connect() as conn:
            return read_status(conn, cfg, now_ms=now_ms, **kwargs)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def _expected(db: Path, ref: str, hours: float = 24) -> dict[str, object]:
    """Every figure of the screen, from plain SQL over the window (ref - hours, ref]."""
    lo, hour_ago = _shift(ref, hours=-hours), _shift(ref, hours=-1)
    trades, wins, pnl = query(
        db, "SELECT COUNT(*), COALESCE(SUM(outcome = 'WIN'), 0), COALESCE(SUM(pnl_absolute), 0)"
        " FROM trade_outcomes WHERE symbol = ? AND exit_time > ? AND exit_time <= ?",
        SYMBOL, lo, ref,
    )[0]  # fmt: skip
    (drawdown,) = query(
        db, "SELECT COALESCE(MAX(drawdown_percent), 0) FROM equity_history "
        "WHERE timestamp > ? AND timestamp <= ?", lo, ref,
    )[0]  # fmt: skip
    (before,) = query(db, "SELECT COUNT(*) FROM equity_history WHERE timestamp <= ?", lo)[0]
    assert before == 0, "the window must cover the account's start for pnl % over 10,000"
    mode, since = query(
        db, "SELECT mode, timestamp FROM learning_states WHERE symbol = ? AND timestamp <= ? "
        "ORDER BY timestamp DESC, id DESC LIMIT 1", SYMBOL, ref,
    )[0]  # fmt: skip
    (confidence,) = query(
        db, "SELECT confidence_score FROM confidence_history WHERE symbol = ? AND timestamp <= ?"
        " ORDER BY timestamp DESC, id DESC LIMIT 1", SYMBOL, ref,
    )[0]  # fmt: skip
    (errors,) = query(
        db, "SELECT COUNT(*) FROM error_log WHERE timestamp > ? AND timestamp <= ?", hour_ago, ref
    )[0]  # fmt: skip
    (candles,) = query(
        db, "SELECT COUNT(*) FROM candles WHERE symbol = ? AND timeframe = '1m' "
        "AND timestamp >= ? AND timestamp < ?", SYMBOL, hour_ago, ref,
    )[0]  # fmt: skip
    (sent,) = query(
        db, "SELECT COUNT(*) FROM alerts WHERE delivered AND timestamp > ? AND timestamp <= ?",
        lo, ref,
    )[0]  # fmt: skip
    activity = [
        row[0]
        for row in query(
            db, "SELECT at FROM (SELECT exit_time AS at FROM trade_outcomes WHERE symbol = ? "
            "UNION ALL SELECT COALESCE(completed_at, triggered_at) FROM retraining_history "
            "WHERE symbol = ?) WHERE at <= ? ORDER BY at DESC LIMIT 5", SYMBOL, SYMBOL, ref,
        )
    ]  # fmt: skip
    return {
        "trades": trades, "wins": wins, "pnl": pnl, "drawdown": drawdown, "mode": mode,
        "since": since, "confidence": confidence, "errors": errors, "candles": candles,
        "sent": sent, "activity": activity,
    }  # fmt: skip


def test_finished_deployment_figures_match_sql(phase1_project: Path) -> None:
    db = phase1_project / "data" / "trading.db"
    status = _read(phase1_project, int(time.time() * 1000))
    scope = status.system.scope
    # no deployment runs (the phase ended): the figures end at the last stored event
    assert not scope.live and not scope.empty and scope.active_symbols == ()
    ((last_signal, cursor),) = query(
        db, "SELECT (SELECT MAX(timestamp) FROM confidence_history), MAX(cursor_time) "
        "FROM engine_runs"
    )  # fmt: skip
    assert scope.reference == max(last_signal, cursor)
    assert status.system.uptime_s is None
    exp = _expected(db, scope.reference)
    (s,) = status.symbols
    assert s.symbol == SYMBOL
    assert exp["trades"] > 0 and exp["mode"] in ("TRADING", "LEARNING")  # a meaningful store
    assert (s.trades, s.wins) == (exp["trades"], exp["wins"])
    assert s.pnl == pytest.approx(exp["pnl"])
    assert s.pnl_percent == pytest.approx(100 * exp["pnl"] / 10_000)
    assert s.max_drawdown_percent == pytest.approx(exp["drawdown"])
    assert (s.mode, s.mode_since) == (exp["mode"], exp["since"])
    assert s.confidence == pytest.approx(exp["confidence"])
    since = datetime.strptime(exp["since"], FMT).replace(tzinfo=UTC)  # type: ignore[arg-type]
    ref = datetime.strptime(scope.reference, FMT).replace(tzinfo=UTC)
    assert s.time_in_mode_s == (ref - since).total_seconds()
    assert [a.at for a in s.activity] == exp["activity"]
    assert status.system.errors_1h == exp["errors"]
    assert status.system.events_1h == exp["candles"]
    assert status.system.alerts_sent == exp["sent"]

    text = "\n".join(render_screen(status, 10))
    assert "⚠ No deployment running" in text
    assert f"Figures as of the last stored event: {scope.reference} UTC" in text
    assert "  Uptime: not running" in text and "  Active Symbols: 0" in text
    assert f"  🎯 Mode: {exp['mode']}" in text
    assert f"  Confidence: {100 * exp['confidence']:.2f}%" in text  # type: ignore[operator]
    rate = 100 * exp["wins"] / exp["trades"]  # type: ignore[operator]
    assert f"    Win Rate: {rate:.2f}% ({exp['wins']}/{exp['trades']} trades)" in text
    pnl = float(exp["pnl"])  # type: ignore[arg-type]
    mark = "✓" if pnl > 0 else "✗"
    assert f"    {mark} P&L: {fmt_money(pnl)} ({pnl / 100:.2f}%)" in text
    assert f"    Max Drawdown: {exp['drawdown']:.2f}%" in text
    assert f"Alerts Sent: {exp['sent']}" in text


def test_running_deployment_is_live_relative_to_now(project: Path) -> None:
    """A deployment marked running whose process is alive: windows end now, uptime counts."""
    db = project / "data" / "trading.db"
    started = (datetime.now(tz=UTC) - timedelta(minutes=5)).strftime(FMT)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE deployments SET status = 'running', ended_at = NULL, pid = ?, started_at = ?",
            (os.getpid(), started),
        )
    now_ms = int(time.time()) * 1000
    status = _read(project, now_ms)
    scope = status.system.scope
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime(FMT)
    assert scope.live and scope.reference == now and scope.active_symbols == (SYMBOL,)
    assert status.system.uptime_s == pytest.approx(300, abs=2)
    exp = _expected(db, now)
    (s,) = status.symbols
    assert (s.trades, s.wins) == (exp["trades"], exp["wins"])
    assert s.pnl == pytest.approx(exp["pnl"])
    # durations are measured on the engine's clock (its newest candle), not on wall time
    last = query(db, "SELECT MAX(timestamp) FROM confidence_history")[0][0]
    assert scope.candle_time == last
    since = datetime.strptime(exp["since"], FMT).replace(tzinfo=UTC)  # type: ignore[arg-type]
    clock = datetime.strptime(last, FMT).replace(tzinfo=UTC)
    assert s.time_in_mode_s == (clock - since).total_seconds()
    text = "\n".join(render_screen(status, 10))
    assert "No deployment running" not in text
    assert "  Uptime: 5m " in text and "  Active Symbols: 1" in text


def test_unknown_symbol_is_a_user_error(phase1_project: Path) -> None:
    from candlewise.core.errors import UserError

    with pytest.raises(UserError, match="unknown symbol 'DOGE/USDT'"):
        _read(phase1_project, int(time.time() * 1000), symbol="DOGE/USDT")


def test_empty_database_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trading.db'}"
    open_store(url).dispose()  # the schema, no event
    cfg = load_config(None)
    engine = open_reader(url)
    with engine.connect() as conn:
        status = read_status(conn, cfg, now_ms=int(time.time() * 1000), database="trading.db")
    engine.dispose()
    assert status.system.scope.empty and status.symbols == ()
    text = "\n".join(render_screen(status, 10))
    assert "No deployment is running and trading.db holds no trading events yet" in text
    assert "python deploy_production.py --phase 1 --symbol BTC/USDT" in text
    assert "Win Rate" not in text and "P&L" not in text and "Error Rate" not in text


def _guide_status() -> MonitorStatus:
    scope = Scope(
        now="2026-01-02 12:05:00", reference="2026-01-02 12:05:00", live=True, empty=False,
        deployment=DeploymentInfo(1, 1, (SYMBOL,), "running", "2026-01-02 12:00:00", None,
                                  None, None, True),
        active_symbols=(SYMBOL,), symbols=(SYMBOL,),
    )  # fmt: skip
    system = SystemStatus(scope, "data/trading.db", 300, 0.0, 0, 60, 0, 24.0)
    symbol = SymbolStatus(
        symbol=SYMBOL, mode="TRADING", mode_since="2026-01-02 11:49:30", time_in_mode_s=930,
        confidence=0.8245, trades=12, wins=7, pnl=125.50, pnl_percent=1.2551,
        max_drawdown_percent=3.21,
        activity=(
            Activity("2026-01-02 11:58:00", "trade", "BUY", True, 45.20, "1h"),
            Activity("2026-01-02 11:45:00", "retrain", "loss_immediate", True, 0.8245, "1h"),
            Activity("2026-01-02 11:30:00", "trade", "SELL", False, -12.30, "1h"),
        ),
    )  # fmt: skip
    return MonitorStatus(system, (symbol,))


def test_rendering_reproduces_the_guide_screen() -> None:
    assert "\n".join(render_screen(_guide_status(), 10)) == GUIDE_SCREEN


def test_line_formats() -> None:
    assert [fmt_duration(s) for s in (0, 59, 300, 930, 7500, 90061)] == [
        "0s", "59s", "5m 0s", "15m 30s", "2h 5m 0s", "1d 1h 1m 1s",
    ]  # fmt: skip
    assert [fmt_money(x) for x in (45.2, -12.3, 1234.5, -0.001)] == [
        "$45.20", "-$12.30", "$1,234.50", "$0.00",
    ]  # fmt: skip
    rejected = Activity("2026-01-02 11:45:00", "retrain", "drift", False, 0.6, "4h")
    running = Activity("2026-01-02 11:46:00", "retrain", "manual", None, None, "4h")
    assert activity_line(rejected) == (
        "[11:45] Retrain: ✗ drift → 60.00% (rejected, previous model kept)"
    )
    assert activity_line(running) == "[11:46] Retrain: ⚙ manual (in progress)"


def test_feed_data_errors_get_their_own_line_below_the_guides() -> None:
    guide = _guide_status()
    status = replace(guide, system=replace(guide.system, feed_data_errors_1h=4))
    lines = render_screen(status, 10)
    at = lines.index("  Active Symbols: 1")
    assert lines[at - 1] == "  Error Rate (1h): 0.00%"  # bad exchange data is no system error
    assert lines[at + 1] == (
        "  Feed Data Errors (1h): 4 (bad exchange data, backfilled; not in the error rate)"
    )
    assert [line for line in lines if "Feed Data" not in line] == GUIDE_SCREEN.split("\n")
