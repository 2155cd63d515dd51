"""The real engine with its retrains in a background worker: the event loop never waits for one.

A real SQLite file holds a short simulated history and the first models; the engine is driven one
minute at a time as a live feed would (candles into the outbox, ``on_candles``, ``end_minute``)
and an operator asks for a retrain of BTC/USDT 1m at minute ``K``. With a ``ProcessRetrainer``
the minutes keep being handled while the worker trains and the outcome is applied at a later
minute; with the ``InlineRetrainer`` it is applied in minute ``K`` itself. Either way the
``retraining_history`` row, the ``model_registry`` and the model the predictor serves agree.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from candlewise.backtest.history import simulate_history
from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.clock import SimulatedClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import text_to_ms
from candlewise.engine.setup import build_predictor as _predictor
from candlewise.engine.setup import new_engine
from candlewise.engine.setup import warm_up as _warm_up
from candlewise.engine.trading_engine import TradingEngine
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.feeds import SimulatedFeed, simulated_source
from candlewise.market.simulated import HISTORY_ORIGIN_MS
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training.first_training import train_symbol
from candlewise.training.retrain_worker import InlineRetrainer, ProcessRetrainer, Retrainer

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

SYMBOL = "BTC/USDT"
TF = "1m"
SEED = 2
WARMUP_DAYS = 12
START = HISTORY_ORIGIN_MS + WARMUP_DAYS * 1440 * MINUTE_MS
#: Minute (index in the window) whose close the operator asks for the retrain at.
K = 40
#: Minutes simulated for the window; the process test stops as soon as the outcome is applied.
WINDOW_MINUTES = 2000
#: Small and quick: 1,000 rows, at most 5 epochs; only the timeframes the test needs.
CFG = AppConfig(
    symbols=(SYMBOL,),
    timeframes={
        "intervals": [
            {"interval": "1m", "weight": 0.2},
            {"interval": "5m", "weight": 0.3},
            {"interval": "15m", "weight": 0.5},
        ]
    },
    models={"max_samples": 1000},
    continuous_learning={"retraining": {"max_epochs": 5}},
)
#: Wall time between two minutes of the process run (a paced feed, not a busy loop).
PACE_S = 0.005
MAX_WAIT_S = 90.0


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []


@dataclass
class Scenario:
    store: Engine
    registry: ModelRegistry
    engine: TradingEngine
    candles: list[Candle]
    aggregator: TimeframeAggregator

    def minute(self, i: int, retrain: bool = False) -> None:
        """Hand minute ``i`` of the window to the engine as the live loop does.

        ``retrain``: the operator asks for a retrain of BTC/USDT 1m during this minute.
        """
        candle = self.candles[i]
        closed = [candle, *self.aggregator.add(candle)]
        self.engine.outbox.candles(closed, simulated_source(SEED))
        self.engine.on_candles(closed)
        if retrain:
            self.engine.policy.request_manual(SYMBOL, TF, candle.close_time)
        self.engine.end_minute(candle.close_time)


def build(root: Path, make: Callable[[Engine, ModelRegistry, AppConfig], Retrainer]) -> Scenario:
    """History, first models (v1 of each timeframe) and the engine, in a SQLite file."""
    store = open_store(f"sqlite:///{root / 'trading.db'}")
    registry = ModelRegistry(store, root / "models", CFG.models.keep_versions)
    # The worker starts (imports torch: seconds) while the history is simulated and trained on.
    worker = make(store, registry, CFG)
    try:
        simulate_history(store, [SYMBOL], SEED, START, simulated_source(SEED), None)
        outcomes = train_symbol(
            store, registry, CFG, SYMBOL, CFG.timeframes.names, known_at_ms=START
        )
        assert [(o.timeframe, o.version) for o in outcomes] == [("1m", 1), ("5m", 1), ("15m", 1)]
        predictor = _predictor(CFG, registry, str(root / "models"), [SYMBOL])
        _warm_up(predictor, store, [SYMBOL], START)
        broker = PaperBroker(CFG.paper, CFG.risk, "paper")
        # Automatic retraining off, manual retrains only: the automatic triggers (low_confidence
        # after 10 LEARNING signals, drift, losses) would start retrains of their own and blur
        # what is measured; a manual request must still run.
        engine = new_engine(
            CFG, store, registry, predictor, broker, retrainer=worker, retraining=False
        )
        end = START + WINDOW_MINUTES * MINUTE_MS
        candles = list(SimulatedFeed([SYMBOL], SEED, START, SimulatedClock(START), end).candles())
    except BaseException:
        worker.close()
        store.dispose()
        raise
    return Scenario(store, registry, engine, candles, TimeframeAggregator(SYMBOL, ("5m", "15m")))


def retrain_rows(store: Engine) -> list[dict[str, object]]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT * FROM retraining_history ORDER BY id")).mappings()
        return [dict(r) for r in rows]


def registry_rows(store: Engine) -> dict[int, dict[str, object]]:
    """BTC/USDT 1m's versions in ``model_registry``."""
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM model_registry WHERE symbol = :s AND timeframe = :t"),
            {"s": SYMBOL, "t": TF},
        ).mappings()
        return {int(r["version"]): dict(r) for r in rows}


