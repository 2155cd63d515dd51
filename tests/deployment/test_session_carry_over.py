"""A phase 3 deployment carries phase 1's account on (cash, open positions, drawdown peak,
models in service) and adds the other symbols beside it, from now; real objects on a small
simulated store: two symbols, two timeframes, a real simulated phase 1 of three hours."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from candlewise.app.bootstrap import bootstrap
from candlewise.cli.main import run
from candlewise.config.app_config import AppConfig
from candlewise.config.loader import load_config
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.session import Deployment, DeploymentRequest
from candlewise.store import trade_store
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.run_store import FINISHED, RUNNING, find_run
from candlewise.training.first_training import calibrate_signals, train_one

pytestmark = pytest.mark.slow  # a real phase 1 and phase 3 in process (~40 s)

BTC, ETH = "BTC/USDT", "ETH/USDT"
HOUR = 60 * MINUTE_MS
CONFIG = """\
symbols: [BTC/USDT, ETH/USDT]
continuous_learning:
  confidence: {{trading_threshold: 0.51, hysteresis: 0.005}}
  retraining: {{max_epochs: 2}}
risk: {{daily_loss_limit: 0.5, max_drawdown_percent: 90.0}}
timeframes:
  intervals:
    - {{interval: 1m, weight: 0.5}}
    - {{interval: 5m, weight: 0.5}}
models: {{max_samples: 300}}
database: {{url: "sqlite:///{root}/data/trading.db"}}
paths: {{models_dir: {root}/models, logs_dir: {root}/logs}}
"""


@dataclass
class Phase1:
    cfg: AppConfig
    store: Engine
    deployment: Deployment
    """Phase 1 after its run: its engine holds the account as it ended."""


@pytest.fixture(scope="module")
def phase1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phase1]:
    root = tmp_path_factory.mktemp("carry_over")
    config = root / "config.yaml"
    config.write_text(CONFIG.format(root=root.as_posix()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        args = ["data", "simulate", "--symbols", f"{BTC},{ETH}", "--days", "1"]
        assert run([*args, "--config", str(config)]) == 0
    cfg = load_config(config)
    store = open_store(cfg.database.url)
    registry = ModelRegistry(store, cfg.paths.models_dir, cfg.models.keep_versions)
    now = int(time.time() * 1000)
    for symbol in (BTC, ETH):  # as --train-missing does: on what precedes phase 1's window
        for tf in cfg.timeframes.names:
            assert train_one(store, registry, cfg, symbol, tf, known_at_ms=now - 3 * HOUR).ok
        calibrate_signals(store, cfg, symbol, known_at_ms=now - 3 * HOUR)
    request = DeploymentRequest(1, (BTC,), "simulated", 3 * HOUR, None)
    deployment = Deployment.prepare(bootstrap(cfg, store=store), request, now_ms=now)
    assert deployment.run().status == "completed"
    yield Phase1(cfg, store, deployment)
    store.dispose()


def test_phase3_continues_phase1s_account_and_adds_the_others_from_now(phase1: Phase1) -> None:
    cfg, store, p1 = phase1.cfg, phase1.store, phase1.deployment
    ended = p1.engine.broker
    held = {(p.id, p.symbol, p.timeframe) for p in ended.book}
    assert held, "phase 1 ended flat: no position to carry"  # it trades from 51 %: rare
    now = int(time.time() * 1000) + 90_000  # a little later than phase 1's end
    request = DeploymentRequest(
        3, (BTC, ETH), "simulated", 2 * HOUR, None, from_now=True, continues=(BTC,)
    )
    p3 = Deployment.prepare(bootstrap(cfg, store=store), request, now_ms=now)

    assert p3.carried == {BTC: 1}
    account = p3.engine.broker
    assert account.cash == ended.cash != cfg.paper.starting_balance
    assert {(p.id, p.symbol, p.timeframe) for p in account.book} == held
    assert p3.engine.drawdown.peak == p1.engine.drawdown.peak
    for tf in cfg.timeframes.names:  # phase 1's models stay in service, ETH's are the active
        carried = p3.engine.predictor.model_slot(BTC, tf)
        assert carried is not None
        assert carried.version == p1.engine.predictor.model_slot(BTC, tf).version  # type: ignore[union-attr]
        assert p3.engine.predictor.model_slot(ETH, tf) is not None
    start = now - now % MINUTE_MS
    assert (p3.started_ms, p3.plan.end_ms) == (start, start + 2 * HOUR)
    with store.connect() as conn:
        phase1_run = find_run(conn, "deployment", {"symbols": [BTC]})
        assert phase1_run is not None and phase1_run.status == FINISHED  # no second BTC account

    outcome = p3.run()
    assert outcome.status == "completed" and outcome.start_ms == p3.started_ms
    with store.connect() as conn:
        still_open = {p.id for p in trade_store.open_positions(conn)}
        own = find_run(conn, "deployment", {"symbols": [BTC, ETH]})
        eth_first = conn.exec_driver_sql(
            "SELECT MIN(timestamp) FROM confidence_history WHERE symbol = ?", (ETH,)
        ).scalar()
    assert not {pid for pid, _, _ in held} & still_open  # the carried positions were exited
    assert own is not None and own.status == RUNNING  # phase 3's account, continuable
    # ETH (never in phase 1) decides from phase 3's first minutes on: it starts now (signals
    # are stamped at their close; a prediction at its bar's open, which can precede the start)
    assert ms_to_text(outcome.start_ms) <= eth_first <= ms_to_text(outcome.start_ms + 5 * MINUTE_MS)
