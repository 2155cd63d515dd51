"""The engine's fault isolation: one symbol's failure is recorded and the others carry on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from candlewise.config.app_config import AppConfig
from candlewise.engine.setup import new_engine
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.simulated import market_at
from candlewise.models.trainer import TrainingConfig, train_model
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store.model_registry import ModelRegistry
from candlewise.system.logging_setup import configure_logging
from candlewise.trading.paper_broker import PaperBroker

DAY0 = 1_735_689_600_000


def model(n_features: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, n_features))
    y = (X[:, 0] > 0).astype(float)
    names = tuple(f"f{i}" for i in range(n_features))
    return train_model(X, y, TrainingConfig(max_epochs=3), feature_names=names,
                       feature_fingerprint="test")  # fmt: skip


def test_one_symbols_failure_is_recorded_and_the_others_continue(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    configure_logging(tmp_path / "logs", AppConfig().logging, console=False)
    good = ModelSlot(model(len(FEATURE_SPEC.names)), 1)
    wrong_spec = ModelSlot(model(5), 1)  # an old model built for 5 features: predict raises
    predictor = LivePredictor({"1m": 1.0}, {("BTC/USDT", "1m"): good,
                                            ("ETH/USDT", "1m"): wrong_spec})  # fmt: skip
    cfg = AppConfig()
    registry = ModelRegistry(sqlite_engine, tmp_path / "m")
    broker = PaperBroker(cfg.paper, cfg.risk)
    engine = new_engine(cfg, sqlite_engine, registry, predictor, broker, retraining=False)
    series = market_at(["BTC/USDT", "ETH/USDT"], 2, DAY0).generate(120)
    aggregators = {s: TimeframeAggregator(s) for s in series}
    for i in range(120):
        for symbol, s in series.items():
            candle = s.candles()[i]
            engine.on_candles([candle, *aggregators[symbol].add(candle)])
        engine.end_minute(candle.close_time)
    engine.flush()
    with sqlite_engine.connect() as conn:
        errors = conn.execute(text("SELECT symbol, error_type, message FROM error_log")).all()
        btc_minutes = conn.execute(
            text("SELECT COUNT(DISTINCT timestamp) FROM confidence_history WHERE symbol = :s"),
            {"s": "BTC/USDT"},
        ).scalar()
    warm = 120 - FEATURE_SPEC.window + 1  # minutes with a full feature window
    assert engine.stats.errors == warm == len(errors)
    assert {e[0] for e in errors} == {"ETH/USDT"} and errors[0][1] == "ValueError"
    assert "features" in errors[0][2]
    assert btc_minutes == warm  # BTC signalled every minute it could: it never noticed
    error_log = (tmp_path / "logs" / "error.log").read_text()
    assert "[ETH/USDT] Error handling candle" in error_log


def test_the_daily_loss_limit_is_announced_once_per_day(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    cfg = AppConfig()
    broker = PaperBroker(cfg.paper, cfg.risk)
    alerts: list[object] = []
    engine = new_engine(cfg, sqlite_engine, ModelRegistry(sqlite_engine, tmp_path / "m"),
                        LivePredictor({"1m": 1.0}, {}), broker, alert=alerts.append)  # fmt: skip
    day = 86_400_000
    broker.limits.observe(10_000.0, DAY0 + 60_000)  # the day starts at 10,000
    engine.end_minute(DAY0 + 120_000)
    assert alerts == []
    broker.limits.observe(9_500.0, DAY0 + 180_000)  # 5 % down: the default limit
    broker.cash = 9_500.0
    engine.end_minute(DAY0 + 180_000)
    engine.end_minute(DAY0 + 240_000)
    assert [(a.level, a.kind) for a in alerts] == [("WARNING", "daily_loss")]  # type: ignore[attr-defined]
    assert alerts[0].text.startswith("⚠️  WARNING: Daily loss limit reached: equity 5.00% below")  # type: ignore[attr-defined]
    broker.limits.observe(9_500.0, DAY0 + day + 60_000)  # a new UTC day: entries allowed again
    engine.end_minute(DAY0 + day + 60_000)
    assert len(alerts) == 1
