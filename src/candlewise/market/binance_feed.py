"""Live closed 1m candles from Binance with no hole and no duplicate.

The websocket alone loses every minute that closes while it is down, and may repeat one that REST
already gave us. This module combines it with REST backfill:

* it remembers the last emitted open time per symbol (seeded from the store on restart);
* on every (re)connect it fetches, over REST, the closed candles from that point up to now and
  emits them before any live candle;
* a live candle whose open time is <= the last emitted one is a duplicate and is dropped;
* a live candle that skips minutes triggers a REST backfill of exactly the skipped range first;
* a final kline is emitted only when it is a valid candle (aligned on the minute, finite, prices
  > 0, volume >= 0, high >= low: :func:`candlewise.market.validation.candle_problem`) of a minute
  that has closed by the feed's clock, give or take ``max_clock_skew_ms`` (under one interval).
  Anything else is reported as bad data and changes nothing: the feed still waits for that
  minute, so the next live candle backfills it over REST (the gap rule above), and a candle
  stamped in the future can never make the feed skip real minutes.

Order is guaranteed per symbol (strictly increasing open times, one minute apart whenever Binance
has the data), *not* across symbols: candles come out in arrival order, so after a gap backfill a
BTC minute can follow a later ETH minute. :class:`candlewise.market.live_feed.BinanceLiveFeed`
restores the documented global order (open time, then symbol order). ccxt's REST client is
synchronous, so it runs in the default thread executor.

Bad data (a malformed websocket message, a final kline rejected by the rule above, a malformed
or invalid REST row) is skipped and reported through the optional ``on_bad_data(symbol, detail)``
callback, always called in the event loop's thread, once per bad message.
A bad REST row is reported once per feed even when the same range is fetched again (gap retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import ccxt

from candlewise.core.candle import Candle
from candlewise.core.clock import WallClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.market.backoff import Backoff
from candlewise.market.binance_rest import (
    BadDataCallback,
    BinanceUnreachable,
    fetch_candles,
    load_spot_markets,
)
from candlewise.market.binance_stream import (
    BinanceKlineStream,
    Connected,
    Disconnected,
    KlineClosed,
    StreamEvent,
)
from candlewise.market.validation import candle_problem

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], int]

#: How far this machine's clock may lag the exchange's: a final kline is accepted up to this long
#: before its minute closes by our clock (Binance sends it at the close, by *its* clock).
MAX_CLOCK_SKEW_MS = 5_000
#: A symbol's first final kline, when rejected, is backfilled if its minute closed this recently
#: (an absurd open time far in the past must not start a backfill of years).
MISSING_LOOKBACK_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class BackfillRange:
    """One REST backfill: closed candles of ``symbol`` opening in ``[since_ms, until_ms)``."""

    symbol: str
    since_ms: int
    until_ms: int
    received: int
    reason: str  # "connect" (after a (re)connect) or "gap" (a live candle skipped minutes)


@dataclass(slots=True)
class FeedStats:
    """What the feed did; for monitoring and tests."""

    connects: int = 0
    disconnects: int = 0
    live: int = 0
    backfilled: int = 0
    duplicates_dropped: int = 0
    unfilled_gaps: int = 0
    bad_data: int = 0  # malformed klines/rows reported through on_bad_data
    rejected: int = 0  # of which parsed final klines failing the rule (invalid, not closed yet)
    backfills: list[BackfillRange] = field(default_factory=list)


def _collect(into: list[tuple[str | None, str]], symbol: str | None, detail: str) -> None:
    into.append((symbol, detail))


def _utc(ms: int) -> str:
    try:
        return f"{ms_to_text(ms)} UTC"
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
        return f"{ms} ms"


class BinanceFeed:
    """Async iterator of closed 1m candles for ``symbols``: ``async for candle in feed: ...``.

    Without a ``last_open_times`` entry a symbol starts at its first live closed candle (there is
    nothing to backfill from). ``settle_ms`` keeps the connect-time backfill away from candles that
    closed only an instant ago, which REST may not have finalised yet; the websocket, or the gap
    backfill, delivers those. A gap that REST still cannot fill after ``gap_retries`` retries is a
    real hole in Binance's data: it is logged, counted in ``stats.unfilled_gaps`` and skipped.
    Malformed klines and REST rows are skipped and reported as ``on_bad_data(symbol, detail)``
    (see the module docstring); an exception raised by that callback is logged, not propagated.
    ``clock`` (ms) is the exchange's time as this machine knows it: it decides which minutes have
    closed; ``max_clock_skew_ms`` (0 to under a minute) is how early a final kline may arrive.
    """

    def __init__(
        self,
        ws_base_url: str,
        exchange: ccxt.binance,
        symbols: Sequence[str],
        last_open_times: Mapping[str, int] | None = None,
        backoff: Backoff | None = None,
        rng_seed: int | None = None,
        clock: Clock | None = None,
        *,
        stall_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        settle_ms: int = 1_000,
        gap_retries: int = 2,
        max_clock_skew_ms: int = MAX_CLOCK_SKEW_MS,
        on_bad_data: BadDataCallback | None = None,
    ) -> None:
        if not 0 <= max_clock_skew_ms < MINUTE_MS:
            raise ValueError(f"max_clock_skew_ms must be in [0, {MINUTE_MS}): {max_clock_skew_ms}")
        self.max_clock_skew_ms = max_clock_skew_ms
        self.backoff = backoff or Backoff()
        self._rng = random.Random(rng_seed)
        self._on_bad_data = on_bad_data
        self._reported_rest: set[tuple[str, str]] = set()
        self._stream = BinanceKlineStream(
            ws_base_url,
            symbols,
            "1m",
            backoff=self.backoff,
            rng=self._rng,
            stall_timeout_s=stall_timeout_s,
            open_timeout_s=open_timeout_s,
            on_bad_data=self._bad_data,
        )
        self.symbols = self._stream.symbols
        self._exchange = exchange
        self._clock = clock or WallClock().now_ms
        self.settle_ms = settle_ms
        self.gap_retries = gap_retries
        self._last: dict[str, int] = {
            s: int(t) for s, t in (last_open_times or {}).items() if s in self.symbols
        }
        self._order = {s: i for i, s in enumerate(self.symbols)}
        #: Per symbol without an emitted candle: the earliest recent minute rejected, to backfill.
        self._missing: dict[str, int] = {}
        self._pump: asyncio.Task[None] | None = None
        self._started = False
        self.stats = FeedStats()

    @property
    def stream(self) -> BinanceKlineStream:
        return self._stream

    @property
    def last_open_times(self) -> dict[str, int]:
        """Open time of the last emitted candle per symbol (what to persist to resume)."""
        return dict(self._last)

    def __aiter__(self) -> AsyncIterator[Candle]:
        return self.candles()

    async def __aenter__(self) -> BinanceFeed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the websocket. Idempotent."""
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def candles(self) -> AsyncIterator[Candle]:
        """The feed itself; a BinanceFeed can be iterated only once."""
        if self._started:
            raise RuntimeError("a BinanceFeed can be iterated only once")
        self._started = True
        # Fail fast on a typo'd symbol or an unreachable REST url, before going live.
        await self._run_sync(load_spot_markets, self._exchange, list(self.symbols))
        queue: asyncio.Queue[StreamEvent | Exception] = asyncio.Queue()
        self._pump = asyncio.create_task(self._pump_events(queue), name="binance-ws")
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, Connected):
                    self.stats.connects += 1
                    emitted = await self._backfill_after_connect()
                elif isinstance(item, Disconnected):
                    self.stats.disconnects += 1
                    continue
                else:
                    emitted = await self._on_live(item)
                for candle in emitted:
                    yield candle
        finally:
            await self.aclose()

    async def _pump_events(self, queue: asyncio.Queue[StreamEvent | Exception]) -> None:
        """Read the websocket continuously, so a slow REST backfill never stalls the socket."""
        try:
            async for event in self._stream.events():
                queue.put_nowait(event)
        except Exception as exc:  # surfaced to the consumer, never swallowed
            queue.put_nowait(exc)

    async def _backfill_after_connect(self) -> list[Candle]:
        cutoff = self._clock() - self.settle_ms
        fetched: list[Candle] = []
        for symbol in self.symbols:
            last = self._resume_after(symbol)
            if last is None or last + 2 * MINUTE_MS > cutoff:
                continue  # nothing to resume from, or no closed minute missing
            fetched += await self._fetch(symbol, last + MINUTE_MS, cutoff, "connect")
        fetched.sort(key=lambda c: (c.open_time, self._order[c.symbol]))
        emitted = self._accept_all(fetched)
        self.stats.backfilled += len(emitted)
        return emitted

    async def _on_live(self, event: KlineClosed) -> list[Candle]:
        candle = event.candle
        if self._rejected(candle):
            return []
        last = self._resume_after(candle.symbol)
        emitted: list[Candle] = []
        if last is not None and candle.open_time > last + MINUTE_MS:
            emitted = self._accept_all(await self._fill_gap(candle.symbol, last, candle.open_time))
            self.stats.backfilled += len(emitted)
        live = self._accept_all([candle])
        self.stats.live += len(live)
        return emitted + live

    def _resume_after(self, symbol: str) -> int | None:
        """Open time the feed continues after: the last emitted candle, else a rejected one's
        minute less one (so that the next candle backfills it)."""
        last = self._last.get(symbol)
        if last is None and symbol in self._missing:
            return self._missing[symbol] - MINUTE_MS
        return last

    def _rejected(self, candle: Candle) -> bool:
        """Report a final kline that must not be emitted (see the module docstring)."""
        now = self._clock()
        problem = candle_problem(candle)
        if problem is None and candle.close_time > now + self.max_clock_skew_ms:
            problem = (
                "not_closed",
                f"closes at {_utc(candle.close_time)}, {(candle.close_time - now) / 1000:g}s "
                f"after this clock's {_utc(now)}: a minute that has not closed yet",
            )
        if problem is None:
            return False
        symbol, t = candle.symbol, candle.open_time
        self.stats.rejected += 1
        self._bad_data(
            symbol,
            f"websocket: final kline {symbol} {candle.timeframe} open_time={t} rejected: "
            f"{problem[0]}: {problem[1]}",
        )
        minute = t - t % MINUTE_MS
        recent = now - MISSING_LOOKBACK_MS <= minute and minute + MINUTE_MS <= now
        if symbol not in self._last and recent:  # no history to resume from: remember the minute
            self._missing[symbol] = min(self._missing.get(symbol, minute), minute)
        return True

    async def _fill_gap(self, symbol: str, last: int, next_open: int) -> list[Candle]:
        """Closed candles strictly between ``last`` and ``next_open``, retried if REST lags."""
        expected = (next_open - last) // MINUTE_MS - 1
        filled: list[Candle] = []
        for attempt in range(self.gap_retries + 1):
            filled = await self._fetch(symbol, last + MINUTE_MS, next_open, "gap")
            if len(filled) >= expected:
                return filled
            if attempt < self.gap_retries:
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
        self.stats.unfilled_gaps += 1
        logger.warning(
            "Binance has %d of %d candles of %s between %d and %d; the rest is a hole in its data",
            len(filled),
            expected,
            symbol,
            last,
            next_open,
        )
        return filled

    async def _fetch(self, symbol: str, since_ms: int, until_ms: int, reason: str) -> list[Candle]:
        """REST backfill, retried with backoff while Binance is unreachable."""
        attempt = 0
        while True:
            reports: list[tuple[str | None, str]] = []
            call = functools.partial(
                fetch_candles,
                self._exchange,
                symbol,
                "1m",
                since_ms,
                until_ms,
                now_ms=self._clock(),
                on_bad_data=functools.partial(_collect, reports),
            )
            try:
                candles = await self._run_sync(call)
            except BinanceUnreachable as exc:
                delay = self.backoff.delay(attempt, self._rng)
                attempt += 1
                logger.warning("backfill of %s failed (%s); retrying in %.2fs", symbol, exc, delay)
                await asyncio.sleep(delay)
                continue  # the retry fetches (and reports) the same rows again
            for sym, detail in reports:
                key = (sym or symbol, detail)
                if key in self._reported_rest:
                    continue  # the same bad row, fetched again (gap retry, later backfill)
                if len(self._reported_rest) >= 10_000:
                    self._reported_rest.clear()
                self._reported_rest.add(key)
                self._bad_data(sym or symbol, detail)
            self.stats.backfills.append(
                BackfillRange(symbol, since_ms, until_ms, len(candles), reason)
            )
            return candles

    def _bad_data(self, symbol: str | None, detail: str) -> None:
        """Count and pass on one malformed item (already logged where it was found)."""
        self.stats.bad_data += 1
        if self._on_bad_data is None:
            return
        try:
            self._on_bad_data(symbol, detail)
        except Exception:
            logger.exception("on_bad_data callback failed for %s", detail)

    def _accept_all(self, candles: list[Candle]) -> list[Candle]:
        """Keep candles newer than the last emitted one of their symbol, and advance it."""
        accepted: list[Candle] = []
        for candle in candles:
            last = self._last.get(candle.symbol)
            if last is not None and candle.open_time <= last:
                self.stats.duplicates_dropped += 1
                continue
            self._last[candle.symbol] = candle.open_time
            self._missing.pop(candle.symbol, None)
            accepted.append(candle)
        return accepted

    @staticmethod
    async def _run_sync(fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
