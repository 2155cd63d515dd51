"""TRADING/LEARNING mode: exact boundaries, hysteresis against flapping, the guide's lines."""

from __future__ import annotations

import numpy as np
import pytest

from candlewise.config.app_config import ConfidenceConfig
from candlewise.learning.modes import (
    HOUR_MS,
    Mode,
    ModeMachine,
    ModeTransition,
    format_trading_signal,
    format_transition,
    transitions_per_hour,
)
from candlewise.signals.aggregate import Signal

T0 = 1_735_689_600_000
MIN = 60_000


def machine() -> ModeMachine:
    return ModeMachine(threshold=0.80, hysteresis=0.05)


def trading_machine() -> ModeMachine:
    m = machine()
    assert m.observe("BTC/USDT", 0.90, T0) is not None
    return m


def test_starts_in_learning() -> None:
    m = machine()
    assert m.mode("BTC/USDT") is Mode.LEARNING
    assert m.observe("BTC/USDT", 0.70, T0) is None
    assert m.mode("BTC/USDT") is Mode.LEARNING


def test_threshold_itself_enters_trading() -> None:
    m = machine()
    t = m.observe("BTC/USDT", 0.80, T0)
    assert t == ModeTransition(
        "BTC/USDT", Mode.LEARNING, Mode.TRADING, 0.80, "confidence 80.00% >= threshold 80.00%", T0
    )
    assert m.mode("BTC/USDT") is Mode.TRADING


def test_just_below_threshold_does_not_enter() -> None:
    m = machine()
    assert m.observe("BTC/USDT", 0.7999, T0) is None
    assert m.mode("BTC/USDT") is Mode.LEARNING


def test_exit_bound_itself_holds_trading() -> None:
    m = trading_machine()
    assert m.observe("BTC/USDT", 0.75, T0 + MIN) is None
    assert m.mode("BTC/USDT") is Mode.TRADING


def test_just_below_exit_bound_leaves_trading() -> None:
    m = trading_machine()
    t = m.observe("BTC/USDT", 0.7499, T0 + MIN)
    assert t is not None and (t.previous, t.mode) == (Mode.TRADING, Mode.LEARNING)
    assert t.reason == "confidence 74.99% < 75.00% (threshold 80.00% - hysteresis 5.00%)"
    assert m.mode("BTC/USDT") is Mode.LEARNING


def test_band_holds_either_mode() -> None:
    learning = machine()
    trading = trading_machine()
    for i, c in enumerate((0.76, 0.79, 0.7999, 0.75, 0.78)):
        assert learning.observe("BTC/USDT", c, T0 + i * MIN) is None
        assert trading.observe("BTC/USDT", c, T0 + i * MIN) is None
    assert learning.mode("BTC/USDT") is Mode.LEARNING
    assert trading.mode("BTC/USDT") is Mode.TRADING


@pytest.mark.parametrize(("threshold", "hysteresis"), [(0.70, 0.05), (0.72, 0.07)])
def test_boundaries_hold_despite_float_subtraction(threshold: float, hysteresis: float) -> None:
    """0.72 - 0.07 is 0.6499999999999999 in binary floats; the configured bound is 0.65."""
    assert threshold - hysteresis != 0.65
    m = ModeMachine.from_config(
        ConfidenceConfig(trading_threshold=threshold, hysteresis=hysteresis)
    )
    assert m.exit_below == 0.65
    m.observe("BTC/USDT", threshold, T0)
    assert m.observe("BTC/USDT", 0.65, T0 + MIN) is None
    assert m.observe("BTC/USDT", 0.6499, T0 + 2 * MIN) is not None


def test_alternating_around_threshold_flaps_only_without_hysteresis() -> None:
    with_band, without = machine(), ModeMachine(threshold=0.80, hysteresis=0.0)
    counts = {"band": 0, "none": 0}
    for i in range(1000):
        c = 0.81 if i % 2 == 0 else 0.79
        counts["band"] += with_band.observe("BTC/USDT", c, T0 + i * MIN) is not None
        counts["none"] += without.observe("BTC/USDT", c, T0 + i * MIN) is not None
    assert counts == {"band": 1, "none": 1000}


def test_noisy_confidence_near_threshold_transitions_far_less_with_hysteresis() -> None:
    """A day of 1m signals whose confidence wanders around 0.80 (seeded noise, sd 2 points)."""
    rng = np.random.default_rng(7)
    confidences = np.clip(0.80 + 0.02 * rng.standard_normal(1440), 0.0, 1.0)
    with_band, without = machine(), ModeMachine(threshold=0.80, hysteresis=0.0)
    band, none = [], []
    for i, c in enumerate(confidences):
        at = T0 + i * MIN
        if (t := with_band.observe("BTC/USDT", float(c), at)) is not None:
            band.append(t)
        if (t := without.observe("BTC/USDT", float(c), at)) is not None:
            none.append(t)
    assert len(none) >= 650  # 704 with this seed: about half the steps cross 0.80
    assert len(band) <= 20  # 17 with this seed
    assert len(none) >= 30 * len(band)
    assert transitions_per_hour(band, 24 * HOUR_MS) < 2  # the guide's stability criterion


