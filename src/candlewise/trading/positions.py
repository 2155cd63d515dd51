"""Open positions, closed trades and the book that holds them: plain bookkeeping, no prices feed.

A position is one prediction put to work: the signal of a ``(symbol, timeframe)`` said BUY or
SELL about that timeframe's next candle, so the position carries the prediction (direction,
confidence) and its horizon (that next candle's close). When it closes, the ``ClosedTrade`` is
the prediction's verdict: it holds every column of the ``trade_outcomes`` table, so the store
writes it as is and the retrain policy reads WIN/LOSS from it.

The book allows at most one open position per ``(symbol, timeframe)``: each timeframe's signal
gets its own outcome, and a second signal of the same timeframe cannot silently average into (and
blur) the first one's result. Money is the broker's business; the book only values positions at
given prices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

Side = Literal["long", "short"]
Direction = Literal["BUY", "SELL"]
Outcome = Literal["WIN", "LOSS"]
ExitReason = Literal["horizon", "stop_loss", "opposite_signal", "rollback"]
EXIT_REASONS: tuple[str, ...] = ("horizon", "stop_loss", "opposite_signal", "rollback")


def side_of(direction: str) -> Side:
    """The position side a signal direction opens: BUY is long, SELL is short."""
    if direction == "BUY":
        return "long"
    if direction == "SELL":
        return "short"
    raise ValueError(f"direction must be BUY or SELL, got {direction!r}")


def side_sign(side: str) -> int:
    """+1 for long, -1 for short: PnL is ``sign * (exit - entry) * quantity``."""
    if side == "long":
        return 1
    if side == "short":
        return -1
    raise ValueError(f"side must be long or short, got {side!r}")


class ClosedTrade(NamedTuple):
    """A finished position: one row of ``trade_outcomes`` (times in ms; the store formats them).

    A named tuple rather than a frozen dataclass: as immutable, and five times cheaper to build,
    which counts in a replay that closes a shadow trade nearly every minute. Never pickled into
    a checkpoint (the books hold open positions only).
    """

    position_id: int
    symbol: str
    timeframe: str
    side: Side
    predicted_direction: Direction
    confidence: float
    entry_time_ms: int
    exit_time_ms: int
    entry_price: float
    """Fill price, slippage included."""
    exit_price: float
    """Fill price, slippage included."""
    quantity: float
    pnl_absolute: float
    """Quote currency, after the fees of both sides."""
    pnl_percent: float
    """``pnl_absolute`` in percent (not a fraction) of the entry notional, as the log shows it."""
    fees: float
    """Entry plus exit fee."""
    outcome: Outcome
    """WIN iff ``pnl_absolute > 0``: a trade that only pays its fees back is not a win."""
    exit_reason: ExitReason


@dataclass(frozen=True, slots=True)
class Position:
    """An open position; frozen, so a change is a new value and history cannot be edited."""

    id: int
    symbol: str
    timeframe: str
    side: Side
    quantity: float
    entry_price: float
    """Fill price, slippage included: stops and PnL are measured from what was paid."""
    entry_time_ms: int
    stop_price: float
    fees_paid: float
    """Entry fee, already taken from cash."""
    confidence: float
    predicted_direction: Direction
    horizon_ms: int
    """Close time of the signal timeframe's next candle: the moment the prediction is judged."""

    def __post_init__(self) -> None:
        if self.quantity <= 0 or self.entry_price <= 0:
            raise ValueError(
                f"quantity and entry_price must be positive, got {self.quantity}, "
                f"{self.entry_price}"
            )
        if side_of(self.predicted_direction) != self.side:
            raise ValueError(f"{self.predicted_direction} cannot open a {self.side} position")
        if self.horizon_ms <= self.entry_time_ms:
            raise ValueError("horizon_ms must be after entry_time_ms")

    @property
    def key(self) -> tuple[str, str]:
        return (self.symbol, self.timeframe)

    @property
    def sign(self) -> int:
        """+1 long, -1 short (``side`` is checked on construction: no second check here)."""
        return 1 if self.side == "long" else -1

    @property
    def notional(self) -> float:
        """Entry notional: the base of ``pnl_percent``."""
        return self.quantity * self.entry_price

    def market_value(self, price: float) -> float:
        """What the position adds to equity at ``price``: held coins, or minus the coins owed
        (``valuation``'s rule, for one position)."""
        return valuation((self,), {self.symbol: price})[0]

    def unrealized_pnl(self, price: float) -> float:
        """Price PnL at ``price``, before the exit fee (the entry fee is already out of cash).

        ``sign * (price - entry) * quantity``, written as a negation for shorts: multiplying by
        -1 and negating are both exact, so it is the same float, without the ``sign`` property
        call a replay would pay on every closed trade.
        """
        move = (price - self.entry_price) * self.quantity
        return move if self.side == "long" else -move

    def stop_reference(self, open_: float, high: float, low: float) -> float | None:
        """Price a stop market order would fill at (before slippage) in this candle, or None
        (``exits_on``'s stop rule, without its time conditions)."""
        found = exits_on((self,), self.entry_time_ms, self.entry_time_ms, open_, high, low, 0.0)
        return found[0][1] if found and found[0][2] == "stop_loss" else None

    def exit_reference(
        self, open_ms: int, close_ms: int, open_: float, high: float, low: float, close: float
    ) -> tuple[float, ExitReason] | None:
        """The exit a 1m candle triggers (price before slippage, reason), or None (``exits_on``
        for one position)."""
        found = exits_on((self,), open_ms, close_ms, open_, high, low, close)
        return (found[0][1], found[0][2]) if found else None

    def close(
        self, exit_price: float, exit_time_ms: int, exit_fee: float, reason: ExitReason
    ) -> ClosedTrade:
        """The trade this position becomes when it exits at ``exit_price`` (a fill price)."""
        if reason not in EXIT_REASONS:
            raise ValueError(f"exit reason must be one of {EXIT_REASONS}, got {reason!r}")
        fees = self.fees_paid + exit_fee
        pnl = self.unrealized_pnl(exit_price) - fees
        return _new(  # ClosedTrade without its Python-level __new__: the replay's hot path
            ClosedTrade,
            (
                self.id,
                self.symbol,
                self.timeframe,
                self.side,
                self.predicted_direction,
                self.confidence,
                self.entry_time_ms,
                exit_time_ms,
                self.entry_price,
                exit_price,
                self.quantity,
                pnl,
                pnl / self.notional * 100.0,
                fees,
                "WIN" if pnl > 0 else "LOSS",
                reason,
            ),
        )


