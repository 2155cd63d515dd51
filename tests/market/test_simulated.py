"""The simulated exchange: determinism, candle validity, realistic statistics, ground-truth regimes.

Statistical targets come from real Binance 1m data (BTC/USDT, ETH/USDT, May-July 2025; see
docs/simulated_market.md): excess kurtosis 11 (BTC) / 61 (ETH), acf of |r| 0.30 at lag 1 and
0.15-0.19 at lag 30, corr(volume, |r|) 0.50-0.58, BTC-ETH return correlation 0.75.
"""

from __future__ import annotations

import time
from functools import cache
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candlewise.core.candle import Candle
from candlewise.market.simulated import (
    KNOWN_PROFILES,
    REGIMES,
    SimulatedMarket,
    SimulatedSeries,
    SimulationConfig,
    symbol_profile,
)

START = 1_717_200_000_000  # 2024-06-01 00:00 UTC
DAY = 1440
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "PEPE/USDT")
FIELDS = ("open_time", "open", "high", "low", "close", "volume", "regime")
NOISE, TREND, MEAN_REVERSION = (REGIMES.index(r) for r in ("noise", "trend", "mean_reversion"))


def assert_same(a: SimulatedSeries, b: SimulatedSeries) -> None:
    assert a.symbol == b.symbol
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name
        assert x.tobytes() == y.tobytes(), name


def acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def log_returns(s: SimulatedSeries) -> np.ndarray:
    """Per-candle log return close/open; since open == previous close, this is close-to-close."""
    return np.log(s.close / s.open)


