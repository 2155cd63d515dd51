"""Checkpoints written before the modules moved (``tests/fixtures/pre_layout``) still resume.

A checkpoint is a pickle naming module paths (``candlewise.engine.EngineStats``); the fixtures
were written by the code of the layout before issue 15, so a plain ``pickle.loads`` of them
fails today and ``load_snapshot`` must map every old path to the new one.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from candlewise.engine.trading_engine import EngineStats
from candlewise.store.snapshots import MOVED_MODULES, MOVED_NAMES, load_snapshot
from candlewise.trading.paper_broker import PaperBroker

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout"
EXE = str(Path(sys.executable).with_name("candlewise"))
BACKTEST = ["backtest", "--config", "backtest.yaml", "--days", "0.5", "--seed", "5",
            "--warmup-days", "3"]  # fmt: skip


def _unpack(name: str, into: Path) -> None:
    with tarfile.open(FIXTURES / name) as tar:
        tar.extractall(into, filter="data")


def _snapshots(db: Path) -> dict[int, bytes]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT id, snapshot FROM engine_runs ORDER BY id"))
    finally:
        con.close()


def _ledger(stdout: str) -> str:
    found = re.search(r"^Ledger: ([0-9a-f]{64})$", stdout, re.M)
    assert found, stdout[-2000:]
    return found.group(1)


def test_the_old_pickles_name_modules_that_moved_and_load_into_todays_classes(
    tmp_path: Path,
) -> None:
    _unpack("pre_layout_backtest.tar.gz", tmp_path)
    (blob,) = _snapshots(tmp_path / "old.db").values()
    with pytest.raises(AttributeError):
        pickle.loads(blob)  # the fixture really is of the old layout
    snapshot = load_snapshot(blob)
    assert isinstance(snapshot["engine"]["stats"], EngineStats)
    assert isinstance(snapshot["engine"]["broker"], PaperBroker)
    for new in MOVED_MODULES.values():  # every target exists
        __import__(new)


def test_a_class_that_left_its_module_loads_from_its_old_path() -> None:
    for (old, name), new in MOVED_NAMES.items():
        blob = b"\x80\x04c" + f"{old}\n{name}\n".encode() + b"."  # a pickle of the class
        __import__(new)
        assert load_snapshot(blob) is getattr(sys.modules[new], name), (old, name)


def test_a_backtest_killed_before_the_move_resumes_to_the_uninterrupted_ledger(
    workdir: Path,
) -> None:
    (workdir / "backtest.yaml").write_text((FIXTURES / "backtest.yaml").read_text())
    _unpack("pre_layout_backtest.tar.gz", workdir / "data")
    status = sqlite3.connect(workdir / "data" / "old.db").execute(
        "SELECT status, cursor_ms FROM engine_runs"
    )
    assert status.fetchone() == ("running", 1_704_352_440_000)  # 07:14 of a 00:00-12:00 window

    resumed = subprocess.run([EXE, *BACKTEST, "--db", "data/old.db"], capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    fresh = subprocess.run([EXE, *BACKTEST, "--db", "data/new.db"], capture_output=True,
                           text=True, timeout=300)  # fmt: skip

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    reference = (FIXTURES / "backtest_reference_stdout.txt").read_text()
    # the old code, uninterrupted; today's code, uninterrupted; the old checkpoint, resumed
    assert _ledger(resumed.stdout) == _ledger(fresh.stdout) == _ledger(reference)
    assert "(6 accepted)" in resumed.stdout  # retrains after the checkpoint ran too


def test_a_deployment_stopped_before_the_move_is_continued_from_its_account(
    workdir: Path,
) -> None:
    _unpack("pre_layout_deployment.tar.gz", workdir)
    db = workdir / "data" / "trading.db"
    old = load_snapshot(_snapshots(db)[1])["engine"]

    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "deploy_production.py"),
         "--phase", "1", "--symbol", "BTC/USDT", "--duration", "1h", "--speed", "max",
         "--force", "--reason", "test: continue a pre-layout account"],
        cwd=workdir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode in (0, 1), done.stderr[-3000:]  # APPROVED or REJECTED
    assert "Traceback" not in done.stderr
    runs = sqlite3.connect(db).execute("SELECT id, status FROM engine_runs ORDER BY id")
    assert runs.fetchall() == [(1, "finished"), (2, "running")]  # continued, then superseded
    new = load_snapshot(_snapshots(db)[2])["engine"]
    # the account went on: its counters and its peak equity carried over, not started afresh
    assert old["stats"].trades == 112
    assert new["stats"].trades >= old["stats"].trades
    assert old["stats"].candles < new["stats"].candles <= old["stats"].candles + 72
    assert new["drawdown"].peak >= old["drawdown"].peak
