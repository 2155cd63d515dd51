"""BinanceLiveFeed: the documented global order (open time, then symbol order) and bad data.

The reorder buffer is tested alone (pure, explicit times), then the whole synchronous feed against
the real local websocket and REST servers: closes arriving in mixed order, a reconnect with REST
backfill, gap backfills that deliver one symbol ahead of the other, a hole in Binance's data, a
lagging symbol, malformed klines and REST rows.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select

from candlewise.config.app_config import AppConfig, ExchangeConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.backoff import Backoff
from candlewise.market.binance_rest import BadDataCallback, make_exchange
from candlewise.market.feed_factory import plan_feed
from candlewise.market.ingest import CandleRecorder
from candlewise.market.live_feed import BinanceLiveFeed, MinuteReorderBuffer
from candlewise.store import candle_store
from candlewise.store.tables import error_log
from tests.market.binance_servers import (
    T0,
    Action,
    BinanceRestServer,
    Drop,
    Raw,
    ScriptClock,
    Send,
    SetClock,
    Sleep,
    Stall,
    WaitUntil,
    bad_kline_message,
    in_progress,
    make_series,
    rest_row,
    ws_server_thread,
)

pytestmark = pytest.mark.timeout(60)

BTC_S, ETH_S, SOL_S = "BTC/USDT", "ETH/USDT", "SOL/USDT"
SYMBOLS = [BTC_S, ETH_S]
SERIES = make_series([BTC_S, ETH_S, SOL_S], T0, 14)
BTC, ETH, SOL = SERIES[BTC_S], SERIES[ETH_S], SERIES[SOL_S]
FAST = Backoff(initial_s=0.05, max_s=0.2, factor=2.0, jitter=0.5)
RANK = {BTC_S: 0, ETH_S: 1, SOL_S: 2}


def global_order(candles: Sequence[Candle]) -> list[Candle]:
    return sorted(candles, key=lambda c: (c.open_time, RANK[c.symbol]))


# --- the reorder buffer alone ------------------------------------------------------------------


def test_a_minute_is_released_once_every_symbol_delivered_it() -> None:
    buf = MinuteReorderBuffer([BTC_S, ETH_S, SOL_S], release_after_s=5)
    assert buf.push(SOL[0], 0.0) == []
    assert buf.push(ETH[0], 0.1) == []
    assert buf.pending == 2
    assert buf.push(BTC[0], 0.2) == [BTC[0], ETH[0], SOL[0]]
    assert buf.pending == 0 and buf.released_through == BTC[0].open_time
    assert buf.next_release_s() is None


def test_one_symbol_ahead_is_interleaved_with_the_other() -> None:
    # What BinanceFeed does after gap backfills: BTC 9, 10, then ETH 9, 10.
    buf = MinuteReorderBuffer(SYMBOLS, release_after_s=5)
    assert buf.push(BTC[9], 0) == []
    assert buf.push(BTC[10], 0) == []
    assert buf.push(ETH[9], 0) == [BTC[9], ETH[9]]
    assert buf.push(ETH[10], 0) == [BTC[10], ETH[10]]
    assert buf.stats.timed_out_minutes == 0


def test_a_later_minute_proves_a_hole_and_releases_at_once() -> None:
    buf = MinuteReorderBuffer(SYMBOLS, release_after_s=5)
    assert buf.push(BTC[1], 0) + buf.push(ETH[1], 0) == [BTC[1], ETH[1]]
    assert buf.push(ETH[2], 0) == []  # BTC 2 is a hole: never delivered
    assert buf.push(BTC[3], 0) == [ETH[2]]  # BTC 3 proves BTC 2 will not come
    assert buf.push(ETH[3], 0) == [BTC[3], ETH[3]]
    assert buf.stats.timed_out_minutes == 0


def test_a_lagging_symbol_delays_a_minute_by_release_after_s_at_most() -> None:
    buf = MinuteReorderBuffer(SYMBOLS, release_after_s=5)
    assert buf.push(BTC[5], 10.0) == []
    assert buf.next_release_s() == 15.0
    assert buf.poll(14.999) == []
    assert buf.poll(15.0) == [BTC[5]]
    assert buf.stats.timed_out_minutes == 1
    # ETH 5 turns up late: still the newest ETH, so it is emitted at once...
    assert buf.push(ETH[5], 16.0) == [ETH[5]]
    assert buf.stats.late == 1
    # ...and the next minute is complete as soon as both are there.
    assert buf.push(ETH[6], 16.5) == []
    assert buf.push(BTC[6], 16.6) == [BTC[6], ETH[6]]


def test_a_due_minute_releases_the_earlier_ones_first() -> None:
    buf = MinuteReorderBuffer([BTC_S, ETH_S, SOL_S], release_after_s=5)
    assert buf.push(ETH[6], 0.0) == []  # SOL is silent, ETH has no minute 5
    assert buf.push(BTC[5], 3.0) == []  # minute 5 first seen later than minute 6
    assert buf.next_release_s() == 5.0
    assert buf.poll(5.0) == [BTC[5], ETH[6]]  # minute 6 due: minute 5 goes out first
    assert buf.stats.timed_out_minutes == 2


def test_stale_and_repeated_candles_are_dropped() -> None:
    buf = MinuteReorderBuffer(SYMBOLS, release_after_s=5, last_open_times={BTC_S: BTC[3].open_time})
    assert buf.push(BTC[3], 0) == []  # already stored
    assert buf.push(ETH[4], 0) == []
    assert buf.push(ETH[4], 0) == []  # the same minute twice
    assert buf.push(BTC[4], 0) == [BTC[4], ETH[4]]
    assert buf.push(BTC[5], 1) == []
    assert buf.poll(6) == [BTC[5]]
    assert buf.push(BTC[5], 7) == []  # late, but BTC 5 was emitted: not the newest
    assert buf.stats.dropped == 3 and buf.stats.late == 0


def test_flush_releases_what_is_held_in_order() -> None:
    buf = MinuteReorderBuffer([BTC_S, ETH_S, SOL_S], release_after_s=5)  # SOL stays silent
    for candle in (ETH[1], ETH[2], ETH[3]):
        assert buf.push(candle, 0) == []
    assert buf.push(BTC[2], 0) == []
    assert buf.flush() == [ETH[1], BTC[2], ETH[2], ETH[3]]
    assert buf.pending == 0


@pytest.mark.parametrize("seed", range(20))
def test_any_arrival_interleaving_comes_out_in_global_order(seed: int) -> None:
    """Per-symbol ordered streams with holes, merged at random: the output is globally sorted."""
    rng = random.Random(seed)
    symbols = [BTC_S, ETH_S, SOL_S]
    streams = {
        s: [c for c in SERIES[s] if rng.random() > 0.2] for s in symbols
    }  # each symbol loses ~20% of its minutes
    queues = {s: list(cs) for s, cs in streams.items()}
    buf = MinuteReorderBuffer(symbols, release_after_s=5)
    out: list[Candle] = []
    while any(queues.values()):
        symbol = rng.choice([s for s in symbols if queues[s]])
        out += buf.push(queues[symbol].pop(0), 0.0)  # time never moves: no timeout
    held = buf.pending
    out += buf.flush()
    everything = [c for cs in streams.values() for c in cs]
    assert out == global_order(everything)
    # Only what the slowest symbol could not yet vouch for was still held at the end.
    newest_common = min(cs[-1].open_time for cs in streams.values())
    assert held == sum(c.open_time > newest_common for c in everything)
    assert buf.stats.timed_out_minutes == 0


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="release_after_s"):
        MinuteReorderBuffer(SYMBOLS, release_after_s=-1)
    with pytest.raises(ValueError, match="unexpected symbol"):
        MinuteReorderBuffer(SYMBOLS).push(SOL[0], 0)


# --- the whole feed against the local servers --------------------------------------------------


class LiveClock:
    """The shared script clock, as the engine's Clock protocol."""

    def __init__(self, clock: ScriptClock) -> None:
        self._clock = clock

    def now_ms(self) -> int:
        return self._clock()

    def sleep_until(self, moment_ms: int) -> None:
        raise AssertionError("a live feed never sleeps on the clock")


