"""The checkpoint writer process: checkpoints committed in order, failures reported, and the
lock that keeps a resuming run from reading while an old writer still commits."""

from __future__ import annotations

import fcntl
import os
import pickle
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.store.checkpoint_writer import (
    CheckpointWriteError,
    CheckpointWriter,
    lock_path,
    usable,
)
from candlewise.store.db import create_db_engine, open_store
from candlewise.store.outbox import Outbox
from candlewise.store.run_store import FINISHED, RUNNING, create_run
from candlewise.store.tables import confidence_history, engine_runs


def _lock_is_free(path: Path) -> bool:
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


@pytest.fixture
def store_and_run(tmp_path: Path) -> tuple[Engine, int]:
    """A migrated SQLite file holding one backtest run."""
    store = open_store(f"sqlite:///{tmp_path / 'run.db'}")
    with store.begin() as conn:
        run_id = create_run(conn, "backtest", {"test": tmp_path.name})
    return store, run_id


@pytest.mark.timeout(60)
def test_checkpoints_are_committed_in_order_with_their_rows(
    tmp_path: Path, store_and_run: tuple[Engine, int]
) -> None:
    store, run_id = store_and_run
    writer = CheckpointWriter(store)
    outbox = Outbox()
    for i in range(5):
        for k in range(100):
            stamp = f"2024-03-01 00:{i:02d}:{k % 60:02d}"
            outbox.rows[confidence_history].append(("BTC/USDT", stamp, 0.5 + k / 1000, "BUY", None))
        status = FINISHED if i == 4 else RUNNING
        writer.submit(outbox, run_id, 1_000 * i, pickle.dumps({"i": i}), status)
        assert len(outbox) == 0  # the rows went to the writer
    writer.close()
    con = sqlite3.connect(tmp_path / "run.db")
    try:
        rows = con.execute(
            "SELECT timestamp, confidence_score FROM confidence_history ORDER BY id"
        ).fetchall()
        status, cursor, snapshot, pid = con.execute(
            "SELECT status, cursor_ms, snapshot, pid FROM engine_runs"
        ).fetchone()
    finally:
        con.close()
    assert len(rows) == 500 and rows[0] == ("2024-03-01 00:00:00", 0.5)
    assert [r[0][:16] for r in rows[::100]] == [f"2024-03-01 00:{i:02d}" for i in range(5)]
    assert (status, cursor, pickle.loads(snapshot)) == (FINISHED, 4_000, {"i": 4})
    assert pid == os.getpid()  # the run's process, not the writer's


@pytest.mark.timeout(60)
def test_a_failed_transaction_is_reported_and_nothing_of_it_is_stored(
    store_and_run: tuple[Engine, int],
) -> None:
    store, run_id = store_and_run
    writer = CheckpointWriter(store)
    outbox = Outbox()
    outbox.rows[confidence_history].append(("BTC/USDT", None, 0.5, "BUY", None))  # NOT NULL
    writer.submit(outbox, run_id, 60_000, b"snapshot", RUNNING)
    with pytest.raises(CheckpointWriteError, match="IntegrityError"):
        writer.close()
    with store.connect() as conn:
        assert conn.execute(confidence_history.select()).all() == []
        assert conn.execute(engine_runs.select()).one().cursor_ms is None


@pytest.mark.timeout(60)
def test_the_writer_holds_the_lock_until_it_is_done(
    tmp_path: Path, store_and_run: tuple[Engine, int]
) -> None:
    store, run_id = store_and_run
    path = lock_path(store)
    assert path == tmp_path / "run.db.writer.lock" and usable(store)
    writer = CheckpointWriter(store)
    writer.submit(Outbox(), run_id, 0, b"x", RUNNING)
    deadline = time.monotonic() + 20
    while _lock_is_free(path) and time.monotonic() < deadline:  # the writer starts up
        time.sleep(0.05)
    assert not _lock_is_free(path)
    writer.close()
    deadline = time.monotonic() + 20
    while not _lock_is_free(path) and time.monotonic() < deadline:  # and exits
        time.sleep(0.05)
    assert _lock_is_free(path)


def test_other_stores_are_written_in_process() -> None:
    assert not usable(create_db_engine("sqlite://"))
