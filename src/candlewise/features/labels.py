"""Labels (direction of the next candle) and the training matrix that pairs them with features.

The model at candle ``t``'s close predicts candle ``t + 1``: BUY if it closes above candle
``t``'s close, SELL otherwise. A tie (unchanged close) is labelled 0 (SELL): a trade entered on an
unchanged price loses the fees, so "not up" is the right side for the BUY decision; ties are rare
on 1m data and rarer above.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlewise.features.compute import compute_features
from candlewise.features.spec import FEATURE_SPEC


def next_direction(close: np.ndarray) -> np.ndarray:
    """1.0 where ``close[t + 1] > close[t]`` (UP, BUY), else 0.0 (DOWN or tie, SELL).

    The last row is NaN: its next candle has not closed yet, so it has no label. A row whose
    close or next close is NaN is NaN too (unknown, not SELL).
    """
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"close must be one-dimensional, got shape {c.shape}")
    y = np.full(c.size, np.nan)
    if c.size > 1:
        cur, nxt = c[:-1], c[1:]
        known = ~(np.isnan(cur) | np.isnan(nxt))
        y[:-1] = np.where(known, (nxt > cur).astype(np.float64), np.nan)
    return y


def _labelled(frame: pd.DataFrame, timeframe: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All rows of ``frame`` with finite features and a label, chronological."""
    x = compute_features(frame, timeframe)
    y = next_direction(frame["close"].to_numpy(dtype=np.float64))
    keep = np.isfinite(x).all(axis=1) & ~np.isnan(y)
    times = frame["timestamp"].to_numpy(dtype=np.int64)
    return x[keep], y[keep], times[keep]


def training_matrix(
    frame: pd.DataFrame, timeframe: str, max_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, open_times)`` of the rows that have both features and a label, chronological.

    ``X`` is (rows, F) float64, ``y`` 0.0/1.0 (``next_direction``), ``open_times`` the int64 open
    times (ms) of the candles the features describe; the label is about the candle after each.
    Warm-up rows (no full window) and the last row (no next candle) are dropped, as are rows made
    NaN by bad input. ``max_samples`` keeps the most recent ones; only their windows are computed
    then, since features depend on their own window alone (same values up to ~1e-16).
    """
    if max_samples is not None and max_samples < 0:
        raise ValueError(f"max_samples must be >= 0 or None, got {max_samples}")
    if max_samples is None:
        return _labelled(frame, timeframe)
    # The last max_samples labelled rows end at n - 2 and each reads window - 1 earlier candles.
    first = max(0, len(frame) - max_samples - FEATURE_SPEC.window)
    x, y, times = _labelled(frame.iloc[first:] if first else frame, timeframe)
    if len(y) < max_samples and first:  # bad rows in the tail: fall back to the whole history
        x, y, times = _labelled(frame, timeframe)
    start = max(0, len(y) - max_samples)
    return x[start:], y[start:], times[start:]
