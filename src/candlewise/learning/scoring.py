"""Scoring each model's predictions as their outcomes become known.

A model's prediction at a candle close is about that timeframe's next candle; when that candle
closes, the prediction was right or wrong. That per-candle error stream is what the drift
monitor watches (in both modes: a model keeps being scored while the symbol is in LEARNING).
"""

from __future__ import annotations

from dataclasses import dataclass

from candlewise.core.candle import Candle
from candlewise.signals.aggregate import TimeframePrediction


@dataclass(frozen=True)
class ScoredPrediction:
    symbol: str
    timeframe: str
    correct: bool
    at_ms: int


class PredictionScorer:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], tuple[TimeframePrediction, float]] = {}

    def resolve(self, candle: Candle) -> ScoredPrediction | None:
        """Judge the prediction made at the previous close of ``candle``'s timeframe."""
        pending = self._pending.pop((candle.symbol, candle.timeframe), None)
        if pending is None:
            return None
        prediction, reference_close = pending
        if prediction.valid_until != candle.close_time:  # a gap: the outcome is not this candle
            return None
        went_up = candle.close > reference_close
        return ScoredPrediction(
            candle.symbol, candle.timeframe, (prediction.p_up >= 0.5) == went_up, candle.close_time
        )

    def expect(self, prediction: TimeframePrediction, close: float) -> None:
        """Remember a fresh prediction and the close it is measured from."""
        self._pending[(prediction.symbol, prediction.timeframe)] = (prediction, close)
