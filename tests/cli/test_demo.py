"""``candlewise demo`` (what ``make demo`` runs) on the defaults, and the guide's SQL on it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from candlewise.cli.main import run
from tests.store.guide_queries import GUIDE_QUERIES

REPO = Path(__file__).resolve().parents[2]


def test_demo_fills_the_store_and_every_guide_query_runs(workdir: Path, capsys) -> None:
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    assert run(["demo", "--days", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "✓ 1,440 new 1m candles recorded from the simulated feed" in out  # 2 symbols x 720
    assert "BTC/USDT|" in out and "ETH/USDT|" in out
    con = sqlite3.connect(workdir / "data" / "trading.db")
    try:
        results = [con.execute(q).fetchall() for q in GUIDE_QUERIES]
    finally:
        con.close()
    assert results[0] == [("ok",)]
    per_symbol = dict(results[1])
    assert set(per_symbol) == {"BTC/USDT", "ETH/USDT"} and per_symbol["BTC/USDT"] >= 720
