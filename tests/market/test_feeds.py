"""Feeds: order, pacing by the clock, time windows, resuming, replay from store and files."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.clock import ScaledClock, SimulatedClock, parse_duration_ms, parse_speed
from candlewise.core.errors import UserError
from candlewise.market.feed_factory import plan_feed
from candlewise.market.feeds import FrameReplayFeed, SimulatedFeed
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import SimulatedMarket, market_at

DAY0 = 1_735_689_600_000
NOW = DAY0 + 3 * 86_400_000 + 30 * 60_000 + 15_000  # mid-minute on purpose
SYMS = ["BTC/USDT", "ETH/USDT"]


def test_simulated_window_ends_at_now_in_symbol_order() -> None:
    plan = plan_feed(
        "simulated",
        AppConfig(),
        SYMS,
        engine=None,
        now_ms=NOW,
        duration_ms=6 * 3_600_000,
        speed=None,
    )
    candles = list(plan.feed.candles())
    assert len(candles) == 2 * 360
    assert [c.symbol for c in candles[:4]] == SYMS * 2
    times = [c.open_time for c in candles]
    assert times == sorted(times)
    assert candles[-1].close_time == NOW - 15_000  # the last closed minute before now
    assert plan.clock.now_ms() == candles[-1].close_time  # the clock followed the candles


def test_simulated_window_from_a_start_runs_on_from_it() -> None:
    """Phase 3 starts now: from start_ms's minute until end_ms, or open-ended; the seed's one
    history (the candles a window ending later holds), on a clock that reads start_ms (a paced
    feed then hands each candle over at its close by the wall clock)."""
    first = NOW - 15_000
    end = first + 30 * 60_000
    bounded = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=NOW,
                        duration_ms=None, speed=None, start_ms=NOW, end_ms=end)  # fmt: skip
    assert (bounded.start_ms, bounded.end_ms, bounded.clock.now_ms()) == (first, end, NOW)
    candles = list(bounded.feed.candles())
    assert [c.open_time for c in candles[::2]] == list(range(first, end, 60_000))
    later = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=NOW + 3_600_000,
                      duration_ms=3_600_000, speed=None)  # fmt: skip
    assert [c for c in later.feed.candles() if c.open_time >= first][: len(candles)] == candles
    endless = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=NOW,
                        duration_ms=None, speed=None, start_ms=NOW)  # fmt: skip
    assert (endless.start_ms, endless.end_ms) == (first, None)
    stream = endless.feed.candles()
    assert [next(stream).open_time for _ in range(2 * 2000)][-1] == first + 1999 * 60_000


def test_simulated_feed_matches_the_market() -> None:
    feed = SimulatedFeed(SYMS, 9, DAY0, SimulatedClock(DAY0), DAY0 + 150 * 60_000)
    got = [c for c in feed.candles() if c.symbol == "ETH/USDT"]
    expected = market_at(SYMS, 9, DAY0).generate(150)["ETH/USDT"].candles()
    assert got == expected
    assert feed.regimes == []  # kept only when asked for: a long replay would hoard them


def test_resumed_feed_continues_the_one_history_and_never_overlaps(sqlite_engine: Engine) -> None:
    from sqlalchemy import text

    from candlewise.market.ingest import CandleRecorder

    first = plan_feed("simulated", AppConfig(), SYMS, engine=sqlite_engine, now_ms=NOW,
                      duration_ms=3_600_000, speed=None, record_regimes=True)  # fmt: skip
    minutes = list(first.feed.candles())
    rec = CandleRecorder(sqlite_engine, SYMS, first.feed.source, regimes=first.feed.take_regimes)
    for c in minutes:
        rec.add(c)
    rec.flush()
    later = plan_feed("simulated", AppConfig(), SYMS, engine=sqlite_engine,
                      now_ms=NOW + 10 * 60_000, duration_ms=3_600_000, speed=None)  # fmt: skip
    more = list(later.feed.candles())
    assert len(more) == 2 * 10
    assert more[0].open_time == minutes[-1].open_time + 60_000
    whole = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=NOW + 10 * 60_000,
                      duration_ms=70 * 60_000, speed=None)  # fmt: skip
    assert minutes + more == list(whole.feed.candles())  # resumed == never interrupted
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM simulated_regimes")).scalar() == 120


def test_windows_asked_at_different_times_agree() -> None:
    early = plan_feed("simulated", AppConfig(), ["SOL/USDT"], engine=None, now_ms=NOW,
                      duration_ms=2 * 3_600_000, speed=None)  # fmt: skip
    late = plan_feed("simulated", AppConfig(), ["SOL/USDT"], engine=None,
                     now_ms=NOW + 86_400_000, duration_ms=26 * 3_600_000, speed=None)  # fmt: skip
    assert list(early.feed.candles()) == list(late.feed.candles())[:120]


def test_scaled_clock_paces_one_minute_per_second_at_speed_60() -> None:
    wall = [0.0]

    def monotonic() -> float:
        return wall[0]

    def sleep(seconds: float) -> None:
        wall[0] += seconds

    clock = ScaledClock(DAY0, 60, monotonic=monotonic, sleep=sleep)
    feed = SimulatedFeed(["BTC/USDT"], 1, DAY0, clock, DAY0 + 5 * 60_000)
    assert len(list(feed.candles())) == 5
    assert wall[0] == pytest.approx(5.0, abs=0.02)


@pytest.mark.parametrize("kind", ["simulated", "replay"])
def test_a_stop_during_the_wait_hands_on_no_candle_before_its_close(kind: str) -> None:
    """Ctrl+C 20 s into a real-time minute: the wait ends early, and the minute's candle, which
    has not closed, is never handed to the engine (it once was, 40 s before its close)."""
    wall = [0.0]

    def sleep(seconds: float) -> None:
        wall[0] += seconds

    clock = ScaledClock(DAY0, 1.0, monotonic=lambda: wall[0], sleep=sleep)
    clock.interrupt = lambda: wall[0] >= 80.0  # the stop comes at 1 min 20 s
    if kind == "simulated":
        feed = SimulatedFeed(["BTC/USDT"], 1, DAY0, clock, DAY0 + 5 * 60_000)
    else:
        frame = SimulatedMarket(["BTC/USDT"], 1, DAY0).generate(5)["BTC/USDT"].to_frame()
        feed = FrameReplayFeed({"BTC/USDT": frame.drop(columns="regime")}, ["BTC/USDT"], clock)
    handed = [(c.close_time, clock.now_ms()) for c in feed.candles()]
    assert [close for close, _ in handed] == [DAY0 + 60_000]  # only the minute that closed
    assert all(now >= close for close, now in handed)


def test_replay_from_store_and_from_files(sqlite_engine: Engine, tmp_path: Path) -> None:
    series = SimulatedMarket(SYMS, 4, DAY0).generate(120)
    for s in SYMS:
        ingest_frame(sqlite_engine, series[s].to_frame().drop(columns="regime"), s, "1m", "t")
    plan = plan_feed(
        "replay",
        AppConfig(),
        SYMS,
        engine=sqlite_engine,
        now_ms=NOW,
        duration_ms=30 * 60_000,
        speed=None,
    )
    replayed = list(plan.feed.candles())
    assert len(replayed) == 60 and replayed[0].open_time == DAY0 + 90 * 60_000
    assert [c.symbol for c in replayed[:2]] == SYMS

    path = tmp_path / "ETH_USDT-1m.csv.gz"
    with gzip.open(path, "wt") as fh:
        series["ETH/USDT"].to_frame().drop(columns="regime").to_csv(fh, index=False)
    plan = plan_feed(
        "replay",
        AppConfig(),
        ["ETH/USDT"],
        engine=None,
        now_ms=NOW,
        duration_ms=None,
        speed=None,
        files=[path],
    )
    assert list(plan.feed.candles()) == series["ETH/USDT"].candles()


def test_replay_with_nothing_stored_says_how_to_get_data(sqlite_engine: Engine) -> None:
    with pytest.raises(UserError, match="no 1m candles to replay for BTC/USDT") as info:
        plan_feed(
            "replay",
            AppConfig(),
            ["BTC/USDT"],
            engine=sqlite_engine,
            now_ms=NOW,
            duration_ms=None,
            speed=None,
        )
    assert "data import" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "ms"), [("24h", 86_400_000), ("90m", 5_400_000), ("2d", 172_800_000), ("30s", 30_000)]
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_bad_duration_and_speed() -> None:
    for bad in ("24", "h", "-1h", "1w"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration_ms(bad)
    assert parse_speed("max") is None and parse_speed("60") == 60.0
    with pytest.raises(ValueError, match="invalid speed"):
        parse_speed("fast-ish")


def test_a_real_time_simulated_feed_is_live_and_first_catches_up_what_the_store_lacks(
    sqlite_engine: Engine,
) -> None:
    from candlewise.market.ingest import CandleRecorder

    now = int(time.time() * 1000)
    minute = now - now % 60_000
    earlier = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=now - 12 * 60_000,
                        duration_ms=3_600_000, speed=None)  # fmt: skip
    recorder = CandleRecorder(sqlite_engine, SYMS, earlier.feed.source)
    for candle in earlier.feed.candles():  # a deployment that ended 12 minutes ago
        recorder.add(candle)
    recorder.flush()
    plan = plan_feed("simulated", AppConfig(), SYMS, engine=sqlite_engine, now_ms=now,
                     duration_ms=6 * 3_600_000, speed=1.0)  # fmt: skip
    assert plan.start_ms == minute - 12 * 60_000  # right after the stored candles
    assert plan.end_ms == minute + 6 * 3_600_000  # then six hours from now, live
    assert 0 <= plan.clock.now_ms() - now < 60_000  # its clock is the wall clock
    candles = plan.feed.candles()
    caught_up = [next(candles) for _ in range(2 * 12)]  # the 12 missed minutes, without waiting
    assert all(c.close_time <= plan.clock.now_ms() for c in caught_up)
    assert caught_up == list(
        plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=now, duration_ms=12 * 60_000,
                  speed=None).feed.candles()
    )  # fmt: skip  # the same history as a replay of those minutes
    fresh = plan_feed("simulated", AppConfig(), SYMS, engine=None, now_ms=now,
                      duration_ms=3_600_000, speed=1.0)  # fmt: skip
    assert (fresh.start_ms, fresh.end_ms) == (minute, minute + 3_600_000)  # nothing stored: now
