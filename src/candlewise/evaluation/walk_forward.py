"""Walk-forward evaluation: every prediction is made by a model that never saw its future.

Per timeframe: train on the most recent ``max_samples`` labelled rows before a block, predict
the block, move on (retraining at each block). The first block starts once ``min_train`` rows
exist, so early predictions come from smaller models, as they would in production.

Aggregate: the out-of-sample predictions are replayed in event order through the same
``SignalAggregator`` the engine uses (weights, freshness). At each close of a ``tf`` candle the
weighted P(up) is judged against that candle's successor, and mapped through a Platt calibrator
per event timeframe fitted **only on earlier events** (refitted every ``refit_every`` events,
after ``calibration_warmup`` events, which are not scored). The calibrated aggregate is what is
scored as "aggregate"; the uncalibrated mix is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES
from candlewise.evaluation.scores import Score, score
from candlewise.features.compute import compute_features
from candlewise.features.labels import next_direction
from candlewise.features.spec import FEATURE_SPEC
from candlewise.models.calibration import PlattCalibrator
from candlewise.models.trainer import TrainingConfig, train_model
from candlewise.signals.aggregate import SignalAggregator, TimeframePrediction


@dataclass(frozen=True)
class WalkForwardConfig:
    max_samples: int = 6000
    """Training rows per model (the most recent before each block)."""
    min_train: int = 200
    """Labelled rows needed before the first prediction."""
    first_share: float = 1 / 3
    """The first block starts after this share of the rows (at least ``min_train``)."""
    blocks: int = 20
    """Retrains per timeframe (bounds the cost on long series)."""
    calibration_warmup: int = 200
    """Aggregate events per event timeframe before its calibrator is trusted and scored."""
    refit_every: int = 100
    """Aggregate events between two refits of a calibrator."""
    training: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass(frozen=True)
class TimeframeResult:
    timeframe: str
    candles: int
    close_times: np.ndarray
    p_up: np.ndarray
    y: np.ndarray
    retrains: int
    skipped: str | None = None
    """Why the timeframe was not evaluated (too few candles)."""

    @property
    def score(self) -> Score:
        return score(self.p_up, self.y)


@dataclass(frozen=True)
class AggregateResult:
    calibrated: Score
    raw: Score
    events: int
    by_timeframe: dict[str, Score]
    history: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Every out-of-sample (uncalibrated mix, outcome) pair per event timeframe, warm-up
    included: what a calibrator for live use is fitted on."""


def walk_forward_timeframe(
    frame: pd.DataFrame,
    timeframe: str,
    cfg: WalkForwardConfig,
    on_block: Callable[[str, int, int], None] | None = None,
) -> TimeframeResult:
    features = compute_features(frame, timeframe)
    labels = next_direction(frame["close"].to_numpy(dtype=np.float64))
    valid = np.isfinite(features).all(axis=1) & np.isfinite(labels)
    X, y = features[valid], labels[valid]
    close_times = frame["timestamp"].to_numpy(dtype=np.int64)[valid] + TIMEFRAME_MS[timeframe]
    n = len(y)
    first = max(cfg.min_train, int(n * cfg.first_share))
    if n - first < 1:
        empty = np.empty(0)
        return TimeframeResult(
            timeframe, len(frame), empty.astype(np.int64), empty, empty, 0,
            skipped=f"{len(frame):,} candles; at least "
            f"{cfg.min_train + 1 + FEATURE_SPEC.window:,} needed",
        )  # fmt: skip
    size = max(1, math.ceil((n - first) / cfg.blocks))
    starts = list(range(first, n, size))
    preds = []
    for k, start in enumerate(starts):
        stop = min(start + size, n)
        lo = max(0, start - cfg.max_samples)
        model = train_model(
            X[lo:start],
            y[lo:start],
            cfg.training,
            feature_names=FEATURE_SPEC.names,
            feature_fingerprint=FEATURE_SPEC.fingerprint,
        )
        preds.append(model.predict_proba(X[start:stop]))
        if on_block:
            on_block(timeframe, k + 1, len(starts))
    return TimeframeResult(
        timeframe,
        len(frame),
        close_times[first:],
        np.concatenate(preds),
        y[first:],
        len(starts),
    )


def aggregate_walk_forward(
    results: Mapping[str, TimeframeResult],
    weights: Mapping[str, float],
    cfg: WalkForwardConfig,
    symbol: str = "SYMBOL",
) -> AggregateResult:
    """Replay out-of-sample predictions through the signal aggregator, causally calibrated."""
    usable = {tf: r for tf, r in results.items() if r.skipped is None and len(r.p_up)}
    events = sorted(
        (int(t), TIMEFRAMES.index(tf), tf, i)
        for tf, r in usable.items()
        for i, t in enumerate(r.close_times)
    )
    aggregator = SignalAggregator({tf: w for tf, w in weights.items() if tf in usable})
    history: dict[str, tuple[list[float], list[float]]] = {tf: ([], []) for tf in usable}
    calibrators: dict[str, PlattCalibrator] = {}
    raw_p: list[float] = []
    cal_p: list[float] = []
    outcome: list[float] = []
    per_tf: dict[str, tuple[list[float], list[float]]] = {tf: ([], []) for tf in usable}
    i = 0
    while i < len(events):
        moment = events[i][0]
        batch = []
        while i < len(events) and events[i][0] == moment:  # every model closing now first
            _, _, tf, row = events[i]
            r = usable[tf]
            aggregator.update(TimeframePrediction(symbol, tf, moment, float(r.p_up[row])))
            batch.append((tf, row))
            i += 1
        mix = aggregator.raw_p_up(symbol, moment)
        if mix is None:
            continue
        for tf, row in batch:
            past_p, past_y = history[tf]
            if len(past_p) >= cfg.calibration_warmup and (
                tf not in calibrators or len(past_p) % cfg.refit_every == 0
            ):
                calibrators[tf] = PlattCalibrator.fit(np.array(past_p), np.array(past_y))
            label = float(usable[tf].y[row])
            if tf in calibrators:  # scored only once a calibrator fitted on the past exists
                p_cal = calibrators[tf].apply_one(mix[0])
                raw_p.append(mix[0])
                cal_p.append(p_cal)
                outcome.append(label)
                per_tf[tf][0].append(p_cal)
                per_tf[tf][1].append(label)
            past_p.append(mix[0])
            past_y.append(label)
    return AggregateResult(
        calibrated=score(np.array(cal_p), np.array(outcome)),
        raw=score(np.array(raw_p), np.array(outcome)),
        events=len(outcome),
        by_timeframe={
            tf: score(np.array(p), np.array(y)) for tf, (p, y) in per_tf.items() if len(p)
        },
        history={tf: (np.array(p), np.array(y)) for tf, (p, y) in history.items()},
    )
