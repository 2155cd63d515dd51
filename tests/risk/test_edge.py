"""Cost-aware entries: the expected gain of a signal against its round-trip costs."""

from __future__ import annotations

import math

import pytest

from candlewise.risk.edge import check_edge, mean_abs_move, round_trip_cost


def test_round_trip_cost_is_both_sides_fees_and_slippage() -> None:
    assert round_trip_cost(0.001, 0.0005) == pytest.approx(0.003)


def test_mean_abs_move_of_closes() -> None:
    closes = [100.0, 101.0, 100.0, 100.0]
    expected = (math.log(101 / 100) + math.log(101 / 100) + 0.0) / 3
    assert mean_abs_move(closes) == pytest.approx(expected)
    assert mean_abs_move([100.0]) is None


def test_the_boundary_and_the_off_switch() -> None:
    # confidence 0.75 -> (2c - 1) = 0.5; a 0.6 % mean move expects 0.30 %, the exact cost
    at_cost = check_edge(0.75, 0.006, 0.003, 1.0)
    assert at_cost.passes and at_cost.expected_gain == pytest.approx(0.003)
    below = check_edge(0.74, 0.006, 0.003, 1.0)
    assert not below.passes and below.reason == "expected gain 0.288% < round-trip costs 0.300%"
    assert not check_edge(0.99, None, 0.003, 1.0).passes  # no history: no estimate, no trade
    assert check_edge(0.51, 0.0001, 0.003, 0.0).passes  # 0 turns the check off
    assert not check_edge(0.75, 0.006, 0.003, 1.5).passes  # a margin above costs
