"""Features: no lookahead, live == batch, guards, a naive reference, the spec, simulator signal."""

from __future__ import annotations

import math
import os
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candlewise.core.timeframes import TIMEFRAMES
from candlewise.features import (
    FEATURE_SPEC,
    FeatureSpec,
    compute_features,
    latest_features,
    next_direction,
)
from candlewise.market.aggregation import aggregate_frame
from candlewise.market.simulated import TREND, SimulatedMarket

START = 1_717_200_000_000  # 2024-06-01 00:00 UTC, a Saturday
W = FEATURE_SPEC.window
F = len(FEATURE_SPEC.names)
COL = {name: i for i, name in enumerate(FEATURE_SPEC.names)}
PRICES = ["open", "high", "low", "close"]


def shared_dir() -> Path:
    """``CANDLEWISE_SHARED`` or ``shared`` next to the repository (it may be absent)."""
    env = os.environ.get("CANDLEWISE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


CANDLES = shared_dir() / "data" / "candles"
needs_shared = pytest.mark.skipif(not CANDLES.is_dir(), reason=f"{CANDLES} is absent")


@cache
def simulated(days: float, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """1m candles and ground-truth regimes; callers must not modify the cached frame."""
    minutes = round(days * 1440)
    series = SimulatedMarket(["BTC/USDT"], seed=seed, start_ms=START).generate(minutes)
    s = series["BTC/USDT"]
    return s.to_frame().drop(columns="regime"), s.regime


def with_quirks(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with zero-volume candles, flat candles and a 40-candle flat, volumeless outage."""
    out = frame.copy()
    n = len(out)
    close = out["close"].to_numpy()
    out.loc[out.index[::17], "volume"] = 0.0
    for i in list(range(23, n, 23)) + list(range(n // 3, min(n, n // 3 + 40))):
        out.loc[out.index[i], PRICES] = close[i - 1]
        close = out["close"].to_numpy()
    out.loc[out.index[n // 3 : n // 3 + 40], "volume"] = 0.0
    return out


@cache
def quirky(rows: int) -> pd.DataFrame:
    return with_quirks(simulated(1)[0].iloc[:rows].reset_index(drop=True))


@cache
def quirky_features(rows: int) -> np.ndarray:
    return compute_features(quirky(rows), "1m")


def assert_rows_equal(a: np.ndarray, b: np.ndarray, tol: float = 1e-12) -> None:
    """Equal within ``tol`` (absolute), NaN where the other is NaN."""
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    both = ~np.isnan(a)
    assert np.all(np.abs(a[both] - b[both]) <= tol), np.abs(a[both] - b[both]).max()


# -- shape, warm-up, guards --------------------------------------------------------------------


def test_shape_warm_up_and_finite_afterwards() -> None:
    frame = quirky(1440)
    x = quirky_features(1440)
    assert x.shape == (len(frame), F) and x.dtype == np.float64
    assert F == len(FEATURE_SPEC.names) == 22
    assert np.isnan(x[: W - 1]).all()
    assert np.isfinite(x[W - 1 :]).all()
    assert (x[:, [COL["sentiment_score"], COL["sentiment_volume"]]][W - 1 :] == 0).all()


def test_flat_volumeless_outage_gives_neutral_finite_features() -> None:
    """Deep inside the 40-candle outage every window is flat and has no volume."""
    x = quirky_features(1440)
    row = x[1440 // 3 + 39]
    for name in FEATURE_SPEC.names:
        if not name.startswith(("tod_", "dow_")):
            assert abs(row[COL[name]]) <= 1e-12, name  # SMAs of equal closes round a bit


def test_short_and_empty_frames() -> None:
    frame = simulated(1)[0]
    assert compute_features(frame.iloc[:0], "5m").shape == (0, F)
    assert np.isnan(compute_features(frame.iloc[: W - 1], "5m")).all()
    assert np.isfinite(compute_features(frame.iloc[:W], "5m")[-1]).all()
    assert np.isnan(latest_features(frame.iloc[: W - 1], "5m")).all()
    assert latest_features(frame.iloc[: W - 1], "5m").shape == (F,)


def test_bad_input_is_rejected() -> None:
    frame = simulated(1)[0].iloc[:100]
    with pytest.raises(ValueError, match="timeframe"):
        compute_features(frame, "2m")
    with pytest.raises(ValueError, match="timeframe"):
        latest_features(frame, "2m")
    with pytest.raises(ValueError, match="volume"):
        compute_features(frame.drop(columns="volume"), "1m")
    with pytest.raises(ValueError, match="volume"):
        latest_features(frame.drop(columns="volume"), "1m")


def test_features_are_scale_free() -> None:
    """Prices x 1000 and volume / 1000 (another symbol's scale) give the same features."""
    frame = quirky(600)
    scaled = frame.copy()
    scaled[PRICES] *= 1000.0
    scaled["volume"] /= 1000.0
    assert_rows_equal(compute_features(scaled, "1m"), quirky_features(600)[:600], tol=1e-9)


def test_time_features_use_the_open_time_in_utc() -> None:
    frame = simulated(3)[0]
    x = compute_features(frame, "1m")
    monday_6am = START + (2 * 24 + 6) * 3_600_000  # 2024-06-03 06:00 UTC
    row = x[int(np.flatnonzero(frame["timestamp"].to_numpy() == monday_6am)[0])]
    assert row[COL["tod_sin"]] == pytest.approx(1.0) and abs(row[COL["tod_cos"]]) < 1e-12
    assert row[COL["dow_sin"]] == 0.0 and row[COL["dow_cos"]] == 1.0  # Monday
    saturday = x[W - 1]  # START is a Saturday (weekday 5)
    assert saturday[COL["dow_sin"]] == pytest.approx(math.sin(2 * math.pi * 5 / 7))


# -- the definitions, against a slow obvious implementation ------------------------------------


def reference_row(f: pd.DataFrame, t: int) -> dict[str, float]:
    """The documented definitions, written plainly for one row (no guards needed here)."""
    c, o, h, lo, v = (f[k].to_numpy()[t - W + 1 : t + 1] for k in ("close", *PRICES[:3], "volume"))
    r = np.diff(np.log(c))
    lv = np.log(v[-30:] + 1e-3 * v[-30:].mean())
    ts = int(f["timestamp"].iloc[t])
    day, weekday = (ts % 86_400_000) / 86_400_000, ((ts // 86_400_000) + 3) % 7
    ref = {f"ret_{k}": math.log(c[-1] / c[-1 - k]) for k in (1, 2, 3, 5, 10, 20)}
    ref |= {"vol_10": float(np.std(r[-10:])), "vol_30": float(np.std(r[-30:]))}
    ref |= {
        "range": (h[-1] - lo[-1]) / c[-1],
        "range_mean_10": float(np.mean((h - lo)[-10:] / c[-10:])),
        "volume_z_30": float((lv[-1] - lv.mean()) / lv.std()),
        "body": (c[-1] - o[-1]) / (h[-1] - lo[-1]),
        "rsi_14": float(np.diff(c)[-14:].sum() / np.abs(np.diff(c)[-14:]).sum()),
        "stoch_k_14": 2 * (c[-1] - lo[-14:].min()) / (h[-14:].max() - lo[-14:].min()) - 1,
        "close_sma_20": math.log(c[-1] / c[-20:].mean()),
        "sma_10_30": math.log(c[-10:].mean() / c[-30:].mean()),
        "tod_sin": math.sin(2 * math.pi * day),
        "tod_cos": math.cos(2 * math.pi * day),
        "dow_sin": math.sin(2 * math.pi * weekday / 7),
        "dow_cos": math.cos(2 * math.pi * weekday / 7),
        "sentiment_score": 0.0,
        "sentiment_volume": 0.0,
    }
    assert set(ref) == set(FEATURE_SPEC.names)
    return ref


def test_features_match_their_documented_definitions() -> None:
    frame = simulated(1)[0].iloc[:400]
    x = compute_features(frame, "15m")
    for t in range(W - 1, len(frame), 7):
        for name, expected in reference_row(frame, t).items():
            assert x[t, COL[name]] == pytest.approx(expected, rel=1e-9, abs=1e-12), (t, name)


# -- no lookahead --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400))
def test_truncating_the_future_changes_no_earlier_row(n: int) -> None:
    frame = quirky(400)
    assert_rows_equal(compute_features(frame.iloc[:n], "1m"), quirky_features(400)[:n])
    close = frame["close"].to_numpy()
    full, cut = next_direction(close), next_direction(close[:n])
    assert np.array_equal(cut[: max(n - 1, 0)], full[: max(n - 1, 0)])


@settings(max_examples=60, deadline=None)
@given(t=st.integers(0, 398), seed=st.integers(0, 2**32 - 1), zero_volume=st.booleans())
def test_changing_later_candles_never_changes_features_at_t(
    t: int, seed: int, zero_volume: bool
) -> None:
    frame = quirky(400).copy()
    rng = np.random.default_rng(seed)
    later = frame.index[t + 1 :]
    shock = np.exp(rng.normal(0.0, 0.05, size=(len(later), 1)))
    frame.loc[later, PRICES] = frame.loc[later, PRICES].to_numpy() * shock
    frame.loc[later, "volume"] = 0.0 if zero_volume else rng.exponential(5.0, len(later))
    changed = compute_features(frame, "1m")
    assert_rows_equal(changed[: t + 1], quirky_features(400)[: t + 1])
    assert np.array_equal(changed[: t + 1], quirky_features(400)[: t + 1], equal_nan=True)


# -- live == batch -------------------------------------------------------------------------------


def assert_live_matches_batch(frame: pd.DataFrame, timeframe: str, samples: int) -> None:
    """``latest_features`` on the last ``window`` rows (and on a longer tail) == batch row."""
    x = compute_features(frame, timeframe)
    n = len(frame)
    assert n >= W, f"{timeframe}: only {n} candles"
    picks = np.random.default_rng(0).choice(np.arange(W - 1, n), min(samples, n - W + 1), False)
    worst = 0.0
    for t in {W - 1, n - 1, *picks.tolist()}:
        live = latest_features(frame.iloc[t - W + 1 : t + 1], timeframe)
        assert np.isfinite(live).all(), (timeframe, t)
        worst = max(worst, float(np.abs(live - x[t]).max()))
    assert worst <= 1e-9, (timeframe, worst)
    longer = latest_features(frame.iloc[max(0, n - 500) :], timeframe)
    assert np.abs(longer - x[-1]).max() <= 1e-9


@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_live_equals_batch_on_simulated_timeframes(timeframe: str) -> None:
    one_minute = simulated(40)[0]
    frame = one_minute if timeframe == "1m" else aggregate_frame(one_minute, timeframe)
    assert_live_matches_batch(frame, timeframe, samples=150)


def test_live_accepts_extra_and_reordered_columns() -> None:
    frame = simulated(1)[0].iloc[:200]
    odd = frame[["volume", "close", "timestamp", "low", "open", "high"]].assign(note="x")
    assert np.array_equal(latest_features(odd, "1h"), latest_features(frame, "1h"))
    assert np.array_equal(compute_features(odd, "1h"), compute_features(frame, "1h"), True)


@needs_shared
@pytest.mark.shared_data
@pytest.mark.parametrize("timeframe", ["1h", "1m"])
def test_live_equals_batch_on_real_btc(timeframe: str) -> None:
    frame = pd.read_csv(CANDLES / f"BTC_USDT-{timeframe}.csv.gz")
    frame = frame.astype({"timestamp": "int64"} | dict.fromkeys([*PRICES, "volume"], "float64"))
    x = compute_features(frame, timeframe)
    assert np.isfinite(x[W - 1 :]).all()  # BTC 1h has zero-volume, flat candles (and gaps)
    assert_live_matches_batch(frame, timeframe, samples=300)


# -- the spec ------------------------------------------------------------------------------------


def test_fingerprint_tracks_names_window_and_version() -> None:
    spec = FEATURE_SPEC
    fp = spec.fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert FeatureSpec(tuple(spec.names), spec.window, spec.version).fingerprint == fp
    renamed = (*spec.names[:-1], "sentiment_count")
    assert FeatureSpec(renamed, spec.window, spec.version).fingerprint != fp
    assert FeatureSpec(spec.names[::-1], spec.window, spec.version).fingerprint != fp
    assert FeatureSpec(spec.names, spec.window + 1, spec.version).fingerprint != fp
    assert FeatureSpec(spec.names, spec.window, spec.version + 1).fingerprint != fp
    with pytest.raises(ValueError):
        FeatureSpec(("a", "a"), 3, 1)


# -- the features carry the simulator's signal ---------------------------------------------------


def test_return_features_follow_the_trend_in_trend_regimes() -> None:
    """In trend episodes, lagged returns have the trend's sign (drift 0.7 sigma: ~79% at lag 1).

    The trend's direction is the sign of the episode's net move. Rows are counted from the
    point where the k-candle return lies inside the episode.
    """
    frame, regime = simulated(5, seed=3)
    x = compute_features(frame, "1m")
    log_close = np.log(frame["close"].to_numpy())
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(regime)) + 1, [regime.size]))
    agree = {k: [0, 0] for k in (1, 2, 3, 5)}
    for a, b in pairwise(cuts.tolist()):
        if regime[a] != TREND or a == 0:
            continue
        direction = np.sign(log_close[b - 1] - log_close[a - 1])
        for k, counts in agree.items():
            rows = np.arange(max(a + k - 1, W - 1), b)
            counts[0] += int(np.sum(np.sign(x[rows, COL[f"ret_{k}"]]) == direction))
            counts[1] += rows.size
    share = {k: hits / total for k, (hits, total) in agree.items()}
    assert agree[1][1] > 500, agree
    assert all(s > 0.7 for s in share.values()), share
    assert share[5] > share[1], share  # longer horizons average the noise out
