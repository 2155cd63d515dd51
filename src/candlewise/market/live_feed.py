"""The Binance feed for synchronous consumers.

``BinanceFeed`` is asyncio (websocket plus REST backfill). The engine and the recorder are plain
synchronous loops driven by a clock, so this adapter runs the asyncio feed in a background thread
and hands closed candles over a queue; errors raised there (a bad symbol, say) are re-raised in
the consumer's thread, and leaving the loop (end of duration, Ctrl+C) stops the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence

import ccxt
from sqlalchemy import Engine

from candlewise.clock import Clock, WallClock
from candlewise.config import AppConfig
from candlewise.market.binance_feed import BinanceFeed
from candlewise.market.binance_rest import load_spot_markets, make_exchange
from candlewise.market.candle import Candle
from candlewise.market.feed_factory import FeedPlan
from candlewise.store import candle_store

_END = object()
_POLL_S = 0.2


class BinanceLiveFeed:
    """Closed 1m candles from Binance until ``end_ms`` on ``clock`` (None: until stopped)."""

    name = "binance"

    def __init__(
        self,
        ws_url: str,
        exchange: ccxt.binance,
        symbols: Sequence[str],
        last_open_times: Mapping[str, int],
        clock: Clock,
        end_ms: int | None,
    ) -> None:
        self._ws_url = ws_url
        self._exchange = exchange
        self._symbols = list(symbols)
        self._last = dict(last_open_times)
        self._clock = clock
        self._end_ms = end_ms

    def candles(self) -> Iterator[Candle]:
        handoff: queue.Queue[object] = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: asyncio.run(self._pump(handoff, stop)), name="binance-feed", daemon=True
        )
        thread.start()
        try:
            while self._end_ms is None or self._clock.now_ms() < self._end_ms:
                try:
                    item = handoff.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Candle)
                yield item
        finally:
            stop.set()
            thread.join(timeout=10)

    async def _pump(self, handoff: queue.Queue[object], stop: threading.Event) -> None:
        feed = BinanceFeed(
            self._ws_url,
            self._exchange,
            self._symbols,
            last_open_times=self._last,
            clock=self._clock.now_ms,
        )
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
) -> FeedPlan:
    """Live from now for ``duration_ms`` of wall-clock time, resuming after stored candles.

    Market data is public: no API keys are sent (with keys ccxt would also call private
    endpoints when loading markets).
    """
    exchange = make_exchange(cfg.exchange.rest_url)
    load_spot_markets(exchange, list(symbols))
    last: dict[str, int] = {}
    if engine is not None:
        with engine.connect() as conn:
            for symbol in symbols:
                t = candle_store.last_open_time(conn, symbol, "1m")
                if t is not None:
                    last[symbol] = t
    clock = clock or WallClock()
    end = None if duration_ms is None else now_ms + duration_ms
    feed = BinanceLiveFeed(cfg.exchange.ws_url, exchange, symbols, last, clock, end)
    return FeedPlan(feed, clock, now_ms, end)
