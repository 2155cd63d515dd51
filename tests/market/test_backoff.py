"""Backoff numbers: bounds, growth, cap, determinism."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from candlewise.market.backoff import Backoff

pytestmark = pytest.mark.timeout(30)


def test_without_jitter_the_delay_doubles_until_the_cap() -> None:
    b = Backoff(initial_s=1.0, max_s=10.0, factor=2.0, jitter=0.0)
    rng = random.Random(0)
    assert [b.delay(a, rng) for a in range(7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_defaults() -> None:
    b = Backoff()
    assert (b.initial_s, b.max_s, b.factor, b.jitter) == (1.0, 60.0, 2.0, 0.5)
    assert b.ceiling(0) == 1.0
    assert b.ceiling(5) == 32.0
    assert b.ceiling(6) == 60.0


def test_jitter_keeps_the_delay_within_its_band() -> None:
    b = Backoff(initial_s=0.5, max_s=8.0, factor=3.0, jitter=0.25)
    rng = random.Random(42)
    for attempt in range(12):
        ceiling = b.ceiling(attempt)
        for _ in range(200):
            d = b.delay(attempt, rng)
            assert 0.75 * ceiling <= d <= ceiling <= 8.0


def test_jitter_actually_varies_the_delay() -> None:
    b = Backoff(jitter=0.5)
    rng = random.Random(1)
    assert len({b.delay(3, rng) for _ in range(50)}) > 40


def test_same_seed_same_delays() -> None:
    b = Backoff(initial_s=0.05, max_s=2.0)
    first = [b.delay(a, random.Random(7)) for a in range(10)]
    second = [b.delay(a, random.Random(7)) for a in range(10)]
    assert first == second
    r1, r2 = random.Random(7), random.Random(7)
    assert [b.delay(a, r1) for a in range(10)] == [b.delay(a, r2) for a in range(10)]
    assert [b.delay(a, random.Random(8)) for a in range(10)] != first


def test_one_draw_per_call() -> None:
    """Callers can predict the rng state: each delay consumes exactly one random()."""
    b = Backoff()
    rng, twin = random.Random(3), random.Random(3)
    b.delay(2, rng)
    twin.random()
    assert rng.random() == twin.random()


def test_huge_attempts_do_not_overflow() -> None:
    b = Backoff(initial_s=1.0, max_s=60.0, factor=2.0, jitter=0.0)
    assert b.delay(10_000, random.Random(0)) == 60.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": -1.0},
        {"initial_s": 5.0, "max_s": 1.0},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1, random.Random(0))


def test_frozen() -> None:
    b = Backoff()
    with pytest.raises(AttributeError):
        b.initial_s = 2.0  # type: ignore[misc]


@given(
    initial=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 100.0),
    factor=st.floats(1.0, 5.0),
    jitter=st.floats(0.0, 1.0),
    attempt=st.integers(0, 2000),
    seed=st.integers(0, 2**32),
)
def test_property_bounds(
    initial: float, extra: float, factor: float, jitter: float, attempt: int, seed: int
) -> None:
    b = Backoff(initial_s=initial, max_s=initial + extra, factor=factor, jitter=jitter)
    d = b.delay(attempt, random.Random(seed))
    assert (1.0 - jitter) * b.ceiling(attempt) - 1e-12 <= d <= b.ceiling(attempt) <= b.max_s
    assert d >= (1.0 - jitter) * initial - 1e-12
    assert b.ceiling(attempt) <= b.ceiling(attempt + 1)
