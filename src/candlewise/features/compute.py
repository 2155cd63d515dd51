"""Features of closed candles: one implementation for training (whole history) and live (one row).

Row ``t`` of the feature matrix describes the market when candle ``t`` has just closed, and uses
only candles ``t - 30 .. t`` (``FEATURE_SPEC.window`` = 31 candles); earlier rows are NaN. All
features are scale-free (log returns, ratios, z-scores, bounded oscillators), so a model trained
on one price level or symbol still sees familiar inputs on another. With ``c`` close, ``o`` open,
``h`` high, ``l`` low, ``v`` volume and ``r_j = log(c_j / c_{j-1})``:

=================  ===========================================================================
ret_k (k=1,2,3,    ``log(c_t / c_{t-k})``: momentum / reversal over k candles.
5,10,20)
vol_10, vol_30     population std of ``r`` over the last 10 / 30 candles: realised volatility.
range              ``(h_t - l_t) / c_t``: the candle's own volatility.
range_mean_10      mean of ``range`` over the last 10 candles.
volume_z_30        z-score of ``log(v_t + f)`` among the last 30 candles, ``f`` = 1e-3 x their
                   mean volume, so a zero-volume candle is a finite outlier (about -5), not -inf;
                   0 when the window has no volume or (almost) constant volume (std < 1e-6).
body               ``(c_t - o_t) / (h_t - l_t)`` in [-1, 1]; 0 for a flat candle (h == l).
rsi_14             RSI(14) with simple averages, scaled to [-1, 1]:
                   ``(gains - losses) / (gains + losses)`` of the last 14 close changes, i.e.
                   ``(c_t - c_{t-14}) / sum |c_j - c_{j-1}|``; 0 when the price did not move.
stoch_k_14         stochastic %K(14) scaled to [-1, 1]: ``2 (c_t - LL) / (HH - LL) - 1`` with
                   HH/LL the highest high / lowest low of the last 14 candles; 0 when HH == LL.
close_sma_20       ``log(c_t / SMA20)`` of closes.
sma_10_30          ``log(SMA10 / SMA30)`` of closes: trend of the moving averages.
tod_sin, tod_cos   sin/cos of 2 pi x (time of day of candle t's *open* time, UTC) / 24 h.
dow_sin, dow_cos   sin/cos of 2 pi x (day of week of the open time, Monday = 0) / 7.
sentiment_score,   reserved for news sentiment (a later issue); always 0 for now, but part of
sentiment_volume   the spec so models trained today keep their input layout.
=================  ===========================================================================

Live/batch agreement: every feature is a function of the ``window`` candles alone, computed with
elementwise operations and reductions over fixed-length windows (no cumulative sums, no EMAs), so
``latest_features`` on the last 31 candles equals ``compute_features``' last row up to summation
order (~1e-16; bitwise equal on the data tested), whatever history precedes it. Both call
``feature_rows``.

Rows are consecutive candles: a gap in the data is not detected here. Prices must be positive and
volumes >= 0, as candle validation guarantees upstream; NaN inputs propagate to the rows whose
window holds them. ``body``, ``rsi_14`` and ``stoch_k_14`` are clipped to [-1, 1] so a candle with
a close outside its own high/low cannot produce an extreme input.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from candlewise.core.timeframes import timeframe_ms
from candlewise.features.spec import FEATURE_SPEC

_COLUMNS: Final = ("timestamp", "open", "high", "low", "close", "volume")
_WINDOW: Final = FEATURE_SPEC.window
_N_FEATURES: Final = len(FEATURE_SPEC.names)
#: Batch rows per ``feature_rows`` call: keeps the (rows x 31) temporaries (~1 MB) in cache
#: (fastest of 2k..64k); the result does not depend on it: every row uses only its own window.
CHUNK: Final = 4_096
_LAGS: Final = (1, 2, 3, 5, 10, 20)
_DAY_MS: Final = 86_400_000.0
_EPOCH_WEEKDAY: Final = 3.0  # 1970-01-01 was a Thursday (Monday = 0)
_VOLUME_FLOOR: Final = 1e-3
_MIN_LOG_VOLUME_STD: Final = 1e-6
#: Denominator floor for ratios whose numerator is 0 whenever the denominator is (flat candles).
_TINY: Final = float(np.finfo(np.float64).tiny)

_col = FEATURE_SPEC.names.index
_RET: Final = slice(_col("ret_1"), _col("ret_20") + 1)
_VOL_10, _VOL_30 = _col("vol_10"), _col("vol_30")
_RANGE, _RANGE_MEAN_10 = _col("range"), _col("range_mean_10")
_VOLUME_Z_30, _BODY = _col("volume_z_30"), _col("body")
_RSI_14, _STOCH_K_14 = _col("rsi_14"), _col("stoch_k_14")
_BOUNDED: Final = slice(_BODY, _STOCH_K_14 + 1)  # clipped to [-1, 1] in one operation
_CLOSE_SMA_20, _SMA_10_30 = _col("close_sma_20"), _col("sma_10_30")
_TOD_SIN, _TOD_COS = _col("tod_sin"), _col("tod_cos")
_DOW_SIN, _DOW_COS = _col("dow_sin"), _col("dow_cos")
_SENTIMENT: Final = slice(_col("sentiment_score"), _col("sentiment_volume") + 1)
# Columns written as one slice must be adjacent in the spec, in this order: fail at import.
if (
    FEATURE_SPEC.names[_RET] != tuple(f"ret_{k}" for k in _LAGS)
    or FEATURE_SPEC.names[_BOUNDED] != ("body", "rsi_14", "stoch_k_14")
    or FEATURE_SPEC.names[_SENTIMENT] != ("sentiment_score", "sentiment_volume")
):
    raise RuntimeError("FEATURE_SPEC.names order does not match the slices in compute.py")
#: Column of each lagged close in a 31-wide window of log closes ending at the row.
_LAG_COLUMNS: Final = np.array([_WINDOW - 1 - k for k in _LAGS])
_COLUMN_INDEX: Final = pd.Index(_COLUMNS)


def _windows(x: np.ndarray, k: int, m: int) -> np.ndarray:
    """The last ``m`` length-``k`` windows of contiguous float64 ``x`` as an (m, k) view.

    Row ``i`` is ``x[s + i : s + i + k]`` with ``s = x.size - m - k + 1``. Built with the
    ``ndarray`` constructor (bounds-checked by numpy) because ``as_strided`` and
    ``sliding_window_view`` cost 2.5-8 us per call, which matters on the live path.
    """
    start = x.size - m - k + 1
    if start < 0:
        raise ValueError(f"{x.size} values cannot hold {m} windows of {k}")
    return np.ndarray((m, k), dtype=np.float64, buffer=x, offset=start * 8, strides=(8, 8))


def _std(x: np.ndarray) -> np.ndarray:
    """Population std of each row, two-pass (stable for returns whose mean is ~0)."""
    k = x.shape[1]
    dev = x - (x.sum(axis=1) / k)[:, None]
    return np.sqrt((dev * dev).sum(axis=1) / k)


def feature_rows(
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    m: int,
) -> np.ndarray:
    """Features of the last ``m`` rows of the given contiguous float64 columns, shape (m, F).

    The columns must hold exactly ``m + window - 1`` candles. This is the only feature code:
    batch calls it per ``CHUNK`` rows, live and the block predictor with any ``m``. Written for
    few numpy calls (each costs ~0.5 us on the live path whatever ``m`` is), so some features
    share one operation.
    """
    n = c.size
    if n != m + _WINDOW - 1:
        raise ValueError(f"{m} rows need {m + _WINDOW - 1} candles, got {n}")
    rows = slice(n - m, n)
    out = np.full((m, _N_FEATURES), np.nan)  # NaN, so a column left unwritten cannot pass tests
    _returns(out, c, m)
    _candle_shape(out, o, h, lo, c, rows, m)
    _volume_z(out, v, m)
    _oscillators(out, h, lo, c, rows, m)
    _averages(out, c, rows, m)
    _calendar(out, ts[rows])
    out[:, _SENTIMENT] = 0.0
    return out


def _returns(out: np.ndarray, c: np.ndarray, m: int) -> None:
    """``ret_k``, ``vol_10`` and ``vol_30``: from one window of log closes."""
    log_close = np.log(c)
    log_windows = _windows(log_close, _WINDOW, m)
    out[:, _RET] = log_windows[:, -1:] - log_windows[:, _LAG_COLUMNS]
    ret_windows = _windows(log_close[1:] - log_close[:-1], 30, m)
    out[:, _VOL_10] = _std(ret_windows[:, 20:])
    out[:, _VOL_30] = _std(ret_windows)


def _candle_shape(
    out: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    rows: slice,
    m: int,
) -> None:
    """``range``, ``range_mean_10`` and ``body`` (clipped later with the other bounded ones)."""
    hl = h - lo
    rng = hl / c
    out[:, _RANGE] = rng[rows]
    out[:, _RANGE_MEAN_10] = _windows(rng, 10, m).sum(axis=1) / 10
    # A flat candle (h == l) has c == o: 0 / tiny = 0. Bad data (c outside [l, h]) is clipped.
    out[:, _BODY] = (c[rows] - o[rows]) / np.maximum(hl[rows], _TINY)


def _volume_z(out: np.ndarray, v: np.ndarray, m: int) -> None:
    """``volume_z_30``: z-score of the floored log volume among the last 30 candles."""
    vol_windows = _windows(v, 30, m)
    floor = np.maximum(vol_windows.sum(axis=1) * (_VOLUME_FLOOR / 30), _TINY)
    log_volume = np.log(vol_windows + floor[:, None])
    log_volume -= (log_volume.sum(axis=1) / 30)[:, None]
    spread = np.sqrt((log_volume * log_volume).sum(axis=1) / 30)
    # Below the threshold the std is rounding noise: |last| <= sqrt(30) * spread, so the ratio
    # stays finite and the mask makes it 0.
    out[:, _VOLUME_Z_30] = (
        log_volume[:, -1] / np.maximum(spread, _MIN_LOG_VOLUME_STD) * (spread > _MIN_LOG_VOLUME_STD)
    )


def _oscillators(
    out: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, rows: slice, m: int
) -> None:
    """``rsi_14`` and ``stoch_k_14``, then every bounded feature clipped to [-1, 1] at once."""
    n = c.size
    c_t = c[rows]
    # |c_t - c_{t-14}| <= path, and path == 0 only if the price did not move (then 0 / tiny = 0).
    path = _windows(np.abs(c[1:] - c[:-1]), 14, m).sum(axis=1)
    out[:, _RSI_14] = (c_t - c[n - m - 14 : n - 14]) / np.maximum(path, _TINY)
    highest = np.maximum.reduce(_windows(h, 14, m), axis=1)
    lowest = np.minimum.reduce(_windows(lo, 14, m), axis=1)
    # 2 %K - 1 = (2c - HH - LL) / (HH - LL): 0 (the middle) when HH == LL == c.
    out[:, _STOCH_K_14] = (2.0 * c_t - highest - lowest) / np.maximum(highest - lowest, _TINY)
    bounded = out[:, _BOUNDED]
    np.minimum(np.maximum(bounded, -1.0, out=bounded), 1.0, out=bounded)


def _averages(out: np.ndarray, c: np.ndarray, rows: slice, m: int) -> None:
    """``close_sma_20`` and ``sma_10_30``: the three sums from one window of closes."""
    close_windows = _windows(c, 30, m)
    sum_10 = close_windows[:, 20:].sum(axis=1)
    sum_20 = close_windows[:, 10:].sum(axis=1)
    sum_30 = close_windows.sum(axis=1)
    out[:, _CLOSE_SMA_20] = np.log(c[rows] * 20.0 / sum_20)
    out[:, _SMA_10_30] = np.log(sum_10 * 3.0 / sum_30)


def _calendar(out: np.ndarray, t: np.ndarray) -> None:
    """Time of day and day of week of the open times ``t`` (exact integers below 2**53, so
    ``%`` and ``/`` are exact too)."""
    ms_of_day = t % _DAY_MS
    day_angle = ms_of_day * (2.0 * np.pi / _DAY_MS)
    out[:, _TOD_SIN] = np.sin(day_angle)
    out[:, _TOD_COS] = np.cos(day_angle)
    week_angle = ((t - ms_of_day) / _DAY_MS + _EPOCH_WEEKDAY) % 7.0 * (2.0 * np.pi / 7.0)
    out[:, _DOW_SIN] = np.sin(week_angle)
    out[:, _DOW_COS] = np.cos(week_angle)


def _check_columns(frame: pd.DataFrame) -> None:
    """Raise a ValueError naming the missing candle columns, if any."""
    missing = [name for name in _COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(
            f"candle frame lacks column(s) {', '.join(missing)}; need {', '.join(_COLUMNS)}"
        )


def compute_features(frame: pd.DataFrame, timeframe: str) -> np.ndarray:
    """Feature matrix (len(frame), F) float64 of one timeframe's ascending candles.

    Row ``t`` uses candles ``0..t`` only (in fact ``t - window + 1 .. t``); rows
    ``t < window - 1`` are NaN. ``timeframe`` is validated; features are defined identically
    for every timeframe (one model per timeframe learns what they mean there).
    """
    timeframe_ms(timeframe)
    _check_columns(frame)
    n = len(frame)
    out = np.full((n, _N_FEATURES), np.nan)
    cols = [np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64)) for name in _COLUMNS]
    for start in range(_WINDOW - 1, n, CHUNK):
        end = min(n, start + CHUNK)
        first = start - _WINDOW + 1
        out[start:end] = feature_rows(*(col[first:end] for col in cols), end - start)
    return out


def latest_features(frame_tail: pd.DataFrame, timeframe: str) -> np.ndarray:
    """Features (F,) of the last candle of ``frame_tail``, from its last ``window`` rows only.

    The live path: call it when a candle closes, with at least the last ``FEATURE_SPEC.window``
    candles (more are allowed and ignored; passing exactly ``window`` rows is fastest). Equals
    the last row of ``compute_features`` on any longer history up to summation order (~1e-16);
    all NaN when fewer than ``window`` candles are given, like the warm-up rows of the batch.
    """
    timeframe_ms(timeframe)
    n = len(frame_tail)
    if n < _WINDOW:
        _check_columns(frame_tail)
        return np.full(_N_FEATURES, np.nan)
    tail = frame_tail.iloc[n - _WINDOW :] if n > _WINDOW else frame_tail
    if tail.columns.equals(_COLUMN_INDEX):  # the usual layout: one conversion, no lookups
        values = tail.to_numpy(dtype=np.float64)
    else:
        _check_columns(tail)
        values = tail[list(_COLUMNS)].to_numpy(dtype=np.float64)
    ts, o, h, lo, c, v = np.ascontiguousarray(values.T)
    return feature_rows(ts, o, h, lo, c, v, 1)[0]


def window_features(
    timestamp: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> np.ndarray:
    """Features (F,) of the last of exactly ``window`` candles given as float64 columns.

    The live path without pandas (a DataFrame costs more to build than the features do): the
    same ``feature_rows`` code as ``compute_features``, so the result equals its last row.
    """
    if close.size != _WINDOW:
        raise ValueError(f"need exactly {_WINDOW} candles, got {close.size}")
    return feature_rows(timestamp, open_, high, low, close, volume, 1)[0]
