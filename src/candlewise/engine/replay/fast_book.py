"""The paper broker's book for block replay: ``PaperBroker``'s arithmetic on plain lists.

Why a second implementation: in a replay the shadow book opens and closes a position nearly
every minute, and ``PaperBroker``'s frozen ``Position``/``ClosedTrade`` objects, validation and
log-line building cost ~25 us a minute, more than the whole budget of a 50,000 candles/s replay.
This class runs the same rules (``paper`` mode, reversal on, no fill hook) with every float
operation in the same order as ``PaperBroker``, ``PositionBook`` and ``Position``, so that a
block replay's trades equal the event path's to the last bit; the equality is tested on whole
backtests (``tests/engine/replay/test_block_equality.py``). ``PaperBroker`` stays the reference and
the state: ``FastBook(broker)`` takes its state over, ``save()`` hands it back, so checkpoints,
resumes and the rare events handled by the engine itself (rollback, alerts) see one broker.

An open position is a list ``[id, symbol, timeframe, sign, quantity, entry_price, entry_ms,
stop_price, fees_paid, confidence, horizon_ms]``; a closed trade a ``Trade`` tuple.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from candlewise.risk.limits import DAY_MS, LIMIT_EPSILON
from candlewise.trading.paper_broker import QUANTITY_DECIMALS, PaperBroker
from candlewise.trading.positions import Position

_SCALE = 10**QUANTITY_DECIMALS


class Trade(NamedTuple):
    """A closed position (the columns of ``trade_outcomes``, times in ms)."""

    position_id: int
    symbol: str
    timeframe: str
    sign: int
    confidence: float
    entry_ms: int
    exit_ms: int
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    pnl_percent: float
    fees: float
    outcome: str
    reason: str

    @property
    def direction(self) -> str:
        return "BUY" if self.sign == 1 else "SELL"


class FastBook:
    """One paper account (cash, open positions, last prices, risk limits) during a block."""

    __slots__ = (
        "blocked_day", "broker", "cash", "day", "day_start", "fee_rate", "halt_reason",
        "limits", "loss_limit", "max_exposure", "max_position", "min_notional", "next_id",
        "open", "poor", "prices", "seen", "slippage", "stop_loss",
    )  # fmt: skip

    def __init__(self, broker: PaperBroker) -> None:
        if broker.mode != "paper" or not broker.reverse or broker.fill_hook is not None:
            raise ValueError("block replay needs a paper broker with reversal and no fill hook")
        self.broker = broker
        self.slippage = broker.config.slippage
        self.fee_rate = broker.config.fee_rate
        self.stop_loss = broker.risk.stop_loss
        self.max_position = broker.risk.max_position_size_percent
        self.max_exposure = broker.risk.max_total_exposure
        self.limits = broker.limits
        self.min_notional = broker.limits.min_notional
        self.loss_limit = broker.risk.daily_loss_limit - LIMIT_EPSILON
        self.load()

    def load(self) -> None:
        """Take the broker's current state (after the engine itself changed it)."""
        broker = self.broker
        self.cash = broker.cash
        self.prices = broker.last_prices  # the same dict: updated in place
        self.halt_reason = broker.halt_reason
        self.next_id = broker.book._next_id
        self.open: dict[tuple[str, str], list[Any]] = {
            key: _as_list(p) for key, p in broker.book._open.items()
        }
        limits = self.limits
        self.day = limits._day
        self.day_start = limits._day_start_equity
        self.blocked_day = limits._blocked_day
        self.seen: tuple[int, float] | None = None
        """(day, equity) of the last ``observe``: observing them again changes nothing."""
        self.poor: tuple[int, float] | None = None
        """(day, cash) of the last entry refused below the minimum order on a flat book."""

    def save(self) -> None:
        """Hand the state back to the broker (before a checkpoint or an engine call)."""
        broker = self.broker
        broker.cash = self.cash
        broker.book._next_id = self.next_id
        broker.book._open = {key: _as_position(p) for key, p in self.open.items()}
        limits = self.limits
        limits._day = self.day
        limits._day_start_equity = self.day_start
        limits._blocked_day = self.blocked_day

    def observe(self, equity: float, at_ms: int) -> None:
        """``RiskLimits.observe``: roll the UTC day, latch the daily loss."""
        day = at_ms // DAY_MS
        seen = (day, equity)
        if seen == self.seen:
            return  # same day, same equity: the same roll and latch as last time
        self.seen = seen
        current = self.day
        if current is None or day > current:
            self.day = current = day
            self.day_start = equity
        start = self.day_start
        loss = (start - equity) / start if start > 0 else 0.0
        if loss >= self.loss_limit:
            self.blocked_day = current

    def blocked(self, at_ms: int) -> bool:
        return self.blocked_day is not None and self.blocked_day == at_ms // DAY_MS

    # --- valuation: PositionBook.equity / exposure -----------------------------------------

    def equity(self) -> float:
        prices = self.prices
        value = 0
        for p in self.open.values():
            value += p[3] * p[4] * prices[p[1]]
        return self.cash + value

    def exposure(self) -> float:
        prices = self.prices
        value = 0
        for p in self.open.values():
            value += p[4] * prices[p[1]]
        return value

    # --- events: PaperBroker.on_candle / on_signal -----------------------------------------

    def on_candle(
        self, symbol: str, open_ms: int, close_ms: int, o: float, h: float, lo: float, c: float
    ) -> list[Trade]:
        """Mark ``symbol`` to the 1m close and run its exits (stop first, then horizon)."""
        self.prices[symbol] = c
        closed: list[Trade] = []
        if self.open:
            for p in list(self.open.values()):
                if p[1] != symbol:
                    continue
                price = None
                reason = "stop_loss"
                if open_ms >= p[6]:
                    stop = p[7]
                    if p[3] == 1:
                        if lo <= stop:
                            price = min(o, stop)
                    elif h >= stop:
                        price = max(o, stop)
                if price is None and close_ms >= p[10]:
                    price, reason = c, "horizon"
                if price is not None:
                    closed.append(self._close(p, price, close_ms, reason))
        self.observe(self.equity(), close_ms)
        return closed

    def on_signal(
        self, symbol: str, timeframe: str, tf_ms: int, at_ms: int, buy: bool, confidence: float,
        price: float,
    ) -> tuple[list[Any] | None, Trade | None]:  # fmt: skip
        """The opened position and the trade an opposite signal closed (either may be None)."""
        self.prices[symbol] = price
        sign = 1 if buy else -1
        current = self.open.get((symbol, timeframe))
        closed = None
        if current is not None:
            if current[3] == sign:
                return None, None
            closed = self._close(current, price, at_ms, "opposite_signal")
        if self.halt_reason is not None:
            return None, closed
        return self._enter(symbol, timeframe, tf_ms, at_ms, sign, confidence, price), closed

    def _enter(
        self, symbol: str, timeframe: str, tf_ms: int, at_ms: int, sign: int, confidence: float,
        price: float,
    ) -> list[Any] | None:  # fmt: skip
        """``PaperBroker._enter`` + ``RiskLimits.check_entry`` + ``PaperBroker._open``."""
        if self.poor is not None and not self.open and self.poor == (at_ms // DAY_MS, self.cash):
            return None  # refused below the minimum order with this cash today already
        prices = self.prices
        value = gross = 0  # PositionBook.market_value and .exposure, same order of sums
        for p in self.open.values():
            price_now = prices[p[1]]
            value += p[3] * p[4] * price_now
            gross += p[4] * price_now
        equity = self.cash + value
        requested = self.max_position * equity
        self.observe(equity, at_ms)
        if equity <= 0 or self.blocked(at_ms):
            return None
        size_cap = self.max_position * equity
        room = self.max_exposure * equity - gross
        notional = min(requested, size_cap, room)
        if notional < self.min_notional:
            if not self.open:
                self.poor = (at_ms // DAY_MS, self.cash)
            return None
        slip = self.slippage
        fill = price * (1 + slip) if sign == 1 else price * (1 - slip)
        quantity = math.floor(notional / fill * _SCALE + 1e-6) / _SCALE
        if quantity <= 0:
            return None
        fee = quantity * fill * self.fee_rate
        stop = fill * (1 - self.stop_loss if sign == 1 else 1 + self.stop_loss)
        pid = self.next_id
        self.next_id = pid + 1
        position = [
            pid, symbol, timeframe, sign, quantity, fill, at_ms, stop, fee, confidence,
            at_ms + tf_ms,
        ]  # fmt: skip
        self.open[(symbol, timeframe)] = position
        self.cash -= sign * quantity * fill + fee
        return position

    def _close(self, p: list[Any], price: float, at_ms: int, reason: str) -> Trade:
        """``PaperBroker._close`` + ``Position.close``."""
        sign, quantity, entry = p[3], p[4], p[5]
        slip = self.slippage
        fill = price * (1 - slip) if sign == 1 else price * (1 + slip)
        fee = quantity * fill * self.fee_rate
        del self.open[(p[1], p[2])]
        self.cash += sign * quantity * fill - fee
        fees = p[8] + fee
        pnl = sign * (fill - entry) * quantity - fees
        return Trade(
            p[0], p[1], p[2], sign, p[9], p[6], at_ms, entry, fill, quantity, pnl,
            pnl / (quantity * entry) * 100.0, fees, "WIN" if pnl > 0 else "LOSS", reason,
        )  # fmt: skip


def _as_list(p: Position) -> list[Any]:
    return [
        p.id, p.symbol, p.timeframe, p.sign, p.quantity, p.entry_price, p.entry_time_ms,
        p.stop_price, p.fees_paid, p.confidence, p.horizon_ms,
    ]  # fmt: skip


def _as_position(p: list[Any]) -> Position:
    long = p[3] == 1
    return Position(
        id=p[0],
        symbol=p[1],
        timeframe=p[2],
        side="long" if long else "short",
        quantity=p[4],
        entry_price=p[5],
        entry_time_ms=p[6],
        stop_price=p[7],
        fees_paid=p[8],
        confidence=p[9],
        predicted_direction="BUY" if long else "SELL",
        horizon_ms=p[10],
    )
