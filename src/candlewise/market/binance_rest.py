"""Binance spot REST backfill through ccxt.

The live feed only sees candles that close while its websocket is up; everything else (the
history before start-up, minutes lost to a disconnect) is fetched here. Only *closed* candles are
returned: Binance's klines endpoint also returns the candle still forming, whose values would
change after we stored them.

Klines are requested through ccxt's implicit ``publicGetKlines`` (rate limit, urls and error
mapping stay ccxt's) and parsed here rather than by ``fetch_ohlcv``: ccxt silently drops a row
whose open time is unusable and passes None through for a missing value, so a malformed row
would either vanish without a trace or crash the caller. Here every malformed row is skipped,
logged and reported through ``on_bad_data``.

Errors: every ccxt error becomes a :class:`UserError` naming the REST url and ccxt's message
(with API key, secret and request signature redacted); :class:`BinanceUnreachable`, its
"transient, worth retrying" subclass, covers network failures, rate limiting/bans (HTTP 418/429)
and server-side failures (HTTP 5xx, Binance's "internal error" codes).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ccxt
import requests

from candlewise.core.candle import Candle
from candlewise.core.errors import UserError
from candlewise.core.symbols import symbol_problem
from candlewise.core.timeframes import timeframe_ms
from candlewise.market.validation import candle_problem

#: Binance's spot REST host, as ccxt spells it in ``urls['api']``.
BINANCE_REST_URL = "https://api.binance.com"
#: Largest page Binance's spot ``/api/v3/klines`` serves.
PAGE_LIMIT = 1000
#: Default HTTP timeout: a live feed must not hang on one request.
DEFAULT_TIMEOUT_MS = 10_000

logger = logging.getLogger(__name__)

#: ``on_progress(candles_so_far, last_open_time_ms)`` after each page.
ProgressCallback = Callable[[int, int], None]
#: ``on_bad_data(symbol, detail)``: a malformed kline or row was skipped. ``symbol`` is None when
#: the item cannot be attributed (e.g. a websocket message that is not even JSON).
BadDataCallback = Callable[[str | None, str], None]


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
    on_bad_data: BadDataCallback | None = None,
) -> list[Candle]:
    """Closed candles of ``symbol`` opening at or after ``since_ms`` and closed by ``until_ms``.

    A candle is kept only when its close time (open + timeframe) is <= ``min(until_ms, now_ms)``:
    the candle still forming is never returned. Pages of :data:`PAGE_LIMIT` are fetched until the
    cut-off is reached or a page comes back empty (a short page is no end marker: rows before
    ``since`` may be missing from it). The result is sorted and has no duplicate open time.
    ``now_ms`` defaults to the wall clock; the live feed passes its own clock.

    ``on_progress(count, last_open_ms)`` is called after each page with the number of candles
    kept so far (duplicates across pages counted once) and the open time, in ms since the epoch,
    of the newest row of that page (which may be the forming candle, not kept).

    A malformed row (not a list, open time unusable, a value missing, None, non-numeric or not
    finite, or a candle the validation rules reject) is skipped, logged and reported once as
    ``on_bad_data(symbol, detail)``; it never raises. Rows outside the requested range (the
    forming candle included) are not checked. No request at all is made when no candle can have
    closed in the range. ccxt errors are raised as :class:`UserError` (``translate_errors``).
    """
    length = timeframe_ms(timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = min(until_ms, now)
    by_open: dict[int, Candle] = {}
    since = since_ms
    market_id: str | None = None
    reported: set[str] = set()  # a bad row at a page's end is served again on the next page

    def bad(detail: str) -> None:
        if detail not in reported:
            reported.add(detail)
            _report(on_bad_data, symbol, detail)

    with translate_errors(exchange, symbol):
        while since + length <= cutoff:
            if market_id is None:
                exchange.load_markets()
                market_id = str(exchange.market_id(symbol))  # BadSymbol when not listed
            rows = _klines_page(exchange, market_id, timeframe, since)
            if not rows:
                break
            opens = _keep_closed(rows, symbol, timeframe, (since_ms, cutoff), by_open, bad)
            if not opens:
                break  # not one usable row: nothing to page on from
            last_open = max(opens)
            if on_progress is not None:
                on_progress(len(by_open), last_open)
            if last_open < since:
                break  # a server ignoring startTime: stop rather than loop forever
            since = last_open + length
    return [by_open[t] for t in sorted(by_open)]


def _klines_page(exchange: ccxt.binance, market_id: str, timeframe: str, since: int) -> list:
    """Up to :data:`PAGE_LIMIT` raw kline rows opening at or after ``since``."""
    request = {
        "symbol": market_id,
        "interval": exchange.timeframes.get(timeframe, timeframe),
        "startTime": since,
        "limit": PAGE_LIMIT,
    }
    rows = exchange.publicGetKlines(request)
    if not isinstance(rows, list):
        raise ccxt.BadResponse(f"klines answer is not a list of rows: {_short(rows)}")
    return rows


def _keep_closed(
    rows: list,
    symbol: str,
    timeframe: str,
    window: tuple[int, int],
    by_open: dict[int, Candle],
    bad: Callable[[str], None],
) -> list[int]:
    """Store the page's closed candles inside ``window`` (since, cutoff) in ``by_open``;
    report bad rows; return the open time of every row that has one (to page on from)."""
    since_ms, cutoff = window
    length = timeframe_ms(timeframe)
    opens: list[int] = []
    for row in rows:
        open_time = _open_time(row)
        if open_time is None:
            bad(f"REST kline row with no usable open time: {_short(row)}")
            continue
        opens.append(open_time)
        if open_time < since_ms or open_time + length > cutoff:
            continue  # out of range, or still forming: neither kept nor checked
        try:
            by_open[open_time] = _to_candle(symbol, timeframe, open_time, row)
        except ValueError as exc:
            bad(str(exc))
    return opens


_VALUE_NAMES = ("open", "high", "low", "close", "volume")


def _open_time(row: object) -> int | None:
    """The open time of a klines row, or None when the row or its first field is unusable."""
    if not isinstance(row, list | tuple) or not row:
        return None
    value = row[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _to_candle(symbol: str, timeframe: str, open_time: int, row: Any) -> Candle:
    """A Binance klines row ``[open_ms, "o", "h", "l", "c", "v", ...]`` as a Candle.

    Raises ValueError, with a detail fit for the error log, on a missing, None, non-numeric or
    non-finite value, and on a candle the validation rules reject (misaligned open time, a price
    <= 0, negative volume, high < low): the live feed and the downloads apply the same rules.
    """
    if len(row) < 6:
        raise ValueError(f"REST kline {timeframe} at {open_time}: row too short: {_short(row)}")
    values: list[float] = []
    for name, raw in zip(_VALUE_NAMES, row[1:6], strict=True):
        value = _number(raw)
        if value is None or not math.isfinite(value):
            raise ValueError(
                f"REST kline {timeframe} at {open_time}: {name} is {raw!r} in row {_short(row)}"
            )
        values.append(value)
    candle = Candle(symbol, timeframe, open_time, *values)
    problem = candle_problem(candle)
    if problem is not None:
        raise ValueError(
            f"REST kline {timeframe} at {open_time}: {problem[0]}: {problem[1]} "
            f"in row {_short(row)}"
        )
    return candle


def _number(raw: object) -> float | None:
    """``raw`` as a float when it is a number or a numeric string (Binance sends strings)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        return float(raw)
    except (ValueError, OverflowError):
        return None


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _report(on_bad_data: BadDataCallback | None, symbol: str | None, detail: str) -> None:
    logger.warning("skipping malformed Binance data for %s: %s", symbol or "?", detail)
    if on_bad_data is not None:
        on_bad_data(symbol, detail)


