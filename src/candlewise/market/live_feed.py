"""The Binance feed for synchronous consumers, in the documented event order.

``BinanceFeed`` is asyncio (websocket plus REST backfill). The engine and the recorder are plain
synchronous loops driven by a clock, so this adapter runs the asyncio feed in a background thread
and hands closed candles over a queue; errors raised there (a bad symbol, say) are re-raised in
the consumer's thread, and leaving the loop (end of duration, Ctrl+C) stops the thread.

Order. Every feed yields 1m candles by open time, then by the configured symbol order (replay and
the simulated feed guarantee it by construction). ``BinanceFeed`` only keeps each symbol in order:
candles come out as they arrive, and after a reconnect or a gap backfill a BTC minute can follow a
later ETH minute. :class:`MinuteReorderBuffer` restores the global order:

* minute *t* is released, all its candles in symbol order, once every symbol has delivered *t* or
  a later minute. A later minute proves *t* will never come for that symbol (``BinanceFeed``
  delivers each symbol in strictly increasing order), e.g. a hole Binance itself has;
* or once ``release_after_s`` (default 5 s, wall-clock, monotonic) have passed since the first
  candle of minute *t* arrived: a silent or lagging symbol delays the others by that much at most.
  Releasing *t* releases every earlier pending minute first, so output never goes back in time;
* a candle arriving for a minute already released (its symbol lagged past the bounded wait) is
  emitted at once if it is still the newest of its symbol, i.e. later than the last candle emitted
  for that symbol: only then does the global order bend, never the per-symbol order. Otherwise
  (a duplicate, or older than what was emitted) it is dropped and counted.

When the feed ends (duration over, or an error in the feed thread) the candles still held are
emitted, in order, before returning or re-raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import ccxt
from sqlalchemy import Connection, Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.clock import Clock, WallClock
from candlewise.core.timestamps import ms_to_text
from candlewise.market.backoff import Backoff
from candlewise.market.binance_feed import MAX_CLOCK_SKEW_MS, BinanceFeed
from candlewise.market.binance_rest import BadDataCallback, load_spot_markets, make_exchange
from candlewise.market.feed_plan import FeedPlan
from candlewise.store import candle_store
from candlewise.store.error_log import FUTURE_CANDLE_REMOVED, record_error

logger = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.2
#: Default bounded wait for the symbols missing from a minute, in wall-clock seconds.
RELEASE_AFTER_S = 5.0


@dataclass(slots=True)
class ReorderStats:
    """What the reorder buffer did; for monitoring and tests."""

    released_minutes: int = 0  # minutes released (complete, proven, timed out or flushed)
    timed_out_minutes: int = 0  # of which released incomplete after ``release_after_s``
    late: int = 0  # candles emitted after their minute had been released
    dropped: int = 0  # candles not newer than their symbol's last emitted one


class MinuteReorderBuffer:
    """Puts per-symbol ordered candles into global order: open time, then symbol order.

    Pure (no clock, no thread): every call is given ``now_s``, a monotonic time in seconds, and
    returns the candles to emit now, in emission order. Rules in the module docstring.
    ``last_open_times`` (the newest stored candle per symbol) seeds both "the last emitted" and
    "delivered up to" of each symbol: the feed resumes after them.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        release_after_s: float = RELEASE_AFTER_S,
        last_open_times: Mapping[str, int] | None = None,
    ) -> None:
        if not release_after_s >= 0:
            raise ValueError(f"release_after_s must be >= 0, got {release_after_s}")
        self.symbols = tuple(dict.fromkeys(symbols))
        if not self.symbols:
            raise ValueError("no symbols")
        self.release_after_s = float(release_after_s)
        self._rank = {s: i for i, s in enumerate(self.symbols)}
        self._emitted: dict[str, int] = {
            s: int(t) for s, t in (last_open_times or {}).items() if s in self._rank
        }
        self._seen: dict[str, int] = dict(self._emitted)
        self._pending: dict[int, dict[str, Candle]] = {}
        self._first_s: dict[int, float] = {}
        self._released: int | None = None
        self.stats = ReorderStats()

    @property
    def released_through(self) -> int | None:
        """Open time of the newest released minute (None before the first release)."""
        return self._released

    @property
    def pending(self) -> int:
        """Candles held, waiting for their minute to be released."""
        return sum(len(m) for m in self._pending.values())

    def next_release_s(self) -> float | None:
        """When the oldest held minute times out (None when nothing is held)."""
        if not self._first_s:
            return None
        return min(self._first_s.values()) + self.release_after_s

    def push(self, candle: Candle, now_s: float) -> list[Candle]:
        """Take one candle; return what can be emitted now (possibly more, possibly nothing)."""
        symbol, t = candle.symbol, candle.open_time
        if symbol not in self._rank:
            raise ValueError(f"candle of unexpected symbol {symbol!r}; expected {self.symbols}")
        self._seen[symbol] = max(self._seen.get(symbol, t), t)
        last = self._emitted.get(symbol)
        if last is not None and t <= last:
            self.stats.dropped += 1
            return self.poll(now_s)
        if self._released is not None and t <= self._released:
            self._emitted[symbol] = t  # late but still the newest of its symbol: emit at once
            self.stats.late += 1
            return [candle, *self.poll(now_s)]
        minute = self._pending.setdefault(t, {})
        if symbol in minute:
            self.stats.dropped += 1  # the same minute twice: the first one wins
        else:
            minute[symbol] = candle
            self._first_s.setdefault(t, now_s)
        return self.poll(now_s)

    def poll(self, now_s: float) -> list[Candle]:
        """Release the minutes that are complete or whose wait is over, oldest first."""
        due = max(
            (t for t, first in self._first_s.items() if now_s >= first + self.release_after_s),
            default=None,
        )
        out: list[Candle] = []
        for t in sorted(self._pending):
            complete = self._complete(t)
            if not complete and (due is None or t > due):
                break  # a later minute cannot be complete either: its symbols lag behind t too
            if not complete:
                self.stats.timed_out_minutes += 1
            out += self._release(t)
        return out

    def flush(self) -> list[Candle]:
        """Release everything held, in order (the feed is ending)."""
        out: list[Candle] = []
        for t in sorted(self._pending):
            out += self._release(t)
        return out

    def _complete(self, t: int) -> bool:
        return all(self._seen.get(s, t - 1) >= t for s in self.symbols)

    def _release(self, t: int) -> list[Candle]:
        minute = self._pending.pop(t)
        self._first_s.pop(t, None)
        self._released = t if self._released is None else max(self._released, t)
        self.stats.released_minutes += 1
        out: list[Candle] = []
        for symbol in sorted(minute, key=self._rank.__getitem__):
            last = self._emitted.get(symbol)
            if last is not None and t <= last:
                self.stats.dropped += 1
                continue
            self._emitted[symbol] = t
            out.append(minute[symbol])
        return out


