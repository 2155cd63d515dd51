"""Real, scripted Binance stand-ins on 127.0.0.1 for the feed tests.

* :class:`BinanceWsServer`: a websockets server speaking Binance's combined-stream kline format.
  Each accepted connection plays the next script (a list of actions: send a kline, move the clock,
  drop the TCP connection, stall, wait for REST requests).
* :class:`BinanceRestServer`: a ``ThreadingHTTPServer`` serving ``/api/v3/exchangeInfo`` and
  ``/api/v3/klines`` from the same known series, honouring symbol/interval/startTime/endTime/limit,
  and, like Binance, also returning the candle still forming (with in-progress values).

Both read "now" from a shared :class:`ScriptClock`, which the websocket script advances, so the
REST server and the feed agree on which minutes have closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve

from candlewise.core.candle import Candle
from candlewise.core.symbols import exchange_id
from candlewise.core.timeframes import MINUTE_MS

#: A minute-aligned start (2023-11-14 22:14 UTC).
T0 = 1_700_000_040_000


class ScriptClock:
    """Shared "now" in ms; read by the feed, the REST server and the websocket script."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def make_series(symbols: Sequence[str], start_ms: int, minutes: int) -> dict[str, list[Candle]]:
    """A known 1m series per symbol. Every value is a multiple of 1/8, so exact in binary."""
    series: dict[str, list[Candle]] = {}
    for j, symbol in enumerate(symbols):
        candles = []
        for i in range(minutes):
            o = 1000.0 * (j + 1) + 1.25 * i
            c = o + (0.5 if i % 2 == 0 else -0.75)
            high, low = max(o, c) + 2.0, min(o, c) - 1.5
            candles.append(
                Candle(
                    symbol, "1m", start_ms + i * MINUTE_MS, o, high, low, c, 10.0 + 0.125 * i + j
                )
            )
        series[symbol] = candles
    return series


def in_progress(candle: Candle, step: int) -> Candle:
    """A partial-minute version of ``candle``: same open, other values off by 0.1 + 0.01*step.

    Those values are never multiples of 1/8, so they can never equal a final value.
    """
    off = 0.1 + 0.01 * step
    return replace(
        candle,
        high=candle.high + off,
        low=candle.low - off,
        close=candle.close + off,
        volume=candle.volume - off,
    )


def kline_message(candle: Candle, final: bool, event_time_ms: int | None = None) -> str:
    """``candle`` as a Binance combined-stream kline event."""
    sid = exchange_id(candle.symbol)
    k = {
        "t": candle.open_time,
        "T": candle.close_time - 1,
        "s": sid,
        "i": candle.timeframe,
        "f": 100,
        "L": 200,
        "o": repr(candle.open),
        "c": repr(candle.close),
        "h": repr(candle.high),
        "l": repr(candle.low),
        "v": repr(candle.volume),
        "n": 101,
        "x": final,
        "q": "1.0",
        "V": "0.5",
        "Q": "0.5",
        "B": "0",
    }
    event_time = event_time_ms if event_time_ms is not None else candle.close_time
    data = {"e": "kline", "E": event_time, "s": sid, "k": k}
    return json.dumps({"stream": f"{sid.lower()}@kline_{candle.timeframe}", "data": data})


def bad_kline_message(candle: Candle, final: object = True, **changes: object) -> str:
    """``candle``'s kline with ``x = final`` and fields of ``k`` replaced (None: removed)."""
    message = json.loads(kline_message(candle, True))
    k = message["data"]["k"]
    k["x"] = final
    for key, value in changes.items():
        if value is None:
            k.pop(key)
        else:
            k[key] = value
    return json.dumps(message)


def rest_row(candle: Candle) -> list[Any]:
    """``candle`` as a row of Binance's ``/api/v3/klines``."""
    prices = [repr(v) for v in (candle.open, candle.high, candle.low, candle.close, candle.volume)]
    return [candle.open_time, *prices, candle.close_time - 1, "0.0", 100, "0.0", "0.0", "0"]


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- websocket server --------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    candle: Candle
    final: bool


@dataclass(frozen=True)
class Raw:
    """Send ``text`` as is (non-kline messages, garbage)."""

    text: str


@dataclass(frozen=True)
class SetClock:
    now_ms: int


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class WaitUntil:
    """Pause the script until ``predicate()`` holds (e.g. the feed made its REST backfill)."""

    predicate: Callable[[], bool]
    timeout_s: float = 10.0
    #: Sent (as in progress) every 0.1 s meanwhile, as Binance keeps pushing the forming candle.
    heartbeat: Candle | None = None


@dataclass(frozen=True)
class Drop:
    """Abort the TCP connection, no close frame: what a network failure looks like."""


@dataclass(frozen=True)
class Stall:
    """Stop sending but keep the socket open, until the client gives up and closes it."""


Action = Send | Raw | SetClock | Sleep | WaitUntil | Drop | Stall


