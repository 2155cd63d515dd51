"""Aggregation 1m -> higher timeframes: equality with pandas resample, close timing, event order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candlewise.core.candle import Candle
from candlewise.core.timeframes import HIGHER_TIMEFRAMES, MINUTE_MS, TIMEFRAME_MS, timeframe_rank
from candlewise.market.aggregation import (
    TimeframeAggregator,
    aggregate_arrays,
    aggregate_frame,
    ordered_events,
)
from candlewise.market.bars import Bars
from tests.conftest import SHARED

COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
# "24h", not "1D": pandas ignores origin= for the calendar-day rule on a tz-aware index.
PANDAS_RULE = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "24h"}
DAY0 = 1_704_067_200_000  # 2024-01-01T00:00Z


CANDLES_DIR = (SHARED / "data" / "candles") if SHARED else Path("/nonexistent")
needs_shared_data = pytest.mark.skipif(
    not CANDLES_DIR.is_dir(), reason=f"shared data not found at {CANDLES_DIR}"
)


# -- helpers -------------------------------------------------------------------------------------


def synthetic_1m(seed: int, days: int = 4, gaps: int = 25) -> pd.DataFrame:
    """Random-walk 1m candles over ``days`` days with ``gaps`` random holes (1 min to ~6 h)."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    keep = np.ones(n, dtype=bool)
    for start, length in zip(rng.integers(0, n, gaps), rng.geometric(1 / 40, gaps), strict=True):
        keep[start : start + length] = False
    keep[rng.random(n) < 0.02] = False  # scattered single missing minutes
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 1e-3)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 1e-3)
    volume = rng.random(n) * 10
    volume[rng.random(n) < 0.01] = 0.0
    ts = DAY0 + np.arange(n, dtype=np.int64) * MINUTE_MS
    df = pd.DataFrame(dict(zip(COLUMNS, [ts, open_, high, low, close, volume], strict=True)))
    return df[keep].reset_index(drop=True)