def at(m: int, seconds: float = 0.1) -> int:
    return T0 + m * MINUTE_MS + int(seconds * 1000)


def updates(m: int) -> list[Action]:
    return [Send(in_progress(c[m], step), False) for step in range(2) for c in (BTC, ETH)]


def eth_first(m: int) -> list[Action]:
    return [Send(ETH[m], True), Send(BTC[m], True)]


def btc_first(m: int) -> list[Action]:
    return [Send(BTC[m], True), Send(ETH[m], True)]


def run_live(
    scripts: list[list[Action]],
    rest: BinanceRestServer,
    clock: ScriptClock,
    out: list[tuple[Candle, float]],
    end_ms: int,
    *,
    last: dict[str, int] | None = None,
    release_after_s: float = 30.0,
    on_bad_data: BadDataCallback | None = None,
) -> BinanceLiveFeed:
    """Iterate the feed (this thread) until ``end_ms``, recording (candle, monotonic time)."""
    with ws_server_thread(scripts, clock) as ws:
        feed = BinanceLiveFeed(
            ws.url,
            make_exchange(rest.url, timeout_ms=5000),
            SYMBOLS,
            last or {},
            LiveClock(clock),
            end_ms,
            release_after_s=release_after_s,
            backoff=FAST,
            rng_seed=11,
            on_bad_data=on_bad_data,
        )
        for candle in feed.candles():
            out.append((candle, time.monotonic()))
        assert ws.script_done.is_set()
    return feed


