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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from candlewise.core.candle import Candle, CandleClosed
from candlewise.core.timeframes import HIGHER_TIMEFRAMES, MINUTE_MS, TIMEFRAME_MS, timeframe_rank

_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

# A bucket in progress: [start, end, open, high, low, close, volume]; a plain list because
# attribute access on objects costs more than indexing in the per-candle hot path.
_S, _E, _O, _H, _L, _C, _V = range(7)


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
        self._last = -(2**63)  # open time of the last 1m candle added
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
        return None if self._last == -(2**63) else self._last

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


class Bars(NamedTuple):
    """Columnar OHLCV: ``timestamp`` is the bucket open time in ms (int64)."""

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


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
    ts = np.asarray(timestamp, dtype=np.int64)
    if ts.size == 0:
        empty = np.empty(0)
        return Bars(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
    if np.any(ts[1:] <= ts[:-1]):
        raise ValueError("1m timestamps must be strictly increasing")
    if np.any(ts % MINUTE_MS):
        raise ValueError("1m timestamps must be minute-aligned")
    bucket = ts - ts % length
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    last_rows = np.append(starts[1:], ts.size) - 1
    # Keep the last bucket only when its last minute is present; otherwise it is not closed yet.
    keep = starts.size if ts[-1] + MINUTE_MS == bucket[-1] + length else starts.size - 1
    skip = 0 if history_before or ts[0] == bucket[0] else 1
    keep = max(keep, skip)

    def per_bucket(values: np.ndarray, ufunc: np.ufunc | None, rows: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        # reduceat over *all* starts so the last kept bucket stops where the dropped one begins
        picked = values[rows] if ufunc is None else ufunc.reduceat(values, starts)
        return picked[skip:keep]

    return Bars(
        bucket[starts][skip:keep],
        per_bucket(open_, None, starts),
        per_bucket(high, np.maximum, starts),
        per_bucket(low, np.minimum, starts),
        per_bucket(close, None, last_rows),
        per_bucket(volume, np.add, starts),
    )


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
    return pd.DataFrame(dict(zip(_COLUMNS, bars, strict=True)))