@dataclass(frozen=True, slots=True)
class _BadData:
    symbol: str | None
    detail: str


class BinanceLiveFeed:
    """Closed 1m candles from Binance until ``end_ms`` on ``clock`` (None: until stopped).

    Candles come out in the documented order (see the module docstring); ``release_after_s``
    bounds how long a minute waits for a lagging symbol, measured with ``monotonic`` (seconds;
    injectable for tests). ``on_bad_data(symbol, detail)`` receives every malformed kline or REST
    row the feed skipped; it is called in the consumer's thread (the one iterating
    :meth:`candles`), between candles, so it may write to the consumer's database connection (an
    exception it raises propagates there, as any exception of the consumer's own code would).
    ``backoff`` and ``rng_seed`` are passed to :class:`BinanceFeed`.
    """

    name = "binance"
    source = "binance"

    def __init__(
        self,
        ws_url: str,
        exchange: ccxt.binance,
        symbols: Sequence[str],
        last_open_times: Mapping[str, int],
        clock: Clock,
        end_ms: int | None,
        *,
        on_bad_data: BadDataCallback | None = None,
        release_after_s: float = RELEASE_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        rng_seed: int | None = None,
    ) -> None:
        if not release_after_s >= 0:
            raise ValueError(f"release_after_s must be >= 0, got {release_after_s}")
        self._ws_url = ws_url
        self._exchange = exchange
        self._symbols = list(dict.fromkeys(symbols))
        self._last = dict(last_open_times)
        self._clock = clock
        self._end_ms = end_ms
        self._on_bad_data = on_bad_data
        self.release_after_s = release_after_s
        self._monotonic = monotonic
        self._backoff = backoff
        self._rng_seed = rng_seed
        #: The asyncio feed and the reorder buffer of the current iteration (stats, tests).
        self.feed: BinanceFeed | None = None
        self.reorder: MinuteReorderBuffer | None = None

    def candles(self) -> Iterator[Candle]:
        handoff: queue.Queue[object] = queue.Queue()
        stop = threading.Event()
        buffer = MinuteReorderBuffer(self._symbols, self.release_after_s, self._last)
        self.reorder = buffer
        thread = threading.Thread(
            target=lambda: asyncio.run(self._pump(handoff, stop)), name="binance-feed", daemon=True
        )
        thread.start()
        interrupt = getattr(self._clock, "interrupt", None)
        try:
            while self._end_ms is None or self._clock.now_ms() < self._end_ms:
                if interrupt is not None and interrupt():
                    return  # a stop must not wait for the next candle; unhandled ones are
                    # not stored yet, so the next start backfills them from the REST API
                wait = _POLL_S
                due = buffer.next_release_s()
                if due is not None:
                    wait = max(0.0, min(wait, due - self._monotonic()))
                try:
                    item = handoff.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is _END:
                    yield from buffer.flush()
                    return
                if isinstance(item, BaseException):
                    yield from buffer.flush()
                    raise item
                if isinstance(item, _BadData):
                    self._report(item)
                if isinstance(item, Candle):
                    ready = buffer.push(item, self._monotonic())
                else:
                    ready = buffer.poll(self._monotonic())
                yield from ready
            yield from buffer.flush()  # the window is over: what arrived goes out, in order
        finally:
            stop.set()
            thread.join(timeout=10)

    def _report(self, item: _BadData) -> None:
        if self._on_bad_data is not None:
            self._on_bad_data(item.symbol, item.detail)

    async def _pump(self, handoff: queue.Queue[object], stop: threading.Event) -> None:
        feed = BinanceFeed(
            self._ws_url,
            self._exchange,
            self._symbols,
            last_open_times=self._last,
            backoff=self._backoff,
            rng_seed=self._rng_seed,
            clock=self._clock.now_ms,
            on_bad_data=lambda symbol, detail: handoff.put(_BadData(symbol, detail)),
        )
        self.feed = feed
        try:
            async with feed:

                async def consume() -> None:
                    async for candle in feed.candles():
                        handoff.put(candle)

                task = asyncio.create_task(consume())
                while not stop.is_set() and not task.done():
                    await asyncio.sleep(_POLL_S)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                elif task.exception() is not None:
                    handoff.put(task.exception())
        except Exception as exc:  # handed to the consumer thread, which re-raises it
            handoff.put(exc)
        handoff.put(_END)