def finish(out: list[tuple[Candle, float]], count: int, end_ms: int) -> list[Action]:
    """Once ``count`` candles came out, move the clock to ``end_ms``: the feed then ends."""
    return [WaitUntil(lambda: len(out) >= count), Sleep(0.3), SetClock(end_ms)]


def test_mixed_closes_and_backfills_after_a_reconnect_come_out_in_global_order() -> None:
    """Arrival order differs from the global order three ways; the output must not."""
    clock = ScriptClock(at(3, 10))
    out: list[tuple[Candle, float]] = []
    end = at(12, 30)
    with BinanceRestServer(SERIES, clock) as rest:
        first: list[Action] = [
            WaitUntil(
                lambda: rest.klines_count() >= 2
            ),  # the connect backfill: ETH 1, BTC 2, ETH 2
            SetClock(at(3, 20)),
            *updates(3),
            SetClock(at(4)),
            *eth_first(3),  # ETH closes first
            *updates(4),
            SetClock(at(5)),
            *eth_first(4),
            *updates(5),
            SetClock(at(7, 5)),  # connection lost for minutes 5 and 6
            Drop(),
        ]
        second: list[Action] = [
            WaitUntil(lambda: rest.klines_count() >= 4),  # reconnect backfill of 5 and 6
            *btc_first(6),  # duplicates of the backfill
            SetClock(at(8)),
            *eth_first(7),
            SetClock(at(9)),
            *btc_first(8),
            *updates(9),  # minute 9 never closes on the websocket
            SetClock(at(11)),
            # ETH 10 first: the feed backfills ETH 9 and emits ETH 9, ETH 10 before BTC 9.
            *eth_first(10),
            SetClock(at(12)),
            *btc_first(11),
            *finish(out, 21, end),
        ]
        feed = run_live(
            [first, second],
            rest,
            clock,
            out,
            end,
            last={BTC_S: BTC[1].open_time, ETH_S: ETH[0].open_time},
        )

    candles = [c for c, _ in out]
    expected = [ETH[1]] + [c for m in range(2, 12) for c in (BTC[m], ETH[m])]
    assert candles == expected == global_order(expected)
    # Released because every symbol had delivered, never by the 30 s bound.
    assert feed.reorder is not None
    assert feed.reorder.stats.timed_out_minutes == 0 and feed.reorder.stats.late == 0
    # The asyncio feed really did deliver out of global order (gap backfills of minute 9).
    assert feed.feed is not None
    assert [(b.symbol, b.since_ms, b.reason) for b in feed.feed.stats.backfills][-2:] == [
        (ETH_S, ETH[9].open_time, "gap"),
        (BTC_S, BTC[9].open_time, "gap"),
    ]
    assert feed.feed.stats.connects == 2 and feed.feed.stats.duplicates_dropped == 2


