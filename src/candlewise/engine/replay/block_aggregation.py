"""One symbol's block of 1m columns aggregated into 5m..1d, continuing a ``TimeframeAggregator``.

The result equals feeding every minute to ``TimeframeAggregator.add``, to the last bit: the same
candles, emitted at the same minute in the same order, with the same cascaded volume sums
(1m -> 5m -> 15m -> ... each summed left to right), and the aggregator left in the same state.
Contiguous minutes (every simulated block, nearly every replayed one) take a vectorised path
per level; a block with a gap, or not following the aggregator's last minute, goes through
``add`` itself, since partial buckets and their cut-offs are rare and subtle.
``tests/engine/replay/test_block_aggregation.py`` compares both on random blocks with gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.replay.column_blocks import BarColumns
from candlewise.market.aggregation import TimeframeAggregator

HigherBar = tuple[str, int, float, float, float, float, float]
"""A closed higher candle: (timeframe, open ms, open, high, low, close, volume)."""

_NEVER = -(2**63)  # TimeframeAggregator._last before the first minute


@dataclass(frozen=True, slots=True)
class SymbolBlock:
    """A symbol's minutes in a block and what they closed."""

    symbol: str
    minutes: BarColumns
    closes: dict[int, list[HigherBar]]
    """Row of ``minutes`` -> the higher candles closed with that minute, in event order."""
    higher: dict[str, BarColumns]
    """Per higher timeframe, the candles closed in the block, in order."""


def aggregate_block(aggregator: TimeframeAggregator, minutes: BarColumns) -> SymbolBlock:
    """The higher candles ``minutes`` close, with ``aggregator`` advanced past them."""
    if len(minutes) == 0:
        return SymbolBlock(aggregator.symbol, minutes, {}, {})
    fast = _contiguous(aggregator, minutes)
    if fast is not None:
        return fast
    return _one_by_one(aggregator, minutes)


def _one_by_one(aggregator: TimeframeAggregator, minutes: BarColumns) -> SymbolBlock:
    symbol = aggregator.symbol
    closes: dict[int, list[HigherBar]] = {}
    per_tf: dict[str, list[HigherBar]] = {}
    add = aggregator.add
    columns = [c.tolist() for c in minutes.columns()]
    for row, (t, o, h, lo, c, v) in enumerate(zip(*columns, strict=True)):
        closed = add(Candle(symbol, "1m", t, o, h, lo, c, v))
        if closed:
            bars = [
                (b.timeframe, b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in closed
            ]
            closes[row] = bars
            for bar in bars:
                per_tf.setdefault(bar[0], []).append(bar)
    higher = {tf: BarColumns.of(*list(zip(*bars, strict=True))[1:]) for tf, bars in per_tf.items()}
    return SymbolBlock(symbol, minutes, closes, higher)


def _contiguous(aggregator: TimeframeAggregator, minutes: BarColumns) -> SymbolBlock | None:
    """The vectorised path, or None when the minutes have a gap (nothing changed then)."""
    t = minutes.open_ms
    last = aggregator._last
    if (last != _NEVER and int(t[0]) != last + MINUTE_MS) or (
        t.size > 1 and not bool(np.all(np.diff(t) == MINUTE_MS))
    ):
        return None
    first = aggregator._first if aggregator._first is not None else int(t[0])
    buckets: list[list[Any] | None] = list(aggregator._buckets)
    # children of the current level: start, end, open, high, low, close, volume (closed ones)
    start = t
    end = t + MINUTE_MS
    o, h, lo, c = minutes.open, minutes.high, minutes.low, minutes.close
    v = minutes.volume.tolist()
    closed_levels: list[tuple[str, np.ndarray, list[Any]]] = []
    for level, (tf, length) in enumerate(
        zip(aggregator._timeframes, aggregator._lengths, strict=True)
    ):
        if start.size == 0:
            break
        bucket_start = start - start % length
        cut = np.flatnonzero(np.diff(bucket_start)) + 1
        heads = np.concatenate(([0], cut))
        tails = np.concatenate((cut, [start.size])) - 1
        g_start = bucket_start[heads]
        g_open = o[heads]
        g_high = np.maximum.reduceat(h, heads)
        g_low = np.minimum.reduceat(lo, heads)
        g_close = c[tails]
        g_volume = _sums(v, heads.tolist(), start.size)
        existing = buckets[level]
        if existing is not None:
            if existing[0] != int(g_start[0]):
                return None  # cannot happen on contiguous minutes; be safe
            g_open[0] = existing[2]
            g_high[0] = max(existing[3], float(g_high[0]))
            g_low[0] = min(existing[4], float(g_low[0]))
            g_volume[0] = _continue(existing[6], v, 0, int(tails[0]) + 1)
        complete = end[tails] == g_start + length
        if not complete[:-1].all():
            return None  # only the last group may be open on contiguous minutes
        n_done = complete.size if complete[-1] else complete.size - 1
        if not complete[-1]:
            buckets[level] = [
                int(g_start[-1]), int(g_start[-1]) + length, float(g_open[-1]),
                float(g_high[-1]), float(g_low[-1]), float(g_close[-1]), g_volume[-1],
            ]  # fmt: skip
        else:
            buckets[level] = None
        done = slice(0, n_done)
        start, end = g_start[done], g_start[done] + length
        o, h, lo, c = g_open[done], g_high[done], g_low[done], g_close[done]
        v = g_volume[:n_done]
        closed_levels.append((tf, start, [start, o, h, lo, c, v]))
    # every closed bucket closes with the minute that ends it; emitted unless cut off
    t0 = int(t[0])
    closes: dict[int, list[HigherBar]] = {}
    higher: dict[str, BarColumns] = {}
    for tf, starts, cols in closed_levels:
        keep = starts >= first
        if not np.any(keep):
            continue
        kept = BarColumns(
            starts[keep], cols[1][keep], cols[2][keep], cols[3][keep], cols[4][keep],
            np.asarray(cols[5], dtype=np.float64)[keep],
        )  # fmt: skip
        higher[tf] = kept
        length = aggregator._lengths[aggregator._timeframes.index(tf)]
        rows = ((kept.open_ms + length - MINUTE_MS - t0) // MINUTE_MS).tolist()
        bars = zip(*(col.tolist() for col in kept.columns()), strict=True)
        for row, bar in zip(rows, bars, strict=True):
            item = (tf, *bar)
            found = closes.get(row)
            if found is None:
                closes[row] = [item]
            else:
                found.append(item)
    aggregator._buckets = buckets
    aggregator._last = int(t[-1])
    aggregator._first = first
    return SymbolBlock(aggregator.symbol, minutes, closes, higher)


def _sums(values: list[float], heads: list[int], n: int) -> list[float]:
    """Each group's sum, left to right as the aggregator adds (not numpy's pairwise sum)."""
    out = []
    bounds = [*heads[1:], n]
    for a, b in zip(heads, bounds, strict=True):
        total = values[a]
        for i in range(a + 1, b):
            total += values[i]
        out.append(total)
    return out


def _continue(total: float, values: list[float], a: int, b: int) -> float:
    for i in range(a, b):
        total += values[i]
    return total
