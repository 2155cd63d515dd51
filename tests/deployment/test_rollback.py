"""Rollback and stopping, as an operator meets them: the drawdown limit stops the deployment in
the minute it fires, and ``--rollback`` leaves no open position in the store, with or without a
running deployment."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployment.stopping import open_position_ids, stop_phase1_holding_positions
from tests.phase1_project import NO_VALIDATION

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]
#: Two timeframes train in seconds; trading from 51 % opens positions within minutes of any
#: simulated market (a simulated window is the hours before now: a different market each run).
CONFIG = """\
symbols: [BTC/USDT]
continuous_learning:
  confidence: {trading_threshold: 0.51, hysteresis: 0.005}
  retraining: {max_epochs: 2}
models: {max_samples: 300}
timeframes:
  intervals:
    - {interval: 1m, weight: 0.5}
    - {interval: 5m, weight: 0.5}
deployment: {health_check_minutes: 30}
"""
GUIDE_BLOCK = [
    "=" * 80, "INITIATING ROLLBACK", "=" * 80,
    "Stopping continuous learning system...", "Closing all open positions...",
    "Disconnecting data provider...", "✓ Rollback complete. System stopped.",
    "Data preserved in database for analysis.",
]  # fmt: skip


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy_production.py"), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _query(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "config.yaml").write_text(CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", "BTC/USDT", "--days", "3"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return workdir


@pytest.mark.timeout(400)
def test_the_drawdown_limit_stops_the_deployment_in_the_minute_it_fires(project: Path) -> None:
    (project / "config.yaml").write_text(CONFIG + "risk: {max_drawdown_percent: 1.0}\n")
    done = _deploy("--phase", "1", "--symbol", "BTC/USDT", "--duration", "12h", "--speed", "max",
                   "--train-missing", *NO_VALIDATION)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    db = project / "data" / "trading.db"
    [(flattened_at,)] = _query(
        db, "SELECT DISTINCT exit_time FROM trade_outcomes WHERE exit_reason = 'rollback'"
    )
    assert _query(db, "SELECT status FROM deployments") == [("rolled_back",)]
    assert _query(db, "SELECT status, cursor_time FROM engine_runs") == [("finished", flattened_at)]
    # nothing happened after that minute: no signal, no shadow trade, no health check
    after = {
        "confidence_history": "timestamp",
        "shadow_trades": "exit_time",
        "timeframe_predictions": "timestamp",
        "health_checks": "timestamp",
        "trade_outcomes": "exit_time",
    }
    for table, column in after.items():
        later = _query(db, f"SELECT COUNT(*) FROM {table} WHERE {column} > '{flattened_at}'")
        assert later == [(0,)], table
    limit_alerts = _query(db, "SELECT timestamp FROM alerts WHERE message LIKE '%reached%limit%'")
    assert limit_alerts == [(flattened_at,)]  # one CRITICAL for one rollback
    assert f"Deployment rolled back at {flattened_at} UTC" in done.stdout


def _stop_with_open_positions(project: Path) -> list[int]:
    """A phase 1 stopped with Ctrl+C while it holds positions; returns their ids."""
    code, out = stop_phase1_holding_positions(project, signal.SIGINT)
    assert code == 130 and "open position(s) kept" in out, out[-3000:]
    return open_position_ids(project / "data" / "trading.db")


@pytest.mark.timeout(500)
def test_rollback_with_no_deployment_running_closes_the_stored_positions(project: Path) -> None:
    from candlewise.config.loader import load_config

    kept = _stop_with_open_positions(project)
    assert kept
    db = project / "data" / "trading.db"
    [(last_close, last_at)] = _query(
        db, "SELECT close, datetime(open_time / 1000 + 60, 'unixepoch') FROM candles "
        "WHERE symbol = 'BTC/USDT' AND timeframe = '1m' ORDER BY open_time DESC LIMIT 1",
    )  # fmt: skip
    entries = dict(_query(db, "SELECT id, fees FROM positions WHERE status = 'open'"))

    done = _deploy("--rollback")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == GUIDE_BLOCK
    assert f"  ✓ {len(kept)} stored position(s) closed at the last stored prices" in done.stdout
    assert _query(db, "SELECT COUNT(*) FROM positions WHERE status = 'open'") == [(0,)]
    paper = load_config(project / "config.yaml").paper
    rows = _query(
        db, "SELECT p.id, p.side, p.quantity, p.exit_price, p.fees, p.pnl, t.pnl_absolute, "
        "t.exit_time, p.entry_price FROM positions p JOIN trade_outcomes t ON t.position_id = p.id "
        "WHERE t.exit_reason = 'rollback'",
    )  # fmt: skip
    assert sorted(r[0] for r in rows) == sorted(kept)  # each close recorded once, as a trade
    for _, side, qty, exit_price, fees, pnl, outcome_pnl, exit_time, entry in rows:
        sign = 1 if side == "long" else -1
        assert exit_price == pytest.approx(last_close * (1 - sign * paper.slippage), rel=1e-12)
        assert fees == pytest.approx(entries[_] + qty * exit_price * paper.fee_rate, rel=1e-12)
        assert pnl == outcome_pnl == pytest.approx(sign * qty * (exit_price - entry) - fees)
        assert exit_time == last_at
    assert _query(db, "SELECT DISTINCT status FROM engine_runs") == [("finished",)]
    assert _query(db, "SELECT status FROM deployments") == [("rolled_back",)]

    again = _deploy("--rollback")
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    # the next start is a new account: its positions number after the closed ones
    fresh = _deploy("--phase", "1", "--symbol", "BTC/USDT", "--duration", "1h", "--speed", "max",
                    *NO_VALIDATION)  # fmt: skip
    assert fresh.returncode in (0, 1), fresh.stdout[-3000:] + fresh.stderr[-3000:]
    log = (project / "logs" / "production_deployment.log").read_text()
    assert "Continuing the state" not in log
