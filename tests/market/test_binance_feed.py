"""BinanceFeed end to end: real websocket + real HTTP servers on 127.0.0.1.

The scripted websocket sends in-progress updates and closes for a known series, loses the
connection mid-minute (dropped, or stalled), and resumes later, so some closed minutes are never
sent on the websocket; one later minute is also skipped on the live connection. The feed must
output exactly the known closed series, in order, filling every hole over REST.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import pytest

from candlewise.core.candle import Candle
from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.backoff import Backoff
from candlewise.market.binance_feed import BackfillRange, BinanceFeed
from candlewise.market.binance_rest import make_exchange
from tests.market.binance_servers import (
    T0,
    Action,
    BinanceRestServer,
    BinanceWsServer,
    Drop,
    Raw,
    ScriptClock,
    Send,
    SetClock,
    Stall,
    WaitUntil,
    bad_kline_message,
    closed_port,
    in_progress,
    make_series,
    rest_row,
)

pytestmark = pytest.mark.timeout(60)

BTC_S, ETH_S = "BTC/USDT", "ETH/USDT"
SYMBOLS = [BTC_S, ETH_S]
SERIES = make_series(SYMBOLS, T0, 13)
BTC, ETH = SERIES[BTC_S], SERIES[ETH_S]
FAST = Backoff(initial_s=0.05, max_s=0.2, factor=2.0, jitter=0.5)


def at(m: int, seconds: float = 0.1) -> int:
    """Clock time ``seconds`` into minute ``m``."""
    return T0 + m * MINUTE_MS + int(seconds * 1000)


def updates(m: int, n: int = 2) -> list[Action]:
    """In-progress klines for minute ``m``, with prices that differ from the final ones."""
    return [Send(in_progress(c[m], step), False) for step in range(n) for c in (BTC, ETH)]


def closes(m: int) -> list[Action]:
    return [Send(BTC[m], True), Send(ETH[m], True)]


def klines_at_least(rest: BinanceRestServer, n: int, forming: Candle | None = None) -> WaitUntil:
    """Wait for the feed's REST backfill, streaming ``forming`` (in progress) meanwhile."""
    beat = in_progress(forming, 50) if forming is not None else None
    return WaitUntil(lambda: rest.klines_count() >= n, heartbeat=beat)


async def take(feed: BinanceFeed, count: int, timeout_s: float = 20.0) -> list[Candle]:
    """The first ``count`` candles, then check that nothing else comes."""
    out: list[Candle] = []
    async with feed:
        candles = feed.candles()

        async def consume() -> None:
            async for candle in candles:
                out.append(candle)
                if len(out) == count:
                    return

        await asyncio.wait_for(consume(), timeout_s)
        with pytest.raises(TimeoutError):  # no extra candle, no late duplicate
            await asyncio.wait_for(anext(candles), 0.3)
    return out


def interruption_scripts(rest: BinanceRestServer, interruption: Action) -> list[list[Action]]:
    """Connection 1: minutes 3, 4 then lost during minute 5. Connection 2 from minute 7 on."""
    first: list[Action] = [
        klines_at_least(rest, 2, BTC[3]),  # the feed has backfilled on connect
        SetClock(at(3, 20)),
        *updates(3),
        SetClock(at(4)),
        *closes(3),
        SetClock(at(4, 20)),
        *updates(4),
        SetClock(at(5)),
        *closes(4),
        SetClock(at(5, 20)),
        *updates(5),  # minute 5 is in progress when the connection is lost...
        SetClock(at(7, 5)),  # ...and stays lost until minutes 5 and 6 have closed
        interruption,
    ]
    second: list[Action] = [
        klines_at_least(rest, 4, BTC[7]),
        *closes(6),  # already backfilled over REST: duplicates
        SetClock(at(7, 20)),
        *updates(7),
        SetClock(at(8)),
        *closes(7),
        *updates(8),
        SetClock(at(9)),
        *closes(8),
        *updates(9),  # minute 9 never closes on the websocket
        SetClock(at(10)),
        *updates(10),
        SetClock(at(11)),
        *closes(10),
        *updates(11),
        SetClock(at(12)),
        *closes(11),
    ]
    return [first, second]


