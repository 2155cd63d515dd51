"""A live phase 1 on the Binance feed stops within seconds of SIGTERM: the feed is a real
websocket client connected to a Binance-speaking server on 127.0.0.1 (and history came through
the REST API of another), the clock is the wall clock, and the process is waiting on the
socket when the signal arrives."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from candlewise.core.timeframes import MINUTE_MS
from tests.market.binance_servers import (
    BinanceRestServer,
    ScriptClock,
    Stall,
    make_series,
    ws_server_thread,
)
from tests.phase1_project import NO_VALIDATION

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 2 * 1440 + 30


@pytest.fixture
def live_phase1(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """Phase 1 on the Binance feed, started and waiting on the websocket for its next candle."""
    now = int(time.time() * 1000)
    start = now - now % MINUTE_MS - (MINUTES - 1) * MINUTE_MS
    series = make_series(["BTC/USDT"], start, MINUTES)
    with (
        BinanceRestServer(series, lambda: int(time.time() * 1000)) as rest,
        ws_server_thread([[Stall()], [Stall()], [Stall()]], ScriptClock(now)) as ws,
    ):
        (workdir / "config.yaml").write_text(
            "symbols: [BTC/USDT]\n"
            f"exchange: {{rest_url: '{rest.url}', ws_url: '{ws.url}'}}\n"
            "timeframes:\n  intervals:\n"
            "    - {interval: 1m, weight: 0.5}\n    - {interval: 5m, weight: 0.5}\n"
            "models: {max_samples: 300}\n"
        )
        exe = Path(sys.executable).with_name("candlewise")
        download = [str(exe), "data", "download", "--symbol", "BTC/USDT", "--days", "2"]
        subprocess.run(download, check=True, capture_output=True, timeout=120)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol",
             "BTC/USDT", "--feed", "binance", "--train-missing", *NO_VALIDATION],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            shown = ""
            deadline = time.monotonic() + 180
            assert proc.stdout is not None
            while time.monotonic() < deadline and "✓ Deployment started." not in shown:
                line = proc.stdout.readline()
                if not line:
                    break
                shown += line
            assert "✓ Deployment started. Monitoring BTC/USDT for 24 hours..." in shown, shown
            deadline = time.monotonic() + 30
            while not ws.paths and time.monotonic() < deadline:  # the stream is connected
                time.sleep(0.1)
            assert ws.paths and "btcusdt@kline_1m" in ws.paths[0]
            time.sleep(1.0)  # waiting on the socket, as a live deployment spends its minutes
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def _rows(db: Path) -> tuple[list[tuple], tuple | None]:
    con = sqlite3.connect(db)
    try:
        status = con.execute("SELECT status FROM deployments").fetchall()
        run = con.execute("SELECT status FROM engine_runs ORDER BY id DESC").fetchone()
    finally:
        con.close()
    return status, run


@pytest.mark.timeout(300)
def test_sigterm_stops_a_live_binance_deployment_within_seconds(
    workdir: Path, live_phase1: subprocess.Popen[str]
) -> None:
    live_phase1.send_signal(signal.SIGTERM)
    # The fake exchange sends no further candle: a feed that only stopped at its next candle
    # would never return, and communicate's bound fails the test (no wall-clock speed asserted).
    out, _ = live_phase1.communicate(timeout=60)
    assert live_phase1.returncode == 130, out
    # stopped, and its run left RUNNING: the next start continues it, as the guide says
    assert _rows(workdir / "data" / "trading.db") == ([("stopped",)], ("running",))


@pytest.mark.timeout(300)
def test_rollback_reaches_a_live_deployment_waiting_for_its_next_candle(
    workdir: Path, live_phase1: subprocess.Popen[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy_production.py"), "--rollback"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ Rollback complete. System stopped." in done.stdout
    out, _ = live_phase1.communicate(timeout=60)  # no candle comes: stopping is the rollback's
    assert live_phase1.returncode == 1, out  # rolled back
    assert _rows(workdir / "data" / "trading.db") == ([("rolled_back",)], ("finished",))
