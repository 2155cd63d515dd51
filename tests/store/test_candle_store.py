"""Candle storage: idempotent, ordered, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from candlewise.core.candle import Candle
from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.store import candle_store

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def frame(n: int, start: int = T0, price: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = price * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    return pd.DataFrame(
        {
            "timestamp": start + 60_000 * np.arange(n, dtype=np.int64),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )


def test_insert_is_idempotent_and_round_trips(any_engine: Engine) -> None:
    data = frame(1000)
    with any_engine.begin() as conn:
        assert candle_store.insert_frame(conn, data, "BTC/USDT", "1m", "test") == 1000
        assert candle_store.insert_frame(conn, data.iloc[500:], "BTC/USDT", "1m", "test") == 0
        assert (
            candle_store.insert_frame(conn, frame(10, T0 + 60_000_000), "BTC/USDT", "1m", "t") == 10
        )
    with any_engine.connect() as conn:
        back = candle_store.load_frame(conn, "BTC/USDT", "1m", end_ms=T0 + 1000 * 60_000)
        assert candle_store.last_open_time(conn, "BTC/USDT", "1m") == T0 + 60_000_000 + 9 * 60_000
        last3 = candle_store.load_frame(conn, "BTC/USDT", "1m", limit=3)
    pd.testing.assert_frame_equal(back, data)
    assert last3["timestamp"].is_monotonic_increasing and len(last3) == 3


def test_upsert_replaces_derived_candles(any_engine: Engine) -> None:
    first = frame(3)
    second = first.assign(close=first["close"] + 1)
    with any_engine.begin() as conn:
        candle_store.upsert_frame(conn, first, "ETH/USDT", "5m", "derived")
        assert candle_store.upsert_frame(conn, second, "ETH/USDT", "5m", "derived") == 3  # written
        back = candle_store.load_frame(conn, "ETH/USDT", "5m")
    assert back["close"].tolist() == second["close"].tolist()


def test_timestamp_text_is_sqlite_datetime_form(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        candle_store.insert_candles(
            conn, [Candle("SOL/USDT", "1h", T0, 1.0, 2.0, 0.5, 1.5, 3.0)], "test"
        )
        stamp = conn.execute(text("SELECT timestamp FROM candles")).scalar_one()
    assert stamp == "2025-01-01 00:00:00" == ms_to_text(T0)
    assert text_to_ms(stamp) == T0


def test_summary_lists_every_series(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        candle_store.insert_frame(conn, frame(5), "BTC/USDT", "1m", "t")
        candle_store.insert_frame(conn, frame(2), "BTC/USDT", "5m", "t")
    assert candle_store.summary(sqlite_engine) == [
        ("BTC/USDT", "1m", 5, T0, T0 + 4 * 60_000),
        ("BTC/USDT", "5m", 2, T0, T0 + 60_000),
    ]


@pytest.mark.parametrize("bad", ["mysql://x", "not a url", "postgresql+nodriver://h/db"])
def test_unusable_urls_are_user_errors(bad: str) -> None:
    from candlewise.core.errors import UserError
    from candlewise.store.db import open_store

    with pytest.raises(UserError):
        open_store(bad)


def test_unreachable_postgres_names_the_url_without_password() -> None:
    from candlewise.core.errors import UserError
    from candlewise.store.db import open_store

    with pytest.raises(UserError) as info:
        open_store("postgresql+psycopg://bob:hunter2-secret@127.0.0.1:1/db?connect_timeout=2")
    assert "hunter2-secret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_remove_unclosed_deletes_only_the_sources_candles_that_have_not_closed(
    any_engine: Engine,
) -> None:
    now = T0 + 90 * 60_000 + 30_000  # 01:30:30
    with any_engine.begin() as conn:
        candle_store.insert_frame(conn, frame(90), "BTC/USDT", "1m", "binance")  # 00:00..01:29
        candle_store.insert_frame(conn, frame(3, T0 + 150 * 60_000), "BTC/USDT", "1m", "binance")
        candle_store.insert_frame(conn, frame(1, T0), "BTC/USDT", "1h", "binance")  # closed
        candle_store.insert_frame(conn, frame(1, T0 + 3_600_000), "BTC/USDT", "1h", "binance")
        candle_store.insert_frame(conn, frame(2, T0 + 150 * 60_000), "ETH/USDT", "1m", "binance")
        candle_store.insert_frame(conn, frame(2, T0 + 150 * 60_000), "SOL/USDT", "1m", "import")
        removed = candle_store.remove_unclosed(conn, ["BTC/USDT", "SOL/USDT"], "binance", now)
    assert removed == [
        ("BTC/USDT", "1m", 3, T0 + 150 * 60_000, T0 + 152 * 60_000),
        ("BTC/USDT", "1h", 1, T0 + 3_600_000, T0 + 3_600_000),  # 01:00-02:00 is still open
    ]
    with any_engine.connect() as conn:
        assert candle_store.last_open_time(conn, "BTC/USDT", "1m") == T0 + 89 * 60_000
        assert candle_store.count(conn, "BTC/USDT", "1m") == 90
        assert candle_store.last_open_time(conn, "BTC/USDT", "1h") == T0
        assert candle_store.count(conn, "ETH/USDT") == 2  # not asked for
        assert candle_store.count(conn, "SOL/USDT") == 2  # another source
