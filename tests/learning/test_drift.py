"""Drift score: quiet on a stationary stream, high soon after an error or feature shift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from candlewise.learning.drift import DriftConfig, DriftMonitor

T0 = 1_735_689_600_000
MIN = 60_000
N_FEATURES = 3


def feed_stationary(
    m: DriftMonitor, rng: np.random.Generator, steps: int, start: int = 0, p_err: float = 0.45
) -> float:
    """Feed ``steps`` candles with error rate ``p_err`` and N(0, 1) features; max score seen."""
    top = 0.0
    for i in range(start, start + steps):
        error = float(rng.random() < p_err)
        top = max(top, m.update(error, rng.standard_normal(N_FEATURES), T0 + i * MIN))
    return top


def steps_until(m: DriftMonitor, rng: np.random.Generator, start: int, p_err: float,
                shift: float, limit: int = 2000) -> int | None:  # fmt: skip
    """Steps after ``start`` until the score reaches 0.7 (feature 1 shifted by ``shift`` sd)."""
    for k in range(1, limit + 1):
        x = rng.standard_normal(N_FEATURES)
        x[1] += shift
        if m.update(float(rng.random() < p_err), x, T0 + (start + k) * MIN) >= 0.7:
            return k
    return None


def test_stationary_stream_stays_quiet() -> None:
    rng = np.random.default_rng(1234)
    m = DriftMonitor()
    assert m.score == 0.0
    assert feed_stationary(m, rng, 5000) < 0.5
    r = m.reading
    assert r.reference_error_rate == pytest.approx(0.45, abs=0.05)
    assert r.psi is not None and r.error_window > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_rate_jump_is_detected_within_bounded_steps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = DriftMonitor()
    assert feed_stationary(m, rng, 1000) < 0.5
    k = steps_until(m, rng, 1000, p_err=0.70, shift=0.0)
    assert k is not None and k <= 400  # 150, 279, 150 steps for these seeds (ADWIN, delta 0.002)
    r = m.reading
    assert r.error_score >= 0.7 and r.score == r.error_score
    assert r.adwin_detections >= 1 and r.recent_error_rate is not None
    assert r.recent_error_rate > 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feature_mean_shift_of_two_sd_is_detected_within_bounded_steps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = DriftMonitor()
    assert feed_stationary(m, rng, 1000) < 0.5
    k = steps_until(m, rng, 1000, p_err=0.45, shift=2.0)
    assert k is not None and k <= 150  # 84, 79, 82: about a third of the 250-candle recent window
    r = m.reading
    assert r.feature_score >= 0.7 and r.worst_feature == 1
    assert r.error_score < 0.5


def test_reset_after_retrain_clears_the_score_and_adopts_the_new_regime() -> None:
    rng = np.random.default_rng(5)
    m = DriftMonitor()
    feed_stationary(m, rng, 1000)
    assert steps_until(m, rng, 1000, p_err=0.70, shift=2.0) is not None
    m.reset(T0 + 1500 * MIN)
    r = m.reading
    assert (r.score, r.error_score, r.feature_score) == (0.0, 0.0, 0.0)
    assert (r.psi, r.reference_error_rate, r.adwin_detections) == (None, None, 0)
    # The new model lives in the shifted world: that is its reference now, not drift.
    top = 0.0
    for i in range(1501, 4501):
        x = rng.standard_normal(N_FEATURES)
        x[1] += 2.0
        top = max(top, m.update(float(rng.random() < 0.70), x, T0 + i * MIN))
    assert top < 0.5
    assert m.reading.reference_error_rate == pytest.approx(0.70, abs=0.05)


def test_references_given_at_reset_arm_the_monitor_at_once() -> None:
    """A 1d model cannot wait 500 days for a live reference: use its training window."""
    rng = np.random.default_rng(9)
    m = DriftMonitor()
    m.reset(
        T0,
        reference_errors=(rng.random(600) < 0.45).astype(float),
        reference_features=rng.standard_normal((600, N_FEATURES)),
    )
    assert m.reading.reference_error_rate == pytest.approx(0.45, abs=0.05)
    k = steps_until(m, rng, 0, p_err=0.45, shift=2.0)
    assert k is not None and 250 <= k <= 400  # the recent window (250) must fill first


def test_improvement_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    m = DriftMonitor()
    feed_stationary(m, rng, 1000)
    top = feed_stationary(m, rng, 2000, start=1000, p_err=0.30)
    assert top < 0.5 and m.reading.error_score == 0.0
    assert m.reading.recent_error_rate is not None and m.reading.recent_error_rate < 0.4


def test_score_follows_the_documented_formulas() -> None:
    cfg = DriftConfig()
    rng = np.random.default_rng(11)
    m = DriftMonitor(cfg)
    feed_stationary(m, rng, 1000)
    for k in range(1, 401):
        x = rng.standard_normal(N_FEATURES)
        x[0] += 0.5 * k / 400  # a slow drift, so every component passes through the ramp
        m.update(float(rng.random() < 0.45 + 0.3 * k / 400), x, T0 + (1000 + k) * MIN)
        r = m.reading
        assert r.reference_error_rate is not None and r.recent_error_rate is not None
        p, q, w = r.recent_error_rate, r.reference_error_rate, r.error_window
        if w >= cfg.min_error_samples:
            var = max(p * (1 - p), q * (1 - q), 0.01)
            se = math.sqrt(var * (1 / w + 1 / cfg.reference_size))
            expected = min(1.0, max(0.0, (p - q - cfg.z * se) / cfg.error_increase_full))
            assert r.error_score == pytest.approx(expected)
        assert r.psi is not None
        ramp = (r.psi - cfg.psi_none) / (cfg.psi_full - cfg.psi_none)
        assert r.feature_score == pytest.approx(min(1.0, max(0.0, ramp)))
        assert r.score == max(r.error_score, r.feature_score)
        assert 0.0 <= r.score <= 1.0 and r.at_ms == T0 + (1000 + k) * MIN


def test_error_stream_alone_and_unknown_outcomes() -> None:
    m = DriftMonitor()
    assert m.update(None, np.zeros(2), T0) == 0.0  # outcome not known yet
    assert m.update(1.0, None, T0 + MIN) == 0.0  # no features: error stream only
    assert m.reading.error_window == 1


def test_non_finite_feature_vectors_are_skipped() -> None:
    m = DriftMonitor(DriftConfig(reference_size=2, recent_size=2))
    m.update(None, np.array([np.nan, 1.0]), T0)
    m.update(None, np.array([0.0, np.inf]), T0)
    assert m.reading.psi is None
    for i, v in enumerate((0.0, 1.0, 0.0, 1.0)):
        m.update(None, np.array([v, v]), T0 + i)
    assert m.reading.psi is not None


@pytest.mark.parametrize("new_value", [2.0, 0.0])
def test_a_constant_feature_that_moves_either_way_is_drift(new_value: float) -> None:
    m = DriftMonitor(DriftConfig(reference_size=50, recent_size=20))
    for i in range(50):
        m.update(None, np.array([1.0, i % 3]), T0 + i)
    for i in range(20):
        m.update(None, np.array([new_value, i % 3]), T0 + 50 + i)
    assert m.reading.worst_feature == 0 and m.score == 1.0


def test_rejects_bad_input() -> None:
    m = DriftMonitor()
    m.update(0.0, np.zeros(3), T0)
    with pytest.raises(ValueError, match="features"):
        m.update(0.0, np.zeros(4), T0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="error"):
            m.update(bad, None, T0)
    with pytest.raises(ValueError, match="backwards"):
        m.update(0.0, None, T0 - 1)
    with pytest.raises(ValueError):
        m.reset(T0, reference_errors=np.array([0.0, 2.0]))
    with pytest.raises(ValueError):
        m.reset(T0, reference_features=np.zeros(10))
    with pytest.raises(ValueError):
        DriftConfig(psi_none=0.5, psi_full=0.5)
