"""Predictions and aggregated signals of a whole block of minutes, computed column-wise.

The event path asks ``LivePredictor.on_close`` for one prediction per closed candle and
``SignalAggregator.signal`` for the weighted mix of the fresh ones; here both are computed for
every close of a block at once, by the same objects, with the same numbers:

- each (symbol, timeframe)'s P(up) comes from ``LivePredictor.predict_closes``: the one
  ``predict_block`` call over the block's closes that the event path's read-ahead makes too
  (same window, same model, same chunks);
- the raw mix at each minute comes from ``SignalAggregator.raw_p_up_columns``, the column form
  of ``raw_p_up`` (same freshness rule, same summation order, same float);
- the per-event-timeframe calibration is left to the caller, with the scalar ``apply_one``.

The predictor's own state (windows, latest predictions, the scorer's pending judgement) is
advanced to the end of the block, as if every close had gone through ``on_close``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES
from candlewise.engine.replay.block_aggregation import SymbolBlock
from candlewise.learning.scoring import PredictionScorer
from candlewise.market.bars import Bars
from candlewise.signals.block_predictor import CandleColumns
from candlewise.signals.live import LivePredictor


@dataclass(frozen=True, slots=True)
class KeyPredictions:
    """One (symbol, timeframe)'s closes in the block and their P(up) (NaN: no prediction)."""

    bars: Bars
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
    for block in blocks:
        for tf, bars in (("1m", block.minutes), *block.higher.items()):
            columns = CandleColumns(bars.open_ms.astype(np.float64), *bars.columns()[1:])
            p_up, version = predictor.predict_closes(block.symbol, tf, columns)
            out[(block.symbol, tf)] = KeyPredictions(bars, p_up.tolist(), version)
    return out


def advance_latest(
    predictor: LivePredictor,
    scorer: PredictionScorer,
    keys: dict[tuple[str, str], KeyPredictions],
) -> None:
    """Leave the aggregator's latest predictions and the scorer's pending ones as the event
    path leaves them after the block: each key's last prediction made (if any)."""
    for (symbol, timeframe), kp in keys.items():
        last = predictor.record_last(symbol, timeframe, kp.bars.open_ms, kp.p_up, kp.version)
        if last is not None and last[0] == len(kp.p_up) - 1:
            scorer.expect(last[1], float(kp.bars.close[-1]))


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
    new = {
        tf: (kp.bars.open_ms + TIMEFRAME_MS[tf], np.array(kp.p_up))
        for tf in TIMEFRAMES
        if (kp := keys.get((symbol, tf))) is not None
    }
    raw, used = predictor.aggregator.raw_p_up_columns(symbol, times, new)
    return SymbolMix(times, raw.tolist(), used.tolist())