class BinanceWsServer:
    """Websocket server on 127.0.0.1; connection ``n`` plays ``scripts[n]`` then idles."""

    def __init__(
        self, scripts: Sequence[Sequence[Action]], clock: ScriptClock, gap_s: float = 0.002
    ):
        self.scripts = [list(s) for s in scripts]
        self.clock = clock
        self.gap_s = gap_s
        self.paths: list[str] = []
        self.sent: list[tuple[int, Candle, bool]] = []  # (connection, candle, final)
        self.script_done = asyncio.Event()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> BinanceWsServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _wait_until(self, ws: ServerConnection, action: WaitUntil) -> None:
        deadline = time.monotonic() + action.timeout_s
        next_beat = time.monotonic()
        while not action.predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("script condition not met in time")
            if action.heartbeat is not None and time.monotonic() >= next_beat:
                await ws.send(kline_message(action.heartbeat, False, self.clock()))
                next_beat += 0.1
            await asyncio.sleep(0.005)

    async def _handle(self, ws: ServerConnection) -> None:
        index = len(self.paths)
        self.paths.append(ws.request.path if ws.request else "")
        script = self.scripts[index] if index < len(self.scripts) else []
        for action in script:
            if isinstance(action, Send):
                self.sent.append((index, action.candle, action.final))
                await ws.send(kline_message(action.candle, action.final, self.clock()))
                await asyncio.sleep(self.gap_s)
            elif isinstance(action, Raw):
                await ws.send(action.text)
            elif isinstance(action, SetClock):
                self.clock.now_ms = action.now_ms
            elif isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
            elif isinstance(action, WaitUntil):
                await self._wait_until(ws, action)
            elif isinstance(action, Drop):
                ws.transport.abort()
                return
            elif isinstance(action, Stall):
                await ws.wait_closed()
                return
        if index == len(self.scripts) - 1:
            self.script_done.set()
        await ws.wait_closed()


@contextlib.contextmanager
def ws_server_thread(
    scripts: Sequence[Sequence[Action]], clock: ScriptClock
) -> Iterator[BinanceWsServer]:
    """A :class:`BinanceWsServer` running in its own event loop thread, for synchronous tests."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ws-server", daemon=True)
    thread.start()
    server = BinanceWsServer(scripts, clock)
    try:
        asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(5)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


_FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
]


def _spot_market(sid: str, symbol: str) -> dict[str, Any]:
    """A minimal ``exchangeInfo`` entry that ccxt's parser accepts as an active spot pair."""
    base, quote = symbol.split("/")
    return {
        "symbol": sid,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _FILTERS,
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


# --- REST server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KlinesRequest:
    symbol: str
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int
    returned: tuple[int, ...]  # open times served


class BinanceRestServer:
    """``ThreadingHTTPServer`` on 127.0.0.1 serving spot exchangeInfo and klines from ``series``.

    ``overlap`` makes every klines page start that many minutes before ``startTime`` (pagination
    must deduplicate); ``fail_klines`` answers the next N klines requests with HTTP 503.
    ``bad_rows`` (symbol -> open time -> raw row) serves that row, as is, instead of the candle
    opening then (any JSON value: a row with None in it, None itself, garbage). ``fail_with``
    ``(status, json_body)`` answers *every* request with that error, as Binance does for a banned
    IP or a rejected API key (e.g. ``(401, {"code": -2015, "msg": "Invalid API-key ..."})``).
    Every request's ``X-MBX-APIKEY`` header (None when absent) is kept in ``api_keys``.
    """

    def __init__(
        self,
        series: Mapping[str, list[Candle]],
        clock: Callable[[], int],
        *,
        overlap: int = 0,
        fail_klines: int = 0,
        bad_rows: Mapping[str, Mapping[int, Any]] | None = None,
        fail_with: tuple[int, Any] | None = None,
    ) -> None:
        self.by_id = {exchange_id(s): (s, candles) for s, candles in series.items()}
        self.clock = clock
        self.overlap = overlap
        self.fail_klines = fail_klines
        self.bad_rows = {exchange_id(s): dict(rows) for s, rows in (bad_rows or {}).items()}
        self.fail_with = fail_with
        self.paths: list[str] = []
        self.api_keys: list[str | None] = []
        self.klines: list[KlinesRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> BinanceRestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def klines_count(self) -> int:
        with self._lock:
            return len(self.klines)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.paths.append(parts.path)
                    fake.api_keys.append(self.headers.get("X-MBX-APIKEY"))
                if fake.fail_with is not None:
                    status, body = fake.fail_with
                else:
                    status, body = fake._route(parts.path, query)
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/exchangeInfo":
            return 200, self._exchange_info()
        if path == "/api/v3/klines":
            return self._klines(query)
        return 404, {"code": -1, "msg": f"no route {path}"}

    def _exchange_info(self) -> dict[str, Any]:
        symbols = [_spot_market(sid, symbol) for sid, (symbol, _) in self.by_id.items()]
        info = {"timezone": "UTC", "serverTime": self.clock(), "rateLimits": []}
        return {**info, "exchangeFilters": [], "symbols": symbols}

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        sid = query.get("symbol", "")
        if sid not in self.by_id:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if query.get("interval") != "1m":
            return 400, {"code": -1120, "msg": "Invalid interval."}
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        limit = min(int(query.get("limit", 500)), 1000)
        now = self.clock()
        _, candles = self.by_id[sid]
        rows = []
        for candle in candles:
            if candle.open_time > now:
                break  # the future does not exist yet
            if start is not None and candle.open_time < start - self.overlap * MINUTE_MS:
                continue
            if end is not None and candle.open_time > end:
                break
            forming = candle.close_time > now
            rows.append(in_progress(candle, 99) if forming else candle)
        if start is None:
            rows = rows[-limit:]  # like Binance: the most recent ones
        rows = rows[:limit]
        with self._lock:
            if self.fail_klines > 0:
                self.fail_klines -= 1
                failed = True
            else:
                failed = False
            self.klines.append(
                KlinesRequest(
                    self.by_id[sid][0],
                    query["interval"],
                    start,
                    end,
                    limit,
                    () if failed else tuple(c.open_time for c in rows),
                )
            )
        if failed:
            return 503, b"Service Unavailable"
        bad = self.bad_rows.get(sid, {})
        return 200, [bad[c.open_time] if c.open_time in bad else rest_row(c) for c in rows]