def run_interrupted(interruption: Action, stall_timeout_s: float) -> None:
    clock = ScriptClock(at(3, 10))
    last = {BTC_S: BTC[1].open_time, ETH_S: ETH[0].open_time}

    async def scenario() -> tuple[list[Candle], BinanceFeed, BinanceWsServer, BinanceRestServer]:
        with BinanceRestServer(SERIES, clock) as rest:
            async with BinanceWsServer(interruption_scripts(rest, interruption), clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url, timeout_ms=5000),
                    SYMBOLS,
                    last_open_times=last,
                    backoff=FAST,
                    rng_seed=11,
                    clock=clock,
                    stall_timeout_s=stall_timeout_s,
                )
                out = await take(feed, 21)
                assert ws.script_done.is_set()
                return out, feed, ws, rest

    out, feed, ws, rest = asyncio.run(scenario())

    # Exactly the known closed series, in order: backfills sorted by time, gaps filled in place.
    expected = [
        ETH[1], BTC[2], ETH[2],  # backfill on first connect
        BTC[3], ETH[3], BTC[4], ETH[4],  # live
        BTC[5], ETH[5], BTC[6], ETH[6],  # backfill on reconnect
        BTC[7], ETH[7], BTC[8], ETH[8],  # live (the repeated minute 6 was dropped)
        BTC[9], BTC[10], ETH[9], ETH[10],  # minute 9 from REST before the live minute 10
        BTC[11], ETH[11],
    ]  # fmt: skip
    assert out == expected
    for symbol in SYMBOLS:
        times = [c.open_time for c in out if c.symbol == symbol]
        assert all(b - a == MINUTE_MS for a, b in itertools.pairwise(times))
    assert feed.last_open_times == {BTC_S: BTC[11].open_time, ETH_S: ETH[11].open_time}

    # No in-progress value (websocket updates, REST's forming candle) was ever emitted.
    partial = [c for _, c, final in ws.sent if not final]
    partial += [in_progress(c, k) for c in BTC + ETH for k in (50, 99)]  # heartbeats, REST
    partial_values = {v for c in partial for v in (c.high, c.low, c.close, c.volume)}
    assert not partial_values & {v for c in out for v in (c.high, c.low, c.close, c.volume)}

    # A reconnect happened.
    assert len(ws.paths) == 2
    assert feed.stats.connects == 2 and feed.stats.disconnects == 1
    assert feed.stats.duplicates_dropped == 2
    assert (feed.stats.live, feed.stats.backfilled, feed.stats.unfilled_gaps) == (12, 9, 0)

    # Backfill requests covered exactly the missing ranges.
    served = [(r.symbol, r.start_ms) for r in rest.klines]
    assert served == [
        (BTC_S, BTC[2].open_time),
        (ETH_S, ETH[1].open_time),
        (BTC_S, BTC[5].open_time),
        (ETH_S, ETH[5].open_time),
        (BTC_S, BTC[9].open_time),
        (ETH_S, ETH[9].open_time),
    ]
    assert rest.paths.count("/api/v3/exchangeInfo") == 1
    settle = feed.settle_ms
    assert feed.stats.backfills == [
        BackfillRange(BTC_S, BTC[2].open_time, at(3, 10) - settle, 1, "connect"),
        BackfillRange(ETH_S, ETH[1].open_time, at(3, 10) - settle, 2, "connect"),
        BackfillRange(BTC_S, BTC[5].open_time, at(7, 5) - settle, 2, "connect"),
        BackfillRange(ETH_S, ETH[5].open_time, at(7, 5) - settle, 2, "connect"),
        BackfillRange(BTC_S, BTC[9].open_time, BTC[10].open_time, 1, "gap"),
        BackfillRange(ETH_S, ETH[9].open_time, ETH[10].open_time, 1, "gap"),
    ]