def test_a_lagging_symbol_holds_a_minute_for_release_after_s_only() -> None:
    clock = ScriptClock(at(0, 30))
    out: list[tuple[Candle, float]] = []
    end = at(4)
    script: list[Action] = [
        *updates(0),
        SetClock(at(1)),
        *btc_first(0),
        SetClock(at(2)),
        Send(BTC[1], True),  # ETH 1 does not close on the websocket...
        Sleep(1.5),  # ...and ETH stays silent for longer than release_after_s
        SetClock(at(3)),
        Send(ETH[2], True),  # ETH 1 is backfilled over REST: late, emitted at once
        Send(BTC[2], True),
        *finish(out, 6, end),
    ]
    with BinanceRestServer(SERIES, clock) as rest:
        feed = run_live([script], rest, clock, out, end, release_after_s=0.4)

    candles = [c for c, _ in out]
    assert candles == [BTC[0], ETH[0], BTC[1], ETH[1], BTC[2], ETH[2]]
    times = {c: t for c, t in out}
    assert times[BTC[1]] - times[ETH[0]] >= 0.4  # BTC 1 waited for ETH...
    assert times[ETH[1]] - times[BTC[1]] >= 0.5  # ...then went out without it
    assert feed.reorder is not None
    assert feed.reorder.stats.timed_out_minutes == 1 and feed.reorder.stats.late == 1


def test_a_hole_in_binance_data_releases_the_minute_without_waiting() -> None:
    clock = ScriptClock(at(0, 30))
    out: list[tuple[Candle, float]] = []
    end = at(5)
    rest_series = {BTC_S: [c for c in BTC if c.open_time != BTC[2].open_time], ETH_S: ETH}
    script: list[Action] = [
        SetClock(at(1)),
        *btc_first(0),
        SetClock(at(2)),
        *eth_first(1),
        SetClock(at(3)),
        Send(ETH[2], True),  # BTC 2 does not exist, on the websocket or over REST
        SetClock(at(4)),
        *btc_first(3),
        *finish(out, 7, end),
    ]
    with BinanceRestServer(rest_series, clock) as rest:
        feed = run_live([script], rest, clock, out, end, release_after_s=30.0)
    assert [c for c, _ in out] == [BTC[0], ETH[0], BTC[1], ETH[1], ETH[2], BTC[3], ETH[3]]
    assert feed.reorder is not None and feed.reorder.stats.timed_out_minutes == 0
    assert feed.feed is not None and feed.feed.stats.unfilled_gaps == 1
    # no minute waited for the 30 s bound (timed_out_minutes == 0): BTC 3 proved the hole


def test_bad_data_is_reported_in_the_consumer_thread_and_skipped() -> None:
    clock = ScriptClock(at(3, 10))
    out: list[tuple[Candle, float]] = []
    end = at(5, 30)
    good = rest_row(BTC[1])
    bad_rows = {BTC_S: {BTC[1].open_time: [BTC[1].open_time, None, *good[2:]]}}
    reports: list[tuple[str | None, str, int]] = []

    def on_bad_data(symbol: str | None, detail: str) -> None:
        reports.append((symbol, detail, threading.get_ident()))

    with BinanceRestServer(SERIES, clock, bad_rows=bad_rows) as rest:
        script: list[Action] = [
            WaitUntil(lambda: rest.klines_count() >= 1),  # BTC 1 (bad row) and 2 over REST
            Raw("garbage"),
            *updates(3),
            SetClock(at(4)),
            Raw(bad_kline_message(ETH[3], v="NaN")),
            Send(BTC[3], True),
            SetClock(at(5)),
            *btc_first(4),
            *finish(out, 4, end),
        ]
        run_live(
            [script],
            rest,
            clock,
            out,
            end,
            last={BTC_S: BTC[0].open_time},
            on_bad_data=on_bad_data,
        )

    # The good series: BTC 1 (bad row) and ETH 3 (bad kline; ETH had no history) are missing.
    assert [c for c, _ in out] == [BTC[2], BTC[3], BTC[4], ETH[4]]
    assert sorted((s or "", d.split(":")[0]) for s, d, _ in reports) == [
        ("", "websocket"),
        (BTC_S, "REST kline 1m at 1700000100000"),
        (ETH_S, "websocket"),
    ]
    assert {ident for _, _, ident in reports} == {threading.get_ident()}


# --- bad finals, end to end into the store -----------------------------------------------------


