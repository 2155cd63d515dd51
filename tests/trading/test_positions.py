"""Positions, closed trades and the book: PnL arithmetic, outcome rule, one position per key."""

from __future__ import annotations

import pytest

from candlewise.trading.positions import (
    Position,
    PositionBook,
    PositionExistsError,
    side_of,
)

T = 1_735_693_200_000  # 2025-01-01 01:00 UTC
HOUR = 3_600_000


def position(
    pid: int = 1,
    symbol: str = "BTC/USDT",
    timeframe: str = "1h",
    direction: str = "BUY",
    quantity: float = 2.0,
    entry: float = 100.0,
    stop: float = 98.0,
    fees: float = 0.2,
) -> Position:
    return Position(
        id=pid,
        symbol=symbol,
        timeframe=timeframe,
        side=side_of(direction),
        quantity=quantity,
        entry_price=entry,
        entry_time_ms=T,
        stop_price=stop,
        fees_paid=fees,
        confidence=0.85,
        predicted_direction="BUY" if direction == "BUY" else "SELL",
        horizon_ms=T + HOUR,
    )


def test_long_close_pnl_after_both_fees() -> None:
    trade = position().close(
        exit_price=103.0, exit_time_ms=T + HOUR, exit_fee=0.206, reason="horizon"
    )
    # (103 - 100) * 2 = 6.0 gross; fees 0.2 + 0.206 = 0.406; notional 200
    assert trade.pnl_absolute == pytest.approx(5.594)
    assert trade.pnl_percent == pytest.approx(5.594 / 200 * 100)
    assert trade.fees == pytest.approx(0.406)
    assert trade.outcome == "WIN"
    assert trade.predicted_direction == "BUY" and trade.side == "long"
    assert (trade.entry_time_ms, trade.exit_time_ms) == (T, T + HOUR)


def test_short_close_pnl() -> None:
    pos = position(direction="SELL", stop=102.0)
    trade = pos.close(exit_price=97.0, exit_time_ms=T + HOUR, exit_fee=0.194, reason="horizon")
    # (100 - 97) * 2 = 6.0 gross; fees 0.2 + 0.194
    assert trade.pnl_absolute == pytest.approx(5.606)
    assert trade.side == "short" and trade.outcome == "WIN"
    loss = pos.close(exit_price=101.0, exit_time_ms=T + HOUR, exit_fee=0.202, reason="stop_loss")
    assert loss.pnl_absolute == pytest.approx(-2.0 - 0.402)
    assert loss.outcome == "LOSS" and loss.exit_reason == "stop_loss"


def test_break_even_after_fees_is_a_loss() -> None:
    # price gain exactly pays the fees: pnl 0 is not a win
    trade = position(fees=0.5).close(100.5, T + HOUR, 0.5, "horizon")
    assert trade.pnl_absolute == pytest.approx(0.0, abs=1e-12)
    assert trade.outcome == "LOSS"


def test_invalid_positions_and_reasons() -> None:
    with pytest.raises(ValueError, match="cannot open a short"):
        Position(1, "BTC/USDT", "1h", "short", 1.0, 100.0, T, 102.0, 0.0, 0.9, "BUY", T + HOUR)
    with pytest.raises(ValueError, match="positive"):
        position(quantity=0.0)
    with pytest.raises(ValueError, match="exit reason"):
        position().close(100.0, T + HOUR, 0.0, "whim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="BUY or SELL"):
        side_of("HOLD")


def test_stop_reference_intra_candle_and_gap() -> None:
    long = position(stop=98.0)
    assert long.stop_reference(open_=100.0, high=101.0, low=98.5) is None
    assert long.stop_reference(open_=100.0, high=101.0, low=97.0) == 98.0
    assert long.stop_reference(open_=96.0, high=97.0, low=95.0) == 96.0  # gapped through
    short = position(direction="SELL", stop=102.0)
    assert short.stop_reference(open_=100.0, high=101.9, low=99.0) is None
    assert short.stop_reference(open_=100.0, high=103.0, low=99.0) == 102.0
    assert short.stop_reference(open_=104.0, high=105.0, low=103.5) == 104.0


def test_book_one_position_per_symbol_and_timeframe() -> None:
    book = PositionBook()
    book.open(position(pid=book.allocate_id()))
    with pytest.raises(PositionExistsError, match=r"BTC/USDT @ 1h already has open position #1"):
        book.open(position(pid=book.allocate_id(), direction="SELL", stop=102.0))
    book.open(position(pid=book.allocate_id(), timeframe="4h"))
    book.open(position(pid=book.allocate_id(), symbol="ETH/USDT"))
    assert len(book) == 3
    assert [p.timeframe for p in book.for_symbol("BTC/USDT")] == ["1h", "4h"]
    closed = book.close("BTC/USDT", "1h")
    assert closed.id == 1 and book.get("BTC/USDT", "1h") is None
    with pytest.raises(KeyError, match="no open position"):
        book.close("BTC/USDT", "1h")


def test_mark_to_market_equity_and_exposure() -> None:
    book = PositionBook()
    book.open(position(pid=1, quantity=2.0, entry=100.0))  # long 2 BTC
    book.open(position(pid=2, symbol="ETH/USDT", direction="SELL", quantity=10.0, entry=10.0))
    prices = {"BTC/USDT": 90.0, "ETH/USDT": 12.0}
    assert book.exposure(prices) == pytest.approx(2 * 90 + 10 * 12)
    assert book.market_value(prices) == pytest.approx(180.0 - 120.0)
    assert book.equity(1000.0, prices) == pytest.approx(1060.0)
    with pytest.raises(KeyError, match="no price for ETH/USDT"):
        book.equity(1000.0, {"BTC/USDT": 90.0})


def test_a_new_book_numbers_after_the_stored_positions() -> None:
    """Ids are the store's keys: a new account beside an earlier one's positions continues
    their numbering, and never goes back."""
    book = PositionBook()
    book.continue_ids_after(154)
    assert book.allocate_id() == 155
    book.continue_ids_after(3)
    assert book.allocate_id() == 156


@pytest.mark.parametrize("direction", ["BUY", "SELL"])
def test_unrealized_pnl_is_the_signed_move_to_the_last_bit(direction: str) -> None:
    """Written as a negation for shorts; the ledger needs ``sign * (price - entry) * qty``."""
    sign = 1 if direction == "BUY" else -1
    for quantity, entry, price in [
        (0.123456, 43_210.5, 43_987.25),
        (3.0, 1.1, 1.1),
        (7e-8, 9.9, 0.3),
    ]:
        p = position(direction=direction, quantity=quantity, entry=entry, stop=entry)
        assert p.unrealized_pnl(price).hex() == (sign * (price - entry) * quantity).hex()