def test_symbols_are_independent() -> None:
    m = machine()
    assert m.observe("BTC/USDT", 0.85, T0) is not None
    assert m.observe("ETH/USDT", 0.78, T0) is None
    assert (m.mode("BTC/USDT"), m.mode("ETH/USDT")) == (Mode.TRADING, Mode.LEARNING)
    t = m.observe("ETH/USDT", 0.80, T0 + MIN)
    assert t is not None and t.symbol == "ETH/USDT"
    assert m.observe("BTC/USDT", 0.70, T0 + MIN) is not None
    assert (m.mode("BTC/USDT"), m.mode("ETH/USDT")) == (Mode.LEARNING, Mode.TRADING)
    assert set(m.symbols) == {"BTC/USDT", "ETH/USDT"}


def test_uncalibrated_signal_never_enters_trading() -> None:
    m = machine()
    for i, c in enumerate((0.80, 0.95, 1.0)):
        assert m.observe("BTC/USDT", c, T0 + i * MIN, calibrated=False) is None
    assert m.mode("BTC/USDT") is Mode.LEARNING
    assert m.observe("BTC/USDT", 0.80, T0 + 3 * MIN, calibrated=True) is not None


def test_uncalibrated_signal_may_leave_trading_but_only_below_the_band() -> None:
    m = trading_machine()
    assert m.observe("BTC/USDT", 0.76, T0 + MIN, calibrated=False) is None
    assert m.mode("BTC/USDT") is Mode.TRADING
    t = m.observe("BTC/USDT", 0.70, T0 + 2 * MIN, calibrated=False)
    assert t is not None and t.mode is Mode.LEARNING and t.reason.endswith(", uncalibrated")


def test_time_in_mode() -> None:
    m = machine()
    assert m.time_in_mode("BTC/USDT", T0) == 0  # never observed
    m.observe("BTC/USDT", 0.60, T0)
    assert m.time_in_mode("BTC/USDT", T0 + 5 * MIN) == 5 * MIN
    m.observe("BTC/USDT", 0.90, T0 + 10 * MIN)
    m.observe("BTC/USDT", 0.78, T0 + 20 * MIN)  # holds: the clock keeps running
    assert m.time_in_mode("BTC/USDT", T0 + 25 * MIN) == 15 * MIN
    with pytest.raises(ValueError, match="before the mode began"):
        m.time_in_mode("BTC/USDT", T0)


def test_restore_after_restart() -> None:
    m = machine()
    m.restore("BTC/USDT", "TRADING", T0)
    assert m.mode("BTC/USDT") is Mode.TRADING
    assert m.time_in_mode("BTC/USDT", T0 + HOUR_MS) == HOUR_MS
    assert m.observe("BTC/USDT", 0.76, T0 + HOUR_MS) is None


def test_rejects_bad_input() -> None:
    m = machine()
    for bad in (float("nan"), -0.1, 1.1):
        with pytest.raises(ValueError, match="confidence"):
            m.observe("BTC/USDT", bad, T0)
    m.observe("BTC/USDT", 0.5, T0)
    with pytest.raises(ValueError, match="backwards"):
        m.observe("BTC/USDT", 0.5, T0 - 1)
    with pytest.raises(ValueError):
        ModeMachine(threshold=0.8, hysteresis=0.8)


def test_transitions_per_hour() -> None:
    ts = [
        ModeTransition("BTC/USDT", Mode.LEARNING, Mode.TRADING, 0.8, "", T0 + k * 20 * MIN)
        for k in range(6)
    ]  # T0, +20m, ..., +100m
    assert transitions_per_hour(ts, 2 * HOUR_MS) == 3.0
    assert transitions_per_hour(ts, HOUR_MS, now_ms=T0 + 100 * MIN) == 3.0  # 60m, 80m, 100m
    assert transitions_per_hour(ts, HOUR_MS, now_ms=T0 + 40 * MIN) == 3.0  # 0, 20m, 40m
    assert transitions_per_hour([], HOUR_MS) == 0.0
    with pytest.raises(ValueError):
        transitions_per_hour(ts, 0)


def test_guide_lines() -> None:
    up = ModeTransition("BTC/USDT", Mode.LEARNING, Mode.TRADING, 0.8345, "", T0)
    assert format_transition(up, "1h") == (
        "✓ [BTC/USDT @ 1h] Transitioned to TRADING mode (confidence: 83.45%)"
    )
    down = ModeTransition("BTC/USDT", Mode.TRADING, Mode.LEARNING, 0.7412, "", T0)
    assert format_transition(down, "4h") == (
        "⚠ [BTC/USDT @ 4h] Transitioned to LEARNING mode (confidence: 74.12%)"
    )
    signal = Signal("BTC/USDT", "1h", T0, "BUY", 0.8245, 0.8245, 0.81, ("1h",), True)
    assert format_trading_signal(signal, "live") == "[BTC/USDT] TRADING MODE: BUY @ 82.45% (live)"
    assert format_trading_signal(signal, "paper").endswith("(paper)")
    with pytest.raises(ValueError):
        format_trading_signal(signal, "dry")  # type: ignore[arg-type]