def test_bad_finals_leave_no_hole_in_the_store_and_one_error_row_each(
    sqlite_engine: Engine,
) -> None:
    """The wall clock, the feed plan, the recorder and the store, as ``data stream`` runs them.

    The store holds what a feed stored before it checked the clock: a BTC minute and an hour
    stamped two hours ahead. They are removed at start (one error row per series), else the feed
    would resume after them and record nothing for two hours. On the wire: a final with a zero
    price, a misaligned final followed by the correct one, a final two hours ahead, garbage, and
    ETH's first final with high < low. Every minute is stored exactly once, with its REST value.
    """
    now = int(time.time() * 1000)
    start = now - now % MINUTE_MS - 10 * MINUTE_MS  # minutes 0..9 have closed, 10 is forming
    series = make_series(SYMBOLS, start, 13)
    btc, eth = series[BTC_S], series[ETH_S]
    hours_ahead = 2 * 60 * MINUTE_MS
    future_minute = replace(btc[3], open_time=btc[3].open_time + hours_ahead)
    hour = start + hours_ahead - (start + hours_ahead) % (60 * MINUTE_MS)
    future_hour = replace(btc[3], timeframe="1h", open_time=hour)
    with sqlite_engine.begin() as conn:
        candle_store.insert_candles(conn, [future_minute, future_hour], "binance")
    script: list[Action] = [
        Send(btc[4], True),
        Raw(bad_kline_message(btc[5], o="0")),  # rejected: BTC 5 comes over REST
        Send(btc[6], True),
        Send(replace(btc[7], open_time=btc[7].open_time + 1), True),  # misaligned
        Send(btc[7], True),
        Raw("garbage"),
        Send(replace(btc[8], open_time=btc[8].open_time + hours_ahead), True),  # the future
        Raw(bad_kline_message(eth[8], h="1.0")),  # ETH's first final: high < low
        Send(btc[8], True),
        Send(btc[9], True),
        Send(eth[9], True),  # ETH 8 comes over REST first
        Stall(),
    ]
    cfg = AppConfig()
    emitted: list[Candle] = []
    with (
        BinanceRestServer(series, lambda: int(time.time() * 1000)) as rest,
        ws_server_thread([script], ScriptClock(now)) as ws,
    ):
        cfg = cfg.model_copy(update={"exchange": ExchangeConfig(rest_url=rest.url, ws_url=ws.url)})
        plan = plan_feed(
            "binance",
            cfg,
            SYMBOLS,
            engine=sqlite_engine,
            now_ms=now,
            duration_ms=50_000,  # a bound: the run ends once the 8 candles are out
            speed=None,
        )
        plan.clock.interrupt = lambda: len(emitted) >= 8  # type: ignore[attr-defined]
        recorder = CandleRecorder(sqlite_engine, SYMBOLS, "binance")
        assert recorder.resume_from_store() == {}  # nothing real stored: start live
        for candle in plan.feed.candles():
            emitted.append(candle)
            recorder.add(candle)
        recorder.flush()

    expected = [*btc[4:10], eth[8], eth[9]]
    assert sorted(emitted, key=lambda c: (c.symbol, c.open_time)) == expected
    with sqlite_engine.connect() as conn:
        for symbol, want in ((BTC_S, btc[4:10]), (ETH_S, eth[8:10])):
            frame = candle_store.load_frame(conn, symbol, "1m")
            got = [tuple(r) for r in frame.itertuples(index=False)]
            assert got == [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in want]
        assert candle_store.last_open_time(conn, BTC_S, "1h") is None  # the future hour is gone
        errors = conn.execute(
            select(error_log.c.error_type, error_log.c.symbol, error_log.c.message).order_by(
                error_log.c.id
            )
        ).all()
    removed = [m for t, _, m in errors if t == "future_candle_removed"]
    assert len(removed) == 2
    assert "1m candle(s)" in removed[0] and "1h candle(s)" in removed[1]
    # One row per bad message (garbage is reported on receipt, rejections when handled: the
    # order between the two may vary).
    bad = sorted((s or "", m.split("rejected: ")[-1].split(":")[0]) for t, s, m in errors[2:])
    assert [t for t, _, _ in errors] == ["future_candle_removed"] * 2 + ["bad_market_data"] * 5
    assert bad == [
        ("", "websocket"),
        (BTC_S, "misaligned_timestamp"),
        (BTC_S, "non_positive_price"),
        (BTC_S, "not_closed"),
        (ETH_S, "high_below_low"),
    ]
    gaps = [(r.symbol, r.start_ms) for r in rest.klines]
    assert gaps == [(BTC_S, btc[5].open_time), (ETH_S, eth[8].open_time)]  # the REST values
