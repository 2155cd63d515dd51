"""A paced feed keeps up with its clock: each minute ends as soon as every symbol's candle of it
is in (not a minute later, with the next candle), and after a stall the run catches up. Timed
on a scaled clock over fake time: nothing sleeps for real."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.clock import ScaledClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.deployment.progress import StatusLine
from candlewise.engine.runner import EngineRunner
from candlewise.engine.setup import new_engine
from candlewise.engine.trading_engine import TradingEngine
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.feeds import SimulatedFeed
from candlewise.signals.live import LivePredictor
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.run_store import create_run
from candlewise.trading.paper_broker import PaperBroker

DAY0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


class FakeTime:
    """``monotonic`` and ``sleep`` for a ScaledClock: time passes only when someone waits
    (or the test says a stall took it)."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _runner(store: Engine, tmp_path: Path, on_minute) -> tuple[EngineRunner, TradingEngine]:  # type: ignore[no-untyped-def]
    cfg = AppConfig()
    engine = new_engine(
        cfg, store, ModelRegistry(store, tmp_path / "models"),
        LivePredictor({"1m": 1.0}, {}), PaperBroker(cfg.paper, cfg.risk), retraining=False,
    )  # fmt: skip
    with store.begin() as conn:
        run_id = create_run(conn, "deployment", {"symbols": SYMBOLS})
    snapshot = {"aggregators": {s: TimeframeAggregator(s) for s in SYMBOLS}}
    runner = EngineRunner(engine, store, run_id, snapshot, candle_source=None, read_ahead=False,
                          on_minute=on_minute)  # fmt: skip
    return runner, engine


def test_a_real_time_feed_ends_each_minute_on_time_and_catches_up_after_a_stall(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    fake = FakeTime()
    clock = ScaledClock(DAY0, 1.0, monotonic=fake.monotonic, sleep=fake.sleep)
    feed = SimulatedFeed(SYMBOLS, 3, DAY0, clock, DAY0 + 30 * MINUTE_MS)
    lag_ms: dict[int, int] = {}
    stall_at = DAY0 + 10 * MINUTE_MS

    def on_minute(now: int) -> None:
        lag_ms[(now - DAY0) // MINUTE_MS] = clock.now_ms() - now
        if now == stall_at:
            fake.t += 300  # five minutes lost at this minute's end (a slow store, a long task)

    runner, _ = _runner(sqlite_engine, tmp_path, on_minute)
    assert runner.run(feed.candles(), DAY0) == DAY0 + 30 * MINUTE_MS
    assert sorted(lag_ms) == list(range(1, 31))
    behind = {m: lag_ms[m] for m in range(11, 15)}
    # the four minutes that closed during the stall are handled at once, then it is on time
    assert behind == {11: 240_000, 12: 180_000, 13: 120_000, 14: 60_000}
    assert all(0 <= lag_ms[m] < 1000 for m in lag_ms if m not in behind), lag_ms


def test_the_status_line_every_five_real_time_minutes_with_lag_trades_pnl_and_modes(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    fake = FakeTime()
    clock = ScaledClock(DAY0, 1.0, monotonic=fake.monotonic, sleep=fake.sleep)
    feed = SimulatedFeed(SYMBOLS, 3, DAY0, clock, DAY0 + 12 * MINUTE_MS)
    lines: list[str] = []
    hooks = []
    runner, engine = _runner(sqlite_engine, tmp_path, lambda now: [h(now) for h in hooks])
    status = StatusLine(engine, SYMBOLS, DAY0, 1.0, clock.now_ms, lines.append)
    hooks.append(status.on_minute)
    runner.run(feed.candles(), DAY0)
    assert lines == [
        f"Status: candle time 2025-01-01 00:{m:02d}:00 UTC (lag 0.0s) | 0 trades | P&L $0.00 | "
        "BTC/USDT LEARNING, ETH/USDT LEARNING"
        for m in (5, 10)
    ]
