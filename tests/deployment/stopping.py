"""Stopping a running phase 1 while it holds positions, as an operator's Ctrl+C or SIGTERM does:
shared by the graceful-stop and the rollback tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.phase1_project import NO_VALIDATION

ROOT = Path(__file__).resolve().parents[2]


def open_position_ids(db: Path) -> list[int]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT id FROM positions WHERE status = 'open'")]
    except sqlite3.OperationalError:  # the deployment has not created its tables yet
        return []
    finally:
        con.close()


def stop_phase1_holding_positions(project: Path, sig: signal.Signals) -> tuple[int, str]:
    """Start a paced phase 1 (6 h at x120), send ``sig`` once it holds a position, and return
    its exit code and output. Behaviour, not speed: the run must stop at its next minute (the
    hours left would take minutes of wall time; communicate's bound fails the test if it ran
    on)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol",
         "BTC/USDT", "--duration", "6h", "--speed", "120", "--train-missing", *NO_VALIDATION],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    db = project / "data" / "trading.db"
    try:
        deadline = time.monotonic() + 200
        held: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None and not held:
            time.sleep(0.5)
            held = open_position_ids(db)
        assert held, "no position opened"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out