def prediction_versions(store: Engine) -> list[tuple[int, int | None]]:
    """(time, model_version) of every BTC/USDT 1m prediction stored, oldest first."""
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT timestamp, model_version FROM timeframe_predictions "
                "WHERE symbol = :s AND timeframe = :t ORDER BY timestamp"
            ),
            {"s": SYMBOL, "t": TF},
        ).all()
    return [(text_to_ms(t), v) for t, v in rows]


def check_applied(s: Scenario, triggered_at: int) -> dict[str, object]:
    """One retraining_history row, consistent with the registry and the model in service."""
    s.engine.flush()
    [row] = retrain_rows(s.store)
    versions = registry_rows(s.store)
    assert row["symbol"] == SYMBOL and row["timeframe"] == TF
    assert row["trigger_reason"] == "manual"
    assert text_to_ms(str(row["triggered_at"])) == triggered_at
    assert row["old_version"] == 1 and row["rejected_reason"] is None
    # Seeded data: this challenger beats v1. Asserted, so the swap path is what is tested.
    assert row["success"] == 1, row["rejected_reason"]
    new = row["new_version"]
    assert new == 2 and set(versions) == {1, 2}
    assert versions[2]["active"] == 1 and versions[1]["active"] == 0
    assert row["val_accuracy"] == pytest.approx(versions[2]["val_accuracy"])
    assert row["validation_confidence"] == pytest.approx(versions[2]["val_confidence"])
    slot = s.engine.predictor.model_slot(SYMBOL, TF)
    assert slot is not None and slot.version == new
    assert s.engine.stats.retrains_accepted == 1 and not s.engine.policy.running()
    completed = text_to_ms(str(row["completed_at"]))
    seen = prediction_versions(s.store)
    assert {v for t, v in seen if t <= completed} == {1}  # the swap happens in end_minute
    assert {v for t, v in seen if t > completed} == {2}
    assert any(t > completed for t, _ in seen)
    return row


def test_a_background_retrain_is_applied_minutes_later_and_never_stops_the_loop(
    tmp_path: Path,
) -> None:
    s = build(tmp_path, ProcessRetrainer)
    worker = s.engine.retrainer
    assert isinstance(worker, ProcessRetrainer)
    try:
        assert worker.wait_ready(60)
        for i in range(K):
            s.minute(i)
        s.minute(K, retrain=True)
        triggered_at = s.candles[K].close_time
        assert s.engine.policy.running() and worker.busy  # submitted, not finished: no wait
        assert retrain_rows(s.store) == []
        still_running = 0  # minutes handled that returned with the retrain still in flight
        deadline = time.monotonic() + MAX_WAIT_S
        i = K + 1
        while s.engine.policy.running():
            assert time.monotonic() < deadline, f"no outcome after {MAX_WAIT_S} s"
            assert i < len(s.candles), "the window ended before the outcome arrived"
            time.sleep(PACE_S)
            s.minute(i)
            still_running += bool(s.engine.policy.running())
            i += 1
        applied_at = s.candles[i - 1].close_time
        for j in range(i, i + 3):  # a few minutes with the new model
            s.minute(j)
        row = check_applied(s, triggered_at)
        assert text_to_ms(str(row["completed_at"])) == applied_at > triggered_at
        # The retrain (~40 ms here) spans several paced minutes (~6 ms each); each returned.
        assert still_running >= 2 and not worker.busy
        assert isinstance(row["duration_s"], float) and row["duration_s"] > 0
    finally:
        worker.close()
        s.store.dispose()
    assert worker.worker_pid is None


def test_an_inline_retrain_is_applied_in_the_minute_it_was_asked_for(tmp_path: Path) -> None:
    s = build(tmp_path, InlineRetrainer)
    try:
        for i in range(K):
            s.minute(i)
        s.minute(K, retrain=True)
        triggered_at = s.candles[K].close_time
        assert not s.engine.policy.running()  # done inside end_minute
        for j in range(K + 1, K + 4):
            s.minute(j)
        row = check_applied(s, triggered_at)
        assert text_to_ms(str(row["completed_at"])) == triggered_at
    finally:
        s.store.dispose()
