"""``--db`` on every command that uses the store: a SQLite file path or any database URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.core.errors import UserError
from candlewise.store.db import database_url, sqlite_file

READERS = [
    ["data", "summary"],
    ["db", "info"],
    ["db", "upgrade"],
    ["models", "list"],
    ["monitor", "--once"],
    ["monitor", "--report"],
    ["backup"],
    ["restore", "--list"],
    ["deploy", "--rollback"],
]


@pytest.fixture
def filled(workdir: Path) -> Path:
    """data/x.db with simulated BTC/USDT candles, written through a plain path."""
    argv = ["data", "simulate", "--symbols", "BTC/USDT", "--days", "0.05", "--db", "data/x.db"]
    assert run(argv) == 0
    return workdir / "data" / "x.db"


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_every_command_takes_a_path_or_a_sqlite_url(filled: Path, capsys, command) -> None:
    for form in ("data/x.db", "sqlite:///data/x.db", f"sqlite:///{filled}"):
        capsys.readouterr()
        assert run([*command, "--db", form]) in (0, 1), form  # 1: monitor's empty report
        captured = capsys.readouterr()
        assert "Error" not in captured.err, (form, captured.err)
    # nothing else was opened or created: no default database, no folder named "sqlite:"
    assert sorted(p.name for p in filled.parent.iterdir() if p.suffix == ".db") == ["x.db"]
    assert not (filled.parent.parent / "sqlite:").exists()


def test_the_summary_reads_the_file_either_way(filled: Path, capsys) -> None:
    outputs = []
    for form in ("data/x.db", "sqlite:///data/x.db"):
        capsys.readouterr()
        assert run(["data", "summary", "--db", form]) == 0
        outputs.append(capsys.readouterr().out)
    assert "BTC/USDT" in outputs[0] and outputs[0] == outputs[1]


def test_backup_of_a_path_copies_that_file(filled: Path, capsys) -> None:
    assert run(["backup", "--db", "data/x.db"]) == 0
    assert "✓ Backup written" in capsys.readouterr().out
    (copy,) = (filled.parent.parent / "backups").glob("*/*.db")
    con = sqlite3.connect(copy)
    try:
        minutes = con.execute("SELECT COUNT(*) FROM candles WHERE timeframe = '1m'").fetchone()
        assert minutes == (72,)
    finally:
        con.close()


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("data/x.db", "sqlite:///data/x.db"),
        ("/abs/x.db", "sqlite:////abs/x.db"),
        (" sqlite:///runs/a.db ", "sqlite:///runs/a.db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_url(text: str, url: str) -> None:
    assert database_url(text) == url


def test_sqlite_file() -> None:
    assert sqlite_file("sqlite:///runs/a.db") == Path("runs/a.db")
    assert sqlite_file("runs/a.db") == Path("runs/a.db")
    assert sqlite_file("sqlite:////tmp/a.db") == Path("/tmp/a.db")
    for bad in ("sqlite://", "postgresql://u@h/db"):
        with pytest.raises(UserError, match="is not a SQLite database file"):
            sqlite_file(bad)
