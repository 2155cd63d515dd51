"""The rules both drivers call on plain values: ``next_mode``, ``ModeMachine.state_at``/``move``,
``RetrainPolicy.count_signal`` and ``platt_one`` agree with the object methods built on them."""

from __future__ import annotations

import pickle

import pytest

from candlewise.config.app_config import RetrainingConfig
from candlewise.learning.modes import (
    Mode,
    ModeMachine,
    SymbolState,
    _SymbolState,
    hold_range,
    next_mode,
    trading_line,
)
from candlewise.learning.retrain_policy import RetrainPolicy
from candlewise.models.calibration import PlattCalibrator, platt_one


@pytest.mark.parametrize(
    ("mode", "confidence", "calibrated", "expected"),
    [
        (Mode.LEARNING, 0.80, True, Mode.TRADING),  # at the threshold enters
        (Mode.LEARNING, 0.79, True, None),
        (Mode.LEARNING, 0.95, False, None),  # uncalibrated never enters
        (Mode.TRADING, 0.75, True, None),  # the exit bound itself holds
        (Mode.TRADING, 0.7499, True, Mode.LEARNING),
        (Mode.TRADING, 0.60, False, Mode.LEARNING),  # uncalibrated may leave
    ],
)
def test_next_mode_is_the_hysteresis_rule(
    mode: Mode, confidence: float, calibrated: bool, expected: Mode | None
) -> None:
    assert next_mode(mode, confidence, calibrated, 0.80, 0.75) is expected


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("calibrated", [True, False])
def test_a_mode_moves_exactly_outside_its_hold_range(mode: Mode, calibrated: bool) -> None:
    lo, hi = hold_range(mode, calibrated, 0.80, 0.75)
    for confidence in [0.5, 0.7499, 0.75, 0.79, 0.80, 0.95, 1.0, float("nan")]:
        outside = confidence < lo or confidence >= hi
        assert (next_mode(mode, confidence, calibrated, 0.80, 0.75) is not None) is outside


def test_counting_n_signals_is_counting_each() -> None:
    one, many = RetrainPolicy(RetrainingConfig()), RetrainPolicy(RetrainingConfig())
    key = ("BTC/USDT", "1m")
    for trading, n in [(False, 3), (True, 2), (False, 4)]:
        for _ in range(n):
            expected = one.count_signal(key, trading)
        assert many.count_signal(key, trading, n) == expected == (0 if trading else n)


def test_state_at_and_move_give_what_observe_gives() -> None:
    observed, driven = ModeMachine(0.8, 0.05), ModeMachine(0.8, 0.05)
    signals = [(0.7, True), (0.85, True), (0.78, False), (0.6, False), (0.9, True)]
    for i, (confidence, calibrated) in enumerate(signals):
        at = 60_000 * (i + 1)
        expected = observed.observe("BTC/USDT", confidence, at, calibrated=calibrated)
        state = driven.state_at("BTC/USDT", at)
        new = next_mode(state.mode, confidence, calibrated, driven.threshold, driven.exit_below)
        got = new and driven.move("BTC/USDT", state, new, confidence, calibrated, at)
        assert got == expected
    assert driven.state("BTC/USDT") == observed.state("BTC/USDT")
    assert driven.state("ETH/USDT") is None
    assert expected is not None and expected.reason == "confidence 90.00% >= threshold 80.00%"


def test_a_state_pickled_under_its_old_private_name_loads() -> None:
    assert _SymbolState is SymbolState
    state = SymbolState(Mode.TRADING, 1, 2)
    assert pickle.loads(pickle.dumps(state)) == state


def test_count_signal_is_the_streak_on_signal_counts() -> None:
    config = RetrainingConfig(patience=3)
    policy, counted = RetrainPolicy(config, automatic=False), RetrainPolicy(config, automatic=False)
    key = ("BTC/USDT", "1m")
    modes = [Mode.LEARNING, Mode.LEARNING, Mode.TRADING, Mode.LEARNING]
    for at, mode in enumerate(modes):
        policy.on_signal(*key, mode, at)
        streak = counted.count_signal(key, mode is Mode.TRADING)
    assert streak == 1
    automatic = RetrainPolicy(config)
    decisions = [automatic.on_signal(*key, Mode.LEARNING, at) for at in range(3)]
    assert decisions[:2] == [None, None] and decisions[2] is not None  # patience 3


@pytest.mark.parametrize("p", [0.0, 1e-15, 0.3, 0.5, 0.77, 1.0 - 1e-13, 1.0])
def test_platt_one_is_the_calibrators_scalar_and_array_result(p: float) -> None:
    calibrator = PlattCalibrator(a=1.7, b=-0.2)
    assert platt_one(1.7, -0.2, p) == calibrator.apply_one(p)
    assert platt_one(1.7, -0.2, p) == pytest.approx(float(calibrator.apply([p])[0]), abs=1e-15)


def test_trading_line_is_the_guides_line() -> None:
    assert trading_line("BTC/USDT", "BUY", 0.8245, "paper") == (
        "[BTC/USDT] TRADING MODE: BUY @ 82.45% (paper)"
    )
