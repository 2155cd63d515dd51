"""The fill arithmetic both books use: slippage against the trader, a quantity step rounded
down, fees on both sides, the stop from the entry fill, and the cash each fill moves."""

from __future__ import annotations

import pickle

import pytest

from candlewise.trading.fills import entry_fill, exit_fill, fill_price
from candlewise.trading.positions import Position


def test_slippage_moves_every_fill_against_the_trader() -> None:
    assert fill_price(100.0, True, 0.01) == pytest.approx(101.0)
    assert fill_price(100.0, False, 0.01) == pytest.approx(99.0)


def test_a_long_entry_rounds_down_to_the_step_and_pays_its_fee() -> None:
    fill = entry_fill(100.0, 1, 1_000.0, 0.0, 0.001, 0.02)
    assert fill is not None
    assert (fill.price, fill.quantity) == (100.0, 10.0)
    assert fill.fee == pytest.approx(1.0)
    assert fill.stop_price == pytest.approx(98.0)
    assert fill.cost == pytest.approx(1_001.0)  # coins bought plus the fee
    odd = entry_fill(3.0, 1, 1.0, 0.0, 0.0, 0.02)
    assert odd is not None and odd.quantity == 0.33333333  # 1e-8 steps, rounded down


def test_a_short_entry_takes_negative_cost_and_stops_above() -> None:
    fill = entry_fill(100.0, -1, 1_000.0, 0.01, 0.001, 0.02)
    assert fill is not None and fill.price == pytest.approx(99.0)
    assert fill.stop_price == pytest.approx(99.0 * 1.02)
    assert fill.cost == pytest.approx(-fill.quantity * 99.0 + fill.fee)


def test_below_one_step_there_is_no_entry() -> None:
    assert entry_fill(100_000.0, 1, 1e-4, 0.0, 0.001, 0.02) is None


def test_an_exit_returns_the_coins_less_the_fee() -> None:
    long = exit_fill(110.0, 1, 10.0, 0.0, 0.001)
    assert (long.price, long.fee, long.proceeds) == pytest.approx((110.0, 1.1, 1_098.9))
    short = exit_fill(90.0, -1, 10.0, 0.01, 0.001)  # buys back above the price
    assert short.price == pytest.approx(90.9)
    assert short.proceeds == pytest.approx(-909.0 - 0.909)


def test_the_position_it_opens_carries_the_fill() -> None:
    fill = entry_fill(100.0, -1, 1_000.0, 0.0, 0.001, 0.02)
    assert fill is not None
    p = fill.position(7, "BTC/USDT", "5m", 60_000, 360_000, 0.7)
    assert (p.id, p.side, p.predicted_direction, p.sign) == (7, "short", "SELL", -1)
    assert (p.entry_price, p.quantity, p.fees_paid, p.stop_price) == (
        fill.price, fill.quantity, fill.fee, fill.stop_price,
    )  # fmt: skip
    assert (p.entry_time_ms, p.horizon_ms, p.confidence) == (60_000, 360_000, 0.7)


@pytest.mark.parametrize("sign", [1, -1])
def test_the_fast_built_position_is_the_validated_one(sign: int) -> None:
    """``opened_position`` skips ``__init__``: the object must equal, hash, print and pickle
    as the one ``Position(...)`` builds (checkpoints pickle open positions)."""
    fill = entry_fill(100.0, sign, 1_000.0, 0.001, 0.001, 0.02)
    assert fill is not None
    fast = fill.position(7, "BTC/USDT", "5m", 60_000, 360_000, 0.7)
    side, direction = ("long", "BUY") if sign == 1 else ("short", "SELL")
    slow = Position(
        7, "BTC/USDT", "5m", side, fill.quantity, fill.price, 60_000, fill.stop_price,
        fill.fee, 0.7, direction, 360_000,
    )  # fmt: skip
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert pickle.dumps(fast) == pickle.dumps(slow)
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(ValueError, match="horizon_ms"):
        fill.position(8, "BTC/USDT", "5m", 60_000, 60_000, 0.7)
