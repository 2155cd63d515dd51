"""Backups of a database that is being written to are consistent; restore brings them back."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from candlewise.cli.main import run
from candlewise.core.errors import UserError
from candlewise.store import backup as backups
from candlewise.store.tables import error_log


def _count(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM error_log").fetchone()[0]
    finally:
        con.close()


def test_backup_while_writing_is_consistent_and_restorable(
    sqlite_engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "BTC_USDT_1h.pt").write_bytes(b"weights-v1")
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with sqlite_engine.begin() as conn:  # each transaction adds 10 rows
                conn.execute(
                    insert(error_log),
                    [
                        {
                            "timestamp": "2026-01-01 00:00:00",
                            "error_type": "t",
                            "message": f"{i}-{k}",
                        }
                        for k in range(10)
                    ],
                )
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [backups.backup(db, models, tmp_path / "backups") for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    for result in results:
        assert result.integrity == "ok"
        assert _count(result.folder / "trading.db") % 10 == 0  # no half transaction
        assert (result.folder / "models" / "BTC_USDT_1h.pt").read_bytes() == b"weights-v1"
        backups.verify(result.folder)
    assert len({r.folder for r in results}) == 3

    snapshot = results[0]
    expected = _count(snapshot.folder / "trading.db")
    (models / "BTC_USDT_1h.pt").write_bytes(b"weights-v2")
    safety = backups.restore(snapshot.folder, db, models, tmp_path / "backups")
    assert _count(db) == expected
    assert (models / "BTC_USDT_1h.pt").read_bytes() == b"weights-v1"
    assert safety is not None
    assert (safety.folder / "models" / "BTC_USDT_1h.pt").read_bytes() == b"weights-v2"


def test_damaged_backup_is_refused(sqlite_engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    result = backups.backup(db, tmp_path / "no-models", tmp_path / "backups")
    with (result.folder / "trading.db").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00garbage")
    with pytest.raises(UserError, match="damaged"):
        backups.restore(result.folder, db, tmp_path / "models", tmp_path / "backups")


def test_backup_and_restore_commands(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["data", "simulate", "--days", "0.1", "--symbols", "BTC/USDT"]) == 0
    assert run(["backup"]) == 0
    assert "✓ Backup written: backups/" in capsys.readouterr().out
    assert run(["restore", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "backups/" in listed
    assert run(["restore", "--yes"]) == 0
    assert "✓ Restored" in capsys.readouterr().out


def test_restore_without_backups_is_a_clear_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["restore", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "no backups" in err and "candlewise backup" in err


def test_second_restore_does_not_undo_the_first(workdir: Path, capsys) -> None:
    assert run(["data", "simulate", "--days", "0.05", "--symbols", "BTC/USDT"]) == 0
    assert run(["backup"]) == 0
    first = capsys.readouterr().out.split("✓ Backup written: ")[1].split(" ")[0]
    assert run(["restore", "--yes"]) == 0
    assert run(["restore", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"✓ Restored {first}") == 2  # the safety copy is never the default
    name = Path(first).name
    assert run(["restore", name, "--yes"]) == 0  # a bare backup name works too
