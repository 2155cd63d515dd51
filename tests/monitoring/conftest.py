"""Fixtures of the monitor tests: a writable copy of the shared phase 1 project, a two-symbol
backtest store, and the helpers that run the guide's command as a user would."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.phase1_project import CONFIG

ROOT = Path(__file__).resolve().parents[2]
MONITOR = ROOT / "monitor_production.py"

TWO_SYMBOL_CONFIG = CONFIG.replace("symbols: [BTC/USDT]", "symbols: [BTC/USDT, ETH/USDT]")


def run_monitor(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python monitor_production.py ARGS`` from the project folder ``cwd``."""
    return subprocess.run(
        [sys.executable, str(MONITOR), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    """Plain sqlite3, independent of the code under test."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def project(phase1_project: Path, tmp_path: Path) -> Path:
    """A writable copy of the shared phase 1 project (the original is only read)."""
    return Path(shutil.copytree(phase1_project, tmp_path / "project"))


@pytest.fixture(scope="session")
def two_symbol_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days of BTC/USDT and ETH/USDT through the whole engine (~20 s)."""
    root = tmp_path_factory.mktemp("two_symbols")
    (root / "config.yaml").write_text(TWO_SYMBOL_CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run(
        [str(exe), "backtest", "--symbols", "BTC/USDT,ETH/USDT", "--feed", "simulated",
         "--days", "2", "--warmup-days", "10", "--seed", "1", "--db", str(root / "bt.db")],
        cwd=root, check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    return root