def binance_plan(
    cfg: AppConfig,
    symbols: Sequence[str],
    engine: Engine | None,
    now_ms: int,
    duration_ms: int | None,
    clock: Clock | None = None,
    *,
    on_bad_data: BadDataCallback | None = None,
) -> FeedPlan:
    """Live from now for ``duration_ms`` of wall-clock time, resuming after stored candles.

    Market data is public: no API keys are sent (with keys ccxt would also call private
    endpoints when loading markets). ``on_bad_data`` is handed to :class:`BinanceLiveFeed`.

    Stored Binance candles that have not closed yet by ``clock`` (a kline stamped in the future,
    accepted before the feed checked that) are removed first, each series with an ``error_log``
    row: resuming after them would skip real minutes until the clock reached them.
    """
    exchange = make_exchange(cfg.exchange.rest_url)
    load_spot_markets(exchange, list(symbols))
    clock = clock or WallClock()
    last: dict[str, int] = {}
    if engine is not None:
        with engine.begin() as conn:
            remove_future_candles(conn, symbols, clock.now_ms() + MAX_CLOCK_SKEW_MS)
            for symbol in symbols:
                t = candle_store.last_open_time(conn, symbol, "1m")
                if t is not None:
                    last[symbol] = t
    end = None if duration_ms is None else now_ms + duration_ms
    feed = BinanceLiveFeed(
        cfg.exchange.ws_url, exchange, symbols, last, clock, end, on_bad_data=on_bad_data
    )
    return FeedPlan(feed, clock, now_ms, end)


def remove_future_candles(conn: Connection, symbols: Sequence[str], now_ms: int) -> int:
    """Remove stored Binance candles closing after ``now_ms``; one error_log row per series."""
    removed = candle_store.remove_unclosed(conn, symbols, BinanceLiveFeed.source, now_ms)
    for symbol, timeframe, rows, first, last in removed:
        detail = (
            f"removed {rows} stored {symbol} {timeframe} candle(s) opening {ms_to_text(first)} to "
            f"{ms_to_text(last)} UTC: not closed yet at {ms_to_text(now_ms)} UTC (klines stamped "
            "in the future); the feed resumes after the last real candle"
        )
        logger.warning(detail)
        record_error(conn, FUTURE_CANDLE_REMOVED, detail, symbol=symbol, component="binance")
    return sum(r[2] for r in removed)