def pandas_reference(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """The spec: left-labelled, left-closed resample from the epoch; empty buckets dropped, and
    the last bucket dropped unless its last minute is present (it is not closed yet)."""
    idx = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
    frame = df.drop(columns="timestamp").set_index(pd.DatetimeIndex(idx))
    out = frame.resample(PANDAS_RULE[timeframe], label="left", closed="left", origin="epoch").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out = out.dropna(subset=["open"])
    out.insert(0, "timestamp", out.index.as_unit("ms").asi8)
    out = out.reset_index(drop=True)
    length = TIMEFRAME_MS[timeframe]
    last = int(df["timestamp"].iloc[-1])
    if last + MINUTE_MS != last - last % length + length:
        out = out.iloc[:-1]
    return out


def to_candles(df: pd.DataFrame, symbol: str = "BTC/USDT") -> list[Candle]:
    rows = zip(*(df[c].tolist() for c in COLUMNS), strict=True)
    return [Candle(symbol, "1m", int(t), o, h, lo, c, v) for t, o, h, lo, c, v in rows]


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    data = [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles]
    return pd.DataFrame(data, columns=COLUMNS).astype({"timestamp": "int64"})


def run_incremental(candles: list[Candle], symbol: str = "BTC/USDT") -> dict[str, pd.DataFrame]:
    agg = TimeframeAggregator(symbol)
    closed: list[Candle] = []
    for candle in candles:
        closed.extend(agg.add(candle))
    assert agg.flush() == []
    return {tf: candles_frame([c for c in closed if c.timeframe == tf]) for tf in HIGHER_TIMEFRAMES}


def assert_same_bars(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert len(got) == len(ref)
    assert np.array_equal(got["timestamp"].to_numpy(), ref["timestamp"].to_numpy())
    for col in ("open", "high", "low", "close"):  # copied floats: exactly equal
        assert np.array_equal(got[col].to_numpy(), ref[col].to_numpy()), col
    np.testing.assert_allclose(got["volume"], ref["volume"], rtol=1e-9, atol=0)


def candle(minute: int, price: float = 100.0, volume: float = 1.0, symbol: str = "BTC/USDT"):
    """1m candle opening ``minute`` minutes after DAY0 (a UTC midnight)."""
    return Candle(
        symbol, "1m", DAY0 + minute * MINUTE_MS, price, price + 1, price - 1, price, volume
    )


# -- equality with pandas ------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "cut"), [(1, 0), (2, 7), (3, 333)])
def test_both_paths_match_pandas_on_synthetic_data_with_gaps(seed: int, cut: int) -> None:
    df = synthetic_1m(seed).iloc[: -cut or None]  # cut: end the data inside open buckets
    assert len(df) < 4 * 1440  # the gaps are really there
    incremental = run_incremental(to_candles(df))
    for tf in HIGHER_TIMEFRAMES:
        ref = pandas_reference(df, tf)
        assert_same_bars(aggregate_frame(df, tf), ref)
        assert_same_bars(incremental[tf], ref)


@needs_shared_data
@pytest.mark.shared_data
@pytest.mark.parametrize("stem", ["BTC_USDT", "BNB_USDT"])
def test_both_paths_match_pandas_on_real_data(stem: str) -> None:
    df = pd.read_csv(CANDLES_DIR / f"{stem}-1m.csv.gz")
    steps = np.diff(df["timestamp"].to_numpy()) // MINUTE_MS
    if stem == "BNB_USDT":  # the two exchange outages SOURCES.md lists
        assert sorted(steps[steps > 1] - 1) == [150, 284]
    incremental = run_incremental(to_candles(df, stem.replace("_", "/")), stem.replace("_", "/"))
    for tf in HIGHER_TIMEFRAMES:
        ref = pandas_reference(df, tf)
        assert_same_bars(aggregate_frame(df, tf), ref)
        assert_same_bars(incremental[tf], ref)


def overlap_with_coarse_file(base: str, tf: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(our 1m->tf bars, the coarse file's bars) on the fully covered buckets both have."""
    m1 = pd.read_csv(CANDLES_DIR / f"{base}_USDT-1m.csv.gz")
    coarse = pd.read_csv(CANDLES_DIR / f"{base}_USDT-{tf}.csv.gz")
    length = TIMEFRAME_MS[tf]
    counts = (m1["timestamp"] - m1["timestamp"] % length).value_counts()
    full = counts.index[counts == length // MINUTE_MS]
    ours = aggregate_frame(m1, tf)
    ours = ours[ours["timestamp"].isin(full) & ours["timestamp"].isin(coarse["timestamp"])]
    theirs = coarse[coarse["timestamp"].isin(ours["timestamp"])]
    return ours.reset_index(drop=True), theirs.reset_index(drop=True)


@needs_shared_data
@pytest.mark.shared_data
@pytest.mark.parametrize("base", ["BTC", "ETH", "SOL", "BNB"])
def test_aggregated_1m_equals_coarse_files_where_they_overlap(base: str) -> None:
    """The coarse files mostly come from other windows (SOURCES.md); wherever a fully covered
    bucket overlaps (BTC/ETH 5m and 4h, ETH 1d, SOL 15m), it must match exactly."""
    compared = 0
    for tf in HIGHER_TIMEFRAMES:
        ours, theirs = overlap_with_coarse_file(base, tf)
        assert_same_bars(ours, theirs)
        compared += len(ours)
    if compared == 0:
        pytest.skip(f"{base} 1m shares no fully covered bucket with any coarser file")


@needs_shared_data
@pytest.mark.shared_data
def test_eth_1m_to_15m_equals_the_15m_file_if_they_overlap() -> None:
    ours, theirs = overlap_with_coarse_file("ETH", "15m")
    if ours.empty:  # as shipped: 15m ends 2025-04-03, 1m starts 2025-05-20
        pytest.skip("ETH 1m and 15m files do not overlap in the shared data")
    assert_same_bars(ours, theirs)


# -- close timing --------------------------------------------------------------------------------


def test_bucket_closes_with_its_last_minute() -> None:
    agg = TimeframeAggregator("BTC/USDT")
    for minute in range(4):
        assert agg.add(candle(minute, 100 + minute)) == []
    closed = agg.add(candle(4, 104, volume=2.0))
    assert closed == [Candle("BTC/USDT", "5m", DAY0, 100.0, 105.0, 99.0, 104.0, 6.0)]
    assert [c.timeframe for c in agg.pending()] == ["15m"]


def test_partial_bucket_closes_when_a_later_minute_proves_it_over() -> None:
    agg = TimeframeAggregator("BTC/USDT", ["5m", "15m"])
    agg.add(candle(0, 100))
    agg.add(candle(1, 110))
    assert agg.flush() == []  # at the end of data a partial bucket is never closed
    closed = agg.add(candle(7, 120))  # 12:02..12:06 missing; the 5m bucket 00:05 is still open
    assert closed == [Candle("BTC/USDT", "5m", DAY0, 100.0, 111.0, 99.0, 110.0, 2.0)]
    # A gap over the 15m boundary closes the 00:05 5m partial and the 00:00 15m bucket together.
    closed = agg.add(candle(31, 130))
    assert [(c.timeframe, c.open_time - DAY0, c.volume) for c in closed] == [
        ("5m", 5 * MINUTE_MS, 1.0),
        ("15m", 0, 3.0),
    ]


def test_gap_partials_come_before_the_buckets_the_new_minute_completes() -> None:
    agg = TimeframeAggregator("BTC/USDT")
    agg.add(candle(0))
    closed = agg.add(candle(1439))  # the last minute of the day, after a 23 h outage
    keys = [(c.close_time, timeframe_rank(c.timeframe)) for c in closed]
    assert keys == sorted(keys)
    assert [(c.timeframe, c.open_time - DAY0) for c in closed] == [
        ("5m", 0),
        ("15m", 0),
        ("1h", 0),
        ("4h", 0),
        ("5m", 1435 * MINUTE_MS),
        ("15m", 1425 * MINUTE_MS),
        ("1h", 1380 * MINUTE_MS),
        ("4h", 1200 * MINUTE_MS),
        ("1d", 0),
    ]
    assert closed[-1].volume == 2.0


def test_all_timeframes_close_in_ascending_order_at_midnight() -> None:
    agg = TimeframeAggregator("BTC/USDT")
    out = [agg.add(candle(m)) for m in range(1440)]
    assert [c.timeframe for c in out[-1]] == list(HIGHER_TIMEFRAMES)
    assert all(len(x) == 0 for i, x in enumerate(out) if (i + 1) % 5)


def test_guards_reject_wrong_symbol_timeframe_and_order() -> None:
    agg = TimeframeAggregator("BTC/USDT")
    agg.add(candle(3))
    with pytest.raises(ValueError, match="not after"):
        agg.add(candle(3))
    with pytest.raises(ValueError, match="not after"):
        agg.add(candle(2))
    with pytest.raises(ValueError, match="ETH/USDT"):
        agg.add(candle(4, symbol="ETH/USDT"))
    with pytest.raises(ValueError, match="5m"):
        agg.add(Candle("BTC/USDT", "5m", DAY0 + 5 * MINUTE_MS, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="valid targets"):
        TimeframeAggregator("BTC/USDT", ["1m"])


def test_timeframe_subset_is_sorted_ascending() -> None:
    agg = TimeframeAggregator("BTC/USDT", ["1h", "15m"])
    assert agg.timeframes == ("15m", "1h")
    out = [c.timeframe for m in range(60) for c in agg.add(candle(m))]
    assert out == ["15m"] * 3 + ["15m", "1h"]


def test_batch_drops_only_an_incomplete_last_bucket() -> None:
    df = candles_frame([candle(m) for m in range(12)])  # 00:00..00:11: the 00:10 bucket is open
    assert aggregate_frame(df, "5m")["timestamp"].tolist() == [DAY0, DAY0 + 5 * MINUTE_MS]
    df = candles_frame([candle(m) for m in range(15)])
    assert len(aggregate_frame(df, "5m")) == 3
    assert aggregate_frame(df.iloc[:0], "5m").columns.tolist() == COLUMNS
    with pytest.raises(ValueError, match="increasing"):
        aggregate_arrays(*(df.iloc[::-1][c].to_numpy() for c in COLUMNS), "5m")


# -- event order across symbols ------------------------------------------------------------------


def test_ordered_events_by_close_time_then_symbol_order() -> None:
    btc = [candle(m, symbol="BTC/USDT") for m in (3, 4, 5)]
    eth = [candle(m, symbol="ETH/USDT") for m in (0, 4, 9)]
    events = list(ordered_events({"BTC/USDT": btc, "ETH/USDT": eth}, ["ETH/USDT", "BTC/USDT"]))
    got = [(e.candle.symbol[:3], e.candle.timeframe, (e.candle.open_time - DAY0) // MINUTE_MS)
           for e in events]  # fmt: skip
    assert got == [
        ("ETH", "1m", 0),
        ("BTC", "1m", 3),
        ("ETH", "1m", 4),
        ("ETH", "5m", 0),
        ("BTC", "1m", 4),
        # BTC: no ("BTC", "5m", 0); that bucket began before its data (cut off, never emitted)
        ("BTC", "1m", 5),
        ("ETH", "1m", 9),
        ("ETH", "5m", 5),
    ]
    with pytest.raises(ValueError, match="symbol_order"):
        list(ordered_events({"BTC/USDT": btc}, ["ETH/USDT"]))


# -- resumable state -----------------------------------------------------------------------------

gap_lists = st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 7, 16, 61, 250, 1500]), max_size=400)


@settings(max_examples=60, deadline=None)
@given(gaps=gap_lists, start=st.integers(0, 1439), split=st.integers(0, 400), seed=st.integers())
def test_split_stream_with_saved_state_equals_whole(gaps, start, split, seed) -> None:
    rng = np.random.default_rng(seed % 2**32)
    minutes = start + np.cumsum([0, *gaps])
    prices = 100 + rng.normal(0, 1, minutes.size).cumsum()
    candles = [candle(int(m), float(p), float(v)) for m, p, v in
               zip(minutes, prices, rng.random(minutes.size), strict=True)]  # fmt: skip
    whole = TimeframeAggregator("BTC/USDT")
    expected = [c for x in candles for c in whole.add(x)]

    primed = TimeframeAggregator("BTC/USDT")  # prime() = replaying stored candles
    primed.prime(candles[:split])
    part1 = TimeframeAggregator("BTC/USDT")
    got = [c for x in candles[:split] for c in part1.add(x)]
    resumed = TimeframeAggregator.from_state(json.loads(json.dumps(part1.state())))
    got += [c for x in candles[split:] for c in resumed.add(x)]
    assert got == expected
    assert resumed.state() == whole.state()
    assert primed.state() == part1.state()


def test_buckets_cut_off_by_the_start_of_data_are_never_emitted() -> None:
    """Data starting at 04:34 must not produce a 5m candle for 04:30 or a 1d candle for that day."""
    start = DAY0 + (4 * 60 + 34) * MINUTE_MS
    minutes = [candle((start - DAY0) // MINUTE_MS + i) for i in range(2 * 1440)]
    agg = TimeframeAggregator("BTC/USDT")
    streamed = [c for m in minutes for c in agg.add(m)]
    frame = pd.DataFrame(
        [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in minutes],
        columns=["timestamp", "open", "high", "low", "close", "volume"],
    )
    for tf in HIGHER_TIMEFRAMES:
        got = [c.open_time for c in streamed if c.timeframe == tf]
        assert got[0] >= start, tf
        assert got == aggregate_frame(frame, tf)["timestamp"].tolist(), tf
    days = [c for c in streamed if c.timeframe == "1d"]
    assert [c.open_time for c in days] == [DAY0 + 86_400_000]  # the only whole day
    # With earlier minutes known (resumed stream / stored history), the same bucket is an outage
    # gap, not a cut-off, and is emitted from the minutes that exist.
    assert aggregate_frame(frame, "1d", history_before=True)["timestamp"].tolist() == [
        DAY0,
        DAY0 + 86_400_000,
    ]
    primed = TimeframeAggregator("BTC/USDT")
    primed.prime([candle((start - DAY0) // MINUTE_MS - 600)])
    again = [c for m in minutes for c in primed.add(m) if c.timeframe == "5m"]
    assert again[0].open_time == DAY0 + (4 * 60 + 30) * MINUTE_MS


# -- blocks of columns ---------------------------------------------------------------------------


@pytest.mark.parametrize("gaps", [0, 25])
def test_add_block_closes_the_batch_candles(gaps: int) -> None:
    """``add_block`` (the block replay's aggregation) closes, over a few blocks, the candles
    ``aggregate_arrays`` builds from the whole history: the vectorised path for contiguous
    minutes, ``add`` per minute after a gap."""
    df = synthetic_1m(11, days=3, gaps=0)
    df["timestamp"] = DAY0 + 7 * MINUTE_MS + np.arange(len(df), dtype=np.int64) * MINUTE_MS
    if gaps:  # a 3-hour outage in the third block, single minutes in the fourth
        df = df.drop(index=[*range(2_300, 2_480), 3_900, 3_950]).reset_index(drop=True)
    minutes = Bars.of(*(df[c].to_numpy() for c in COLUMNS))
    agg = TimeframeAggregator("BTC/USDT")
    got: dict[str, list[Bars]] = {}
    paths = set()
    for start in range(0, len(minutes), 1000):
        closed = agg.add_block(minutes.slice(start, start + 1000))
        paths.add(closed.vectorised)
        for tf, bars in closed.per_timeframe.items():
            got.setdefault(tf, []).append(bars)
    assert paths == ({True} if gaps == 0 else {True, False})
    for tf in HIGHER_TIMEFRAMES:
        want = aggregate_arrays(*minutes.columns(), tf)
        ours = [
            np.concatenate(c) for c in zip(*(b.columns() for b in got.get(tf, [])), strict=True)
        ]
        ours = ours or [np.zeros(0)] * 6
        for name, a, b in zip(COLUMNS, ours, want.columns(), strict=True):
            if name == "volume":  # cascaded sums: equal up to rounding
                np.testing.assert_allclose(a, b, rtol=1e-12)
            else:
                assert np.array_equal(a, b), (tf, name)
    assert agg.add_block(Bars.empty()).by_row == {}
