"""The paper broker's book for block replay: ``PaperBroker``'s rules, driven a block at a time.

Why a second driver: in a replay the shadow book opens and closes a position nearly every
minute, and going through ``PaperBroker.on_candle``/``on_signal`` means a ``Candle`` and a
``Signal`` per event, fill requests, validation and log-line building, more than the whole
budget of a 50,000 candles/s replay. This class keeps the state a block changes (cash, the open
positions) in plain attributes and a plain dict, and calls the rules themselves: the fill
arithmetic (``trading.fills``), ``exits_on``, ``valuation`` and ``Position.close`` (exits,
marks and P&L), ``PaperBroker.requested_notional`` (sizing) and the broker's own
``RiskLimits`` (the daily loss limit, entry caps), so a block replay's trades equal the event
path's to the last bit; the equality is tested on whole backtests
(``tests/engine/replay/test_block_equality.py``).

``PaperBroker`` stays the reference and the state: ``FastBook(broker)`` takes its cash and
positions over, ``save()`` hands them back, so checkpoints, resumes and the rare events handled
by the engine itself (rollback, alerts) see one broker. The risk limits and position ids are
never copied: the book updates the broker's ``RiskLimits`` and ``PositionBook`` numbering as it
goes. Only ``paper`` mode with reversal and no fill hook (a hook could refuse any fill).
"""

from __future__ import annotations

from candlewise.risk.limits import DAY_MS
from candlewise.trading.fills import entry_fill, exit_fill
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade, ExitReason, Position, exits_on, valuation


