"""Binance spot REST backfill through ccxt.

The live feed only sees candles that close while its websocket is up; everything else (the
history before start-up, minutes lost to a disconnect) is fetched here. Only *closed* candles are
returned: Binance's klines endpoint also returns the candle still forming, whose values would
change after we stored them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ccxt

from candlewise.errors import UserError
from candlewise.market.candle import Candle
from candlewise.symbols import symbol_problem
from candlewise.timeframes import timeframe_ms

#: Binance's spot REST host, as ccxt spells it in ``urls['api']``.
BINANCE_REST_URL = "https://api.binance.com"
#: Largest page Binance's spot ``/api/v3/klines`` serves.
PAGE_LIMIT = 1000
#: Default HTTP timeout: a live feed must not hang on one request.
DEFAULT_TIMEOUT_MS = 10_000

#: ``on_progress(candles_so_far, last_open_time_ms)`` after each page.
ProgressCallback = Callable[[int, int], None]


class BinanceUnreachable(UserError):
    """Binance (or the configured REST url) did not answer: usually transient, worth retrying."""


def make_exchange(
    rest_url: str | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> ccxt.binance:
    """A rate-limited ccxt Binance client restricted to spot markets.

    ``rest_url`` (e.g. ``http://127.0.0.1:8080`` in tests, or a proxy) replaces the host of every
    ``urls['api']`` entry that points at ``https://api.binance.com`` (``public``/``private`` ->
    ``<rest_url>/api/v3``, ``v1`` -> ``/api/v1``, ``sapi*`` -> ``/sapi/vN``), so no request can leak
    to the real exchange. Spot-only ``fetchMarkets`` makes ``load_markets`` a single
    ``GET /api/v3/exchangeInfo`` instead of also calling the futures APIs.
    """
    config: dict[str, object] = {"enableRateLimit": True, "timeout": int(timeout_ms)}
    if api_key:
        config["apiKey"] = api_key
    if secret:
        config["secret"] = secret
    exchange = ccxt.binance(config)
    exchange.options["defaultType"] = "spot"
    exchange.options["fetchMarkets"] = {"types": ["spot"], "loadAllOptions": False}
    # Margin pairs come from sapi and only matter for margin trading, which candlewise does not do.
    exchange.options["fetchMargins"] = False
    if rest_url is not None:
        base = _normalise_rest_url(rest_url)
        api = exchange.urls["api"]
        for key, url in list(api.items()):
            if isinstance(url, str) and url.startswith(BINANCE_REST_URL + "/"):
                api[key] = base + url[len(BINANCE_REST_URL) :]
    return exchange


def _normalise_rest_url(rest_url: str) -> str:
    """``http://host:port[/api/v3][/]`` -> ``http://host:port``; rejects what is not a URL."""
    url = rest_url.strip().rstrip("/")
    for suffix in ("/api/v3", "/api"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"invalid Binance REST url {rest_url!r}",
            hint="expected a base url such as 'https://api.binance.com' or 'http://127.0.0.1:8080'",
        )
    return url


def rest_url_of(exchange: ccxt.binance) -> str:
    """The spot REST url ``exchange`` talks to, for error messages."""
    return str(exchange.urls["api"]["public"])


def load_spot_markets(exchange: ccxt.binance, symbols: list[str]) -> None:
    """Load markets and check every symbol exists, so a typo fails at start-up, not mid-session."""
    with translate_errors(exchange, symbols[0] if symbols else ""):
        exchange.load_markets()
    for symbol in symbols:
        if symbol not in exchange.markets:
            raise _bad_symbol(symbol)


def fetch_candles(
    exchange: ccxt.binance,
    symbol: str,
    timeframe: str,
    since_ms: int,
    until_ms: int,
    on_progress: ProgressCallback | None = None,
    *,
    now_ms: int | None = None,
) -> list[Candle]:
    """Closed candles of ``symbol`` opening at or after ``since_ms`` and closed by ``until_ms``.

    A candle is kept only when its close time (open + timeframe) is <= ``min(until_ms, now_ms)``:
    the candle still forming is never returned. Pages of :data:`PAGE_LIMIT` are fetched until the
    cut-off is reached or a page comes back empty (a short page is no end marker: ccxt drops rows
    before ``since`` from it). The result is sorted and has no duplicate open time. ``now_ms``
    defaults to the wall clock; the live feed passes its own clock.
    """
    length = timeframe_ms(timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = min(until_ms, now)
    by_open: dict[int, Candle] = {}
    since = since_ms
    with translate_errors(exchange, symbol):
        while since + length <= cutoff:
            rows = exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=PAGE_LIMIT)
            if not rows:
                break
            for row in rows:
                candle = _to_candle(symbol, timeframe, row)
                if candle.open_time >= since_ms and candle.close_time <= cutoff:
                    by_open[candle.open_time] = candle
            last_open = max(int(row[0]) for row in rows)
            if on_progress is not None:
                on_progress(len(by_open), last_open)
            if last_open < since:
                break  # a server ignoring startTime: stop rather than loop forever
            since = last_open + length
    return [by_open[t] for t in sorted(by_open)]


def _to_candle(symbol: str, timeframe: str, row: list[Any]) -> Candle:
    """A ccxt OHLCV row ``[open_ms, o, h, l, c, v]`` as a Candle."""
    open_time, o, h, low, c, v = row[:6]
    values = (float(o), float(h), float(low), float(c), float(v))
    return Candle(symbol, timeframe, int(open_time), *values)


def _bad_symbol(symbol: str) -> UserError:
    problem = symbol_problem(symbol)
    hint = problem or "check the pair is listed on Binance spot, e.g. 'BTC/USDT'"
    return UserError(f"Binance has no market {symbol!r}", hint=hint)


@contextmanager
def translate_errors(exchange: ccxt.binance, symbol: str) -> Iterator[None]:
    """Turn ccxt's BadSymbol and NetworkError into UserErrors that say what to do."""
    try:
        yield
    except ccxt.BadSymbol as exc:
        raise _bad_symbol(symbol) from exc
    except ccxt.NetworkError as exc:
        raise BinanceUnreachable(
            f"cannot reach Binance at {rest_url_of(exchange)}: {_reason(exc)}",
            hint="check the network and the REST url; Binance may be down or rate-limiting",
        ) from exc


def _reason(exc: BaseException) -> str:
    """The root cause (e.g. "Connection refused") rather than ccxt's bare 'binance GET <url>'."""
    root: BaseException = exc
    seen = {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    if isinstance(root, OSError) and root.strerror:
        text = root.strerror
    else:
        text = str(root) or type(root).__name__
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
