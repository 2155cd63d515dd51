"""The paper broker: simulated market fills with fees and slippage, stops, horizons, flattening.

Fill price. An order triggered by a signal fills at the close of the candle whose close produced
the signal (the caller passes it). That close is the last trade known when the signal exists, so
there is no lookahead, and it is the price the model's label is measured from (``close[t+1] >
close[t]``), so a trade's outcome and the prediction's label agree. In a 24/7 market the next
candle's open is the next trade after that close; the gap between the two is what ``slippage``
charges. Every fill moves ``slippage`` against the trader (buys higher, sells lower) and pays
``fee_rate`` of its notional, on both sides. Quantities are rounded down to 1e-8, the finest
base-asset step Binance uses: an exchange cannot fill a fraction of its step, rounding down keeps
the entry inside the limits, and quantities on a decimal grid keep the ledger hash (10 decimals)
away from its rounding boundaries.
The arithmetic of a fill is in ``trading.fills``, the exits and P&L in ``Position``, the caps in
``RiskLimits``: the block replay's book calls the same functions a block at a time.

Exits, checked by ``on_candle`` for every open position of the candle's symbol:
- stop-loss, ``stop_loss`` from the entry fill: triggered when the candle's low (long) or high
  (short) reaches it, filled at the stop or at the open if the candle gapped through it. Only
  candles opening at or after the entry are used: an earlier candle's range includes prices from
  before the position existed. Stop before horizon when one candle hits both: the order of the
  high and low inside a candle is unknown, so assume the worse;
- horizon: at the close of the first candle closing at or after the horizon (the signal
  timeframe's next close), at that close: the prediction is judged at exactly that candle.
Call ``on_candle`` before the signals of the same close, so a position whose horizon is that
close exits first and the new signal can open a fresh one.

Signals: a signal in the direction of the open position of its ``(symbol, timeframe)`` is
skipped (one position per key; a new prediction gets a new outcome, it does not stretch the old
one). An opposite signal closes the position (``opposite_signal``) and, when ``reverse`` is on
(the default, paper mode), opens the other side, sized and checked like any entry: the signal is
the model's current view, and sitting flat against it would waste it. In ``live-spot`` mode the
broker is long only, as a spot account without margin is: SELL closes a long or is skipped with a
reason. The kill switch ``flatten_all`` closes everything (``rollback``), retrying failed fills,
and halts new entries. No wall clock: times are the event times passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import timeframe_ms
from candlewise.risk.limits import RiskLimits
from candlewise.signals.aggregate import Signal
from candlewise.trading.fills import (
    EntryFill,
    ExitFill,
    entry_fill,
    exit_fill,
)
from candlewise.trading.positions import (
    ClosedTrade,
    ExitReason,
    Position,
    PositionBook,
    closed_line,
    executed_line,
    side_of,
)

Mode = Literal["paper", "live-spot"]
DEFAULT_FLATTEN_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class FillRequest:
    """One market order about to fill; a ``FillHook`` may refuse it (an exchange failure)."""

    symbol: str
    timeframe: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    """Fill price, slippage included."""
    purpose: Literal["entry", "exit"]


#: Returns False to make the fill fail. Tests use it to simulate an exchange that refuses orders.
FillHook = Callable[[FillRequest], bool]


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """What a signal did; ``reason`` says why, ``log_lines`` are the guide's lines for it."""

    action: Literal["opened", "closed", "reversed", "skipped"]
    reason: str
    opened: Position | None = None
    closed: ClosedTrade | None = None
    log_lines: tuple[str, ...] = ()


class FlattenError(RuntimeError):
    """``flatten_all`` ran out of attempts; ``closed`` did happen, ``remaining`` are still open."""

    def __init__(self, remaining: list[Position], closed: list[ClosedTrade]) -> None:
        keys = ", ".join(f"#{p.id} {p.symbol} @ {p.timeframe}" for p in remaining)
        super().__init__(f"could not flatten {len(remaining)} position(s): {keys}")
        self.remaining = remaining
        self.closed = closed


