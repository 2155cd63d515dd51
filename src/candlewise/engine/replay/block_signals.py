"""Predictions and aggregated signals of a whole block of minutes, computed column-wise.

The event path asks ``LivePredictor.on_close`` for one prediction per closed candle and
``SignalAggregator.signal`` for the weighted mix of the fresh ones; here both are computed for
every close of a block at once, with the same numbers:

- each (symbol, timeframe)'s P(up) comes from the one ``predict_block`` call over the block's
  closes that the event path's read-ahead makes too (same window, same model, same chunks);
- the raw mix at each minute is the weighted mean of the latest prediction of each timeframe
  that is still fresh, summed in ``TIMEFRAMES`` order as ``SignalAggregator.raw_p_up`` sums it
  (adding ``0.0`` for a stale timeframe changes no bit), so the division gives the same float;
- the per-event-timeframe calibration is left to the caller, with the scalar ``apply_one``.

The predictor's own state (windows, latest predictions, the scorer's pending judgement) is
advanced to the end of the block, as if every close had gone through ``on_close``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES
from candlewise.engine.replay.block_aggregation import SymbolBlock
from candlewise.engine.replay.column_blocks import BarColumns
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.scoring import PredictionScorer
from candlewise.signals.aggregate import TimeframePrediction
from candlewise.signals.block_predictor import CandleColumns, predict_block
from candlewise.signals.live import LivePredictor, ModelSlot


@dataclass(frozen=True, slots=True)
class KeyPredictions:
    """One (symbol, timeframe)'s closes in the block and their P(up) (NaN: no prediction)."""

    bars: BarColumns
    p_up: list[float]
    version: int | None


@dataclass(frozen=True, slots=True)
class SymbolMix:
    """Per minute of the block (close times ``times``): the weighted raw P(up), NaN when no
    timeframe is fresh, and how many timeframes took part."""

    times: np.ndarray
    raw: list[float]
    used: list[int]


def predict_keys(
    predictor: LivePredictor, blocks: Sequence[SymbolBlock]
) -> dict[tuple[str, str], KeyPredictions]:
    """Every closed candle's prediction, per (symbol, timeframe), and the windows advanced."""
    out = {}
    window = FEATURE_SPEC.window
    for block in blocks:
        for tf, bars in (("1m", block.minutes), *block.higher.items()):
            key = (block.symbol, tf)
            buffer = predictor._buffers.get(key)
            if buffer is None:
                buffer = predictor._buffers[key] = deque(maxlen=window)
            slot: ModelSlot | None = predictor._models.get(key)
            columns = [bars.open_ms.astype(np.float64), *bars.columns()[1:]]
            if slot is None:
                p_up = [float("nan")] * len(bars)
            else:
                history = (
                    CandleColumns(*np.array(buffer, dtype=np.float64).T)
                    if buffer
                    else CandleColumns.empty()
                )
                p_up = predict_block(history, CandleColumns(*columns), slot.model).tolist()
            buffer.extend(zip(*(c[-window:].tolist() for c in columns), strict=True))
            out[key] = KeyPredictions(bars, p_up, slot.version if slot is not None else None)
    return out


def advance_latest(
    predictor: LivePredictor,
    scorer: PredictionScorer,
    keys: dict[tuple[str, str], KeyPredictions],
) -> None:
    """Leave the aggregator's latest predictions and the scorer's pending ones as the event
    path leaves them after the block: each key's last prediction made (if any)."""
    latest = predictor._aggregator._latest
    for (symbol, timeframe), kp in keys.items():
        for i in range(len(kp.p_up) - 1, -1, -1):
            p = kp.p_up[i]
            if p == p:  # not NaN
                made_at = int(kp.bars.open_ms[i]) + TIMEFRAME_MS[timeframe]
                prediction = TimeframePrediction(symbol, timeframe, made_at, p, kp.version)
                latest.setdefault(symbol, {})[timeframe] = prediction
                if i == len(kp.p_up) - 1:
                    scorer.expect(prediction, float(kp.bars.close[i]))
                break


def mix(
    predictor: LivePredictor,
    symbol: str,
    times: np.ndarray,
    keys: dict[tuple[str, str], KeyPredictions],
) -> SymbolMix:
    """The raw weighted P(up) of ``symbol`` at each minute close in ``times`` (sorted).

    Call before ``advance_latest``: the predictions from before the block are the
    aggregator's latest ones.
    """
    weights = predictor._weights
    before = predictor._aggregator._latest.get(symbol, {})
    num = np.zeros(len(times))
    total = np.zeros(len(times))
    used = np.zeros(len(times), dtype=np.int64)
    for tf in TIMEFRAMES:
        w = weights.get(tf, 0.0)
        if w <= 0:
            continue
        made = [np.zeros(0, dtype=np.int64)]
        p_up = [np.zeros(0)]
        old = before.get(tf)
        if old is not None:
            made.append(np.array([old.made_at], dtype=np.int64))
            p_up.append(np.array([old.p_up]))
        kp = keys.get((symbol, tf))
        if kp is not None:
            new = np.array(kp.p_up)
            valid = new == new  # NaN: no prediction
            made.append(kp.bars.open_ms[valid] + TIMEFRAME_MS[tf])
            p_up.append(new[valid])
        made_at = np.concatenate(made)
        if made_at.size == 0:
            continue
        idx = np.searchsorted(made_at, times, side="right") - 1
        known = idx >= 0
        safe = np.where(known, idx, 0)
        fresh = known & (made_at[safe] <= times) & (times < made_at[safe] + TIMEFRAME_MS[tf])
        p = np.concatenate(p_up)[safe]
        num = num + np.where(fresh, w * p, 0.0)
        total = total + np.where(fresh, w, 0.0)
        used += fresh
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where((used > 0) & (total > 0), num / total, np.nan)
    return SymbolMix(times, raw.tolist(), used.tolist())