def test_dropped_connection_yields_the_exact_series() -> None:
    run_interrupted(Drop(), stall_timeout_s=30.0)


def test_stalled_connection_yields_the_exact_series() -> None:
    run_interrupted(Stall(), stall_timeout_s=0.4)


def test_fresh_start_begins_at_the_first_live_candle_without_rest() -> None:
    clock = ScriptClock(at(0, 30))
    scripts: list[list[Action]] = [
        [*updates(0), SetClock(at(1)), *closes(0), *updates(1), SetClock(at(2)), *closes(1)]
    ]

    async def scenario() -> tuple[list[Candle], BinanceRestServer]:
        with BinanceRestServer(SERIES, clock) as rest:
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(ws.url, make_exchange(rest.url), SYMBOLS, clock=clock)
                return await take(feed, 4), rest

    out, rest = asyncio.run(scenario())
    assert out == [BTC[0], ETH[0], BTC[1], ETH[1]]
    assert rest.klines == []
    assert rest.paths == ["/api/v3/exchangeInfo"]


def test_backfill_is_retried_while_rest_is_unavailable() -> None:
    clock = ScriptClock(at(3, 10))

    async def scenario() -> tuple[list[Candle], BinanceFeed, BinanceRestServer]:
        with BinanceRestServer(SERIES, clock, fail_klines=2) as rest:
            scripts: list[list[Action]] = [
                [klines_at_least(rest, 3), *updates(3), SetClock(at(4)), *closes(3)]
            ]
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url),
                    SYMBOLS,
                    last_open_times={BTC_S: BTC[0].open_time},
                    backoff=FAST,
                    rng_seed=3,
                    clock=clock,
                )
                return await take(feed, 4), feed, rest

    out, feed, rest = asyncio.run(scenario())
    assert out == [BTC[1], BTC[2], BTC[3], ETH[3]]  # ETH had no history: starts live
    assert [(r.symbol, r.start_ms, r.returned == ()) for r in rest.klines] == [
        (BTC_S, BTC[1].open_time, True),  # 503
        (BTC_S, BTC[1].open_time, True),  # 503
        (BTC_S, BTC[1].open_time, False),
    ]
    assert len(feed.stats.backfills) == 1


def test_a_hole_in_binance_data_is_retried_then_reported() -> None:
    clock = ScriptClock(at(0, 30))
    rest_series = {s: [c for c in cs if c.open_time != cs[2].open_time] for s, cs in SERIES.items()}
    scripts: list[list[Action]] = [
        [
            *(SetClock(at(1)), Send(BTC[0], True)),
            *(SetClock(at(2)), Send(BTC[1], True)),
            *(SetClock(at(4)), Send(BTC[3], True)),  # minute 2 is missing on the wire
        ]
    ]

    async def scenario() -> tuple[list[Candle], BinanceFeed, BinanceRestServer]:
        with BinanceRestServer(rest_series, clock) as rest:
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url),
                    [BTC_S],
                    backoff=FAST,
                    rng_seed=5,
                    clock=clock,
                    gap_retries=1,
                )
                return await take(feed, 3), feed, rest

    out, feed, rest = asyncio.run(scenario())
    assert out == [BTC[0], BTC[1], BTC[3]]
    assert [r.start_ms for r in rest.klines] == [BTC[2].open_time] * 2
    assert feed.stats.unfilled_gaps == 1


def test_unknown_symbol_fails_before_connecting() -> None:
    clock = ScriptClock(at(0))

    async def scenario() -> BinanceWsServer:
        with BinanceRestServer(SERIES, clock) as rest:
            async with BinanceWsServer([], clock) as ws:
                feed = BinanceFeed(ws.url, make_exchange(rest.url), [BTC_S, "DOGE/USDT"])
                async with feed:
                    with pytest.raises(UserError, match="Binance has no market 'DOGE/USDT'"):
                        await asyncio.wait_for(anext(feed.candles()), 10)
                return ws

    ws = asyncio.run(scenario())
    assert ws.paths == []