class PaperBroker:
    """Simulated account: cash, open positions, last prices, and the risk limits on entries."""

    def __init__(
        self,
        config: PaperConfig,
        risk: RiskConfig,
        mode: Mode = "paper",
        *,
        reverse: bool = True,
        fill_hook: FillHook | None = None,
        limits: RiskLimits | None = None,
    ) -> None:
        if mode not in ("paper", "live-spot"):
            raise ValueError(f"mode must be 'paper' or 'live-spot', got {mode!r}")
        self.config = config
        self.risk = risk
        self.mode: Mode = mode
        self.reverse = reverse and mode == "paper"
        self.fill_hook = fill_hook
        self.limits = limits if limits is not None else RiskLimits(risk)
        self.book = PositionBook()
        self.cash = config.starting_balance
        self.last_prices: dict[str, float] = {}
        self.halt_reason: str | None = None

    # --- valuation -------------------------------------------------------------------------

    def equity(self) -> float:
        """Mark-to-market equity at the last known prices."""
        return self.book.equity(self.cash, self.last_prices)

    def exposure(self) -> float:
        """Gross notional of the open positions at the last known prices."""
        return self.book.exposure(self.last_prices)

    @property
    def halted(self) -> bool:
        return self.halt_reason is not None

    def halt(self, reason: str) -> None:
        """Stop new entries for good (exits still happen); the first reason is kept."""
        if self.halt_reason is None:
            self.halt_reason = reason

    # --- fills ---------------------------------------------------------------------------------

    def _fills(self, request: FillRequest) -> bool:
        return self.fill_hook is None or self.fill_hook(request)

    def _open(self, signal: Signal, price: float, notional: float) -> Position | None:
        side = side_of(signal.direction)
        fill = self.entry_fill(price, 1 if side == "long" else -1, notional)
        if fill is None:
            return None
        order: Literal["buy", "sell"] = "buy" if side == "long" else "sell"
        request = FillRequest(
            signal.symbol, signal.timeframe, order, fill.quantity, fill.price, "entry"
        )
        if not self._fills(request):
            return None
        position = fill.position(
            self.book.allocate_id(),
            signal.symbol,
            signal.timeframe,
            signal.timestamp,
            signal.timestamp + timeframe_ms(signal.timeframe),
            signal.confidence,
        )
        self.book.open(position)
        self.cash -= fill.cost
        return position

    def entry_fill(self, price: float, sign: int, notional: float) -> EntryFill | None:
        """An entry of ``notional`` at ``price`` on side ``sign`` (+1 long), at this account's
        slippage, fee and stop distance; None below one quantity step."""
        config = self.config
        return entry_fill(
            price, sign, notional, config.slippage, config.fee_rate, self.risk.stop_loss
        )

    def exit_fill(self, position: Position, price: float) -> ExitFill:
        """Closing ``position`` at ``price`` (before slippage), at this account's costs."""
        config = self.config
        return exit_fill(price, position.sign, position.quantity, config.slippage, config.fee_rate)

    def _close(
        self, position: Position, price: float, at_ms: int, reason: ExitReason
    ) -> ClosedTrade | None:
        fill = self.exit_fill(position, price)
        order: Literal["buy", "sell"] = "sell" if position.side == "long" else "buy"
        request = FillRequest(
            position.symbol, position.timeframe, order, position.quantity, fill.price, "exit"
        )
        if not self._fills(request):
            return None
        self.book.close(position.symbol, position.timeframe)
        self.cash += fill.proceeds
        return position.close(fill.price, at_ms, fill.fee, reason)

    # --- events --------------------------------------------------------------------------------

    def on_signal(self, signal: Signal, price: float) -> SignalOutcome:
        """Act on a TRADING-mode signal; ``price`` is the close of the candle that produced it."""
        if price <= 0:
            raise ValueError(f"price must be positive, got {price}")
        self.last_prices[signal.symbol] = price
        where = f"{signal.symbol} @ {signal.timeframe}"
        current = self.book.get(signal.symbol, signal.timeframe)
        closed: ClosedTrade | None = None
        lines: list[str] = []
        if current is not None:
            if current.side == side_of(signal.direction):
                return SignalOutcome(
                    "skipped", f"{where} already {current.side} (position #{current.id})"
                )
            closed = self._close(current, price, signal.timestamp, "opposite_signal")
            if closed is None:
                return SignalOutcome("skipped", f"{where}: exit fill failed, position kept")
            lines = [executed_line(signal.direction, signal.symbol, closed.exit_price)]
            lines.append(closed_line(closed))
            if not self.reverse:
                why = "spot cannot short" if self.mode == "live-spot" else "reversal is off"
                return SignalOutcome(
                    "closed", f"opposite signal; {why}", None, closed, tuple(lines)
                )
        elif self.mode == "live-spot" and signal.direction == "SELL":
            return SignalOutcome(
                "skipped", f"live-spot is long only: SELL with no open long on {where}"
            )
        opened, why = self._enter(signal, price)
        if opened is None:
            action: Literal["closed", "skipped"] = "closed" if closed else "skipped"
            return SignalOutcome(action, why, None, closed, tuple(lines))
        lines.append(executed_line(signal.direction, signal.symbol, opened.entry_price))
        action2: Literal["opened", "reversed"] = "reversed" if closed else "opened"
        return SignalOutcome(action2, why, opened, closed, tuple(lines))

    def _enter(self, signal: Signal, price: float) -> tuple[Position | None, str]:
        """Size and open a position: ``max_position_size_percent`` of equity, capped by limits."""
        if self.halt_reason is not None:
            return None, f"trading halted: {self.halt_reason}"
        equity = self.equity()
        requested = self.requested_notional(equity)
        decision = self.limits.check_entry(
            equity=equity,
            exposure=self.exposure(),
            requested_notional=requested,
            at_ms=signal.timestamp,
        )
        if not decision.allowed:
            return None, decision.reason
        opened = self._open(signal, price, decision.notional)
        if opened is None:
            return None, "entry fill failed (or below one quantity step)"
        return opened, decision.reason

    def requested_notional(self, equity: float) -> float:
        """What an entry asks for before the limits: ``max_position_size_percent`` of equity."""
        requested = self.risk.max_position_size_percent * equity
        if self.mode == "live-spot":  # spot buys need the cash, fee included; no margin
            requested = min(requested, max(self.cash, 0.0) / (1 + self.config.fee_rate))
        return requested

    def on_candle(self, candle: Candle) -> list[ClosedTrade]:
        """Mark the symbol to the candle's close and run the exits of its open positions.

        Feed the symbol's 1m candles (the finest there are): stops are checked on their
        high/low and every horizon falls on a 1m close. A coarser candle would judge a 15m
        position on an hour's range and close.
        """
        self.last_prices[candle.symbol] = candle.close
        closed: list[ClosedTrade] = []
        for position in self.book.for_symbol(candle.symbol):
            trade = self._exit_on(position, candle)
            if trade is not None:
                closed.append(trade)
        self.limits.observe(self.equity(), candle.close_time)
        return closed

    def _exit_on(self, position: Position, candle: Candle) -> ClosedTrade | None:
        """``Position.exit_reference``; a failed exit fill keeps the position open."""
        found = position.exit_reference(
            candle.open_time, candle.close_time, candle.open, candle.high, candle.low, candle.close
        )
        if found is None:
            return None
        return self._close(position, found[0], candle.close_time, found[1])

    def flatten_all(
        self,
        prices: Mapping[str, float],
        at_ms: int,
        *,
        max_attempts: int = DEFAULT_FLATTEN_ATTEMPTS,
        reason: str = "drawdown rollback",
    ) -> list[ClosedTrade]:
        """Close every open position at ``prices`` (``rollback``) and halt new entries.

        Halting comes first so nothing new opens meanwhile. Failed fills are retried, up to
        ``max_attempts`` passes over what is still open; then ``FlattenError`` names the rest.
        A symbol missing from ``prices`` uses its last known price.
        """
        self.halt(reason)
        self.last_prices.update(prices)
        closed: list[ClosedTrade] = []
        for _ in range(max_attempts):
            for position in self.book:
                price = self.last_prices[position.symbol]
                trade = self._close(position, price, at_ms, "rollback")
                if trade is not None:
                    closed.append(trade)
            if not self.book:
                return closed
        raise FlattenError(list(self.book), closed)
