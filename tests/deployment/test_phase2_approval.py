"""Phase 2 in a terminal: without --approve, phase 3 asks the operator (y/N) after an APPROVED
phase 1, records who approved it, and deploys nothing on "n". Driven through a real pseudo-
terminal, as an operator types."""

from __future__ import annotations

import getpass
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from candlewise.store import deployment_store
from candlewise.store.db import open_store

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
symbols: [BTC/USDT]
timeframes:
  intervals:
    - {interval: 1m, weight: 0.5}
    - {interval: 5m, weight: 0.5}
models: {max_samples: 300}
"""
QUESTION = "Approve phase 3 for BTC/USDT? [y/N]"


@pytest.fixture
def approved_phase1(workdir: Path) -> Path:
    """A project whose phase 1 finished APPROVED (recorded through the store's own code)."""
    (workdir / "config.yaml").write_text(CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", "BTC/USDT", "--days", "2"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    engine = open_store(f"sqlite:///{workdir / 'data' / 'trading.db'}")
    with engine.begin() as conn:
        dep = deployment_store.create_deployment(conn, 1, ["BTC/USDT"], None)
        deployment_store.finish(conn, dep, "completed", verdict="APPROVED", criteria_met=4)
    engine.dispose()
    return workdir


def _phase3_in_terminal(answer: str) -> tuple[int, str]:
    """Runs phase 3 with a pseudo-terminal as stdin/stdout, answers the question, returns
    (exit code, everything the terminal showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "3", "--duration", "30m",
         "--speed", "max", "--stagger", "0s"],
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )  # fmt: skip
    os.close(follower)
    shown, answered = b"", False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and QUESTION.encode() in shown.replace(b"\r\n", b" "):
                os.write(leader, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert answered, shown.decode(errors="replace")[-2000:]
    return code, shown.decode(errors="replace")


def _deployments(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT phase, status, approved_by, approved_at FROM deployments ORDER BY id"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.timeout(300)
def test_the_operator_approves_in_the_terminal_and_is_recorded(approved_phase1: Path) -> None:
    code, shown = _phase3_in_terminal("y")
    assert code == 0, shown[-3000:]
    assert "Phase 1 (deployment 1, BTC/USDT) was APPROVED with 4/5 criteria met." in shown
    assert "PHASE 3: FULL PRODUCTION ROLLOUT" in shown
    rows = _deployments(approved_phase1 / "data" / "trading.db")
    assert rows[0][:3] == (1, "completed", getpass.getuser()) and rows[0][3]
    assert [r[:2] for r in rows[1:]] == [(3, "completed")]


@pytest.mark.timeout(300)
def test_declining_deploys_nothing(approved_phase1: Path) -> None:
    code, shown = _phase3_in_terminal("n")
    assert code == 2
    assert "phase 3 was not approved: nothing deployed" in shown
    assert _deployments(approved_phase1 / "data" / "trading.db") == [(1, "completed", None, None)]


def test_without_a_terminal_the_operator_must_pass_approve(approved_phase1: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "3"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "phase 2 is the operator's approval of phase 1's result" in done.stdout + done.stderr
    assert _deployments(approved_phase1 / "data" / "trading.db") == [(1, "completed", None, None)]
