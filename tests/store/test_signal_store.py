"""Predictions and signals land in the tables the guide's queries and the dashboard read."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from candlewise.signals.aggregate import SignalAggregator, TimeframePrediction
from candlewise.store.signal_store import record_predictions, record_signals
from tests.store.guide_queries import GUIDE_QUERIES


def test_predictions_and_signals_are_stored(sqlite_engine: Engine, sqlite_url: str) -> None:
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    at = int((now - timedelta(hours=1)).timestamp() * 1000)
    preds = [TimeframePrediction("BTC/USDT", tf, at, p, 3)
             for tf, p in (("1m", 0.9), ("1h", 0.2))]  # fmt: skip
    aggregator = SignalAggregator({"1m": 0.5, "1h": 0.5})
    for p in preds:
        aggregator.update(p)
    signal = aggregator.signal("BTC/USDT", "1h", at)
    assert signal is not None
    with sqlite_engine.begin() as conn:
        assert record_predictions(conn, preds) == 2
        assert record_signals(conn, [signal], mode="LEARNING") == 1
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    con = sqlite3.connect(db)
    try:
        stored = con.execute(
            "SELECT timeframe, p_up, confidence, direction, model_version "
            "FROM timeframe_predictions ORDER BY timeframe"
        ).fetchall()
        stuck_query = GUIDE_QUERIES[4]  # AVG/MAX confidence_score, BTC/USDT, last 24 hours
        avg_max = con.execute(stuck_query).fetchone()
    finally:
        con.close()
    assert stored == [("1h", 0.2, 0.8, "SELL", 3), ("1m", 0.9, 0.9, "BUY", 3)]
    assert avg_max[0] == avg_max[1] == signal.confidence == 0.55
