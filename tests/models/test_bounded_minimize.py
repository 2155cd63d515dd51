"""The SciPy-free bounded Brent search: SciPy's answers bit for bit, and its own contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from candlewise.models.bounded_minimize import minimize_bounded


def temperature_nll(seed: int, scale: float, n: int = 400):
    """The NLL of sigmoid(z / exp(u)) on sampled logits: the function calibration minimises."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z / rng.uniform(0.3, 4.0)))).astype(float)
    sz = (2.0 * y - 1.0) * z
    return lambda u: float(np.mean(np.logaddexp(0.0, -sz * math.exp(-u))))


def test_it_returns_scipys_result_bit_for_bit() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    lo, hi = math.log(0.05), math.log(20.0)
    cases = [
        (temperature_nll(seed, scale), lo, hi, 1e-4) for seed in range(40) for scale in (0.5, 3.0)
    ]
    cases += [
        (lambda x: (x - 0.3) ** 2, -5.0, 5.0, 1e-5),
        (lambda x: abs(x - 1.7) + 0.1 * x * x, 0.0, 10.0, 1e-8),
        (lambda x: -x, 0.0, 1.0, 1e-5),  # minimum on the upper bound
        (lambda x: math.cos(x), 0.0, 2.0 * math.pi, 1e-6),
        (lambda x: 4.0, -1.0, 1.0, 1e-5),  # flat
    ]
    for f, a, b, xatol in cases:
        ours = minimize_bounded(f, a, b, xatol=xatol)
        theirs = optimize.minimize_scalar(
            f, bounds=(a, b), method="bounded", options={"xatol": xatol}
        )
        assert ours.x == float(theirs.x)
        assert ours.fun == float(theirs.fun)
        assert ours.evaluations == theirs.nfev
        assert ours.converged == bool(theirs.success)


def test_it_finds_known_minima_to_the_tolerance() -> None:
    assert minimize_bounded(lambda x: (x - 0.3) ** 2, -5.0, 5.0, xatol=1e-7).x == pytest.approx(
        0.3, abs=1e-6
    )
    assert minimize_bounded(math.cos, 0.0, 2.0 * math.pi).x == pytest.approx(math.pi, abs=1e-4)
    # a minimum on a bound is approached, never evaluated exactly
    edge = minimize_bounded(lambda x: -x, 0.0, 1.0, xatol=1e-6)
    assert 1.0 - 1e-5 < edge.x < 1.0


def test_the_evaluation_budget_is_respected() -> None:
    calls = []
    result = minimize_bounded(lambda x: calls.append(x) or (x - 0.3) ** 2, -5.0, 5.0, 1e-12, 5)
    assert len(calls) == 5 == result.evaluations
    assert not result.converged


@pytest.mark.parametrize(("lo", "hi"), [(1.0, 0.0), (0.0, math.inf), (math.nan, 1.0)])
def test_bad_bounds_are_refused(lo: float, hi: float) -> None:
    with pytest.raises(ValueError, match="bound"):
        minimize_bounded(lambda x: x * x, lo, hi)
