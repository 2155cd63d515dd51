"""Training a symbol's models from the store: candles -> features -> trainer -> registry.

Each timeframe's model trains on that timeframe's stored candles (5m..1d are derived from 1m at
ingest, or imported), the most recent ``models.max_samples`` labelled rows. A timeframe without
enough candles is reported with how much is needed and how to get it; the others still train.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.core.timestamps import now_text
from candlewise.evaluation.walk_forward import (
    TimeframeResult,
    WalkForwardConfig,
    aggregate_walk_forward,
    walk_forward_timeframe,
)
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.models.calibration import PlattCalibrator
from candlewise.models.trainer import EpochReport, TrainingConfig, TrainingMetrics, train_model
from candlewise.signals.calibration_file import SignalCalibration, save_calibration
from candlewise.store import candle_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.system.logging_setup import get_logger

log = get_logger("training")

#: Labelled rows a model needs at the least (the trainer refuses fewer).
MIN_LABELLED_ROWS = 200


def candles_needed() -> int:
    """Stored candles of a timeframe needed to train its model: warm-up, rows, the next label."""
    return MIN_LABELLED_ROWS + FEATURE_SPEC.window


@dataclass(frozen=True)
class TrainOutcome:
    symbol: str
    timeframe: str
    version: int | None = None
    metrics: TrainingMetrics | None = None
    problem: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.version is not None


def training_config(cfg: AppConfig) -> TrainingConfig:
    retraining = cfg.continuous_learning.retraining
    return TrainingConfig(
        max_epochs=retraining.max_epochs,
        patience=retraining.patience,
        target_confidence=retraining.target_confidence,
        seed=cfg.models.seed,
        threads=cfg.models.threads,
    )


def history_days(timeframes: Sequence[str]) -> int:
    """Days of 1m history that give every one of ``timeframes`` enough candles to train."""
    longest = max(TIMEFRAME_MS[tf] for tf in timeframes)
    return math.ceil(candles_needed() * longest / 86_400_000) + 1


def not_enough_data(symbol: str, timeframe: str, have: int) -> TrainOutcome:
    need = candles_needed()
    days = math.ceil(need * TIMEFRAME_MS[timeframe] / 86_400_000)
    return TrainOutcome(
        symbol,
        timeframe,
        problem=f"{symbol} {timeframe}: {have:,} candles stored, at least {need:,} needed "
        f"(about {days:,} days)",
        hint=f"get them with 'candlewise data download --symbol {symbol} --timeframe 1m "
        f"--days {days + 1}', 'candlewise data import FILE --symbol {symbol} --timeframe "
        f"{timeframe}' or 'candlewise data simulate --symbols {symbol} --days {days + 1}'",
    )


def guide_line(tag: str, line: str) -> str:
    """A trainer line in the guide's form: only 'Training data' carries the model tag."""
    return f"{tag} {line}" if line.startswith("Training data") else line


def _guide_lines(tag: str) -> Callable[[str], None]:
    return lambda line: log.info("%s", guide_line(tag, line))


def train_one(
    engine: Engine,
    registry: ModelRegistry,
    cfg: AppConfig,
    symbol: str,
    timeframe: str,
    *,
    on_epoch: Callable[[EpochReport], None] | None = None,
    known_at_ms: int | None = None,
) -> TrainOutcome:
    """Train, save and activate a new version of one model.

    ``known_at_ms`` limits training to candles closed by then (a replay's store already holds
    the candles it is about to play: training on them would be lookahead).
    """
    window = cfg.models.max_samples + FEATURE_SPEC.window + 1
    with engine.connect() as conn:
        frame = candle_store.load_frame(
            conn, symbol, timeframe, limit=window, known_at_ms=known_at_ms
        )
    if len(frame) < candles_needed():
        return not_enough_data(symbol, timeframe, len(frame))
    X, y, open_times = training_matrix(frame, timeframe, max_samples=cfg.models.max_samples)
    tag = f"[{symbol}_{timeframe}]"
    started = time.perf_counter()
    model = train_model(
        X,
        y,
        training_config(cfg),
        feature_names=FEATURE_SPEC.names,
        feature_fingerprint=FEATURE_SPEC.fingerprint,
        log=_guide_lines(tag),
        on_epoch=on_epoch,
    )
    version = registry.register(
        symbol,
        timeframe,
        model,
        train_start_ms=int(open_times[0]),
        train_end_ms=int(open_times[-1]),
    )
    m = model.metrics
    log.info(
        "✓ %s Model v%d trained: Val Acc=%.2f%%, Val Conf=%.2f%%, ECE=%.2f%% (%s, %.1fs)",
        tag,
        version,
        100 * m.val_accuracy,
        100 * m.val_confidence,
        100 * m.ece,
        m.stopped_reason,
        time.perf_counter() - started,
    )
    return TrainOutcome(symbol, timeframe, version, m)


