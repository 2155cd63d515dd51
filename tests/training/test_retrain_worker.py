"""Retraining off the event loop: the worker process agrees with inline retraining, reports every
failure as an outcome, survives Ctrl-C, replaces itself after dying and shuts down fast."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine, create_engine

from candlewise.config.app_config import AppConfig
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.retrain_policy import RetrainJob, RetrainReason
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import market_at
from candlewise.signals.live import ModelSlot
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.first_training import train_one
from candlewise.training.retrain_worker import (
    InlineRetrainer,
    ProcessRetrainer,
    Retrainer,
    RetrainOutcome,
)

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

SYMBOL = "BTC/USDT"
DAY0 = 1_735_689_600_000
MINUTE = 60_000
NOW = DAY0 + 2880 * MINUTE
#: Small and quick: 1,000 rows, 5 epochs (a retrain takes ~50 ms once the worker is warm).
CFG = AppConfig(models={"max_samples": 1000}, continuous_learning={"retraining": {"max_epochs": 5}})


@dataclass(frozen=True)
class Market:
    store: Engine
    registry: ModelRegistry
    champion: ModelSlot
    """v1, trained on the first 1,500 minutes: the model in service when the jobs run."""


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """Two simulated days of BTC/USDT 1m candles in a SQLite file, and a first model."""
    root = tmp_path_factory.mktemp("retrain_worker")
    store = open_store(f"sqlite:///{root / 'trading.db'}")
    series = market_at([SYMBOL], 3, DAY0).generate(2880)[SYMBOL]
    frame = series.to_frame().drop(columns="regime")
    ingest_frame(store, frame, SYMBOL, "1m", "sim", derive_higher=False)
    registry = ModelRegistry(store, root / "models")
    first = train_one(store, registry, CFG, SYMBOL, "1m", known_at_ms=DAY0 + 1500 * MINUTE)
    loaded = registry.load_active(SYMBOL, "1m", FEATURE_SPEC.fingerprint)
    assert first.version == 1 and loaded is not None
    yield Market(store, registry, ModelSlot(loaded.model, first.version))
    store.dispose()


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []


def job(symbol: str = SYMBOL) -> RetrainJob:
    return RetrainJob(symbol, "1m", RetrainReason.MANUAL, NOW)


def wait_for(retrainer: Retrainer, n: int = 1, timeout: float = 60.0) -> list[RetrainOutcome]:
    """Poll (never blocking) until ``n`` outcomes came back; fail rather than hang."""
    out: list[RetrainOutcome] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} outcomes after {timeout} s"
        out += retrainer.poll()
        time.sleep(0.01)
    return out


def pid_alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


ENDLESS = AppConfig(
    models={"max_samples": 1000},
    continuous_learning={
        "retraining": {"max_epochs": 10_000, "patience": 10_000, "target_confidence": 0.99}
    },
)

#: A parent that starts an endless retrain, prints the worker's pid and waits to be killed.
PARENT = """
import sys, time
from candlewise.config.app_config import AppConfig
from candlewise.learning.retrain_policy import RetrainJob, RetrainReason
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.retrain_worker import ProcessRetrainer
from candlewise.store.db import open_store