def _bad_symbol(symbol: str) -> UserError:
    problem = symbol_problem(symbol)
    hint = problem or "check the pair is listed on Binance spot, e.g. 'BTC/USDT'"
    return UserError(f"Binance has no market {symbol!r}", hint=hint)


@contextmanager
def translate_errors(exchange: ccxt.binance, symbol: str) -> Iterator[None]:
    """Turn every ccxt error into a :class:`UserError` that names the REST url and says what to do.

    * ``BadSymbol`` -> "Binance has no market ..." with a hint on the symbol;
    * ``AuthenticationError``/``PermissionDenied`` (HTTP 401/403, Binance code -2015, ...) -> the
      request was refused: market data needs no keys, check them or the proxy;
    * network failures, ``ExchangeNotAvailable``, rate limiting and bans (HTTP 418/429), HTTP 5xx
      and ccxt's ``OperationFailed`` (Binance's "internal error" codes) ->
      :class:`BinanceUnreachable` (transient: the live feed retries these);
    * any other ccxt error (``ExchangeError`` and the rest) -> "Binance ... refused the request".

    The message carries ccxt's own message (Binance's ``{"code": ..., "msg": ...}`` included);
    the API key, the secret and any request signature are redacted from it.
    """
    try:
        yield
    except ccxt.BadSymbol as exc:
        raise _bad_symbol(symbol) from exc
    except ccxt.BaseError as exc:
        raise _user_error(exchange, exc) from exc


