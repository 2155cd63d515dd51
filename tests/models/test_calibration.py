"""Calibration maths: temperature recovery, ECE, Brier, reliability table, Platt scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from candlewise.models.calibration import (
    T_MAX,
    T_MIN,
    PlattCalibrator,
    apply_temperature,
    binary_nll,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    logit,
    reliability_table,
    sigmoid,
)


def labelled_logits(n: int, seed: int, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """True logits z and labels drawn from sigmoid(z): sigmoid(z) is perfectly calibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=n)
    y = (rng.random(n) < sigmoid(z)).astype(np.float64)
    return z, y


@pytest.mark.parametrize("true_t", [0.3, 1.0, 3.0, 8.0])
def test_temperature_recovers_a_known_scale(true_t: float) -> None:
    z, y = labelled_logits(40_000, seed=1)
    t = fit_temperature(z * true_t, y)
    assert t == pytest.approx(true_t, rel=0.10)


def test_temperature_minimises_the_nll() -> None:
    z, y = labelled_logits(5_000, seed=2)
    t = fit_temperature(3 * z, y)
    best = binary_nll(3 * z / t, y)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert best <= binary_nll(3 * z / other, y)


def test_temperature_on_uninformative_logits_flattens_to_the_bound() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(scale=5.0, size=4_000)
    y = (rng.random(4_000) < 0.5).astype(np.float64)
    t = fit_temperature(z, y)
    assert t > 5.0
    assert np.mean(np.maximum(apply_temperature(z, t), 1 - apply_temperature(z, t))) < 0.56


def test_temperature_edge_cases_stay_in_bounds_and_are_deterministic() -> None:
    assert fit_temperature(np.zeros(10), np.ones(10)) == 1.0
    # perfectly separable: the NLL keeps falling as T shrinks -> the lower bound
    z = np.array([-2.0, -1.0, 1.0, 2.0])
    assert fit_temperature(z, np.array([0, 0, 1, 1])) == pytest.approx(T_MIN)
    # every logit has the wrong sign: the flattest allowed model
    assert fit_temperature(z, np.array([1, 1, 0, 0])) == pytest.approx(T_MAX)
    z, y = labelled_logits(1_000, seed=4)
    assert fit_temperature(z, y) == fit_temperature(z.copy(), y.copy())


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="labels"):
        fit_temperature([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        brier_score([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        expected_calibration_error([0.1, math.nan], [0, 1])


def test_ece_is_near_zero_for_calibrated_and_large_for_over_confident() -> None:
    z, y = labelled_logits(100_000, seed=5)
    assert expected_calibration_error(sigmoid(z), y) < 0.01
    over = sigmoid(3 * z)  # same ranking, three times too sharp
    assert expected_calibration_error(over, y) > 0.10
    under = sigmoid(z / 3)
    assert expected_calibration_error(under, y) > 0.10


def test_ece_exact_on_a_tiny_example() -> None:
    p = np.array([0.92, 0.92, 0.17, 0.63])  # confidences 0.92, 0.92, 0.83, 0.63
    y = np.array([1.0, 0.0, 0.0, 1.0])  # correct, wrong, correct, correct
    expected = 0.5 * abs(0.5 - 0.92) + 0.25 * abs(1 - 0.83) + 0.25 * abs(1 - 0.63)
    assert expected_calibration_error(p, y) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.345)


def test_brier_exact() -> None:
    assert brier_score([0.9, 0.2, 0.5], [1, 0, 1]) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert brier_score([1.0, 0.0], [1, 0]) == 0.0


def test_reliability_table_bins() -> None:
    p = np.array([0.5, 0.52, 0.97, 0.01, 1.0, 0.3])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    rows = reliability_table(p, y, bins=5)
    assert [r.lower for r in rows] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert rows[-1].upper == pytest.approx(1.0)
    assert [r.count for r in rows] == [2, 0, 1, 0, 3]  # 0.7 opens bin 2; 1.0 is in the last
    assert rows[0].mean_confidence == pytest.approx(0.51)
    assert rows[0].accuracy == pytest.approx(0.5)  # 0.5 -> "up" (right), 0.52 -> "up" (wrong)
    assert math.isnan(rows[1].accuracy)
    assert rows[4].accuracy == 1.0
    assert rows[2].accuracy == 0.0  # p=0.3 predicts down, y=1


def test_platt_recovers_slope_and_offset() -> None:
    rng = np.random.default_rng(6)
    raw = rng.uniform(0.02, 0.98, size=50_000)
    true = sigmoid(2.0 * logit(raw) - 0.3)
    y = (rng.random(raw.size) < true).astype(np.float64)
    cal = PlattCalibrator.fit(raw, y)
    assert cal.a == pytest.approx(2.0, rel=0.05)
    assert cal.b == pytest.approx(-0.3, abs=0.05)
    assert expected_calibration_error(cal.apply(raw), y) < 0.01
    assert expected_calibration_error(raw, y) > 0.05
    assert PlattCalibrator.fit(raw, y) == cal  # deterministic


def test_platt_apply_one_matches_apply_and_identity() -> None:
    cal = PlattCalibrator(a=1.7, b=0.4)
    p = np.array([1e-15, 0.05, 0.5, 0.8, 1.0])
    vec = cal.apply(p)
    assert [cal.apply_one(float(q)) for q in p] == pytest.approx(list(vec), rel=1e-12)
    assert PlattCalibrator().apply(p[1:4]) == pytest.approx(p[1:4])
    assert PlattCalibrator.from_dict(cal.to_dict()) == cal


def test_platt_stays_finite_on_separable_and_single_class_data() -> None:
    sep = PlattCalibrator.fit([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert math.isfinite(sep.a) and math.isfinite(sep.b)
    one = PlattCalibrator.fit([0.3, 0.6, 0.7], [1, 1, 1])
    assert math.isfinite(one.a) and math.isfinite(one.b)
    assert 0.5 < one.apply_one(0.5) < 1.0