class FastBook:
    """One paper account (cash, open positions, last prices, risk limits) during a block."""

    __slots__ = (
        "blocked_day", "book", "broker", "cash", "fee_rate", "halt_reason", "limits", "mark",
        "open", "poor", "prices", "requested", "seen", "slippage", "stop_loss",
    )  # fmt: skip

    def __init__(self, broker: PaperBroker) -> None:
        if broker.mode != "paper" or not broker.reverse or broker.fill_hook is not None:
            raise ValueError("block replay needs a paper broker with reversal and no fill hook")
        self.broker = broker
        self.slippage = broker.config.slippage
        self.fee_rate = broker.config.fee_rate
        self.stop_loss = broker.risk.stop_loss
        self.limits = broker.limits
        self.requested = broker.requested_notional
        self.book = broker.book
        """The broker's ``PositionBook``: it numbers the positions, and gets them back on save."""
        self.load()

    def load(self) -> None:
        """Take the broker's current state (after the engine itself changed it)."""
        broker = self.broker
        self.cash = broker.cash
        self.prices = broker.last_prices  # the same dict: updated in place
        self.halt_reason = broker.halt_reason
        self.blocked_day = self.limits.blocked_day
        """``RiskLimits.blocked_day`` as of the last call that may change it (the minute loop
        reads it every minute)."""
        self.open: dict[tuple[str, str], Position] = {p.key: p for p in self.book}
        self.mark: tuple[float, float] | None = None
        """(equity, exposure) of the book as it is, or None: to be valued again. Every change
        of cash, positions or a price in here clears it; the minute loop sets the prices of a
        flat book only, whose valuation no price changes."""
        self.seen: tuple[int, float] | None = None
        """(day, equity) of the last ``observe``: observing them again changes nothing."""
        self.poor: tuple[int, float] | None = None
        """(day, cash) of the last entry refused on a flat book: with the same cash on the same
        day, the limits refuse it again (a block latch stays for the day, sizes depend on cash
        alone), so ``on_signal`` may be skipped."""

    def save(self) -> None:
        """Hand the state back to the broker (before a checkpoint or an engine call)."""
        self.broker.cash = self.cash
        self.book.replace(self.open.values())

    def observe(self, equity: float, at_ms: int) -> None:
        """``RiskLimits.observe``, skipped when (day, equity) are those of the last call."""
        seen = (at_ms // DAY_MS, equity)
        if seen != self.seen:
            self.seen = seen
            limits = self.limits
            limits.observe(equity, at_ms)
            self.blocked_day = limits.blocked_day

    def blocked(self, at_ms: int) -> bool:
        return self.limits.blocked(at_ms)

    # --- valuation: PositionBook.equity / exposure -----------------------------------------

    def valued(self) -> tuple[float, float]:
        """(equity, exposure): ``PositionBook.equity`` and ``.exposure``, kept until a change."""
        return self.mark or self.revalue()

    def revalue(self) -> tuple[float, float]:
        value, gross = valuation(self.open.values(), self.prices)
        mark = self.mark = (self.cash + value, gross)
        return mark

    def equity(self) -> float:
        return self.valued()[0]

    def exposure(self) -> float:
        return self.valued()[1]

    # --- events: PaperBroker.on_candle / on_signal -----------------------------------------

    def on_candle(
        self, symbol: str, open_ms: int, close_ms: int, o: float, h: float, lo: float, c: float
    ) -> list[ClosedTrade]:
        """Mark ``symbol`` to the 1m close and run its exits (``exits_on``)."""
        self.prices[symbol] = c
        closed: list[ClosedTrade] = []
        if self.open:
            mine = [p for p in self.open.values() if p.symbol == symbol]
            for p, price, reason in exits_on(mine, open_ms, close_ms, o, h, lo, c):
                closed.append(self._close(p, price, close_ms, reason))
        equity = self.revalue()[0]  # a new price: value it again
        seen = (close_ms // DAY_MS, equity)
        if seen != self.seen:  # ``observe``, inline (every minute)
            self.seen = seen
            limits = self.limits
            limits.observe(equity, close_ms)
            self.blocked_day = limits.blocked_day
        return closed

    def on_signal(
        self, symbol: str, timeframe: str, tf_ms: int, at_ms: int, buy: bool, confidence: float,
        price: float,
    ) -> tuple[Position | None, ClosedTrade | None]:  # fmt: skip
        """The opened position and the trade an opposite signal closed (either may be None)."""
        prices = self.prices
        if prices.get(symbol) != price:
            prices[symbol] = price
            self.mark = None
        sign = 1 if buy else -1
        current = self.open.get((symbol, timeframe))
        closed = None
        if current is not None:
            if current.sign == sign:
                return None, None
            closed = self._close(current, price, at_ms, "opposite_signal")
        if self.halt_reason is not None:
            return None, closed
        return self._enter(symbol, timeframe, tf_ms, at_ms, sign, confidence, price), closed

    def _enter(
        self, symbol: str, timeframe: str, tf_ms: int, at_ms: int, sign: int, confidence: float,
        price: float,
    ) -> Position | None:  # fmt: skip
        """``PaperBroker._enter`` and ``_open``, on this book's cash and positions."""
        day = at_ms // DAY_MS
        if self.poor is not None and not self.open and self.poor == (day, self.cash):
            return None  # refused on a flat book with this cash today already
        equity, exposure = self.mark or self.valued()
        limits = self.limits
        notional = limits.admit(equity, exposure, self.requested(equity), at_ms)
        self.seen = (day, equity)  # ``admit`` observed it
        self.blocked_day = limits.blocked_day
        if notional is None:
            if not self.open:
                self.poor = (day, self.cash)
            return None
        fill = entry_fill(price, sign, notional, self.slippage, self.fee_rate, self.stop_loss)
        if fill is None:
            return None
        position = fill.position(
            self.book.allocate_id(), symbol, timeframe, at_ms, at_ms + tf_ms, confidence
        )
        self.open[(symbol, timeframe)] = position
        self.cash -= fill.cost
        self.mark = None
        return position

    def _close(self, p: Position, price: float, at_ms: int, reason: ExitReason) -> ClosedTrade:
        """``PaperBroker._close`` on this book's cash and positions."""
        fill = exit_fill(price, p.sign, p.quantity, self.slippage, self.fee_rate)
        del self.open[(p.symbol, p.timeframe)]
        self.cash += fill.proceeds
        self.mark = None
        return p.close(fill.price, at_ms, fill.fee, reason)
