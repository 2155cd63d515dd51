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

from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.scoring import PredictionScorer
from candlewise.market.candle import Candle
from candlewise.signals.aggregate import TimeframePrediction
from candlewise.signals.block_predictor import CandleColumns, predict_block
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.timeframes import TIMEFRAME_MS, TIMEFRAMES


@dataclass(frozen=True, slots=True)
class KeyPredictions:
    """One (symbol, timeframe)'s closes in the block and their P(up) (NaN: no prediction)."""

    bars: list[Candle]
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
    predictor: LivePredictor, closed_lists: Sequence[Sequence[Candle]]
) -> dict[tuple[str, str], KeyPredictions]:
    """Every closed candle's prediction, per (symbol, timeframe), and the windows advanced."""
    bars: dict[tuple[str, str], list[Candle]] = {}
    for closed in closed_lists:
        for bar in closed:
            key = (bar.symbol, bar.timeframe)
            found = bars.get(key)
            if found is None:
                bars[key] = [bar]
            else:
                found.append(bar)
    out = {}
    window = FEATURE_SPEC.window
    for key, items in bars.items():
        buffer = predictor._buffers.get(key)
        if buffer is None:
            buffer = predictor._buffers[key] = deque(maxlen=window)
        slot: ModelSlot | None = predictor._models.get(key)
        block = CandleColumns.from_candles(items)
        if slot is None:
            p_up = [float("nan")] * len(items)
        else:
            history = (
                CandleColumns(*np.array(buffer, dtype=np.float64).T)
                if buffer
                else CandleColumns.empty()
            )
            p_up = predict_block(history, block, slot.model).tolist()
        tail = items[-window:]
        buffer.extend((float(c.open_time), c.open, c.high, c.low, c.close, c.volume) for c in tail)
        out[key] = KeyPredictions(items, p_up, slot.version if slot is not None else None)
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
                bar = kp.bars[i]
                prediction = TimeframePrediction(symbol, timeframe, bar.close_time, p, kp.version)
                latest.setdefault(symbol, {})[timeframe] = prediction
                if i == len(kp.p_up) - 1:
                    scorer.expect(prediction, bar.close)
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
        made: list[int] = []
        p_up: list[float] = []
        old = before.get(tf)
        if old is not None:
            made.append(old.made_at)
            p_up.append(old.p_up)
        kp = keys.get((symbol, tf))
        if kp is not None:
            for bar, p in zip(kp.bars, kp.p_up, strict=True):
                if p == p:
                    made.append(bar.open_time + TIMEFRAME_MS[tf])
                    p_up.append(p)
        if not made:
            continue
        made_at = np.array(made, dtype=np.int64)
        idx = np.searchsorted(made_at, times, side="right") - 1
        known = idx >= 0
        safe = np.where(known, idx, 0)
        fresh = known & (made_at[safe] <= times) & (times < made_at[safe] + TIMEFRAME_MS[tf])
        p = np.array(p_up)[safe]
        num = num + np.where(fresh, w * p, 0.0)
        total = total + np.where(fresh, w, 0.0)
        used += fresh
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where((used > 0) & (total > 0), num / total, np.nan)
    return SymbolMix(times, raw.tolist(), used.tolist())
