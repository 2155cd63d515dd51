"""The guide's SQL runs unmodified against our schema and returns the right rows.

Rows are written with timestamps relative to now through the store's own tables, then every
query is run both with Python's sqlite3 and (when installed) the ``sqlite3`` command the guide
uses, so the text form of timestamps is proven to work with ``datetime('now', '-6 hours')``.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from candlewise.core.timestamps import datetime_to_text
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import SimulatedMarket
from candlewise.store.tables import (
    confidence_history,
    error_log,
    learning_states,
    positions,
    retraining_history,
    trade_outcomes,
)
from tests.conftest import SHARED
from tests.store.guide_queries import GUIDE_QUERIES


def ago(**delta: float) -> str:
    return datetime_to_text(datetime.now(tz=UTC) - timedelta(**delta))


@pytest.fixture
def filled(sqlite_engine: Engine, sqlite_url: str) -> Path:
    market = SimulatedMarket(["BTC/USDT", "ETH/USDT"], seed=3, start_ms=1_700_000_040_000)
    for symbol, series in market.generate(600).items():
        ingest_frame(sqlite_engine, series.to_frame().drop(columns="regime"), symbol, "1m", "sim")
    with sqlite_engine.begin() as conn:
        conn.execute(
            insert(retraining_history),
            [
                {
                    "symbol": "BTC/USDT",
                    "timeframe": "1h",
                    "triggered_at": ago(hours=1),
                    "trigger_reason": "loss_immediate",
                    "validation_confidence": 0.80,
                },
                {
                    "symbol": "BTC/USDT",
                    "timeframe": "4h",
                    "triggered_at": ago(hours=2),
                    "trigger_reason": "drift",
                    "validation_confidence": 0.90,
                },
                {
                    "symbol": "BTC/USDT",
                    "timeframe": "1h",
                    "triggered_at": ago(hours=7),
                    "trigger_reason": "loss_immediate",
                    "validation_confidence": 0.50,
                },
            ],
        )
        conn.execute(
            insert(confidence_history),
            [
                {
                    "symbol": "BTC/USDT",
                    "timestamp": ago(hours=1),
                    "confidence_score": 0.8,
                    "direction": "BUY",
                },
                {
                    "symbol": "BTC/USDT",
                    "timestamp": ago(hours=23),
                    "confidence_score": 0.6,
                    "direction": "SELL",
                },
                {
                    "symbol": "BTC/USDT",
                    "timestamp": ago(hours=25),
                    "confidence_score": 0.99,
                    "direction": "BUY",
                },
                {
                    "symbol": "ETH/USDT",
                    "timestamp": ago(hours=1),
                    "confidence_score": 0.95,
                    "direction": "BUY",
                },
            ],
        )
        conn.execute(
            insert(error_log),
            [
                {"timestamp": ago(minutes=30 - i), "error_type": "feed", "message": f"error {i}"}
                for i in range(25)
            ],
        )
        pos_ids = []
        for pnl, status in ((10.0, "closed"), (-4.0, "closed"), (None, "open")):
            result = conn.execute(
                insert(positions).values(
                    symbol="BTC/USDT",
                    timeframe="1h",
                    side="long",
                    status=status,
                    mode="paper",
                    quantity=0.01,
                    entry_price=43000.0,
                    entry_time=ago(hours=3),
                    pnl=pnl,
                    fees=0.1,
                )
            )
            pos_ids.append(result.inserted_primary_key[0])
        for pid, pnl in zip(pos_ids[:2], (10.0, -4.0), strict=True):
            conn.execute(
                insert(trade_outcomes).values(
                    position_id=pid,
                    symbol="BTC/USDT",
                    timeframe="1h",
                    predicted_direction="BUY" if pnl > 0 else "SELL",
                    confidence=0.83,
                    entry_time=ago(hours=3),
                    exit_time=ago(hours=2),
                    entry_price=43000.0,
                    exit_price=43100.0,
                    quantity=0.01,
                    pnl_absolute=pnl,
                    pnl_percent=pnl / 4.3,
                    fees=0.1,
                    outcome="WIN" if pnl > 0 else "LOSS",
                )
            )
        conn.execute(
            insert(learning_states),
            [
                {
                    "symbol": "BTC/USDT",
                    "timestamp": ago(minutes=60 - i),
                    "mode": "TRADING" if i % 2 else "LEARNING",
                    "confidence": 0.7 + i / 100,
                }
                for i in range(6)
            ],
        )
    return Path(sqlite_url.removeprefix("sqlite:///"))


def run_all(db: Path) -> list[list[tuple]]:
    con = sqlite3.connect(db)
    try:
        return [con.execute(q).fetchall() for q in GUIDE_QUERIES]
    finally:
        con.close()


def test_every_guide_query_returns_the_expected_rows(filled: Path) -> None:
    (
        integrity,
        per_symbol,
        recent_retrains,
        errors,
        conf,
        by_reason,
        worst,
        outcomes,
        retrains,
        states,
        portfolio,
    ) = run_all(filled)
    assert integrity == [("ok",)]
    # starts at 22:14: the 5m..1d buckets it cuts into are not stored
    assert dict(per_symbol) == {"BTC/USDT": 600 + 119 + 39 + 9 + 2, "ETH/USDT": 769}
    assert recent_retrains[0][0] == 2 and recent_retrains[0][1] == pytest.approx(0.85)
    assert len(errors) == 20 and errors[0][2] == "error 24"
    assert conf[0] == pytest.approx((0.7, 0.8))
    assert dict(by_reason) == {"loss_immediate": 1, "drift": 1}
    assert [row[2] for row in worst] == [-4.0]
    assert [row[0] for row in outcomes] == [2, 1]
    assert len(retrains) == 3 and retrains[0][0] == 3
    assert [row[0] for row in states] == [6, 5, 4, 3, 2]
    assert portfolio == [(6.0,)]


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 command not installed")
def test_guide_queries_run_in_the_sqlite3_command(filled: Path) -> None:
    expected = run_all(filled)
    for query, rows in zip(GUIDE_QUERIES, expected, strict=True):
        out = subprocess.run(
            ["sqlite3", str(filled), query], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        assert len(out.splitlines()) == len(rows), query


@pytest.mark.skipif(SHARED is None, reason="../shared is absent")
def test_query_list_matches_the_guide() -> None:
    guide = (SHARED / "seed" / "PRODUCTION_DEPLOYMENT_GUIDE.md").read_text()
    found = {_fold(q) for q in re.findall(r'sqlite3 data/trading\.db "(.*?)"', guide, re.S)}
    support = guide.split("### Database Queries", 1)[1].split("```", 2)[1]
    found |= {_fold(q) + ";" for q in re.findall(r"^(SELECT[^;]*);", support, re.M)}
    assert found == {_fold(q) for q in GUIDE_QUERIES}


def _fold(query: str) -> str:
    return " ".join(query.split())
