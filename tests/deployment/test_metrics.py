"""Window metrics from the store: system errors and feed data errors are counted apart."""

from __future__ import annotations

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.metrics import window_metrics
from candlewise.deployment.validation import feed_data_errors_line, validate
from candlewise.store import candle_store
from candlewise.store.error_log import record_error

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
BTC = "BTC/USDT"


def store_minutes(engine: Engine, n: int) -> None:
    candles = [
        Candle(BTC, "1m", T0 + i * MINUTE_MS, 100.0, 101.0, 99.0, 100.5, 1.0) for i in range(n)
    ]
    with engine.begin() as conn:
        candle_store.insert_candles(conn, candles, "binance")


def error(engine: Engine, error_type: str, component: str, minute: int) -> None:
    with engine.begin() as conn:
        stamp = ms_to_text(T0 + minute * MINUTE_MS + 30_000)
        record_error(conn, error_type, "x", symbol=BTC, component=component, timestamp=stamp)


def test_bad_frames_from_the_exchange_do_not_count_in_the_error_rate(
    sqlite_engine: Engine,
) -> None:
    """The user's phase 1: four bad Binance frames in 11 candle events made an error rate of
    0.36, REJECTED. They are feed data errors: reported, not judged."""
    store_minutes(sqlite_engine, 11)
    for minute in (1, 3, 5, 7):
        error(sqlite_engine, "bad_market_data", "binance", minute)
    error(sqlite_engine, "future_candle_removed", "binance", 0)
    error(sqlite_engine, "candle_rejected", "feed:binance", 2)
    error(sqlite_engine, "candle_rejected", "ingest:import", 2)  # a file import: neither
    end = T0 + 11 * MINUTE_MS
    with sqlite_engine.connect() as conn:
        m = window_metrics(conn, [BTC], T0, end)
    assert (m.events, m.errors, m.feed_data_errors, m.error_rate) == (11, 0, 6, 0.0)
    result = validate(m, AppConfig().deployment.validation)
    assert result.criterion("error_rate").passed
    assert m.as_dict()["feed_data_errors"] == 6  # in the phase report's metrics

    error(sqlite_engine, "engine_error", "engine", 4)  # a failure of the system itself
    with sqlite_engine.connect() as conn:
        m = window_metrics(conn, [BTC], T0, end)
    assert (m.errors, m.feed_data_errors) == (1, 6)
    assert m.error_rate == 1 / 11


def test_the_feed_data_errors_line() -> None:
    assert feed_data_errors_line(4) == (
        "Feed data errors: 4 (bad data from the exchange, skipped and backfilled; "
        "not counted in error_rate)"
    )