(_s_id, _s_symbol, _s_tf, _s_side, _s_qty, _s_price, _s_time, _s_stop, _s_fee, _s_conf, _s_dir,
 _s_hor) = (Position.__dict__[f.name].__set__ for f in fields(Position))  # fmt: skip
"""The slots' setters in field order: the way ``opened_position`` fills a frozen position."""
_object_new = object.__new__


def opened_position(
    position_id: int, symbol: str, timeframe: str, sign: int, quantity: float,
    entry_price: float, entry_time_ms: int, stop_price: float, fee: float, confidence: float,
    horizon_ms: int,
) -> Position:  # fmt: skip
    """The position an entry fill opens, equal to ``Position(...)`` and pickling the same.

    Built without ``__init__``'s checks: side and direction follow from ``sign``, and the fill
    rule (``trading.fills``) guarantees a positive quantity and price, so the replay's hot path
    (a shadow entry nearly every minute) skips half the cost. Construct positions from any
    other source with ``Position(...)``, which validates.
    """
    if horizon_ms <= entry_time_ms:
        raise ValueError("horizon_ms must be after entry_time_ms")
    long = sign == 1
    p = _object_new(Position)
    _s_id(p, position_id)
    _s_symbol(p, symbol)
    _s_tf(p, timeframe)
    _s_side(p, "long" if long else "short")
    _s_qty(p, quantity)
    _s_price(p, entry_price)
    _s_time(p, entry_time_ms)
    _s_stop(p, stop_price)
    _s_fee(p, fee)
    _s_conf(p, confidence)
    _s_dir(p, "BUY" if long else "SELL")
    _s_hor(p, horizon_ms)
    return p


def exits_on(
    positions: Iterable[Position],
    open_ms: int,
    close_ms: int,
    open_: float,
    high: float,
    low: float,
    close: float,
) -> list[tuple[Position, float, ExitReason]]:
    """The exits a 1m candle triggers among ``positions``: (position, price before slippage,
    reason), in the order given. The one definition of the exit rule, over many positions in
    one call because a replay tests every open position every minute.

    Stop first, then horizon: the order of the high and the low inside a candle is unknown, so
    assume the worse. The stop triggers when the candle's range reaches it; a candle that opens
    beyond the stop (a gap) fills at its open, which is worse than the stop: the market never
    traded at the stop price. Only candles opening at or after the entry may stop a position
    out (an earlier candle's range holds prices from before it existed); the horizon exits at
    the close of the first candle closing at or after it.
    """
    found: list[tuple[Position, float, ExitReason]] = []
    for p in positions:
        if open_ms >= p.entry_time_ms:
            stop = p.stop_price
            if p.side == "long":
                if low <= stop:
                    found.append((p, min(open_, stop), "stop_loss"))
                    continue
            elif high >= stop:
                found.append((p, max(open_, stop), "stop_loss"))
                continue
        if close_ms >= p.horizon_ms:
            found.append((p, close, "horizon"))
    return found


