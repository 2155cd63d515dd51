"""Build higher-timeframe candles (5m … 1d) from 1m candles, and the order of candle-close events.

Buckets are aligned to UTC by ``open_time % length`` (see ``candlewise.core.timeframes``). A
bucket's OHLCV is: first open, max high, min low, last close, sum of volume — the same as
``DataFrame.resample(..., label="left", closed="left", origin="epoch")`` over the 1m rows that
exist. Minutes missing from a bucket (exchange outages) are simply absent from it.

When a bucket closes
    A bucket closes **as soon as its last minute arrives** (the 5m candle opening 12:00 closes with
    the 1m candle opening 12:04), so models never wait a minute for data they already have. When
    minutes are missing, a partial bucket closes when a later 1m candle belongs to a new bucket:
    that candle proves the bucket is over. A partial bucket at the end of the data is never emitted,
    because a later minute may still arrive for it — that is why ``flush`` returns nothing and why
    the batch functions drop an incomplete last bucket. Live and backfill therefore produce exactly
    the same set of candles.

Where the data starts
    A bucket that begins before the first 1m candle ever seen (a stream or a file starting at
    04:34 and the 04:30 5m bucket, or the day it starts in) is *cut off by the start of data*, not
    by an outage: its earlier minutes exist but were never seen. It is never emitted, so no
    consumer mistakes 20 hours for a day. Priming from stored candles or restoring a saved state
    counts as having seen data, so a resumed stream emits those buckets normally.

Event order (the contract every consumer relies on)
    For each 1m candle: first the 1m ``CandleClosed``, then the higher-timeframe candles that closed
    with it, ordered by close time and then ascending timeframe (5m, 15m, 1h, 4h, 1d). Usually all
    of them close at the 1m candle's close; only after a gap are partial buckets proved over, and
    those (which closed earlier on the clock) come first. Across symbols, 1m candles are taken by
    close time, then by the symbol order given in config (``ordered_events``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from candlewise.core.candle import Candle, CandleClosed
from candlewise.core.timeframes import HIGHER_TIMEFRAMES, MINUTE_MS, TIMEFRAME_MS, timeframe_rank
from candlewise.market.bars import Bars, BlockCloses, ClosedBar

_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

# A bucket in progress: [start, end, open, high, low, close, volume]; a plain list because
# attribute access on objects costs more than indexing in the per-candle hot path.
_S, _E, _O, _H, _L, _C, _V = range(7)
_NEVER = -(2**63)  # ``_last`` before the first minute


def _check_timeframes(timeframes: Sequence[str]) -> tuple[str, ...]:
    """Ascending, de-duplicated higher timeframes; each length must divide the next (cascading)."""
    if not timeframes:
        raise ValueError("at least one higher timeframe is needed")
    for tf in timeframes:
        if tf not in HIGHER_TIMEFRAMES:
            raise ValueError(
                f"cannot aggregate to {tf!r}; valid targets: {', '.join(HIGHER_TIMEFRAMES)}"
            )
    ordered = tuple(sorted(set(timeframes), key=timeframe_rank))
    for lower, upper in itertools.pairwise(ordered):
        if TIMEFRAME_MS[upper] % TIMEFRAME_MS[lower]:
            raise ValueError(f"{upper} is not a whole number of {lower} candles")
    return ordered


class TimeframeAggregator:
    """Incremental aggregation of one symbol's 1m candles into higher timeframes.

    Cascading: a 1m candle updates only the lowest timeframe's bucket; a closed bucket is merged
    into the next timeframe up. First/max/min/last/sum compose, so this equals aggregating 1m
    candles directly (volume sums may differ in the last bits), and it keeps per-candle work to
    ~1.3 bucket updates instead of one per timeframe.
    """

    __slots__ = ("_buckets", "_first", "_last", "_lengths", "_n", "_symbol", "_timeframes")

    def __init__(self, symbol: str, timeframes: Sequence[str] = HIGHER_TIMEFRAMES) -> None:
        self._symbol = symbol
        self._timeframes = _check_timeframes(timeframes)
        self._lengths = tuple(TIMEFRAME_MS[tf] for tf in self._timeframes)
        self._n = len(self._timeframes)
        self._buckets: list[list[Any] | None] = [None] * self._n
        self._last = _NEVER  # open time of the last 1m candle added
        self._first: int | None = None  # open time of the first: earlier buckets are cut off

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def timeframes(self) -> tuple[str, ...]:
        return self._timeframes

    @property
    def last_open_time(self) -> int | None:
        """Open time of the last 1m candle added, None before the first."""
        return None if self._last == _NEVER else self._last

    def add(self, candle: Candle) -> list[Candle]:
        """Add the next 1m candle; return the higher candles it closed, in event order.

        Raises ValueError for a candle of another symbol or timeframe, or not after the previous
        one: validation happens upstream, so reaching this is a bug, not bad data.
        """
        if candle.timeframe != "1m" or candle.symbol != self._symbol:
            raise ValueError(
                f"aggregator for {self._symbol} 1m got a {candle.symbol} {candle.timeframe} candle"
            )
        t = candle.open_time
        if t <= self._last:
            raise ValueError(
                f"{self._symbol} 1m candle at {t} is not after the previous one at {self._last}"
            )
        self._last = t
        if self._first is None:
            self._first = t
        buckets = self._buckets
        b = buckets[0]
        out: list[Candle] = []
        if b is not None and t < b[1]:
            high = candle.high
            if high > b[3]:
                b[3] = high
            low = candle.low
            if low < b[4]:
                b[4] = low
            b[5] = candle.close
            b[6] += candle.volume
        else:
            self._expire(t, out)  # one bucket in five: cheap enough to check every level
            length = self._lengths[0]
            start = t - t % length
            b = buckets[0] = [
                start,
                start + length,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
            ]
        if t + MINUTE_MS == b[1]:
            self._complete(out)
        return out

    def add_block(self, minutes: Bars) -> BlockCloses:
        """``add`` for every 1m candle of ``minutes`` at once, with the same result to the last
        bit: the same candles, closed with the same minute in the same order, the same cascaded
        volume sums (each level summed left to right) and the same state left behind.

        Minutes that follow the last one added without a gap (every simulated block, nearly
        every replayed one) are aggregated level by level with numpy; a block with a gap goes
        through ``add`` minute by minute, since partial buckets and their cut-offs are rare and
        subtle.
        """
        if len(minutes) == 0:
            return BlockCloses({}, {}, vectorised=False)
        closes = self._add_contiguous(minutes)
        return closes if closes is not None else self._add_each(minutes)

    def flush(self) -> list[Candle]:
        """End of data: returns ``[]``.

        Complete buckets were already emitted by ``add``; what is left is incomplete, and an
        incomplete bucket is never emitted as closed until a later minute proves it over (its
        missing minutes may still arrive). Kept so callers can say "end of stream" explicitly.
        """
        return []

    def pending(self) -> list[Candle]:
        """The buckets in progress as candles (not closed; for inspection and dashboards)."""
        return [self._candle(i, b) for i, b in enumerate(self._buckets) if b is not None]

    def prime(self, candles: Iterable[Candle]) -> None:
        """Replay stored 1m candles (e.g. the current day from the store) and discard the output."""
        add = self.add
        for candle in candles:
            add(candle)

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` resumes exactly where this left off."""
        return {
            "symbol": self._symbol,
            "timeframes": list(self._timeframes),
            "last_open_time": self.last_open_time,
            "first_open_time": self._first,
            "buckets": [None if b is None else [b[0], *b[2:]] for b in self._buckets],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TimeframeAggregator:
        agg = cls(state["symbol"], state["timeframes"])
        if state["last_open_time"] is not None:
            agg._last = int(state["last_open_time"])
        first = state.get("first_open_time")
        agg._first = int(first) if first is not None else None
        buckets = state["buckets"]
        if len(buckets) != agg._n:
            raise ValueError("state has a different number of buckets than timeframes")
        for i, b in enumerate(buckets):
            if b is not None:
                start = int(b[0])
                agg._buckets[i] = [start, start + agg._lengths[i], *(float(x) for x in b[1:])]
        return agg

    # -- internals ---------------------------------------------------------------------------

    def _candle(self, i: int, b: list[Any]) -> Candle:
        return Candle(self._symbol, self._timeframes[i], b[0], b[2], b[3], b[4], b[5], b[6])

    def _merge_up(self, i: int, b: list[Any]) -> None:
        """Merge closed bucket ``b`` of level ``i`` into level ``i + 1``'s bucket."""
        if i + 1 == self._n:
            return
        up = self._buckets[i + 1]
        if up is None:
            length = self._lengths[i + 1]
            start = b[0] - b[0] % length
            self._buckets[i + 1] = [start, start + length, b[2], b[3], b[4], b[5], b[6]]
        else:
            if b[3] > up[3]:
                up[3] = b[3]
            if b[4] < up[4]:
                up[4] = b[4]
            up[5] = b[5]
            up[6] += b[6]

    def _close(self, i: int, b: list[Any], out: list[Candle]) -> None:
        if b[0] >= self._first:  # type: ignore[operator]  # set by the first add
            out.append(self._candle(i, b))
        self._buckets[i] = None
        self._merge_up(i, b)

    def _expire(self, t: int, out: list[Candle]) -> None:
        """Close every bucket that ends at or before ``t``: the minute ``t`` proves them over.

        Ascending levels: a closed bucket is merged up before the next level is checked. Nested
        buckets mean ascending timeframe is also ascending close time here.
        """
        buckets = self._buckets
        for i in range(self._n):
            b = buckets[i]
            if b is not None and b[1] <= t:
                self._close(i, b, out)

    def _complete(self, out: list[Candle]) -> None:
        """Level 0 got its last minute: close it and every level up that ends at the same time."""
        buckets = self._buckets
        end = buckets[0][1]  # type: ignore[index]
        for i in range(self._n):
            b = buckets[i]
            if b is None or b[1] != end:
                break
            self._close(i, b, out)

    def _add_each(self, minutes: Bars) -> BlockCloses:
        symbol, add = self._symbol, self.add
        by_row: dict[int, list[ClosedBar]] = {}
        per_tf: dict[str, list[ClosedBar]] = {}
        rows = zip(*(column.tolist() for column in minutes.columns()), strict=True)
        for row, (t, o, h, lo, c, v) in enumerate(rows):
            closed = add(Candle(symbol, "1m", t, o, h, lo, c, v))
            if closed:
                bars = [
                    (b.timeframe, b.open_time, b.open, b.high, b.low, b.close, b.volume)
                    for b in closed
                ]
                by_row[row] = bars
                for bar in bars:
                    per_tf.setdefault(bar[0], []).append(bar)
        higher = {tf: Bars.of(*list(zip(*bars, strict=True))[1:]) for tf, bars in per_tf.items()}
        return BlockCloses(by_row, higher, vectorised=False)

    def _add_contiguous(self, minutes: Bars) -> BlockCloses | None:
        """The column path, or None when the minutes have a gap (nothing changed then)."""
        t = minutes.open_ms
        if (self._last != _NEVER and int(t[0]) != self._last + MINUTE_MS) or (
            t.size > 1 and not bool(np.all(np.diff(t) == MINUTE_MS))
        ):
            return None
        first = self._first if self._first is not None else int(t[0])
        buckets = list(self._buckets)
        kids, kid_length, volumes = minutes, MINUTE_MS, minutes.volume.tolist()
        closed: list[tuple[int, Bars]] = []
        for level in range(self._n):
            if len(kids) == 0:
                break
            folded = self._fold(level, kids, kid_length, volumes, buckets)
            if folded is None:
                return None
            kids, volumes = folded
            kid_length = self._lengths[level]
            closed.append((level, kids))
        by_row, per_tf = self._emitted(closed, first, int(t[0]))
        self._buckets = buckets
        self._last = int(t[-1])
        self._first = first
        return BlockCloses(by_row, per_tf, vectorised=True)

    def _fold(
        self,
        level: int,
        kids: Bars,
        kid_length: int,
        volumes: list[float],
        buckets: list[list[Any] | None],
    ) -> tuple[Bars, list[float]] | None:
        """Merge the closed candles ``kids`` of the level below (or the minutes) into level
        ``level``: the buckets they close (and their volumes), the open one left in
        ``buckets``; None when a bucket but the last is incomplete (not on contiguous
        minutes; be safe)."""
        length = self._lengths[level]
        starts, heads, tails = _bucket_groups(kids.open_ms, length)
        g_open, g_high, g_low, g_close = _group_ohlc(kids, heads, tails)
        b = buckets[level]
        g_volume = _sums(volumes, heads.tolist(), len(kids), None if b is None else b[_V])
        if b is not None:  # the bucket in progress continues with the first group
            if b[_S] != int(starts[0]):
                return None
            g_open[0] = b[_O]
            g_high[0] = max(b[_H], float(g_high[0]))
            g_low[0] = min(b[_L], float(g_low[0]))
        complete = kids.open_ms[tails] + kid_length == starts + length
        if not complete[:-1].all():
            return None
        done = complete.size if complete[-1] else complete.size - 1
        buckets[level] = None
        if not complete[-1]:
            start = int(starts[-1])
            buckets[level] = [
                start, start + length, float(g_open[-1]), float(g_high[-1]),
                float(g_low[-1]), float(g_close[-1]), g_volume[-1],
            ]  # fmt: skip
        volumes = g_volume[:done]
        done_bars = Bars(
            starts[:done], g_open[:done], g_high[:done], g_low[:done], g_close[:done],
            np.asarray(volumes, dtype=np.float64),
        )  # fmt: skip
        return done_bars, volumes

    def _emitted(
        self, closed: list[tuple[int, Bars]], first: int, t0: int
    ) -> tuple[dict[int, list[ClosedBar]], dict[str, Bars]]:
        """The closed buckets not cut off by the start of data (``_close``'s rule), per
        timeframe and per row of the minute ``t0 + row`` that ends them, lower levels first."""
        by_row: dict[int, list[ClosedBar]] = {}
        per_tf: dict[str, Bars] = {}
        for level, bars in closed:
            kept = bars.take(bars.open_ms >= first)
            if len(kept) == 0:
                continue
            tf = self._timeframes[level]
            per_tf[tf] = kept
            rows = (kept.open_ms + self._lengths[level] - MINUTE_MS - t0) // MINUTE_MS
            values = zip(*(column.tolist() for column in kept.columns()), strict=True)
            for row, bar in zip(rows.tolist(), values, strict=True):
                item = (tf, *bar)
                found = by_row.get(row)
                if found is None:
                    by_row[row] = [item]
                else:
                    found.append(item)
        return by_row, per_tf


def _bucket_groups(open_ms: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ascending open times grouped into their UTC-aligned buckets of ``length`` ms: each
    group's bucket start, first row and last row."""
    bucket = open_ms - open_ms % length
    heads = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    tails = np.append(heads[1:], open_ms.size) - 1
    return bucket[heads], heads, tails


def _group_ohlc(
    bars: Bars, heads: np.ndarray, tails: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A bucket's open, high, low, close from its rows: first open, max, min, last close."""
    return (
        bars.open[heads],
        np.maximum.reduceat(bars.high, heads),
        np.minimum.reduceat(bars.low, heads),
        bars.close[tails],
    )


def _sums(values: list[float], heads: list[int], n: int, carry: float | None) -> list[float]:
    """Each group's sum, left to right as ``add`` sums (not numpy's pairwise sum); the first
    group continues ``carry``, the volume of a bucket in progress, if any."""
    out = []
    for a, b in zip(heads, [*heads[1:], n], strict=True):
        total = values[a] if carry is None or out else carry + values[a]
        for i in range(a + 1, b):
            total += values[i]
        out.append(total)
    return out


def ordered_events(
    symbol_streams: Mapping[str, Iterable[Candle]],
    symbol_order: Sequence[str] | None = None,
    *,
    timeframes: Sequence[str] = HIGHER_TIMEFRAMES,
    aggregators: Mapping[str, TimeframeAggregator] | None = None,
) -> Iterator[CandleClosed]:
    """Merge per-symbol 1m streams (each ascending) into the global candle-close event order.

    1m candles are taken by close time, then by position in ``symbol_order`` (default: the mapping's
    order); each is followed by the higher candles it closed. Pass ``aggregators`` (per symbol) to
    resume from saved state; otherwise fresh ones are made for ``timeframes``.
    """
    order = list(symbol_order) if symbol_order is not None else list(symbol_streams)
    rank = {symbol: i for i, symbol in enumerate(order)}
    missing = [s for s in symbol_streams if s not in rank]
    if missing:
        raise ValueError(f"symbols missing from symbol_order: {', '.join(missing)}")
    aggs = dict(aggregators or {})
    for symbol in symbol_streams:
        aggs.setdefault(symbol, TimeframeAggregator(symbol, timeframes))

    def keyed(symbol: str, stream: Iterable[Candle]) -> Iterator[tuple[int, int, Candle]]:
        r = rank[symbol]
        for candle in stream:
            yield candle.open_time, r, candle  # same length for all 1m candles: open ≡ close order

    merged = heapq.merge(*(keyed(s, stream) for s, stream in symbol_streams.items()))
    for _, _, candle in merged:
        closed = aggs[candle.symbol].add(candle)
        yield CandleClosed(candle)
        for higher in closed:
            yield CandleClosed(higher)


def aggregate_arrays(
    timestamp: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    timeframe: str,
    *,
    history_before: bool = False,
) -> Bars:
    """Vectorised 1m → ``timeframe`` for history and backfill; same candles as the incremental path.

    ``timestamp`` must be strictly increasing 1m open times (ms). Only buckets that are complete or
    proven over are returned: the last bucket is dropped unless its last minute is present, since a
    later minute could still belong to it; the first is dropped when it begins before the first
    minute, unless ``history_before`` says earlier minutes exist elsewhere (then its missing
    minutes are an outage, as in the incremental path after ``prime``).
    """
    length = TIMEFRAME_MS[_check_timeframes([timeframe])[0]]
    minutes = Bars.of(timestamp, open_, high, low, close, volume)
    ts = minutes.open_ms
    if ts.size == 0:
        return Bars.empty()
    if np.any(ts[1:] <= ts[:-1]):
        raise ValueError("1m timestamps must be strictly increasing")
    if np.any(ts % MINUTE_MS):
        raise ValueError("1m timestamps must be minute-aligned")
    starts, heads, tails = _bucket_groups(ts, length)
    # Keep the last bucket only when its last minute is present; otherwise it is not closed yet.
    keep = heads.size if ts[-1] + MINUTE_MS == starts[-1] + length else heads.size - 1
    skip = 0 if history_before or ts[0] == starts[0] else 1
    keep = max(keep, skip)
    # reduceat over *all* groups so the last kept bucket stops where the dropped one begins
    ohlc = _group_ohlc(minutes, heads, tails)
    return Bars(starts, *ohlc, np.add.reduceat(minutes.volume, heads)).slice(skip, keep)


def aggregate_frame(
    df_1m: pd.DataFrame, timeframe: str, *, history_before: bool = False
) -> pd.DataFrame:
    """``aggregate_arrays`` on a frame with columns timestamp (ms), open, high, low, close, volume.

    Drops the last bucket unless it is complete (its last minute is present): an incomplete bucket
    at the end of the data is not closed yet; drops a first bucket cut off by the start of the
    data unless ``history_before``. Returns a new frame with the same columns.
    """
    bars = aggregate_arrays(
        *(df_1m[c].to_numpy() for c in _COLUMNS), timeframe, history_before=history_before
    )
    return pd.DataFrame(dict(zip(_COLUMNS, bars.columns(), strict=True)))