def _user_error(exchange: ccxt.binance, exc: ccxt.BaseError) -> UserError:
    url = rest_url_of(exchange)
    status = _http_status(exc)
    http = f" (HTTP {status})" if status is not None else ""
    reason = _reason(exchange, exc)
    if isinstance(exc, ccxt.AuthenticationError):
        return UserError(
            f"Binance at {url} refused the request as unauthorised{http}: {reason}",
            hint="market data needs no API key: if keys are configured check them (value, IP "
            "whitelist, permissions) or remove them; if the REST url is a proxy, check that it "
            "lets this request through",
        )
    if isinstance(exc, ccxt.DDoSProtection) or status in (418, 429):
        return BinanceUnreachable(
            f"cannot reach Binance at {url}{http}: {reason}",
            hint="Binance is rate-limiting or has banned this IP for a while (HTTP 418/429): "
            "wait before retrying and make fewer requests",
        )
    if isinstance(exc, ccxt.OperationFailed) or (status is not None and status >= 500):
        return BinanceUnreachable(
            f"cannot reach Binance at {url}{http}: {reason}",
            hint="check the network and the REST url; Binance may be down or rate-limiting",
        )
    return UserError(
        f"Binance at {url} refused the request{http}: {reason}",
        hint="check the REST url (exchange.rest_url) and the symbol; the message above is "
        "Binance's (or the proxy's) own",
    )


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of the answer behind ``exc`` (None when there was no answer)."""
    for link in _chain(exc):
        if isinstance(link, requests.HTTPError) and link.response is not None:
            return int(link.response.status_code)
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _reason(exchange: ccxt.binance, exc: BaseException) -> str:
    """What went wrong, in one line and without credentials.

    When the server answered, ccxt's message (it carries Binance's ``code``/``msg``); when it did
    not, the root cause (e.g. "Connection refused") rather than ccxt's bare 'binance GET <url>'.
    """
    links = list(_chain(exc))
    root = links[-1]
    if any(isinstance(link, requests.HTTPError) for link in links) or root is exc:
        text = str(exc) or type(exc).__name__
    elif isinstance(root, OSError) and root.strerror:
        text = root.strerror
    else:
        text = str(root) or type(root).__name__
    text = _redact(exchange, " ".join(text.split()))
    return text if len(text) <= 300 else text[:297] + "..."


def _redact(exchange: ccxt.binance, text: str) -> str:
    """``text`` without the API key, the secret or a request signature."""
    for secret in (exchange.apiKey, exchange.secret, exchange.password):
        if isinstance(secret, str) and len(secret) >= 4:
            text = text.replace(secret, "***")
    return re.sub(r"(signature=)[^&\s]+", r"\1***", text, flags=re.IGNORECASE)
