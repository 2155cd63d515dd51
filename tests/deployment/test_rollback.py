"""Rollback and stopping, as an operator meets them: the drawdown limit stops the deployment in
the minute it fires, and ``--rollback`` leaves no open position in the store, with or without a
running deployment."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
                   "--train-missing")  # fmt: skip
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