def valuation(positions: Iterable[Position], prices: Mapping[str, float]) -> tuple[float, float]:
    """(market value, gross exposure) of ``positions`` at ``prices``, in one pass.

    A position's market value is what it adds to equity: held coins, or minus the coins owed
    (``sign * quantity * price``; negating is exact). Its exposure is its notional, longs and
    shorts alike. Sums start at 0 and run in the positions' order (the float result depends
    on it).
    """
    value = gross = 0
    for p in positions:
        try:
            price = prices[p.symbol]
        except KeyError:
            raise KeyError(f"no price for {p.symbol} to mark its open position") from None
        quantity = p.quantity
        value += (quantity if p.side == "long" else -quantity) * price
        gross += quantity * price
    return value, gross


_new = tuple.__new__


def _price_text(price: float) -> str:
    """Two decimals as the guide prints BTC; significant digits for coins priced below $1."""
    return f"{price:.2f}" if abs(price) >= 1 else f"{price:.6g}"


def executed_line(direction: str, symbol: str, price: float) -> str:
    """The guide's ``✓ Paper trade executed: BUY BTC/USDT @ $43300.00``.

    ``price`` is the fill price, slippage included: the log shows what was paid, and it equals
    the candle's close (as in the guide's example) only when ``slippage`` is 0.
    """
    return f"✓ Paper trade executed: {direction} {symbol} @ ${_price_text(price)}"


def closed_line(trade: ClosedTrade) -> str:
    """The guide's ``[BTC/USDT @ 1h] Trade closed: ✗ LOSS (-2.34%)`` or ``... ✓ WIN (+1.10%)``."""
    mark = "✓ WIN" if trade.outcome == "WIN" else "✗ LOSS"
    return f"[{trade.symbol} @ {trade.timeframe}] Trade closed: {mark} ({trade.pnl_percent:+.2f}%)"


class PositionExistsError(ValueError):
    """A second position for a ``(symbol, timeframe)`` that already has one."""


class PositionBook:
    """Open positions keyed by ``(symbol, timeframe)``, in opening order (deterministic)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Position] = {}
        self._next_id = 1

    @property
    def next_id(self) -> int:
        """The id the next position will get."""
        return self._next_id

    def replace(self, positions: Iterable[Position]) -> None:
        """Hold ``positions`` (in opening order) instead: the open positions of a book kept
        elsewhere meanwhile (the block replay's), numbered by this book's ``allocate_id``."""
        self._open = {}
        for position in positions:
            self.open(position)

    def allocate_id(self) -> int:
        """A fresh position id; ids count up per book, so a replay numbers positions alike."""
        pid = self._next_id
        self._next_id += 1
        return pid

    def continue_ids_after(self, last_id: int) -> None:
        """Number after ``last_id``: a new account in a store that holds an earlier account's
        positions (a position's id is its key there)."""
        self._next_id = max(self._next_id, last_id + 1)

    def get(self, symbol: str, timeframe: str) -> Position | None:
        return self._open.get((symbol, timeframe))

    def open(self, position: Position) -> None:
        existing = self._open.get(position.key)
        if existing is not None:
            raise PositionExistsError(
                f"{position.symbol} @ {position.timeframe} already has open position "
                f"#{existing.id} ({existing.side}); one position per symbol and timeframe"
            )
        self._open[position.key] = position

    def close(self, symbol: str, timeframe: str) -> Position:
        """Remove and return the open position of ``(symbol, timeframe)``."""
        try:
            return self._open.pop((symbol, timeframe))
        except KeyError:
            raise KeyError(f"no open position for {symbol} @ {timeframe}") from None

    def for_symbol(self, symbol: str) -> list[Position]:
        return [p for p in self._open.values() if p.symbol == symbol]

    def __iter__(self) -> Iterator[Position]:
        return iter(tuple(self._open.values()))

    def __len__(self) -> int:
        return len(self._open)

    def __bool__(self) -> bool:
        return bool(self._open)

    def valuation(self, prices: Mapping[str, float]) -> tuple[float, float]:
        """(market value, gross exposure) at ``prices`` (``valuation``)."""
        return valuation(self._open.values(), prices)

    def exposure(self, prices: Mapping[str, float]) -> float:
        """Gross notional of all open positions at ``prices``: longs and shorts both count."""
        return valuation(self._open.values(), prices)[1]

    def market_value(self, prices: Mapping[str, float]) -> float:
        return valuation(self._open.values(), prices)[0]

    def equity(self, cash: float, prices: Mapping[str, float]) -> float:
        """Mark-to-market equity: cash plus held coins minus owed coins, at ``prices``."""
        return cash + self.market_value(prices)