def test_feed_is_single_use() -> None:
    async def scenario() -> None:
        port = closed_port()
        feed = BinanceFeed(
            f"ws://127.0.0.1:{port}", make_exchange(f"http://127.0.0.1:{port}"), [BTC_S]
        )
        first = feed.candles()
        with pytest.raises(UserError):  # nothing listens: cannot load markets
            await asyncio.wait_for(anext(first), 10)
        with pytest.raises(RuntimeError, match="only once"):
            await anext(feed.candles())

    asyncio.run(scenario())


# --- bad data ----------------------------------------------------------------------------------


def per_symbol(candles: list[Candle]) -> dict[str, list[Candle]]:
    return {s: [c for c in candles if c.symbol == s] for s in SYMBOLS}


def test_malformed_klines_are_reported_and_their_minutes_backfilled() -> None:
    clock = ScriptClock(at(0, 30))
    scripts: list[list[Action]] = [
        [
            *updates(0),
            SetClock(at(1)),
            *closes(0),
            SetClock(at(2)),
            Raw("garbage"),
            Raw(bad_kline_message(BTC[1], o="NaN")),
            Send(ETH[1], True),
            SetClock(at(3)),
            Send(BTC[2], True),  # BTC 1 is missing: backfilled over REST first
            Raw(bad_kline_message(ETH[2], c=None)),
            SetClock(at(4)),
            *closes(3),  # ETH 2 is missing: backfilled over REST first
        ]
    ]
    reports: list[tuple[str | None, str]] = []

    async def scenario() -> tuple[list[Candle], BinanceFeed]:
        with BinanceRestServer(SERIES, clock) as rest:
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url),
                    SYMBOLS,
                    backoff=FAST,
                    rng_seed=7,
                    clock=clock,
                    on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
                )
                return await take(feed, 8), feed

    out, feed = asyncio.run(scenario())
    assert per_symbol(out) == {BTC_S: BTC[:4], ETH_S: ETH[:4]}  # the good series, complete
    assert out == [BTC[0], ETH[0], ETH[1], BTC[1], BTC[2], BTC[3], ETH[2], ETH[3]]
    assert [symbol for symbol, _ in reports] == [None, BTC_S, ETH_S]
    assert "garbage" in reports[0][1] and "non-finite" in reports[1][1]
    assert "KeyError('c')" in reports[2][1]
    assert feed.stats.bad_data == 3
    assert [(b.symbol, b.since_ms, b.received) for b in feed.stats.backfills] == [
        (BTC_S, BTC[1].open_time, 1),
        (ETH_S, ETH[2].open_time, 1),
    ]


def test_bad_rest_rows_are_skipped_and_reported_once_each() -> None:
    clock = ScriptClock(at(5, 10))
    good = rest_row(BTC[2])
    bad_rows = {
        BTC_S: {BTC[2].open_time: [BTC[2].open_time, None, *good[2:]], BTC[3].open_time: None},
        ETH_S: {ETH[6].open_time: [ETH[6].open_time, "1.0", "abc", *good[3:]]},
    }

    async def scenario() -> tuple[list[Candle], BinanceFeed, BinanceRestServer]:
        with BinanceRestServer(SERIES, clock, bad_rows=bad_rows) as rest:
            scripts: list[list[Action]] = [
                [
                    klines_at_least(rest, 1, BTC[5]),
                    *updates(5),
                    SetClock(at(6)),
                    *closes(5),
                    *updates(6),  # minute 6 never closes on the websocket
                    SetClock(at(7)),
                    *updates(7),
                    SetClock(at(8)),
                    *closes(7),
                ]
            ]
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url),
                    SYMBOLS,
                    last_open_times={BTC_S: BTC[0].open_time},
                    backoff=FAST,
                    rng_seed=9,
                    clock=clock,
                    gap_retries=2,
                    on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
                )
                return await take(feed, 7), feed, rest

    reports: list[tuple[str | None, str]] = []
    out, feed, rest = asyncio.run(scenario())
    # The good series: the three bad rows are the only candles missing.
    assert out == [BTC[1], BTC[4], BTC[5], ETH[5], BTC[6], BTC[7], ETH[7]]
    assert [symbol for symbol, _ in reports] == [BTC_S, BTC_S, ETH_S]
    assert "open is None" in reports[0][1]
    assert "no usable open time: None" in reports[1][1]
    assert "high is 'abc'" in reports[2][1]
    # ETH minute 6 was fetched three times (gap retries), yet reported once.
    assert [r.start_ms for r in rest.klines if r.symbol == ETH_S] == [ETH[6].open_time] * 3
    assert feed.stats.unfilled_gaps == 1
    assert feed.stats.bad_data == 3


