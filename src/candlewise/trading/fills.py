"""The arithmetic of a paper fill: slippage, quantity step, fee, stop and cash, on plain floats.

One place for the numbers of an entry and an exit, so the paper broker (one event at a time)
and the block replay's book (a block of minutes at a time) cannot drift apart: both call these
functions, and a change to a rule here changes both. Plain floats in and a small tuple out,
because the block replay calls them for every fill of a year-long backtest. The order of the
float operations is part of the contract: replays compare ledgers to the last bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from candlewise.trading.positions import Position, opened_position

#: Quantities are rounded down to 1e-8, the finest base-asset step Binance uses.
QUANTITY_DECIMALS = 8
_SCALE = 10**QUANTITY_DECIMALS
#: Builds a named tuple without its Python-level ``__new__`` (a frame less per fill).
_new = tuple.__new__


def fill_price(price: float, buy: bool, slippage: float) -> float:
    """Every fill moves ``slippage`` against the trader: buys higher, sells lower."""
    return price * (1 + slippage) if buy else price * (1 - slippage)


class EntryFill(NamedTuple):
    """A sized entry: what fills, what it pays, where its stop is and what it takes from cash."""

    sign: int
    price: float
    """Fill price, slippage included."""
    quantity: float
    fee: float
    stop_price: float
    cost: float
    """Cash the entry takes: coins bought (a short's coins sold count negative), fee included."""

    def position(
        self, position_id: int, symbol: str, timeframe: str, at_ms: int, horizon_ms: int,
        confidence: float,
    ) -> Position:  # fmt: skip
        """The open position this fill creates (its cost is the caller's to take from cash)."""
        return opened_position(
            position_id,
            symbol,
            timeframe,
            self.sign,
            self.quantity,
            self.price,
            at_ms,
            self.stop_price,
            self.fee,
            confidence,
            horizon_ms,
        )


def entry_fill(
    price: float, sign: int, notional: float, slippage: float, fee_rate: float, stop_loss: float
) -> EntryFill | None:
    """The entry of ``notional`` at ``price`` for side ``sign`` (+1 long), or None below a step.

    1e-6 of a step absorbs float error below a whole step when rounding the quantity down.
    """
    fill = fill_price(price, sign == 1, slippage)
    quantity = math.floor(notional / fill * _SCALE + 1e-6) / _SCALE
    if quantity <= 0:
        return None
    fee = quantity * fill * fee_rate
    stop = fill * (1 - stop_loss if sign == 1 else 1 + stop_loss)
    return _new(EntryFill, (sign, fill, quantity, fee, stop, sign * quantity * fill + fee))


class ExitFill(NamedTuple):
    """An exit: its fill price, its fee and what it gives back to cash."""

    price: float
    fee: float
    proceeds: float
    """Cash the exit gives: coins sold (a short's coins bought back count negative), less fee."""


def exit_fill(
    price: float, sign: int, quantity: float, slippage: float, fee_rate: float
) -> ExitFill:
    """Closing ``quantity`` of side ``sign`` at ``price``: a long sells, a short buys back."""
    fill = fill_price(price, sign != 1, slippage)
    fee = quantity * fill * fee_rate
    return _new(ExitFill, (fill, fee, sign * quantity * fill - fee))
