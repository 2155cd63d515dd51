"""Kline websocket client: parsing, closed-only emission, reconnects, stall watchdog."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest

from candlewise.core.candle import Candle
from candlewise.core.errors import UserError
from candlewise.market.backoff import Backoff
from candlewise.market.binance_stream import (
    BinanceKlineStream,
    Connected,
    Disconnected,
    KlineClosed,
    StreamEvent,
    parse_kline_message,
    stream_url,
)
from tests.market.binance_servers import (
    T0,
    BinanceWsServer,
    Drop,
    Raw,
    ScriptClock,
    Send,
    Stall,
    bad_kline_message,
    closed_port,
    in_progress,
    kline_message,
    make_series,
)

pytestmark = pytest.mark.timeout(60)

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
BY_ID = {"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}
SERIES = make_series(SYMBOLS, T0, 10)
BTC, ETH = SERIES["BTC/USDT"], SERIES["ETH/USDT"]
FAST = Backoff(initial_s=0.05, max_s=0.2, factor=2.0, jitter=0.5)


def minute(m: int, *, updates: int = 2, close: bool = True) -> list[Send]:
    """In-progress updates for minute ``m`` of both symbols, then (optionally) their closes."""
    actions = [Send(in_progress(c[m], step), False) for step in range(updates) for c in (BTC, ETH)]
    if close:
        actions += [Send(BTC[m], True), Send(ETH[m], True)]
    return actions


async def collect(
    stream: BinanceKlineStream, done: Callable[[list[StreamEvent]], bool], timeout_s: float
) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    gen: AsyncIterator[StreamEvent] = stream.events()

    async def run() -> None:
        async for event in gen:
            events.append(event)
            if done(events):
                return

    try:
        await asyncio.wait_for(run(), timeout_s)
    finally:
        await gen.aclose()  # type: ignore[attr-defined]
    return events


def closed(events: list[StreamEvent]) -> list[Candle]:
    return [e.candle for e in events if isinstance(e, KlineClosed)]


# --- parsing -----------------------------------------------------------------------------------


def test_stream_url_is_binance_combined_stream() -> None:
    url = stream_url("wss://stream.binance.com:9443/", SYMBOLS, "1m")
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"


def test_parse_final_and_in_progress_klines() -> None:
    final = parse_kline_message(kline_message(BTC[3], True), BY_ID, "1m")
    assert final is not None and final.final is True
    assert final.candle == BTC[3]  # symbol back in BASE/QUOTE form, values exact
    partial = parse_kline_message(kline_message(in_progress(ETH[3], 0), False), BY_ID, "1m")
    assert partial is not None and partial.final is False
    assert partial.candle.symbol == "ETH/USDT"
    assert partial.candle.close != ETH[3].close


def test_parse_ignores_what_is_not_our_kline() -> None:
    assert parse_kline_message('{"result": null, "id": 1}', BY_ID, "1m") is None
    assert (
        parse_kline_message('{"stream": "x", "data": {"e": "serverShutdown"}}', BY_ID, "1m") is None
    )
    other = kline_message(Candle("SOL/USDT", "1m", T0, 1, 1, 1, 1, 1), True)
    assert parse_kline_message(other, BY_ID, "1m") is None
    assert parse_kline_message(kline_message(BTC[0], True), BY_ID, "5m") is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k.pop("c"),
        lambda k: k.update(x="true"),
        lambda k: k.update(o="NaN"),
        lambda k: k.update(t="soon"),
    ],
)
def test_parse_rejects_malformed_klines(mutate: Callable[[dict[str, object]], object]) -> None:
    message = json.loads(kline_message(BTC[0], True))
    mutate(message["data"]["k"])
    with pytest.raises(ValueError):
        parse_kline_message(json.dumps(message), BY_ID, "1m")
    with pytest.raises(ValueError):
        parse_kline_message("not json", BY_ID, "1m")


def test_bad_configuration_is_a_user_error() -> None:
    with pytest.raises(UserError, match="invalid symbol"):
        BinanceKlineStream("ws://127.0.0.1:1", ["btcusdt"])
    with pytest.raises(UserError, match="no symbols"):
        BinanceKlineStream("ws://127.0.0.1:1", [])
    with pytest.raises(UserError, match="invalid Binance websocket url"):
        BinanceKlineStream("http://127.0.0.1:1", SYMBOLS)


# --- against a real websocket server -----------------------------------------------------------


def test_only_final_klines_are_emitted_across_a_dropped_connection() -> None:
    scripts = [
        [
            Raw('{"result": null, "id": 1}'),
            *minute(0),
            Raw("garbage"),
            *minute(1),
            *minute(2, close=False),  # minute 2 in progress when the connection drops
            Drop(),
        ],
        [*minute(3)],
    ]

    async def scenario() -> tuple[list[StreamEvent], BinanceKlineStream, BinanceWsServer]:
        async with BinanceWsServer(scripts, ScriptClock(T0)) as server:
            stream = BinanceKlineStream(server.url, SYMBOLS, backoff=FAST, rng=random.Random(1))
            events = await collect(stream, lambda ev: len(closed(ev)) == 6, 20)
            return events, stream, server

    events, stream, server = asyncio.run(scenario())
    kinds = [type(e) for e in events]
    assert kinds == [
        Connected,
        *[KlineClosed] * 4,
        Disconnected,
        Connected,
        KlineClosed,
        KlineClosed,
    ]
    assert closed(events) == [BTC[0], ETH[0], BTC[1], ETH[1], BTC[3], ETH[3]]
    partial_closes = {c.close for _, c, final in server.sent if not final}
    assert partial_closes and not partial_closes & {c.close for c in closed(events)}
    assert stream.stats.in_progress_dropped == 4 * 4  # 2 updates x 2 symbols x minutes 0..3
    assert stream.stats.ignored == 2
    assert stream.stats.connects == 2 and stream.stats.disconnects == 1
    assert server.paths == ["/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"] * 2
    disconnected = next(e for e in events if isinstance(e, Disconnected))
    assert disconnected.reason.startswith("connection closed")
    assert 0.025 <= disconnected.retry_in_s <= 0.05


def test_a_stalled_connection_is_abandoned_and_reopened() -> None:
    scripts = [[*minute(0), *minute(1, close=False), Stall()], [*minute(2)]]

    async def scenario() -> tuple[list[StreamEvent], float, BinanceKlineStream]:
        async with BinanceWsServer(scripts, ScriptClock(T0)) as server:
            stream = BinanceKlineStream(
                server.url, SYMBOLS, backoff=FAST, rng=random.Random(2), stall_timeout_s=0.3
            )
            start = time.monotonic()
            events = await collect(stream, lambda ev: len(closed(ev)) == 4, 20)
            return events, time.monotonic() - start, stream

    events, elapsed, stream = asyncio.run(scenario())
    assert [type(e) for e in events] == [
        Connected,
        KlineClosed,
        KlineClosed,
        Disconnected,
        Connected,
        KlineClosed,
        KlineClosed,
    ]
    assert closed(events) == [BTC[0], ETH[0], BTC[2], ETH[2]]  # minute 1 never closed on the wire
    disconnected = events[3]
    assert isinstance(disconnected, Disconnected)
    assert disconnected.reason == "stalled: no message for 0.3s"
    assert elapsed >= 0.3
    assert stream.stats.in_progress_dropped == 3 * 4


def test_refused_connections_are_retried_with_seeded_backoff() -> None:
    backoff = Backoff(initial_s=0.01, max_s=0.04, factor=2.0, jitter=0.5)
    url = f"ws://127.0.0.1:{closed_port()}"

    async def scenario() -> list[StreamEvent]:
        stream = BinanceKlineStream(url, SYMBOLS, backoff=backoff, rng=random.Random(5))
        return await collect(stream, lambda ev: len(ev) == 5, 20)

    events = asyncio.run(scenario())
    assert all(isinstance(e, Disconnected) for e in events)
    rng = random.Random(5)
    expected = [backoff.delay(attempt, rng) for attempt in range(5)]
    assert [e.retry_in_s for e in events if isinstance(e, Disconnected)] == expected
    assert all("cannot connect" in e.reason for e in events if isinstance(e, Disconnected))


def bad_kline(candle: Candle, final: object = True, **changes: object) -> Raw:
    return Raw(bad_kline_message(candle, final, **changes))


def test_malformed_messages_are_reported_and_the_stream_goes_on() -> None:
    script: list[Send | Raw] = [
        *minute(0),
        Raw("garbage{"),
        bad_kline(BTC[1], o="NaN"),
        bad_kline(ETH[1], c=None),  # "c" missing
        bad_kline(in_progress(BTC[1], 3), False, h="Infinity"),  # in progress: not reported
        bad_kline(BTC[1], "yes"),  # is it final? cannot tell: reported
        Raw("[" * 50_000),  # nesting deep enough for a RecursionError in json
        Send(ETH[1], True),
        *minute(2),
    ]
    reports: list[tuple[str | None, str]] = []

    def on_bad_data(symbol: str | None, detail: str) -> None:
        reports.append((symbol, detail))
        raise RuntimeError("the error log is down")  # must not stop the stream

    async def scenario() -> tuple[list[StreamEvent], BinanceKlineStream]:
        async with BinanceWsServer([script], ScriptClock(T0)) as server:
            stream = BinanceKlineStream(
                server.url, SYMBOLS, backoff=FAST, rng=random.Random(3), on_bad_data=on_bad_data
            )
            events = await collect(stream, lambda ev: len(closed(ev)) == 5, 20)
            return events, stream

    events, stream = asyncio.run(scenario())
    assert closed(events) == [BTC[0], ETH[0], ETH[1], BTC[2], ETH[2]]
    assert [type(e) for e in events].count(Disconnected) == 0  # no reconnect was needed
    assert [symbol for symbol, _ in reports] == [None, "BTC/USDT", "ETH/USDT", "BTC/USDT", None]
    details = [detail for _, detail in reports]
    assert "garbage{" in details[0] and "JSONDecodeError" in details[0]
    assert "non-finite" in details[1]
    assert "KeyError('c')" in details[2]
    assert "'x' must be a boolean, got 'yes'" in details[3]
    assert "RecursionError" in details[4]
    assert all(d.startswith("websocket: ") for d in details)
    assert stream.stats.malformed == 5
    assert stream.stats.in_progress_dropped == 2 * 4 + 1  # minutes 0 and 2, and the bad one
