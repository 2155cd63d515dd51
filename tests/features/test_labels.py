"""Labels (next-candle direction, ties are SELL) and the training matrix built from them."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from candlewise.features import FEATURE_SPEC, compute_features, next_direction, training_matrix
from candlewise.market.simulated import SimulatedMarket

START = 1_717_200_000_000
W = FEATURE_SPEC.window
F = len(FEATURE_SPEC.names)
NAN = np.nan


@cache
def candles(rows: int) -> pd.DataFrame:
    """Simulated 1m candles; callers must not modify the cached frame."""
    series = SimulatedMarket(["ETH/USDT"], seed=2, start_ms=START).generate(rows)["ETH/USDT"]
    return series.to_frame().drop(columns="regime")


def test_next_direction_on_a_hand_made_series() -> None:
    close = np.array([100.0, 101.0, 101.0, 100.5, 102.0, 101.0])
    # up, tie (SELL), down, up, down, no next candle
    expected = np.array([1.0, 0.0, 0.0, 1.0, 0.0, NAN])
    y = next_direction(close)
    assert y.dtype == np.float64
    assert np.array_equal(y, expected, equal_nan=True)


def test_next_direction_edges() -> None:
    assert next_direction(np.array([])).shape == (0,)
    assert np.isnan(next_direction(np.array([5.0]))).all()
    y = next_direction(np.array([1.0, NAN, 2.0, 3.0]))
    assert np.array_equal(y, [NAN, NAN, 1.0, NAN], equal_nan=True)  # unknown, not SELL
    assert np.array_equal(next_direction([3, 2, 4]), [0.0, 1.0, NAN], equal_nan=True)
    with pytest.raises(ValueError):
        next_direction(np.ones((2, 2)))


def test_training_matrix_drops_warm_up_and_the_last_row() -> None:
    frame = candles(300)
    x, y, times = training_matrix(frame, "1m")
    ts = frame["timestamp"].to_numpy()
    assert x.shape == (300 - W, F) and y.shape == times.shape == (300 - W,)
    assert times.dtype == np.int64 and np.array_equal(times, ts[W - 1 : -1])
    assert np.all(np.diff(times) > 0)
    assert np.array_equal(x, compute_features(frame, "1m")[W - 1 : -1])
    assert np.array_equal(y, next_direction(frame["close"].to_numpy())[W - 1 : -1])
    assert np.isfinite(x).all() and set(np.unique(y)) <= {0.0, 1.0}


def test_training_matrix_keeps_the_most_recent_max_samples() -> None:
    frame = candles(300)
    x_all, y_all, t_all = training_matrix(frame, "1m")
    for k in (1, 10, 100, 300 - W):
        x, y, times = training_matrix(frame, "1m", max_samples=k)
        assert len(x) == len(y) == len(times) == k
        assert np.array_equal(times, t_all[-k:]) and np.array_equal(y, y_all[-k:])
        assert np.abs(x - x_all[-k:]).max() <= 1e-12  # computed from the tail only
    x, y, times = training_matrix(frame, "1m", max_samples=10_000)
    assert np.array_equal(times, t_all)
    x, y, times = training_matrix(frame, "1m", max_samples=0)
    assert x.shape == (0, F) and y.shape == times.shape == (0,)
    with pytest.raises(ValueError):
        training_matrix(frame, "1m", max_samples=-1)


def test_training_matrix_on_too_little_history_is_empty() -> None:
    for rows in (0, 5, W):  # W rows: the one complete row is the last, which has no label
        x, y, times = training_matrix(candles(300).iloc[:rows], "1h")
        assert x.shape == (0, F) and y.shape == times.shape == (0,)
    x, _, _ = training_matrix(candles(300).iloc[: W + 1], "1h")
    assert x.shape == (1, F)


def test_training_matrix_skips_bad_rows_and_still_fills_max_samples() -> None:
    frame = candles(300).copy()
    frame.loc[frame.index[280], "close"] = NAN  # a bad candle inside the most recent rows
    x, y, times = training_matrix(frame, "1m", max_samples=100)
    assert len(times) == 100 and np.all(np.diff(times) > 0)
    assert np.isfinite(x).all() and not np.isnan(y).any()
    bad = frame["timestamp"].iloc[279:281].to_numpy()
    assert not np.isin(bad, times).any()  # the label of 279 and every window holding 280
