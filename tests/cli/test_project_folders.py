"""The first command that works in a project folder creates the guide's folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

from candlewise.cli.main import run


def test_first_start_creates_logs_reports_and_backups(workdir: Path, capsys) -> None:
    assert run(["data", "simulate", "--symbols", "BTC/USDT", "--days", "0.05"]) == 0
    for name in ("logs", "production_reports", "backups"):
        assert (workdir / name).is_dir(), name
    # the guide's daily backup, verbatim (it failed: backups/ did not exist)
    done = subprocess.run(
        "cp data/trading.db backups/trading_$(date +%Y%m%d).db",
        shell=True, cwd=workdir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((workdir / "backups").glob("trading_2*.db"))) == 1
    capsys.readouterr()
    assert run(["restore", "--list"]) == 0  # a copied file there is not taken for a backup
    assert "No backups in backups/ yet" in capsys.readouterr().out


def test_folders_follow_the_config(workdir: Path) -> None:
    (workdir / "c.yaml").write_text(
        "paths:\n  logs_dir: var/log\n  reports_dir: var/reports\n  backups_dir: var/bak\n"
    )
    assert run(["data", "simulate", "--days", "0.05", "--config", "c.yaml"]) == 0
    assert all((workdir / "var" / n).is_dir() for n in ("log", "reports", "bak"))
    assert not (workdir / "backups").exists()


def test_a_refused_command_creates_nothing(workdir: Path) -> None:
    assert run(["data", "import", "x.csv", "--symbol", "BTC-USDT", "--timeframe", "1m"]) == 2
    assert list(workdir.iterdir()) == []
