"""Signal calibration partly in a forked child beside training: same files, errors real."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.backtest.history import simulate_history
from candlewise.config.app_config import AppConfig
from candlewise.market.feeds import simulated_source
from candlewise.market.simulated import HISTORY_ORIGIN_MS
from candlewise.signals.calibration_file import load_calibration
from candlewise.store.db import open_store
from candlewise.training.calibration_child import CalibrationBeside
from candlewise.training.first_training import calibrate_signals

DAY_MS = 86_400_000
START = HISTORY_ORIGIN_MS + 12 * DAY_MS
CFG = AppConfig(models={"max_samples": 1500})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("beside") / "history.db"
    engine = open_store(f"sqlite:///{path}")
    simulate_history(engine, ["BTC/USDT"], 3, START, simulated_source(3), None)
    return engine


def test_the_child_saves_what_calibrating_here_saves(
    store: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="candlewise")
    with CalibrationBeside(store, CFG, ["BTC/USDT"], START, str(tmp_path / "beside")) as beside:
        child = beside.task.pid
        assert child is not None and child != os.getpid()
    assert beside.task.pid is None  # joined
    calibrate_signals(store, CFG, "BTC/USDT", known_at_ms=START, models_dir=str(tmp_path / "here"))
    ours = load_calibration(tmp_path / "beside", "BTC/USDT")
    theirs = load_calibration(tmp_path / "here", "BTC/USDT")
    assert ours is not None and theirs is not None
    assert ours.events == theirs.events and sum(ours.events.values()) > 500
    assert ours.heldout_ece == theirs.heldout_ece
    for tf, calibrator in theirs.calibrators.items():
        assert ours.calibrators[tf].to_dict() == calibrator.to_dict()  # bit for bit
    assert list(beside.task.result["BTC/USDT"]) == ["1m", "5m", "15m"]  # done there
    saved = [r for r in caplog.records if "Signal calibration saved" in r.getMessage()]
    assert len(saved) == 2


def test_a_failure_in_the_child_is_redone_here_with_the_real_error(
    store: Engine, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the models folder should be")
    with (
        pytest.raises(OSError),
        CalibrationBeside(store, CFG, ["BTC/USDT"], START, str(not_a_folder)),
    ):
        pass
    assert not_a_folder.read_text().startswith("a file")


def test_an_error_while_training_ends_the_child(store: Engine, tmp_path: Path) -> None:
    beside = CalibrationBeside(store, CFG, ["BTC/USDT"], START, str(tmp_path / "m"))
    with pytest.raises(KeyboardInterrupt), beside:
        child = beside.task.pid
        raise KeyboardInterrupt
    assert beside.task.pid is None
    assert child is not None
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # ended and reaped
