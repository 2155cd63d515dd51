"""The multi-timeframe signal: weights, freshness, renormalisation, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.models.calibration import PlattCalibrator
from candlewise.signals.aggregate import SignalAggregator, TimeframePrediction

T = 1_735_689_600_000 + 4 * 3_600_000  # 04:00 UTC: 1m, 5m, 15m, 1h and 4h all close here
W = {"1m": 0.05, "5m": 0.10, "15m": 0.15, "1h": 0.30, "4h": 0.25, "1d": 0.15}


def pred(tf: str, p: float, at: int = T) -> TimeframePrediction:
    return TimeframePrediction("BTC/USDT", tf, at, p)


def test_weighted_mix_of_fresh_predictions() -> None:
    agg = SignalAggregator(W)
    for tf, p in {"1m": 0.9, "5m": 0.8, "15m": 0.7, "1h": 0.6, "4h": 0.55}.items():
        agg.update(pred(tf, p))
    agg.update(pred("1d", 0.2, at=T - 4 * 3_600_000))  # yesterday's close: fresh until midnight
    signal = agg.signal("BTC/USDT", "1h", T)
    assert signal is not None
    expected = 0.05 * 0.9 + 0.10 * 0.8 + 0.15 * 0.7 + 0.30 * 0.6 + 0.25 * 0.55 + 0.15 * 0.2
    assert signal.p_up == pytest.approx(expected)
    assert signal.direction == "BUY" and signal.confidence == pytest.approx(expected)
    assert signal.timeframes_used == ("1m", "5m", "15m", "1h", "4h", "1d")
    assert signal.calibrated is False


def test_stale_predictions_drop_out_and_weights_renormalise() -> None:
    agg = SignalAggregator(W)
    agg.update(pred("1m", 0.2, at=T - 60_000))  # its next candle was due at T: stale now
    agg.update(pred("1h", 0.7))
    agg.update(pred("4h", 0.4))
    signal = agg.signal("BTC/USDT", "1h", T)
    assert signal is not None and signal.timeframes_used == ("1h", "4h")
    assert signal.p_up == pytest.approx((0.30 * 0.7 + 0.25 * 0.4) / 0.55)
    assert agg.signal("BTC/USDT", "1h", T + 4 * 3_600_000) is None  # everything stale
    assert agg.signal("ETH/USDT", "1h", T) is None


def test_a_prediction_is_not_used_before_it_was_made() -> None:
    agg = SignalAggregator(W)
    agg.update(pred("1h", 0.9))
    assert agg.signal("BTC/USDT", "1m", T - 60_000) is None


def test_calibrator_maps_the_mix_per_event_timeframe() -> None:
    agg = SignalAggregator(W)
    agg.update(pred("1h", 0.9))
    agg.set_calibrator("BTC/USDT", "1h", PlattCalibrator(a=0.5, b=0.0))  # shrink towards 0.5
    shrunk = agg.signal("BTC/USDT", "1h", T)
    plain = agg.signal("BTC/USDT", "5m", T)
    assert shrunk is not None and plain is not None
    assert shrunk.calibrated and not plain.calibrated
    assert plain.p_up == pytest.approx(0.9) and shrunk.p_up == pytest.approx(
        0.75
    )  # σ(0.5·logit 0.9)
    assert shrunk.raw_p_up == pytest.approx(0.9)


def test_sell_signal_and_unknown_timeframes() -> None:
    agg = SignalAggregator(W)
    agg.update(pred("15m", 0.3))
    signal = agg.signal("BTC/USDT", "15m", T)
    assert signal is not None and signal.direction == "SELL"
    assert signal.confidence == pytest.approx(0.7)
    with pytest.raises(ValueError, match="unknown timeframes"):
        SignalAggregator({"2h": 1.0})


def test_raw_p_up_columns_equals_raw_p_up_at_every_instant() -> None:
    """The column form used by the block replay gives the scalar mix's bits at every minute,
    with the predictions from before the block, the new ones, NaN (none) and a weight of 0."""
    rng = np.random.default_rng(3)
    weights = {**W, "15m": 0.0}
    minutes = T + 60_000 * np.arange(1, 600, dtype=np.int64)
    before = SignalAggregator(weights)
    before.update(pred("1h", 0.61, at=T))
    before.update(pred("1d", 0.35, at=T - 4 * 3_600_000))
    new = {}
    for tf in ("1m", "5m", "15m", "4h"):
        made = minutes[minutes % TIMEFRAME_MS[tf] == 0]
        p_up = rng.uniform(0, 1, made.size)
        p_up[rng.uniform(0, 1, made.size) < 0.3] = np.nan  # no prediction (no model, warm-up)
        new[tf] = (made, p_up)
    raw, used = before.raw_p_up_columns("BTC/USDT", minutes, new)

    scalar = SignalAggregator(weights)
    scalar.restore_latest(before.latest_state())
    events = sorted((int(t), tf, float(p)) for tf, (made, ps) in new.items()
                    for t, p in zip(made, ps, strict=True) if p == p)  # fmt: skip
    i = 0
    for k, now in enumerate(minutes.tolist()):
        while i < len(events) and events[i][0] <= now:
            scalar.update(pred(events[i][1], events[i][2], at=events[i][0]))
            i += 1
        expected = scalar.raw_p_up("BTC/USDT", now)
        if expected is None:
            assert used[k] == 0 and np.isnan(raw[k])
        else:
            assert raw[k] == expected[0] and used[k] == len(expected[1])  # same bits
    assert (used >= 4).any() and (used <= 2).any()
    nothing, none_used = before.raw_p_up_columns("ETH/USDT", minutes, {})
    assert np.isnan(nothing).all() and (none_used == 0).all()
