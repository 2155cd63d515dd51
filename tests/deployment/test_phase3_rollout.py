"""The guide's phase 3, run as an operator runs it: refused with the reason after no or a
REJECTED phase 1; after an APPROVED phase 1, ``✓ BTC/USDT already deployed (Phase 1)``: its
account goes on (no second one, no retraining), the other symbols join it, from now."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from candlewise.core.timestamps import ms_to_text
from candlewise.store import deployment_store
from candlewise.store.db import open_store
from tests.phase1_project import NO_VALIDATION

ROOT = Path(__file__).resolve().parents[2]
#: Trades from 51 % (a short window closes trades), with risk limits no window reaches (a
#: rollback or a halted day would end the test's story), and a validation that such a run
#: passes (error rate and drawdown), so that phase 1 is APPROVED by its own code.
CONFIG = """\
symbols: [BTC/USDT, ETH/USDT]
continuous_learning:
  confidence: {trading_threshold: 0.51, hysteresis: 0.005}
  retraining: {max_epochs: 2}
risk: {daily_loss_limit: 0.5, max_drawdown_percent: 90.0}
timeframes:
  intervals:
    - {interval: 1m, weight: 0.5}
    - {interval: 5m, weight: 0.5}
models: {max_samples: 300}
deployment:
  health_check_minutes: 60
  validation: {max_drawdown: 100.0, error_rate: 1.0, min_criteria: 2}
"""


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy_production.py"), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _rows(db: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_without_any_phase1_phase3_says_so(workdir: Path) -> None:
    done = _deploy("--phase", "3")
    assert done.returncode == 2
    assert "Error: phase 3 needs an approved phase 1, and no phase 1 has run" in done.stderr
    assert "Hint: run python deploy_production.py --phase 1 --symbol BTC/USDT" in done.stderr


def test_an_endless_phase3_at_max_speed_is_refused(workdir: Path) -> None:
    """It starts now: unpaced and without --duration it would write simulated future without
    end (it used to replay the last 24 hours instead)."""
    done = _deploy("--phase", "3", "--force", "--reason", "drill", "--speed", "max")
    assert done.returncode == 2
    assert "Hint: add --duration (e.g. --duration 24h), or drop --speed" in done.stderr
    assert "PHASE 3" not in done.stdout


def test_after_a_rejected_phase1_phase3_names_it_and_when(workdir: Path) -> None:
    """The guide's "If Phase 1 Fails" stops with Ctrl+C: a later phase 1 without a verdict
    used to hide the REJECTED one ("none has finished")."""
    engine = open_store(f"sqlite:///{workdir / 'data' / 'trading.db'}")
    with engine.begin() as conn:
        dep = deployment_store.create_deployment(conn, 1, ["BTC/USDT"], None)
        deployment_store.finish(conn, dep, "completed", verdict="REJECTED", criteria_met=2)
        rejected = deployment_store.get_deployment(conn, dep)
        again = deployment_store.create_deployment(conn, 1, ["BTC/USDT"], None)
        deployment_store.finish(conn, again, "stopped")
    engine.dispose()
    assert rejected is not None
    done = _deploy("--phase", "3", "--approve")
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"Error: phase 3 needs an approved phase 1, and the last one (deployment {dep}, "
        f"BTC/USDT) was REJECTED at {rejected.ended_at} UTC: 2/5 criteria met"
    ) in done.stderr
    assert "Hint: fix what failed" in done.stderr and "Traceback" not in done.stderr
    assert "PHASE 3" not in done.stdout  # nothing deployed
    assert _rows(workdir / "data" / "trading.db", "SELECT phase FROM deployments") == [(1,), (1,)]


@pytest.mark.slow  # end to end: `make test-fast` leaves it out
@pytest.mark.timeout(600)
def test_after_an_approved_phase1_btc_is_continued_and_phase3_starts_now(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", "BTC/USDT,ETH/USDT", "--days", "2"],
                   check=True, capture_output=True, timeout=180)  # fmt: skip
    first = _deploy("--phase", "1", "--symbol", "BTC/USDT", "--duration", "3h", "--speed", "max",
                    "--train-missing", *NO_VALIDATION)  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    db = workdir / "data" / "trading.db"
    [(phase1_run,)] = _rows(db, "SELECT run_id FROM deployments WHERE phase = 1")
    held = _rows(db, "SELECT id FROM positions WHERE status = 'open'")

    started = int(time.time() * 1000)
    done = _deploy("--phase", "3", "--approve", "--duration", "2h", "--speed", "max",
                   "--stagger", "0s")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    expected = [
        "PHASE 3: FULL PRODUCTION ROLLOUT", "Deploying to 2 symbols:", "  - BTC/USDT",
        "  - ETH/USDT", "✓ BTC/USDT already deployed (Phase 1)", "Deploying ETH/USDT...",
        "  ✓ Subscribed to ETH/USDT @ 1m", "  ✓ Subscribed to ETH/USDT @ 5m",
        "✅ ETH/USDT deployed successfully", "✅ FULL ROLLOUT COMPLETE - 2 symbols active",
        "Continuous monitoring active. Press Ctrl+C to stop.",
    ]  # fmt: skip
    assert [line for line in lines if line in expected] == expected
    assert "Deploying BTC/USDT..." not in lines
    # the banner names the feed, as phase 1's does
    feed = "Feed: simulated, full speed (--speed max; --speed 1 plays it in real time)"
    assert lines.index(feed) == lines.index("  - ETH/USDT") + 1
    assert not [line for line in lines if line.startswith("Training BTC/USDT")]  # no retraining
    assert "Training ETH/USDT (1m, 5m)..." in lines  # phase 3 trains the new symbol only

    runs = _rows(db, "SELECT id, status FROM engine_runs WHERE kind = 'deployment' ORDER BY id")
    [(phase3_run,)] = _rows(db, "SELECT run_id FROM deployments WHERE phase = 3")
    assert runs == [(phase1_run, "finished"), (phase3_run, "running")]  # one account, carried
    log = (workdir / "logs" / "production_deployment.log").read_text()
    assert f"Continuing the state of deployment run {phase1_run}" in log
    if held:  # phase 1's open positions were the carried account's: it exited them
        ids = ",".join(str(pid) for (pid,) in held)
        assert _rows(db, f"SELECT DISTINCT status FROM positions WHERE id IN ({ids})") == [
            ("closed",)
        ]
    # the feed starts now: the first phase-3 decision (ETH was never deployed before) and the
    # first equity sample of phase 3's account fall in its first minutes, not a day back
    now = ms_to_text(started - started % 60_000)
    soon = ms_to_text(started + 10 * 60_000)
    [(eth_first,)] = _rows(
        db, "SELECT MIN(timestamp) FROM confidence_history WHERE symbol = 'ETH/USDT'"
    )
    [(equity_first,)] = _rows(
        db, f"SELECT MIN(timestamp) FROM equity_history WHERE run_id = {phase3_run}"
    )
    assert now <= eth_first <= soon and now <= equity_first <= soon
