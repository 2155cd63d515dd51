"""Ingest: bad rows are recorded in error_log, higher timeframes are derived from stored 1m."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from candlewise.market.aggregation import aggregate_frame
from candlewise.market.ingest import CandleRecorder, ingest_frame
from candlewise.market.simulated import SimulatedMarket
from candlewise.store import candle_store

DAY0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def sim_frame(minutes: int, seed: int = 1, symbol: str = "BTC/USDT") -> pd.DataFrame:
    series = SimulatedMarket([symbol], seed, DAY0).generate(minutes)[symbol]
    return series.to_frame().drop(columns="regime")


def test_bad_rows_are_rejected_repaired_and_logged(sqlite_engine: Engine) -> None:
    frame = sim_frame(30)
    frame.loc[3, "close"] = -1.0  # rejected: non-positive price
    frame.loc[5, "high"] = frame.loc[5, "low"] * 0.5  # rejected: high below low
    frame.loc[7, "open"] = frame.loc[7, "high"] * 1.01  # repaired: open above high
    frame = pd.concat([frame, frame.iloc[[10]]])  # duplicate row
    report = ingest_frame(sqlite_engine, frame, "BTC/USDT", "1m", "test", derive_higher=False)
    assert (report.stored, report.rejected) == (28, 3)
    assert report.repaired >= 1
    with sqlite_engine.connect() as conn:
        rows = conn.execute(text("SELECT error_type, message FROM error_log")).all()
        stored = candle_store.load_frame(conn, "BTC/USDT", "1m")
    assert len(rows) == len(report.issues) >= 4
    assert {r[0] for r in rows} >= {"candle_rejected", "candle_repaired"}
    assert any("non_positive_price" in r[1] for r in rows)
    repaired = stored[stored["timestamp"] == DAY0 + 7 * 60_000].iloc[0]
    assert repaired["high"] >= repaired["open"]


def test_second_import_completes_buckets_begun_by_the_first(sqlite_engine: Engine) -> None:
    whole = sim_frame(3 * 1440)
    ingest_frame(sqlite_engine, whole.iloc[:2000], "BTC/USDT", "1m", "a")
    ingest_frame(sqlite_engine, whole.iloc[2000:], "BTC/USDT", "1m", "b")
    with sqlite_engine.connect() as conn:
        for tf in ("5m", "1h", "1d"):
            stored = candle_store.load_frame(conn, "BTC/USDT", tf)
            expected = aggregate_frame(whole, tf)
            pd.testing.assert_frame_equal(stored, expected, check_exact=False, rtol=1e-12)


def test_recorder_streams_equal_batch_import(sqlite_engine: Engine, tmp_path) -> None:
    from candlewise.store.db import open_store

    frames = {s: sim_frame(1500, 2, s) for s in ("BTC/USDT", "ETH/USDT")}
    streamed = open_store(f"sqlite:///{tmp_path / 'stream.db'}")
    recorder = CandleRecorder(streamed, list(frames), "sim", flush_rows=700)
    market = SimulatedMarket(list(frames), 2, DAY0)
    block = market.generate(1500)
    for i in range(1500):
        for s in frames:
            recorder.add(block[s].candles()[i] if i == 0 else _candle(block[s], i))
    recorder.flush()
    for s, f in frames.items():
        ingest_frame(sqlite_engine, f, s, "1m", "sim")
    for tf in ("1m", "5m", "15m", "1h", "4h"):
        with streamed.connect() as a, sqlite_engine.connect() as b:
            for s in frames:
                pd.testing.assert_frame_equal(
                    candle_store.load_frame(a, s, tf), candle_store.load_frame(b, s, tf)
                )
    assert recorder.accepted == 3000 and recorder.closes["1h"] == 2 * 25


def test_recorder_resume_skips_nothing_and_duplicates_nothing(sqlite_engine: Engine) -> None:
    series = SimulatedMarket(["BTC/USDT"], 5, DAY0).generate(300)["BTC/USDT"]
    candles = series.candles()
    first = CandleRecorder(sqlite_engine, ["BTC/USDT"], "sim", flush_every_s=0.0)
    for c in candles[:137]:
        first.add(c)
    first.flush()
    second = CandleRecorder(sqlite_engine, ["BTC/USDT"], "sim", flush_every_s=0.0)
    assert second.resume_from_store() == {"BTC/USDT": candles[136].open_time}
    for c in candles[137:]:
        second.add(c)
    second.flush()
    with sqlite_engine.connect() as conn:
        m1 = candle_store.load_frame(conn, "BTC/USDT", "1m")
        m5 = candle_store.load_frame(conn, "BTC/USDT", "5m")
    assert m1["timestamp"].tolist() == [c.open_time for c in candles]
    assert len(m5) == 60 and np.allclose(m5["volume"].sum(), m1["volume"].sum())


def _candle(series, i):  # type: ignore[no-untyped-def]
    from candlewise.core.candle import Candle

    return Candle(
        series.symbol,
        "1m",
        int(series.open_time[i]),
        float(series.open[i]),
        float(series.high[i]),
        float(series.low[i]),
        float(series.close[i]),
        float(series.volume[i]),
    )
