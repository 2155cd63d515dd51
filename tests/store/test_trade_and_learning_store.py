"""Broker and learning events round-trip through the store, in the guide's tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.learning.modes import ModeMachine
from candlewise.signals.aggregate import Signal
from candlewise.store.learning_store import RetrainAttempt, record_retrain, record_transition
from candlewise.store.trade_store import open_positions, record_close, record_open
from candlewise.trading.paper_broker import PaperBroker
from tests.store.guide_queries import GUIDE_QUERIES

T = 1_735_689_600_000 + 3_600_000  # 01:00 UTC


def signal(direction: str, at: int, tf: str = "1h") -> Signal:
    p = 0.85 if direction == "BUY" else 0.15
    return Signal("BTC/USDT", tf, at, direction, 0.85, p, p, ("1h",), True)


def test_positions_and_outcomes_round_trip(sqlite_engine: Engine, sqlite_url: str) -> None:
    broker = PaperBroker(PaperConfig(), RiskConfig())
    opened = broker.on_signal(signal("BUY", T), 100.0).opened
    other = broker.on_signal(signal("SELL", T, "15m"), 100.0).opened
    assert opened is not None and other is not None
    with sqlite_engine.begin() as conn:
        record_open(conn, opened, "paper")
        record_open(conn, other, "paper")
    with sqlite_engine.connect() as conn:
        assert open_positions(conn) == [opened, other]  # what a restarted run resumes
    # an hour of 1m candles drifting down: the 15m short closes at its horizon with a win,
    # the 1h long at its horizon with a loss
    closed = []
    for i in range(60):
        price = 100.0 - 0.02 * (i + 1)
        minute = Candle("BTC/USDT", "1m", T + i * 60_000, price + 0.02, price + 0.03,
                        price - 0.01, price, 10.0)  # fmt: skip
        closed += broker.on_candle(minute)
    assert [(t.position_id, t.exit_time_ms) for t in closed] == [
        (other.id, T + 15 * 60_000),
        (opened.id, T + 60 * 60_000),
    ]
    with sqlite_engine.begin() as conn:
        for trade in closed:
            record_close(conn, trade)
    with sqlite_engine.connect() as conn:
        assert open_positions(conn) == []
    con = sqlite3.connect(Path(sqlite_url.removeprefix("sqlite:///")))
    try:
        worst = con.execute(GUIDE_QUERIES[6]).fetchall()
        portfolio = con.execute(GUIDE_QUERIES[10]).fetchone()[0]
        outcome = con.execute("SELECT outcome, exit_reason FROM trade_outcomes").fetchall()
    finally:
        con.close()
    loss = closed[1].pnl_absolute
    assert worst == [("BTC/USDT", "BUY", loss, 0.85)]
    assert portfolio == closed[0].pnl_absolute + loss
    assert outcome == [("WIN", "horizon"), ("LOSS", "horizon")]


def test_transitions_and_retrains_feed_the_guide_queries(
    sqlite_engine: Engine, sqlite_url: str
) -> None:
    import time

    now = int(time.time() * 1000)
    machine = ModeMachine(0.80, 0.05)
    transitions = [
        t for c in (0.82, 0.78, 0.74, 0.81) if (t := machine.observe("BTC/USDT", c, now))
    ]
    with sqlite_engine.begin() as conn:
        for t in transitions:
            record_transition(conn, t)
        record_retrain(
            conn,
            RetrainAttempt(
                "BTC/USDT",
                "1h",
                "loss_immediate",
                now - 3_600_000,
                now - 3_500_000,
                164.2,
                True,
                0.8345,
                0.61,
                3,
                4,
            ),
        )
        record_retrain(
            conn,
            RetrainAttempt(
                "BTC/USDT",
                "4h",
                "drift",
                now - 60_000,
                now,
                12.0,
                False,
                0.52,
                0.5,
                2,
                None,
                "worse than champion",
            ),
        )
    con = sqlite3.connect(Path(sqlite_url.removeprefix("sqlite:///")))
    try:
        states = con.execute(GUIDE_QUERIES[9]).fetchall()
        count, avg = con.execute(GUIDE_QUERIES[2]).fetchone()
        reasons = dict(con.execute(GUIDE_QUERIES[5]).fetchall())
    finally:
        con.close()
    assert [s[3] for s in states] == ["TRADING", "LEARNING", "TRADING"]  # newest first
    assert count == 2 and abs(avg - (0.8345 + 0.52) / 2) < 1e-12
    assert reasons == {"loss_immediate": 1, "drift": 1}
