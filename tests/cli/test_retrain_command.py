"""``candlewise retrain``: the manual trigger, here and now or through a running deployment."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.config.app_config import AppConfig
from candlewise.engine.runner import manual_retrains
from candlewise.engine.setup import new_engine
from candlewise.signals.live import LivePredictor
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.run_store import create_run, save_checkpoint
from candlewise.trading.paper_broker import PaperBroker


@pytest.fixture
def trained(workdir: Path) -> Path:
    assert run(["data", "simulate", "--symbols", "BTC/USDT", "--days", "20", "--seed", "4"]) == 0
    assert run(["train", "--symbol", "BTC/USDT", "--interval", "15m"]) == 0
    return workdir / "data" / "trading.db"


def _history(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT timeframe, trigger_reason, success, old_version, new_version, rejected_reason "
            "FROM retraining_history ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def test_without_a_deployment_it_retrains_now_and_records_it(trained: Path, capsys) -> None:
    capsys.readouterr()
    assert run(["retrain", "--symbol", "BTC/USDT", "--interval", "15m"]) == 0
    out = capsys.readouterr().out
    assert "⚙ [BTC/USDT_15m] Starting retraining (reason: manual)" in out
    assert "✓ [BTC/USDT_15m] Retraining successful! Confidence: " in out
    assert _history(trained) == [("15m", "manual", 1, 1, 2, None)]
    con = sqlite3.connect(trained)
    active = con.execute("SELECT version FROM model_registry WHERE active = 1").fetchall()
    con.close()
    assert active == [(2,)]


def test_too_little_data_is_a_clear_error_and_still_recorded(trained: Path, capsys) -> None:
    assert run(["retrain", "--symbol", "BTC/USDT", "--interval", "4h"]) == 2
    err = capsys.readouterr().err
    assert "too few candles" in err and "candlewise data download" in err
    assert _history(trained) == [("4h", "manual", 0, None, None, "too few candles (119 < 231)")]


def test_with_a_running_deployment_the_request_goes_through_the_store(
    trained: Path, capsys
) -> None:
    store = open_store(f"sqlite:///{trained}")
    with store.begin() as conn:  # a live run whose process (this one) is alive
        run_id = create_run(conn, "deployment", {"symbol": "BTC/USDT"})
        save_checkpoint(conn, run_id, 0, b"")
    capsys.readouterr()
    assert run(["retrain", "--symbol", "BTC/USDT", "--interval", "15m"]) == 0
    assert f"(run {run_id}, pid {os.getpid()})" in capsys.readouterr().out
    assert _history(trained) == []  # not retrained here

    cfg = AppConfig()
    registry = ModelRegistry(store, trained.parent / "models")
    engine = new_engine(cfg, store, registry, LivePredictor(cfg.timeframes.weights, {}),
                        PaperBroker(cfg.paper, cfg.risk), run_id=run_id)  # fmt: skip
    assert manual_retrains(engine, ["ETH/USDT"], 1_000) == 0  # not its symbol
    assert manual_retrains(engine, ["BTC/USDT"], 1_000) == 1
    assert [(j.model, j.reason.value) for j in engine.policy.pending()] == [
        ("BTC/USDT_15m", "manual")
    ]
    assert manual_retrains(engine, ["BTC/USDT"], 2_000) == 0  # taken once
    con = sqlite3.connect(trained)
    rows = con.execute("SELECT status, run_id FROM retrain_requests").fetchall()
    con.close()
    assert rows == [("taken", run_id)]


def test_a_deployment_whose_process_is_gone_does_not_swallow_the_request(
    trained: Path, capsys
) -> None:
    store = open_store(f"sqlite:///{trained}")
    with store.begin() as conn:
        run_id = create_run(conn, "deployment", {"symbol": "BTC/USDT"})
        save_checkpoint(conn, run_id, 0, b"")
        conn.exec_driver_sql("UPDATE engine_runs SET pid = 999999999")
    assert run(["retrain", "--symbol", "BTC/USDT", "--interval", "15m"]) == 0
    assert _history(trained)[0][:3] == ("15m", "manual", 1)
