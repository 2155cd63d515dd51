"""The engine's persistence port: the engine runs on an in-memory port without a single SQL
statement, saves where a run must be durable (before a retrain, after one is applied), and a
``candlewise retrain`` request reaches it through the runner's minute hook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

from candlewise.config.app_config import AppConfig
from candlewise.core.clock import SimulatedClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.runner import EngineRunner, manual_retrains
from candlewise.engine.setup import new_engine
from candlewise.engine.trading_engine import TradingEngine
from candlewise.learning.retrain_policy import RetrainJob
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.feeds import SimulatedFeed
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.outbox import Outbox
from candlewise.store.retrain_requests import request_retrain
from candlewise.store.run_store import create_run
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training.retrain_worker import RetrainOutcome

DAY0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
MINUTES = 20


class MemoryPersistence:
    """The port in memory: what each save held, table by table, and requests to hand out."""

    def __init__(self, requests: Sequence[tuple[str, str]] = ()) -> None:
        self.saves: list[dict[str, int]] = []
        self.requests = list(requests)

    def save(self, outbox: Outbox) -> None:
        self.saves.append({t.name: len(rows) for t, rows in outbox.rows.items() if rows})
        outbox.clear()

    def take_retrain_requests(
        self, symbols: Sequence[str], run_id: int | None
    ) -> list[tuple[str, str]]:
        taken = [r for r in self.requests if r[0] in symbols]
        self.requests = [r for r in self.requests if r not in taken]
        return taken


class FailingRetrainer:
    """Every retrain fails at once (no candles to train on): the champion stays."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, int]] = []
        self.done: list[RetrainOutcome] = []

    @property
    def busy(self) -> bool:
        return False

    def submit(self, job: RetrainJob, now_ms: int, champion: ModelSlot | None) -> None:
        self.submitted.append((job.model, now_ms))
        self.done.append(RetrainOutcome(job, now_ms, None, "no candles here", None, 0.0))

    def poll(self) -> list[RetrainOutcome]:
        out, self.done = self.done, []
        return out

    def close(self) -> list[RetrainJob]:
        return []


def _candles(minutes: int) -> list:  # type: ignore[type-arg]
    end = DAY0 + minutes * MINUTE_MS
    return list(SimulatedFeed(SYMBOLS, 3, DAY0, SimulatedClock(DAY0), end).candles())


def test_the_engine_runs_on_an_in_memory_port_and_never_touches_sql(tmp_path: Path) -> None:
    unused = create_engine("sqlite://")  # the registry's store: nothing may connect to it
    connections: list[object] = []
    event.listen(unused, "connect", lambda *args: connections.append(args))
    cfg = AppConfig()
    persistence = MemoryPersistence([("BTC/USDT", "15m")])
    retrainer = FailingRetrainer()
    engine = TradingEngine(
        cfg, persistence, ModelRegistry(unused, tmp_path / "models"),
        LivePredictor({"1m": 1.0}, {}), PaperBroker(cfg.paper, cfg.risk), retrainer=retrainer,
    )  # fmt: skip
    aggregators = {s: TimeframeAggregator(s) for s in SYMBOLS}
    requested_at = DAY0 + 10 * MINUTE_MS
    for candle in _candles(MINUTES):
        engine.on_candles([candle, *aggregators[candle.symbol].add(candle)])
        if candle.symbol == SYMBOLS[-1]:
            engine.end_minute(candle.close_time)
            if candle.close_time == requested_at:
                assert manual_retrains(engine, ["BTC/USDT"], candle.close_time) == 1

    assert connections == []
    assert engine.stats.candles == MINUTES * len(SYMBOLS)
    assert retrainer.submitted == [("BTC/USDT_15m", requested_at + MINUTE_MS)]
    # saved before the retrain (the minute's rows) and after its outcome (its history row)
    assert len(persistence.saves) == 2
    assert persistence.saves[1] == {"retraining_history": 1}
    assert engine.stats.retrains == {"manual": 1}


def _runner(
    store: Engine, tmp_path: Path, retrainer: FailingRetrainer
) -> tuple[EngineRunner, TradingEngine]:
    cfg = AppConfig()
    with store.begin() as conn:
        run_id = create_run(conn, "deployment", {"symbols": SYMBOLS})
    engine = new_engine(
        cfg, store, ModelRegistry(store, tmp_path / "models"), LivePredictor({"1m": 1.0}, {}),
        PaperBroker(cfg.paper, cfg.risk), retraining=False, run_id=run_id, retrainer=retrainer,
    )  # fmt: skip
    snapshot = {"aggregators": {s: TimeframeAggregator(s) for s in SYMBOLS}}
    runner = EngineRunner(
        engine, store, run_id, snapshot, candle_source=None, read_ahead=False,
        on_minute=lambda now: manual_retrains(engine, SYMBOLS, now),
    )  # fmt: skip
    return runner, engine


def test_a_manual_retrain_request_arrives_through_the_runners_minute_hook(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with sqlite_engine.begin() as conn:
        request_retrain(conn, "ETH/USDT", "1h")
    retrainer = FailingRetrainer()
    runner, engine = _runner(sqlite_engine, tmp_path, retrainer)

    last = runner.run(_candles(5), DAY0)

    assert last == DAY0 + 5 * MINUTE_MS
    # taken at the first minute's end, retrained at the next one's
    assert retrainer.submitted == [("ETH/USDT_1h", DAY0 + 2 * MINUTE_MS)]
    with sqlite_engine.connect() as conn:
        taken = conn.execute(text("SELECT status, run_id FROM retrain_requests")).all()
        history = conn.execute(
            text("SELECT symbol, timeframe, trigger_reason, success FROM retraining_history")
        ).all()
        cursor = conn.execute(
            text("SELECT cursor_ms FROM engine_runs WHERE id = :id"), {"id": engine.run_id}
        ).scalar_one()
    assert taken == [("taken", engine.run_id)]
    assert history == [("ETH/USDT", "1h", "manual", 0)]  # written by the runner's checkpoint
    assert cursor >= DAY0 + 2 * MINUTE_MS  # checkpointed at the retrain's steps (or later)