# --- final klines that must not be emitted ---------------------------------------------------


def run_rejections(
    scripts: list[list[Action]], count: int, last: dict[str, int] | None = None
) -> tuple[list[Candle], BinanceFeed, list[tuple[str | None, str]]]:
    clock = ScriptClock(at(0, 30))
    reports: list[tuple[str | None, str]] = []

    async def scenario() -> tuple[list[Candle], BinanceFeed]:
        with BinanceRestServer(SERIES, clock) as rest:
            async with BinanceWsServer(scripts, clock) as ws:
                feed = BinanceFeed(
                    ws.url,
                    make_exchange(rest.url),
                    SYMBOLS,
                    last_open_times=last,
                    backoff=FAST,
                    rng_seed=7,
                    clock=clock,
                    on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
                )
                return await take(feed, count), feed

    out, feed = asyncio.run(scenario())
    return out, feed, reports


def shifted(candle: Candle, ms: int) -> Candle:
    return replace(candle, open_time=candle.open_time + ms)


@pytest.mark.parametrize(
    "ahead_ms",
    [
        2 * 60 * MINUTE_MS,  # the user's case: two hours ahead
        MINUTE_MS,  # the minute still forming
        2 * MINUTE_MS,  # the next one, not even begun
        24 * 60 * MINUTE_MS,
    ],
)
def test_a_final_kline_stamped_in_the_future_is_rejected_and_blocks_nothing(ahead_ms: int) -> None:
    future = shifted(BTC[1], ahead_ms)  # sent while minute 1 has just closed
    scripts: list[list[Action]] = [
        [
            SetClock(at(1)),
            *closes(0),
            SetClock(at(2)),
            Send(future, True),
            *closes(1),
            SetClock(at(3)),
            *closes(2),
        ]
    ]
    out, feed, reports = run_rejections(scripts, 6, last={BTC_S: T0 - MINUTE_MS})
    assert out == [BTC[0], ETH[0], BTC[1], ETH[1], BTC[2], ETH[2]]
    assert feed.last_open_times == {BTC_S: BTC[2].open_time, ETH_S: ETH[2].open_time}
    assert [s for s, _ in reports] == [BTC_S]
    assert f"open_time={future.open_time} rejected: not_closed" in reports[0][1]
    assert (feed.stats.rejected, feed.stats.bad_data, feed.stats.duplicates_dropped) == (1, 1, 0)
    assert feed.stats.backfills == []  # a future minute is not a gap to fill


def test_the_forming_minute_sent_as_final_is_rejected_and_its_real_close_kept() -> None:
    early = replace(BTC[1], close=BTC[1].close + 0.5)  # half-way values, flagged final
    scripts: list[list[Action]] = [
        [
            SetClock(at(1)),
            *closes(0),
            SetClock(at(1, 30)),  # 30 s before minute 1 closes
            Send(early, True),
            SetClock(at(2)),
            *closes(1),
        ]
    ]
    out, _, reports = run_rejections(scripts, 4, last={BTC_S: T0 - MINUTE_MS})
    assert out == [BTC[0], ETH[0], BTC[1], ETH[1]]
    assert len(reports) == 1 and "not_closed" in reports[0][1]


