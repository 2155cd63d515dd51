"""Walk-forward evaluation: out-of-sample by construction, and honest on the simulated market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from candlewise.evaluation.scores import score
from candlewise.evaluation.walk_forward import (
    WalkForwardConfig,
    aggregate_walk_forward,
    walk_forward_timeframe,
)
from candlewise.market.aggregation import aggregate_frame
from candlewise.market.simulated import market_at
from candlewise.models.trainer import TrainingConfig

DAY0 = 1_735_689_600_000
CFG = WalkForwardConfig(max_samples=6000, blocks=4, training=TrainingConfig())


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    series = market_at(["BTC/USDT"], 7, DAY0).generate(12 * 1440)["BTC/USDT"]
    return series.to_frame()


def test_predictions_never_depend_on_the_future(minutes: pd.DataFrame) -> None:
    frame = aggregate_frame(minutes.drop(columns="regime"), "15m")
    base = walk_forward_timeframe(frame, "15m", CFG)
    altered = frame.copy()
    cut = len(frame) - 150
    altered.loc[cut:, ["open", "high", "low", "close"]] *= 1.5  # rewrite the last 150 candles
    other = walk_forward_timeframe(altered, "15m", CFG)
    last_unaltered_close = int(frame["timestamp"].iloc[cut - 1]) + 15 * 60_000
    known = base.close_times <= last_unaltered_close
    assert known.sum() > 400
    # every prediction made before the rewritten stretch is bit-identical ...
    np.testing.assert_array_equal(base.p_up[known], other.p_up[known])
    # ... and the rewrite is visible after it (the comparison above can fail)
    assert not np.array_equal(base.p_up[~known], other.p_up[~known])
    assert base.retrains == 4 and len(base.p_up) == len(base.y)


def test_models_find_the_simulated_trends_and_stay_calibrated(minutes: pd.DataFrame) -> None:
    frame = minutes.drop(columns="regime")
    results = {"1m": walk_forward_timeframe(frame, "1m", CFG)}
    one = results["1m"].score
    assert one.accuracy > one.majority_baseline + 0.02  # the trend regimes are learnable
    assert one.ece < 0.05
    # confident 1m predictions come from trend regimes, where the direction is predictable
    regimes = minutes["regime"].to_numpy()
    close_times = minutes["timestamp"].to_numpy() + 60_000
    at = np.searchsorted(close_times, results["1m"].close_times)
    conf = np.maximum(results["1m"].p_up, 1 - results["1m"].p_up)
    confident = conf >= 0.7
    assert confident.sum() > 100
    assert (regimes[at][confident] == "trend").mean() > 0.6
    assert (regimes[at][~confident] == "trend").mean() < 0.3


def test_aggregate_is_calibrated_on_events_it_was_not_fitted_on(minutes: pd.DataFrame) -> None:
    frame = minutes.drop(columns="regime")
    results = {tf: walk_forward_timeframe(aggregate_frame(frame, tf) if tf != "1m" else frame,
                                          tf, CFG) for tf in ("1m", "5m", "15m")}  # fmt: skip
    agg = aggregate_walk_forward(results, {"1m": 0.2, "5m": 0.3, "15m": 0.5}, CFG, "BTC/USDT")
    assert agg.events > 1000
    assert agg.calibrated.ece < 0.05
    assert agg.calibrated.accuracy > agg.calibrated.majority_baseline
    assert set(agg.by_timeframe) == {"1m", "5m", "15m"}


def test_too_short_a_series_is_skipped_with_the_reason() -> None:
    frame = market_at(["ETH/USDT"], 1, DAY0).generate(200)["ETH/USDT"].to_frame()
    result = walk_forward_timeframe(frame.drop(columns="regime"), "1m", CFG)
    assert result.skipped == "200 candles; at least 232 needed"


def test_score_counts_and_thresholds() -> None:
    s = score(np.array([0.9, 0.8, 0.3, 0.55]), np.array([1.0, 0.0, 0.0, 1.0]))
    assert s.predictions == 4 and s.accuracy == 0.75 and s.majority_baseline == 0.5
    by = {t.threshold: (t.count, t.accuracy) for t in s.by_confidence}
    assert by[0.55] == (4, 0.75) and by[0.7] == (3, pytest.approx(2 / 3)) and by[0.8] == (2, 0.5)
