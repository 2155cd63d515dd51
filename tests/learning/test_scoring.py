"""A prediction is judged when its own next candle closes, and only then."""

from __future__ import annotations

from candlewise.core.candle import Candle
from candlewise.learning.scoring import PredictionScorer
from candlewise.signals.aggregate import TimeframePrediction

T = 1_735_689_600_000


def candle(open_time: int, close: float, tf: str = "5m") -> Candle:
    return Candle("BTC/USDT", tf, open_time, 100.0, 101.0, 99.0, close, 1.0)


def test_prediction_is_judged_on_the_next_candle() -> None:
    scorer = PredictionScorer()
    first = candle(T, 100.0)
    assert scorer.resolve(first) is None  # nothing was predicted yet
    scorer.expect(TimeframePrediction("BTC/USDT", "5m", first.close_time, 0.7), first.close)
    scored = scorer.resolve(candle(T + 300_000, 100.5))
    assert scored is not None and scored.correct and scored.at_ms == T + 600_000
    scorer.expect(TimeframePrediction("BTC/USDT", "5m", T + 600_000, 0.7), 100.5)
    wrong = scorer.resolve(candle(T + 600_000, 100.5))  # unchanged close: not up
    assert wrong is not None and not wrong.correct


def test_a_gap_leaves_the_prediction_unjudged() -> None:
    scorer = PredictionScorer()
    scorer.expect(TimeframePrediction("BTC/USDT", "1m", T + 60_000, 0.2), 100.0)
    assert scorer.resolve(candle(T + 5 * 60_000, 99.0, "1m")) is None  # minutes were missing