def episodes(regime: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, regime) of every maximal run of one regime."""
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(regime)) + 1, [regime.size]))
    return [(int(a), int(b), int(regime[a])) for a, b in pairwise(cuts)]


@cache
def month() -> dict[str, SimulatedSeries]:
    """30 days of four symbols (one known pair per class plus an unknown one), shared by tests."""
    return SimulatedMarket(SYMBOLS, seed=11, start_ms=START).generate(30 * DAY)


@cache
def reference(minutes: int) -> dict[str, SimulatedSeries]:
    return SimulatedMarket(SYMBOLS[:2], seed=5, start_ms=START).generate(minutes)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_symbols_and_start_give_byte_identical_candles() -> None:
    a = SimulatedMarket(SYMBOLS, seed=3, start_ms=START).generate(2 * DAY)
    b = SimulatedMarket(SYMBOLS, seed=3, start_ms=START).generate(2 * DAY)
    for s in SYMBOLS:
        assert_same(a[s], b[s])


def test_other_seed_or_start_gives_another_path() -> None:
    base = SimulatedMarket(["BTC/USDT"], seed=3, start_ms=START).generate(100)["BTC/USDT"]
    seed4 = SimulatedMarket(["BTC/USDT"], seed=4, start_ms=START).generate(100)["BTC/USDT"]
    assert not np.array_equal(base.close, seed4.close)


def test_three_days_then_two_equal_five_days_at_once() -> None:
    market = SimulatedMarket(SYMBOLS, seed=5, start_ms=START)
    first, second = market.generate(3 * DAY), market.generate(2 * DAY)
    assert market.next_open_time == START + 5 * DAY * 60_000
    at_once = SimulatedMarket(SYMBOLS, seed=5, start_ms=START).generate(5 * DAY)
    for s in SYMBOLS:
        joined = {f: np.concatenate([getattr(first[s], f), getattr(second[s], f)]) for f in FIELDS}
        assert_same(SimulatedSeries(symbol=s, **joined), at_once[s])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=8))
def test_any_chunking_equals_one_block(chunks: list[int]) -> None:
    market = SimulatedMarket(SYMBOLS[:2], seed=5, start_ms=START)
    parts = [market.generate(c) for c in chunks]
    total = sum(chunks)
    assert market.next_open_time == START + total * 60_000
    for s in SYMBOLS[:2]:
        for f in FIELDS:
            got = np.concatenate([getattr(p[s], f) for p in parts])
            assert np.array_equal(got, getattr(reference(9 * DAY)[s], f)[:total]), f


def test_minute_by_minute_streaming_equals_block() -> None:
    market = SimulatedMarket(SYMBOLS[:2], seed=5, start_ms=START)
    market.generate(DAY - 30)  # stream across a page boundary
    streamed = [market.generate(1)["ETH/USDT"] for _ in range(60)]
    want = reference(9 * DAY)["ETH/USDT"]
    for f in FIELDS:
        got = np.concatenate([getattr(c, f) for c in streamed])
        assert np.array_equal(got, getattr(want, f)[DAY - 30 : DAY + 30]), f


def test_a_symbols_path_does_not_depend_on_the_other_symbols() -> None:
    alone = SimulatedMarket(["ETH/USDT"], seed=5, start_ms=START).generate(2 * DAY)["ETH/USDT"]
    for f in FIELDS:
        assert np.array_equal(
            getattr(alone, f), getattr(reference(9 * DAY)["ETH/USDT"], f)[: 2 * DAY]
        )


# --- candle validity --------------------------------------------------------------------------


def test_candles_are_consistent_aligned_contiguous_and_positive_over_a_long_run() -> None:
    market = SimulatedMarket(["BTC/USDT", "XYZ/USDT"], seed=9, start_ms=START)
    for s in market.generate(120 * DAY).values():
        assert len(s) == 120 * DAY
        assert s.open_time.dtype == np.int64 and s.regime.dtype == np.int8
        assert s.open_time[0] == START
        assert np.all(s.open_time % 60_000 == 0)
        assert np.all(np.diff(s.open_time) == 60_000)
        assert np.all(s.low <= np.minimum(s.open, s.close))
        assert np.all(s.high >= np.maximum(s.open, s.close))
        assert np.all(s.low > 0) and np.all(s.volume > 0)
        assert np.array_equal(s.open[1:], s.close[:-1])
        assert np.all(np.isfinite(s.high)) and np.all(np.isfinite(s.volume))
        # four months of strong trends still stay within a plausible band around the start
        assert 0.25 < s.close[-1] / s.open[0] < 4.0
    assert market.next_open_time == START + 120 * DAY * 60_000


def test_start_prices_are_realistic_for_known_symbols_and_stable_for_unknown_ones() -> None:
    series = month()
    for s, want in (("BTC/USDT", 60_000), ("ETH/USDT", 3_000), ("SOL/USDT", 150)):
        assert series[s].open[0] == pytest.approx(want)
    assert KNOWN_PROFILES["BNB/USDT"].price == pytest.approx(600)
    pepe = symbol_profile("PEPE/USDT")
    assert 1.0 <= pepe.price <= 500.0
    assert series["PEPE/USDT"].open[0] == pepe.price
    other = SimulatedMarket(["PEPE/USDT"], seed=99, start_ms=0).generate(1)["PEPE/USDT"]
    assert other.open[0] == pepe.price  # stable hash of the name, independent of the seed
    prices = {symbol_profile(f"COIN{i}/USDT").price for i in range(50)}
    assert len(prices) == 50 and min(prices) >= 1.0 and max(prices) <= 500.0


def test_non_aligned_start_and_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="1m-aligned"):
        SimulatedMarket(["BTC/USDT"], seed=1, start_ms=START + 1)
    with pytest.raises(ValueError):
        SimulatedMarket([], seed=1, start_ms=START)
    with pytest.raises(ValueError):
        SimulatedMarket(["BTC/USDT", "BTC/USDT"], seed=1, start_ms=START)
    with pytest.raises(ValueError):
        SimulatedMarket(["BTC/USDT"], seed=-1, start_ms=START)
    with pytest.raises(ValueError):
        SimulatedMarket(["BTC/USDT"], seed=1, start_ms=START).generate(-1)
    with pytest.raises(ValueError):
        SimulationConfig(factor_loading=1.0)
    with pytest.raises(ValueError):
        SimulationConfig(t_df=2.0)


def test_candles_frame_and_empty_generate() -> None:
    market = SimulatedMarket(["BTC/USDT"], seed=2, start_ms=START)
    s = market.generate(3)["BTC/USDT"]
    candles = s.candles()
    assert [type(c) for c in candles] == [Candle] * 3
    assert candles[1].open_time == START + 60_000 and candles[1].timeframe == "1m"
    assert candles[1].open == candles[0].close and isinstance(candles[0].volume, float)
    frame = s.to_frame()
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume", "regime"]
    assert set(frame["regime"]) <= set(REGIMES)
    assert frame["close"].tolist() == s.close.tolist()
    empty = market.generate(0)["BTC/USDT"]
    assert len(empty) == 0 and market.next_open_time == START + 3 * 60_000
    with pytest.raises(ValueError):
        s.close[0] = 1.0  # series are frozen values


# --- statistics vs real BTC/ETH 1m --------------------------------------------------------------


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_returns_are_fat_tailed_with_volatility_clustering(symbol: str) -> None:
    r = log_returns(month()[symbol])
    excess_kurtosis = float(np.mean((r - r.mean()) ** 4) / r.var() ** 2 - 3.0)
    assert excess_kurtosis > 4.0  # real BTC 11, ETH 61; a Gaussian is 0
    beyond_5sd = np.mean(np.abs(r - r.mean()) > 5 * r.std())
    assert beyond_5sd > 1e-3  # real BTC 3.0e-3; a Gaussian puts 5.7e-7 beyond 5 sd
    a = np.abs(r)
    assert 0.2 < acf(a, 1) < 0.5  # real 0.29-0.30
    assert 0.08 < acf(a, 30) < 0.3  # real 0.15-0.19: clustering lasts beyond half an hour
    assert abs(acf(r, 1)) < 0.15  # regimes mixed: little linear predictability (real -0.03..0)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_volume_rises_with_absolute_return(symbol: str) -> None:
    s = month()[symbol]
    assert 0.35 < np.corrcoef(s.volume, np.abs(log_returns(s)))[0, 1] < 0.8  # real 0.50-0.58


def test_symbols_are_correlated_through_the_market_factor() -> None:
    returns = np.array([log_returns(month()[s]) for s in SYMBOLS])
    corr = np.corrcoef(returns)[np.triu_indices(len(SYMBOLS), k=1)]
    assert np.all((corr > 0.5) & (corr < 0.8))  # real BTC-ETH 0.75


def test_range_tracks_volatility() -> None:
    s = month()["BTC/USDT"]
    r = log_returns(s)
    spread = np.log(s.high / s.low)
    assert np.corrcoef(spread, np.abs(r))[0, 1] > 0.7  # real 0.85-0.87
    assert 0.8 < spread.mean() / r.std() < 1.4  # real 0.93-1.10


def test_one_year_of_one_symbol_is_fast() -> None:
    started = time.perf_counter()
    year = SimulatedMarket(["BTC/USDT"], seed=1, start_ms=START).generate(525_600)["BTC/USDT"]
    assert time.perf_counter() - started < 5.0  # measured ~0.25 s on 2 cores
    assert len(year) == 525_600


# --- ground-truth regimes -------------------------------------------------------------------


def test_all_regimes_present_with_documented_shares_and_durations() -> None:
    regimes = np.concatenate([month()[s].regime for s in SYMBOLS])
    shares = np.bincount(regimes, minlength=3) / regimes.size
    assert 0.35 < shares[NOISE] < 0.65  # mean durations 240/90/180 min -> 47% / 18% / 35%
    assert 0.10 < shares[TREND] < 0.28
    assert 0.22 < shares[MEAN_REVERSION] < 0.48
    for s in SYMBOLS:
        assert set(np.unique(month()[s].regime)) == {NOISE, TREND, MEAN_REVERSION}
    runs = [ep for s in SYMBOLS for ep in episodes(month()[s].regime)[1:-1]]  # drop cut ones
    for k, mean in enumerate(SimulationConfig().regime_mean_minutes):
        lengths = [b - a for a, b, r in runs if r == k]
        assert 0.7 * mean < np.mean(lengths) < 1.3 * mean


def _trend_agreement(step: int) -> float:
    """Share of ``step``-minute returns inside trend episodes that go the episode's way."""
    agree = total = 0
    for s in SYMBOLS:
        series = month()[s]
        for a, b, r in episodes(series.regime):
            if r != TREND or b - a < 20:  # direction is read from the episode's net move
                continue
            direction = np.sign(np.log(series.close[b - 1] / series.open[a]))
            closes = series.close[a + step - 1 : b : step]
            opens = series.open[a : b - step + 1 : step][: closes.size]
            agree += int(np.sum(np.sign(np.log(closes / opens)) == direction))
            total += closes.size
    return agree / total


