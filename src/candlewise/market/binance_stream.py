"""Binance kline websocket client: closed candles and connection events, reconnecting forever.

Binance pushes the candle being formed every couple of seconds (``k.x == false``) and once more
when it closes (``k.x == true``). Only the latter is a candle: an in-progress update reflects a
partial minute and is dropped here, whatever happens afterwards (a stall, a disconnect). Minutes
that close while the connection is down are simply never seen; the :class:`Connected` event is how
the feed knows to backfill them over REST.

Bad data never stops the stream: a message that is not JSON, or a kline of ours with a missing,
None, non-numeric or non-finite field, is skipped, logged and reported as
``on_bad_data(symbol, detail)`` (``symbol`` None when the message cannot be attributed). A
malformed *in-progress* kline (``x == false``) is only counted and logged at debug level: it would
be dropped anyway, and Binance pushes one every ~2 s per symbol, so reporting them could flood
the error log; the malformed *final* kline of the same minute is reported, and the minute it
lost is then backfilled over REST by the feed.

Wire format (combined stream ``<base>/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m``)::

    {"stream": "btcusdt@kline_1m",
     "data": {"e": "kline", "E": 1700000061000, "s": "BTCUSDT",
              "k": {"t": 1700000040000, "T": 1700000099999, "s": "BTCUSDT", "i": "1m",
                    "o": "1.0", "c": "2.0", "h": "2.5", "l": "0.5", "v": "10.0", "x": false, ...}}}
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from candlewise.core.candle import Candle
from candlewise.core.errors import UserError
from candlewise.core.symbols import exchange_id, is_valid_symbol, symbol_problem
from candlewise.core.timeframes import timeframe_ms
from candlewise.market.backoff import Backoff

if TYPE_CHECKING:
    from candlewise.market.binance_rest import BadDataCallback

logger = logging.getLogger(__name__)

#: Binance's public market-data websocket (``wss://stream.binance.com:9443`` also works).
BINANCE_WS_URL = "wss://data-stream.binance.vision"


@dataclass(frozen=True, slots=True)
class Connected:
    """The websocket is (re)connected: candles that closed while it was down must be backfilled."""

    url: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The websocket is down; the next attempt starts in ``retry_in_s`` seconds."""

    reason: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class KlineClosed:
    """A final kline (``x == true``): a closed candle."""

    candle: Candle


StreamEvent = Connected | Disconnected | KlineClosed


@dataclass(frozen=True, slots=True)
class Kline:
    """One parsed kline message; ``final`` is Binance's ``x`` flag."""

    candle: Candle
    final: bool


@dataclass(slots=True)
class StreamStats:
    """Counters for monitoring and tests."""

    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    in_progress_dropped: int = 0
    closed: int = 0
    ignored: int = 0  # not turned into an event: not a kline of ours, or malformed
    malformed: int = 0  # of which malformed and reported through ``on_bad_data``


class MalformedKline(ValueError):
    """A kline of ours that cannot be turned into a candle.

    ``symbol`` is the configured symbol it belongs to (None when unknown) and ``final`` Binance's
    ``x`` flag (None when that flag itself is unusable).
    """

    def __init__(self, detail: str, symbol: str | None = None, final: bool | None = None):
        super().__init__(detail)
        self.symbol = symbol
        self.final = final


def stream_url(ws_base_url: str, symbols: Sequence[str], interval: str) -> str:
    """The combined-stream url for ``symbols`` (``BTC/USDT`` form) on ``interval``."""
    names = "/".join(f"{exchange_id(s).lower()}@kline_{interval}" for s in symbols)
    return f"{ws_base_url.rstrip('/')}/stream?streams={names}"


def parse_kline_message(
    raw: str | bytes, symbols_by_id: Mapping[str, str], interval: str
) -> Kline | None:
    """Parse one combined-stream message; None when it is not a kline of ours.

    Raises :class:`MalformedKline` (a ValueError) on a kline of ours with missing or non-finite
    fields: better skipped than stored; ValueError (``json.JSONDecodeError``) when ``raw`` is not
    JSON at all.
    """
    message = json.loads(raw)
    data = message.get("data", message) if isinstance(message, dict) else None
    if not isinstance(data, dict) or data.get("e") != "kline":
        return None  # subscription replies, serverShutdown notices, ...
    k = data.get("k")
    if not isinstance(k, dict):
        symbol = symbols_by_id.get(str(data.get("s", "")).upper())
        raise MalformedKline(f"kline message without a 'k' object: {_short(data)}", symbol)
    symbol = symbols_by_id.get(str(k.get("s", data.get("s", ""))).upper())
    if symbol is None or k.get("i") != interval:
        return None
    final = k.get("x")
    if not isinstance(final, bool):
        raise MalformedKline(f"kline 'x' must be a boolean, got {final!r}: {_short(k)}", symbol)
    try:
        open_time = _int_field(k["t"])
        values = [_float_field(k[key]) for key in ("o", "h", "l", "c", "v")]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedKline(f"malformed kline {_short(k)}: {exc!r}", symbol, final) from None
    if not all(math.isfinite(v) for v in values):
        raise MalformedKline(f"non-finite value in kline {_short(k)}", symbol, final)
    o, h, low, c, v = values
    candle = Candle(symbol, interval, open_time, o, h, low, c, v)
    return Kline(candle=candle, final=final)