def train_symbol(
    engine: Engine,
    registry: ModelRegistry,
    cfg: AppConfig,
    symbol: str,
    timeframes: Sequence[str],
    *,
    on_epoch: Callable[[str, EpochReport], None] | None = None,
    known_at_ms: int | None = None,
) -> list[TrainOutcome]:
    outcomes = []
    for tf in timeframes:
        callback = (lambda report, tf=tf: on_epoch(tf, report)) if on_epoch else None
        outcome = train_one(
            engine, registry, cfg, symbol, tf, on_epoch=callback, known_at_ms=known_at_ms
        )
        if not outcome.ok:
            log.warning("✗ %s", outcome.problem)
        outcomes.append(outcome)
    return outcomes


#: Most recent candles per timeframe the signal calibration walks forward over (bounds its cost).
CALIBRATION_CANDLES = 4000


def calibrate_signals(
    engine: Engine,
    cfg: AppConfig,
    symbol: str,
    known_at_ms: int | None = None,
    models_dir: str | None = None,
) -> SignalCalibration | None:
    """Fit the symbol's signal calibrators on out-of-sample events and save them.

    A short walk-forward over the stored candles (models trained on the past only) yields the
    uncalibrated weighted mix and the outcome at every candle close. Its causal score (each
    event judged by a calibrator fitted on earlier events) is the held-out ECE recorded; the
    calibrators kept for live use are then fitted on all those events. Returns None when no
    event timeframe had enough events (signals then stay uncalibrated and cannot trade).
    """
    results = walk_forward_signals(engine, cfg, symbol, cfg.timeframes.names, known_at_ms)
    return fit_signal_calibration(cfg, symbol, results, models_dir)


def _walk_forward_config(cfg: AppConfig) -> WalkForwardConfig:
    return WalkForwardConfig(max_samples=cfg.models.max_samples, blocks=4,
                             training=training_config(cfg))  # fmt: skip


def walk_forward_signals(
    engine: Engine,
    cfg: AppConfig,
    symbol: str,
    timeframes: Sequence[str],
    known_at_ms: int | None = None,
) -> dict[str, TimeframeResult]:
    """The out-of-sample predictions of ``timeframes`` that ``calibrate_signals`` fits on."""
    wf = _walk_forward_config(cfg)
    results = {}
    with engine.connect() as conn:
        for tf in timeframes:
            frame = candle_store.load_frame(
                conn, symbol, tf, limit=CALIBRATION_CANDLES, known_at_ms=known_at_ms
            )
            results[tf] = walk_forward_timeframe(frame, tf, wf)
    return results


def fit_signal_calibration(
    cfg: AppConfig,
    symbol: str,
    results: dict[str, TimeframeResult],
    models_dir: str | None = None,
) -> SignalCalibration | None:
    """``calibrate_signals``' second half: fit on every timeframe's walk-forward, save."""
    wf = _walk_forward_config(cfg)
    results = {tf: results[tf] for tf in cfg.timeframes.names if tf in results}
    aggregate = aggregate_walk_forward(results, cfg.timeframes.weights, wf, symbol)
    calibrators = {}
    events = {}
    for tf, (p, y) in aggregate.history.items():
        if len(p) >= wf.calibration_warmup:
            calibrators[tf] = PlattCalibrator.fit(p, y)
            events[tf] = len(p)
    if not calibrators:
        log.warning("[%s] Signal calibration: too few out-of-sample events", symbol)
        return None
    heldout = aggregate.calibrated
    calibration = SignalCalibration(
        symbol=symbol,
        calibrators=calibrators,
        events=events,
        heldout_ece=heldout.ece if heldout.predictions else None,
        heldout_events=heldout.predictions,
        created_at=now_text(),
    )
    path = save_calibration(models_dir or cfg.paths.models_dir, calibration)
    log.info(
        "✓ [%s] Signal calibration saved to %s: %d out-of-sample events, held-out ECE %s",
        symbol,
        path,
        sum(events.values()),
        "n/a" if calibration.heldout_ece is None else f"{100 * calibration.heldout_ece:.2f}%",
    )
    return calibration