url, models, cfg, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = open_store(url)
worker = ProcessRetrainer(store, ModelRegistry(store, models), AppConfig.model_validate_json(cfg))
assert worker.wait_ready(60)
worker.submit(RetrainJob("BTC/USDT", "1m", RetrainReason.MANUAL, now), now, None)
print(worker.worker_pid, flush=True)
time.sleep(120)
"""


def test_worker_and_inline_reach_the_same_verdicts(market: Market) -> None:
    m = market
    with ProcessRetrainer(m.store, m.registry, CFG) as worker:
        worker.submit(job(), NOW, m.champion)
        worker.submit(job(), NOW, None)  # queued behind the first
        assert worker.busy and worker.poll() == []  # the worker needs seconds to start
        got = wait_for(worker, 2)
        assert not worker.busy and worker.poll() == []
    inline = InlineRetrainer(m.store, m.registry, CFG)
    inline.submit(job(), NOW, m.champion)
    inline.submit(job(), NOW, None)
    want = inline.poll()
    assert inline.poll() == [] and not inline.busy
    assert [o.accepted for o in want] == [False, True]  # both verdicts covered (seeded data)
    for g, w in zip(got, want, strict=True):
        assert g.error is None and w.error is None and g.result and w.result
        assert g.job == w.job and g.started_at_ms == w.started_at_ms == NOW
        assert g.champion_version == w.champion_version
        assert (g.accepted, g.result.reason) == (w.accepted, w.result.reason)
        assert (g.result.val_accuracy, g.result.val_confidence) == (
            w.result.val_accuracy,
            w.result.val_confidence,
        )
    assert got[0].champion_version == 1 and got[1].champion_version is None
    assert got[0].slot is None and got[0].result and got[0].result.challenger is None
    # The accepted challenger: registered by the worker, loaded by the parent, bit for bit the
    # model the inline retrain trained.
    new, same = got[1].slot, want[1].slot
    assert new is not None and same is not None and new.version == got[1].result.new_version
    assert new.model.state_dict.keys() == same.model.state_dict.keys()
    assert all(torch.equal(v, same.model.state_dict[k]) for k, v in new.model.state_dict.items())


def test_failures_come_back_as_outcomes(market: Market, tmp_path: Path) -> None:
    m = market
    blocker = tmp_path / "models"
    blocker.write_text("a file where the models folder should be")
    registry = ModelRegistry(m.store, blocker)
    jobs = [
        (job("ETH/USDT"), None),  # no candles at all: a rejected retrain
        (job(), None),  # accepted, then writing the model raises inside the worker
        (job(), m.champion),  # rejected, no write: the worker carries on after the error
    ]
    with ProcessRetrainer(m.store, registry, CFG) as worker:
        for j, champion in jobs:
            worker.submit(j, NOW, champion)
        got = wait_for(worker, 3)
    inline = InlineRetrainer(m.store, registry, CFG)
    for j, champion in jobs:
        inline.submit(j, NOW, champion)
    want = inline.poll()
    for outcomes in (got, want):
        no_candles, raised, after = outcomes
        assert no_candles.error is None and no_candles.result and not no_candles.accepted
        assert "too few candles (0 < " in no_candles.result.reason
        assert raised.result is None and raised.slot is None and not raised.accepted
        assert raised.error and raised.error.startswith(("NotADirectoryError", "FileExistsError"))
        assert raised.duration_s > 0
        assert after.error is None and after.result and not after.accepted
    assert got[1].error == want[1].error


def test_worker_ignores_ctrl_c_and_a_dead_worker_fails_only_its_job(market: Market) -> None:
    m = market
    with ProcessRetrainer(m.store, m.registry, CFG) as worker:
        assert worker.wait_ready(60)
        pid = worker.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole process group; it is ours
        worker.submit(job(), NOW, m.champion)
        [ok] = wait_for(worker)
        assert ok.error is None and worker.worker_pid == pid
        os.kill(pid, signal.SIGSTOP)  # frozen before it can read the job: it surely dies in it
        worker.submit(job(), NOW, m.champion)
        os.kill(pid, signal.SIGKILL)
        [dead] = wait_for(worker)
        assert dead.result is None and dead.error == "retrain worker died (exit code -9)"
        assert not pid_alive(pid)
        worker.submit(job(), NOW, m.champion)  # runs on a fresh worker
        [again] = wait_for(worker)
        assert again.error is None and again.result and ok.result
        assert (again.result.reason, again.result.val_accuracy) == (
            ok.result.reason,
            ok.result.val_accuracy,
        )
        assert worker.worker_starts == 2 and worker.worker_pid not in (None, pid)


def test_close_abandons_a_running_retrain_within_seconds(market: Market) -> None:
    m = market
    worker = ProcessRetrainer(m.store, m.registry, ENDLESS)
    assert worker.wait_ready(60)
    pid = worker.worker_pid
    assert pid is not None
    worker.submit(job(), NOW, m.champion)
    worker.submit(job("ETH/USDT"), NOW, None)
    time.sleep(0.5)
    assert worker.poll() == [] and worker.busy  # still training
    unfinished = worker.close()  # training is endless: close() returning at all is the proof
    assert unfinished == [job(), job("ETH/USDT")]
    assert not pid_alive(pid) and worker.worker_pid is None
    assert worker.close() == [] and worker.poll() == []
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(job(), NOW, None)


def test_the_worker_exits_when_its_parent_is_killed(market: Market) -> None:
    url = market.store.url.render_as_string(hide_password=False)
    args = [url, str(market.registry.models_dir), ENDLESS.model_dump_json(), str(NOW)]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        time.sleep(0.3)
        assert pid_alive(pid)  # training
    finally:
        parent.kill()  # no close(), no atexit: only the worker's own watch can end it
        parent.wait()
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "the orphaned worker kept running"
        time.sleep(0.05)


def test_an_in_memory_database_cannot_be_shared_with_a_worker(tmp_path: Path) -> None:
    store = create_engine("sqlite://")
    with pytest.raises(ValueError, match="in-memory"):
        ProcessRetrainer(store, ModelRegistry(store, tmp_path), CFG)
