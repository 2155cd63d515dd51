"""Building an engine's inputs from the store: the predictor (active models and signal
calibrators), its windows warmed up with the candles known at a moment, and aggregators that
already hold the open buckets' minutes. Shared by backtests and deployments, so both start
from exactly the same state for the same store and moment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import HIGHER_TIMEFRAMES
from candlewise.engine.trading_engine import TradingEngine
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.signals.calibration_file import load_calibration
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store import candle_store
from candlewise.store.engine_store import StoreEnginePersistence
from candlewise.store.model_registry import ModelRegistry
from candlewise.system.logging_setup import get_logger
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training.retrain_worker import InlineRetrainer, Retrainer

DAY_MS = 86_400_000
log = get_logger("engine")


def new_engine(
    cfg: AppConfig,
    store: Engine,
    registry: ModelRegistry,
    predictor: LivePredictor,
    broker: PaperBroker,
    *,
    retrainer: Retrainer | None = None,
    **options: Any,
) -> TradingEngine:
    """An engine on ``store``'s adapters: its persistence port and, unless given, the inline
    retrainer (``options``: ``TradingEngine``'s keyword arguments)."""
    return TradingEngine(
        cfg,
        StoreEnginePersistence(store),
        registry,
        predictor,
        broker,
        retrainer=retrainer if retrainer is not None else InlineRetrainer(store, registry, cfg),
        **options,
    )


def build_predictor(
    cfg: AppConfig, registry: ModelRegistry, models_dir: str, symbols: Sequence[str]
) -> LivePredictor:
    models = {}
    calibrators = {}
    for symbol in symbols:
        for tf in cfg.timeframes.names:
            loaded = registry.load_active(symbol, tf, FEATURE_SPEC.fingerprint)
            if loaded is not None:
                models[(symbol, tf)] = ModelSlot(loaded.model, loaded.version)
        calibration = load_calibration(models_dir, symbol)
        if calibration is not None:
            calibrators.update({(symbol, tf): c for tf, c in calibration.calibrators.items()})
    return LivePredictor(
        cfg.timeframes.weights, models, calibrators, log=lambda line: log.info("%s", line)
    )


def primed_aggregators(
    store: Engine, symbols: Sequence[str], start: int
) -> dict[str, TimeframeAggregator]:
    """Aggregators that already hold the stored minutes of the buckets open at ``start`` (from
    the UTC day's start): a window starting mid-day still closes that day's higher candles,
    instead of leaving a one-candle gap in every higher timeframe's window."""
    day_start = start - start % DAY_MS
    out = {}
    with store.connect() as conn:
        for symbol in symbols:
            frame = candle_store.load_frame(conn, symbol, "1m", day_start, start)
            aggregator = out[symbol] = TimeframeAggregator(symbol)
            aggregator.prime(
                Candle(symbol, "1m", int(r[0]), *map(float, r[1:]))
                for r in frame.itertuples(index=False)
            )
    return out


def warm_up(predictor: LivePredictor, store: Engine, symbols: Sequence[str], start: int) -> None:
    """Fill the prediction windows with the candles known at the window start."""
    with store.connect() as conn:
        for symbol in symbols:
            for tf in ("1m", *HIGHER_TIMEFRAMES):
                frame = candle_store.load_frame(
                    conn, symbol, tf, limit=FEATURE_SPEC.window, known_at_ms=start
                )
                predictor.warm_up(
                    [
                        Candle(symbol, tf, int(r[0]), *map(float, r[1:]))
                        for r in frame.itertuples(index=False)
                    ]
                )
