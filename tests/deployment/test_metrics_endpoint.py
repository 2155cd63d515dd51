"""The optional Prometheus endpoint of a running deployment, scraped over HTTP on 127.0.0.1 while
phase 1 runs in another process; every series is checked against the store as of the minute
the scrape reports (``candlewise_last_minute_timestamp_seconds``)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from candlewise.core.timestamps import ms_to_text
from candlewise.engine.trading_engine import EQUITY_SAMPLE_MINUTES
from tests.phase1_project import CONFIG, NO_VALIDATION

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.timeout(300)
def test_metrics_of_a_running_deployment_match_the_store(workdir: Path) -> None:
    port = _free_port()
    (workdir / "config.yaml").write_text(
        CONFIG + f"monitoring:\n  prometheus: {{enabled: true, port: {port}}}\n"
    )
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", "BTC/USDT", "--days", "10"],
                   check=True, capture_output=True, timeout=180)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol",
         "BTC/USDT", "--duration", "4h", "--speed", "240", "--train-missing", *NO_VALIDATION],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    metrics: dict = {}
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                metrics = _scrape(url)
            except OSError:
                continue
            closed = sum(v for (n, _), v in metrics.items() if n == "candlewise_trades_total")
            minute_ms = int(metrics.get(("candlewise_last_minute_timestamp_seconds", ()), 0) * 1000)
            if closed >= 3 and minute_ms % (EQUITY_SAMPLE_MINUTES * 60_000) == 0:
                break  # a minute the engine also sampled its equity into the store
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"✓ Metrics at http://127.0.0.1:{port}/metrics" in out
    minute = ms_to_text(int(metrics[("candlewise_last_minute_timestamp_seconds", ())] * 1000))
    con = sqlite3.connect(workdir / "data" / "trading.db")
    try:
        wins, losses = con.execute(
            "SELECT COALESCE(SUM(outcome = 'WIN'), 0), COALESCE(SUM(outcome = 'LOSS'), 0) "
            "FROM trade_outcomes WHERE exit_time <= ?", (minute,)
        ).fetchone()  # fmt: skip
        confidence = con.execute(
            "SELECT confidence_score FROM confidence_history WHERE timestamp <= ? "
            "ORDER BY id DESC LIMIT 1", (minute,)
        ).fetchone()[0]  # fmt: skip
        mode = con.execute(
            "SELECT mode FROM learning_states WHERE timestamp <= ? ORDER BY id DESC LIMIT 1",
            (minute,),
        ).fetchone()
        equity = con.execute(
            "SELECT equity, drawdown_percent FROM equity_history WHERE timestamp <= ? "
            "ORDER BY id DESC LIMIT 1", (minute,)
        ).fetchone()  # fmt: skip
    finally:
        con.close()
    assert metrics[("candlewise_trades_total", (("outcome", "WIN"),))] == wins
    assert metrics[("candlewise_trades_total", (("outcome", "LOSS"),))] == losses >= 1
    assert metrics[("candlewise_confidence", (("symbol", "BTC/USDT"),))] == pytest.approx(
        confidence, abs=1e-9
    )
    trading = 1.0 if mode is not None and mode[0] == "TRADING" else 0.0
    assert metrics[("candlewise_trading_mode", (("symbol", "BTC/USDT"),))] == trading
    assert equity is not None and equity[0] > 0
    assert metrics[("candlewise_equity_usdt", ())] == pytest.approx(equity[0], rel=1e-12)
    assert metrics[("candlewise_drawdown_percent", ())] == pytest.approx(equity[1], abs=1e-9)
    assert 0.0 <= equity[1] < 100.0
    lag = metrics[("candlewise_event_loop_lag_seconds", ())]
    # how far the feed runs behind its own paced clock depends on the machine's load: its value
    # is not asserted, only that it is the gauge's kind of number (seconds, never negative)
    assert 0.0 <= lag < 86_400.0
    assert ("candlewise_errors_total", ()) in metrics