def _int_field(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _float_field(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BinanceKlineStream:
    """Kline websocket for several symbols, reconnecting with backoff on any failure.

    :meth:`events` yields :class:`Connected` after each successful handshake,
    :class:`KlineClosed` for each final kline and :class:`Disconnected` before each wait. A
    connection that delivers no message for ``stall_timeout_s`` is treated as dead (Binance sends
    a kline update every ~2 s per stream, so silence means a half-open socket). Malformed
    messages are skipped and reported through ``on_bad_data`` (see the module docstring); an
    exception raised by that callback is logged, never propagated.
    """

    def __init__(
        self,
        ws_base_url: str,
        symbols: Sequence[str],
        interval: str = "1m",
        *,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        stall_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        on_bad_data: BadDataCallback | None = None,
    ) -> None:
        if not symbols:
            raise UserError(
                "no symbols to stream", hint="give at least one symbol, e.g. 'BTC/USDT'"
            )
        for symbol in symbols:
            if not is_valid_symbol(symbol):
                raise UserError(f"invalid symbol {symbol!r}", hint=symbol_problem(symbol))
        timeframe_ms(interval)  # validates
        self.symbols = tuple(dict.fromkeys(symbols))
        self.interval = interval
        self.url = stream_url(ws_base_url, self.symbols, interval)
        try:
            parse_uri(self.url)
        except InvalidURI as exc:
            raise UserError(
                f"invalid Binance websocket url {ws_base_url!r}: {exc}",
                hint=f"expected e.g. {BINANCE_WS_URL!r} or 'ws://127.0.0.1:9000'",
            ) from None
        self.backoff = backoff or Backoff()
        self.stall_timeout_s = stall_timeout_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.on_bad_data = on_bad_data
        self.stats = StreamStats()
        self._rng = rng or random.Random()
        self._by_id = {exchange_id(s): s for s in self.symbols}

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Connection events and closed klines, forever (until the consumer stops iterating)."""
        attempt = 0
        while True:
            reason = "connection ended"
            try:
                async with connect(
                    self.url,
                    open_timeout=self.open_timeout_s,
                    close_timeout=self.close_timeout_s,
                    max_size=2**20,
                ) as ws:
                    self.stats.connects += 1
                    logger.info("connected to %s", self.url)
                    yield Connected(self.url)
                    healthy = False
                    while True:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), self.stall_timeout_s)
                        except TimeoutError:
                            reason = f"stalled: no message for {self.stall_timeout_s:g}s"
                            break
                        if not healthy:  # reset the backoff only once data really flows
                            healthy, attempt = True, 0
                        event = self._handle(raw)
                        if event is not None:
                            yield event
            except ConnectionClosed as exc:
                reason = f"connection closed: {exc}"
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = f"cannot connect: {type(exc).__name__}: {exc}"
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            self.stats.disconnects += 1
            logger.warning("Binance websocket down (%s); reconnecting in %.2fs", reason, delay)
            yield Disconnected(reason, delay)
            await asyncio.sleep(delay)

    def _handle(self, raw: str | bytes) -> KlineClosed | None:
        self.stats.messages += 1
        try:
            kline = parse_kline_message(raw, self._by_id, self.interval)
        except Exception as exc:  # JSONDecodeError, MalformedKline, RecursionError on deep nesting
            self._bad_message(raw, exc)
            return None
        if kline is None:
            self.stats.ignored += 1
            return None
        if not kline.final:
            self.stats.in_progress_dropped += 1
            return None
        self.stats.closed += 1
        return KlineClosed(kline.candle)

    def _bad_message(self, raw: str | bytes, exc: Exception) -> None:
        if isinstance(exc, MalformedKline) and exc.final is False:
            self.stats.in_progress_dropped += 1  # dropped anyway: not worth an error-log row
            logger.debug("skipping malformed in-progress kline: %s", exc)
            return
        self.stats.ignored += 1
        self.stats.malformed += 1
        symbol = exc.symbol if isinstance(exc, MalformedKline) else None
        if isinstance(exc, MalformedKline):
            detail = f"websocket: {exc}"
        else:
            detail = (
                f"websocket: unreadable message {_short(raw, 200)}: {type(exc).__name__}: {exc}"
            )
        logger.warning("skipping malformed Binance message: %s", detail)
        if self.on_bad_data is not None:
            try:
                self.on_bad_data(symbol, detail)
            except Exception:
                logger.exception("on_bad_data callback failed for %s", detail)
