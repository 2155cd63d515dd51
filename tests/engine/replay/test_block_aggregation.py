"""``aggregate_block`` (``TimeframeAggregator.add_block``) equals ``add`` minute by minute, to the
last bit."""

from __future__ import annotations

import numpy as np
import pytest

from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.replay.block_aggregation import aggregate_block
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.bars import Bars

DAY = 1440
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (86_400_000) + 4 * 60 * MINUTE_MS + 34 * MINUTE_MS


def _minutes(rng: np.random.Generator, open_ms: np.ndarray) -> Bars:
    n = open_ms.size
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = close * (1 + rng.normal(0, 2e-4, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 1e-3, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 1e-3, n))
    volume = rng.lognormal(0, 1, n) * 1e-3 + rng.uniform(0, 1e3, n)  # sums that round
    return Bars(open_ms, open_, high, low, close, volume)


def _reference(agg: TimeframeAggregator, block: Bars) -> dict[int, list[tuple]]:
    out = {}
    cols = [c.tolist() for c in block.columns()]
    for row, (t, o, h, lo, c, v) in enumerate(zip(*cols, strict=True)):
        closed = agg.add(Candle(agg.symbol, "1m", t, o, h, lo, c, v))
        if closed:
            out[row] = [
                (b.timeframe, b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in closed
            ]
    return out


@pytest.mark.parametrize("gaps", [False, True])
def test_blocks_equal_minute_by_minute_adds(gaps: bool) -> None:
    rng = np.random.default_rng(7 + gaps)
    open_ms = T0 + np.arange(9 * DAY, dtype=np.int64) * MINUTE_MS
    if gaps:  # outages: single minutes and a 3-hour hole, also at block edges
        drop = set(rng.choice(open_ms.size, 40, replace=False).tolist())
        drop |= set(range(2 * DAY + 100, 2 * DAY + 280)) | {3 * DAY, 3 * DAY + 1}
        open_ms = np.array([t for i, t in enumerate(open_ms) if i not in drop], dtype=np.int64)
    data = _minutes(rng, open_ms)
    ours, reference = TimeframeAggregator("BTC/USDT"), TimeframeAggregator("BTC/USDT")
    fast_blocks = 0
    emitted = {tf: 0 for tf in ours.timeframes}
    start = 0
    for size in [DAY - 7, 1, 60, DAY, 3 * DAY, 333, DAY + 1, 10**9]:  # odd block edges
        block = data.slice(start, min(start + size, len(data)))
        if len(block) == 0:
            break
        start += len(block)
        before = ours.state()
        fast_blocks += TimeframeAggregator.from_state(before).add_block(block).vectorised
        got = aggregate_block(ours, block)
        want = _reference(reference, block)
        assert got.closes == want  # same candles, same minute, same order, same bits
        for tf, bars in got.higher.items():
            flat = [b for row in sorted(want) for b in want[row] if b[0] == tf]
            assert np.array_equal(bars.open_ms, [b[1] for b in flat])
            assert bars.volume.tolist() == [b[6] for b in flat]
            emitted[tf] += len(bars)
        assert ours.state() == reference.state()
    assert start == len(data)
    assert fast_blocks >= (4 if not gaps else 1)  # the vectorised path did run
    assert emitted["1d"] >= 7 and emitted["5m"] > 2000
    if not gaps:
        assert fast_blocks == 8


def test_the_first_minutes_cut_off_buckets_they_start_inside() -> None:
    """Data starting at 04:34 never emits the 04:30 5m bucket nor the day it starts in."""
    rng = np.random.default_rng(1)
    data = _minutes(rng, T0 + np.arange(DAY + 30, dtype=np.int64) * MINUTE_MS)
    agg = TimeframeAggregator("ETH/USDT")
    got = aggregate_block(agg, data)
    first_5m = int(got.higher["5m"].open_ms[0])
    assert first_5m == T0 + MINUTE_MS  # 04:35, not 04:30
    assert "1d" not in got.higher
    assert 0 not in got.closes  # the 04:34 minute closes only the cut-off 04:30 bucket
    assert got.closes == _reference(TimeframeAggregator("ETH/USDT"), data)