def test_trends_are_predictable_and_more_so_on_longer_candles() -> None:
    one, five, fifteen = _trend_agreement(1), _trend_agreement(5), _trend_agreement(15)
    assert 0.72 < one < 0.86  # drift 0.7 sigma with t(5) shocks: ~0.78
    assert five > one + 0.08 and fifteen > five


def _within(symbol_regime: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive return pairs (r_t, r_t+1) where both minutes are in the regime."""
    xs, ys = [], []
    for s in SYMBOLS:
        r, reg = log_returns(month()[s]), month()[s].regime
        both = (reg[:-1] == symbol_regime) & (reg[1:] == symbol_regime)
        xs.append(r[:-1][both])
        ys.append(r[1:][both])
    return np.concatenate(xs), np.concatenate(ys)


def test_noise_regimes_hold_nothing_to_predict() -> None:
    x, y = _within(NOISE)
    assert x.size > 50_000
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.05
    assert abs(np.mean(np.sign(x) == np.sign(y)) - 0.5) < 0.03
    assert abs(np.mean(y > 0) - 0.5) < 0.03


def test_mean_reversion_regimes_have_negative_lag_one_autocorrelation() -> None:
    x, y = _within(MEAN_REVERSION)
    assert np.corrcoef(x, y)[0, 1] < -0.2  # MA(1) bounce 0.4 -> about -0.35
    assert np.mean(np.sign(x) == np.sign(y)) < 0.45