def test_a_final_kline_within_the_clock_skew_is_accepted() -> None:
    """Binance's clock may run a little ahead of ours: its close may arrive just early."""
    scripts: list[list[Action]] = [
        [SetClock(at(1)), *closes(0), SetClock(at(2, -3)), *closes(1)]  # 3 s early
    ]
    out, _, reports = run_rejections(scripts, 4)
    assert out == [BTC[0], ETH[0], BTC[1], ETH[1]] and reports == []


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"o": "-5.0"}, "non_positive_price"),
        ({"l": "0"}, "non_positive_price"),
        ({"c": "0.0"}, "non_positive_price"),
        ({"h": "900.0"}, "high_below_low"),  # high < low (low ~ 1000)
        ({"v": "-1"}, "negative_volume"),
    ],
)
def test_a_final_kline_failing_validation_is_rejected_and_its_minute_backfilled(
    changes: dict[str, object], kind: str
) -> None:
    scripts: list[list[Action]] = [
        [
            SetClock(at(1)),
            Raw(bad_kline_message(ETH[0], **changes)),  # ETH's very first candle: no history
            Send(BTC[0], True),
            SetClock(at(2)),
            Raw(bad_kline_message(BTC[1], **changes)),
            Send(ETH[1], True),  # ETH 0 is backfilled first
            SetClock(at(3)),
            *closes(2),  # BTC 1 is backfilled first
        ]
    ]
    out, feed, reports = run_rejections(scripts, 6)
    assert out == [BTC[0], ETH[0], ETH[1], BTC[1], BTC[2], ETH[2]]  # the REST values
    assert per_symbol(out) == {BTC_S: BTC[:3], ETH_S: ETH[:3]}
    assert [s for s, _ in reports] == [ETH_S, BTC_S]
    assert all(f"rejected: {kind}" in detail for _, detail in reports)
    assert [(b.symbol, b.since_ms, b.received) for b in feed.stats.backfills] == [
        (ETH_S, ETH[0].open_time, 1),
        (BTC_S, BTC[1].open_time, 1),
    ]


@pytest.mark.parametrize("offset_ms", [1, 30_000, 59_999, -30_000, -1])
def test_a_misaligned_final_kline_is_rejected_and_the_correct_one_kept(offset_ms: int) -> None:
    misaligned = shifted(BTC[1], offset_ms)
    scripts: list[list[Action]] = [
        [
            SetClock(at(1)),
            *closes(0),
            SetClock(at(2, 1)),
            Send(misaligned, True),
            *closes(1),  # the correct final of minute 1 follows
            SetClock(at(3)),
            *closes(2),
        ]
    ]
    out, _, reports = run_rejections(scripts, 6)
    assert out == [BTC[0], ETH[0], BTC[1], ETH[1], BTC[2], ETH[2]]
    assert len(reports) == 1 and f"open_time={misaligned.open_time} rejected" in reports[0][1]
    assert "misaligned_timestamp" in reports[0][1]


def test_a_misaligned_final_kline_alone_leaves_its_minute_to_rest() -> None:
    scripts: list[list[Action]] = [
        [
            SetClock(at(1)),
            *closes(0),
            SetClock(at(2, 1)),
            Send(shifted(BTC[1], 1), True),  # no correct final follows
            Send(ETH[1], True),
            SetClock(at(3)),
            *closes(2),
        ]
    ]
    out, feed, reports = run_rejections(scripts, 6)
    assert out == [BTC[0], ETH[0], ETH[1], BTC[1], BTC[2], ETH[2]]
    assert [(b.symbol, b.since_ms, b.received) for b in feed.stats.backfills] == [
        (BTC_S, BTC[1].open_time, 1)
    ]
    assert len(reports) == 1 and "misaligned_timestamp" in reports[0][1]


def test_the_clock_skew_must_be_under_one_interval() -> None:
    with pytest.raises(ValueError, match="max_clock_skew_ms"):
        BinanceFeed("ws://127.0.0.1:1", make_exchange(), SYMBOLS, max_clock_skew_ms=MINUTE_MS)
