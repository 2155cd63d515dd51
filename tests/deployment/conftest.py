"""A store with simulated BTC/USDT candles and real trained models, shared by the check tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.cli.main import run
from candlewise.config.app_config import AppConfig
from candlewise.config.loader import load_config
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.first_training import train_one

#: Two timeframes keep training fast; one simulated day gives 1,440 1m and 288 5m candles, above
#: the 231 candles a model needs.
CONFIG = """\
symbols: [BTC/USDT, ETH/USDT]
timeframes:
  intervals:
    - {{interval: 1m, weight: 0.5}}
    - {{interval: 5m, weight: 0.5}}
continuous_learning:
  retraining:
    max_epochs: 2
models:
  max_samples: 300
database:
  url: sqlite:///{root}/data/trading.db
paths:
  models_dir: {root}/models
  logs_dir: {root}/logs
  validation_dir: {root}/validation_results
"""


@dataclass(frozen=True)
class World:
    root: Path
    cfg: AppConfig
    store: Engine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("deployment")
    config = root / "config.yaml"
    config.write_text(CONFIG.format(root=root.as_posix()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("CANDLEWISE_DATABASE_URL", raising=False)
        code = run(
            ["data", "simulate", "--symbols", "BTC/USDT", "--days", "1", "--config", str(config)]
        )
        assert code == 0
    cfg = load_config(config)
    store = open_store(cfg.database.url)
    registry = ModelRegistry(store, cfg.paths.models_dir, cfg.models.keep_versions)
    for tf in cfg.timeframes.names:
        assert train_one(store, registry, cfg, "BTC/USDT", tf).ok
    yield World(root, cfg, store)
    store.dispose()


@pytest.fixture
def project(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shared store and models, as the current project folder."""
    root = tmp_path / "project"
    world.store.dispose()  # everything in the main file before it is copied
    shutil.copytree(world.root, root, ignore=shutil.ignore_patterns("logs"))
    config = (world.root / "config.yaml").read_text().replace(world.root.as_posix(), str(root))
    (root / "config.yaml").write_text(config)
    monkeypatch.chdir(root)
    return root
