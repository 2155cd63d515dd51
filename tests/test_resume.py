"""Crash recovery: a backtest killed with SIGKILL at random moments and resumed each time by the
same command ends with the ledger, and the stored events, of a run that was never interrupted."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

KILLS = 20
CONFIG = (
    "symbols: [BTC/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.60\n    hysteresis: 0.05\n"
)
#: Retraining on: the kills also land inside retrains and around their checkpoints.
ARGS = ["backtest", "--config", "low.yaml", "--days", "0.5", "--seed", "3", "--warmup-days", "12"]

#: Stored events compared row for row (ids, wall-clock stamps and durations left out).
TABLES = {
    "trade_outcomes": "symbol, timeframe, predicted_direction, entry_time, exit_time, "
    "entry_price, exit_price, quantity, pnl_absolute, fees, outcome, exit_reason",
    "positions": "id, symbol, timeframe, side, status, entry_time, exit_time, quantity, pnl",
    "shadow_trades": "symbol, timeframe, entry_time, exit_time, pnl_absolute",
    "learning_states": "symbol, timestamp, mode, previous_mode, confidence",
    "confidence_history": "symbol, timestamp, confidence_score, direction, mode",
    "timeframe_predictions": "symbol, timeframe, timestamp, p_up, model_version",
    "retraining_history": "symbol, timeframe, triggered_at, trigger_reason, success, "
    "val_accuracy, old_version, new_version",
    "equity_history": "timestamp, equity, drawdown_percent",
    "model_registry": "symbol, timeframe, version, val_accuracy, train_end",
}


def _command(db: str) -> list[str]:
    return [str(Path(sys.executable).with_name("candlewise")), *ARGS, "--db", db]


def _ledger(output: str) -> str:
    found = re.search(r"^Ledger: ([0-9a-f]{64})$", output, re.M)
    assert found, output[-2000:]
    return found.group(1)


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Floats to 12 decimals: replay predicts in vectorised blocks that start where the run
    (re)started, and a block's matrix products may differ from another's in the last bit
    (~1e-16); every decision and the ledger are exactly equal."""
    con = sqlite3.connect(db)
    try:
        return {
            table: [
                tuple(round(v, 12) if isinstance(v, float) else v for v in row)
                for row in con.execute(f"SELECT {cols} FROM {table} ORDER BY {cols}")
            ]
            for table, cols in TABLES.items()
        }
    finally:
        con.close()


def _cursor(db: Path) -> str | None:
    if not db.exists():
        return None
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT status, cursor_time FROM engine_runs").fetchone()
    except sqlite3.OperationalError:  # killed before the schema existed
        return None
    finally:
        con.close()
    return None if row is None else f"{row[0]} {row[1]}"


@pytest.mark.timeout(600)
def test_twenty_kills_resume_to_the_uninterrupted_ledger(workdir: Path) -> None:
    (workdir / "low.yaml").write_text(CONFIG)
    started = time.monotonic()
    reference = subprocess.run(_command("data/ref.db"), capture_output=True, text=True, check=True)
    duration = time.monotonic() - started
    assert int(re.search(r"Trades: (\d+)", reference.stdout).group(1)) > 20  # type: ignore[union-attr]
    assert "accepted)" in reference.stdout and "Retrains by reason: none" not in reference.stdout

    rng = random.Random(20)
    db = workdir / "data" / "killed.db"
    seen = []
    for i in range(KILLS):
        before = _cursor(db)
        proc = subprocess.Popen(
            _command(str(db)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if i % 4 == 0:  # anywhere: start-up, preparation, restore, replay
            time.sleep(rng.uniform(0.2, 0.5 * duration))
        else:  # inside the replay: once this process has checkpointed, a little later
            deadline = time.monotonic() + duration
            while _cursor(db) == before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.append(_cursor(db))
    resumed = subprocess.run(_command(str(db)), capture_output=True, text=True, check=True)

    assert _ledger(resumed.stdout) == _ledger(reference.stdout)
    cursors = {c for c in seen if c and c.startswith("running")}
    assert len(cursors) >= 3, seen  # the kills really fell at different moments of the replay
    ref_rows, got_rows = _rows(workdir / "data" / "ref.db"), _rows(db)
    for table in TABLES:
        assert got_rows[table] == ref_rows[table], table  # nothing lost, nothing twice


#: The block replay (no automatic retraining): checkpoints fall on block ends, once a second.
BLOCK_ARGS = ["backtest", "--config", "low.yaml", "--days", "90", "--seed", "3",
              "--warmup-days", "12", "--no-retrain"]  # fmt: skip
BLOCK_KILLS = 8


@pytest.mark.timeout(600)
def test_kills_during_a_block_replay_resume_to_the_uninterrupted_rows(workdir: Path) -> None:
    (workdir / "low.yaml").write_text(CONFIG)
    exe = str(Path(sys.executable).with_name("candlewise"))
    reference = subprocess.run(
        [exe, *BLOCK_ARGS, "--db", "data/ref.db"], capture_output=True, text=True, check=True
    )
    log = (workdir / "logs" / "production_deployment.log").read_text()
    assert "Replay path: block" in log
    rng = random.Random(8)
    db = workdir / "data" / "killed.db"
    seen = []
    for _ in range(BLOCK_KILLS):
        before = _cursor(db)
        proc = subprocess.Popen(
            [exe, *BLOCK_ARGS, "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while _cursor(db) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))  # between two checkpoints of the replay, mostly
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.append(_cursor(db))
    resumed = subprocess.run(
        [exe, *BLOCK_ARGS, "--db", str(db)], capture_output=True, text=True, check=True
    )
    assert _ledger(resumed.stdout) == _ledger(reference.stdout)
    running = {c for c in seen if c and c.startswith("running")}
    assert len(running) >= 3, seen  # the kills fell at different moments of the replay
    ref_rows, got_rows = _rows(workdir / "data" / "ref.db"), _rows(db)
    for table in TABLES:
        assert got_rows[table] == ref_rows[table], table
