"""Pre-trade risk limits: how much a new entry may use, or why it may not happen at all.

Three limits, all relative to mark-to-market equity (what the account is worth now, open
positions at their last price), because that is what a loss actually takes away:

- position size: one entry uses at most ``max_position_size_percent`` of equity (a fraction);
- total exposure: the gross notional of all open positions stays within ``max_total_exposure``;
- daily loss: once equity is ``daily_loss_limit`` (a fraction) or more below its value at the
  start of the UTC day, no new entries until the next UTC day, even if equity recovers in between
  (a latch: chasing a bad day back is how a bad day becomes a worse one).

Only entries are checked. Exits are always allowed: a limit that kept a losing position open
would increase the very risk it exists to cap. The day boundary comes from event times
(``at_ms // 86_400_000``), never the wall clock, so a replay blocks and unblocks at the same
events as the live run did.
"""

from __future__ import annotations

from dataclasses import dataclass

from candlewise.config.app_config import RiskConfig

DAY_MS = 86_400_000
#: Float noise allowed when comparing a loss with its limit: "exactly at the limit" must block
#: even when ``10_000 * (1 - 0.05)`` comes out a hair above 9_500.
LIMIT_EPSILON = 1e-12
#: Entries smaller than this (quote currency) are refused: Binance rejects orders under about
#: 5 USDT (its NOTIONAL filter), and a dust position only adds fees.
DEFAULT_MIN_NOTIONAL = 5.0


def utc_day(at_ms: int) -> int:
    """Days since the epoch of the UTC day holding ``at_ms``; the epoch is a UTC midnight."""
    return at_ms // DAY_MS


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """Whether an entry may happen, the most notional it may use, and why (for the log)."""

    allowed: bool
    reason: str
    notional: float = 0.0


class RiskLimits:
    """Limit state across events: the start-of-day equity and the daily-loss latch."""

    def __init__(self, risk: RiskConfig, *, min_notional: float = DEFAULT_MIN_NOTIONAL) -> None:
        self.risk = risk
        self.min_notional = min_notional
        self._day: int | None = None
        self._day_start_equity = 0.0
        self._blocked_day: int | None = None

    @property
    def day_start_equity(self) -> float | None:
        """Equity at the first observation of the current UTC day; None before any."""
        return None if self._day is None else self._day_start_equity

    @property
    def blocked_day(self) -> int | None:
        """The UTC day (``utc_day``) the daily loss limit blocked last; None: never yet."""
        return self._blocked_day

    def daily_loss(self, equity: float) -> float:
        """Fraction of the day's starting equity lost so far (negative when up on the day)."""
        if self._day is None or self._day_start_equity <= 0:
            return 0.0
        return (self._day_start_equity - equity) / self._day_start_equity

    def observe(self, equity: float, at_ms: int) -> None:
        """Record equity at event time ``at_ms``: rolls the day, and latches the daily loss.

        The first observation of a UTC day is that day's starting equity. The broker observes
        after every candle, so the start of day is the equity at the first close at or after
        midnight. Events from an earlier day than the current one are not rewound. Kept lean
        (no helper calls): a replay observes after every candle of every symbol.
        """
        day = at_ms // DAY_MS
        current = self._day
        if current is None or day > current:
            self._day = current = day
            self._day_start_equity = equity
        start = self._day_start_equity
        loss = (start - equity) / start if start > 0 else 0.0
        if loss >= self.risk.daily_loss_limit - LIMIT_EPSILON:
            self._blocked_day = current

    def blocked(self, at_ms: int) -> bool:
        """True while the daily loss limit blocks entries on the UTC day of ``at_ms``."""
        return self._blocked_day is not None and self._blocked_day == at_ms // DAY_MS

    def admit(
        self, equity: float, exposure: float, requested_notional: float, at_ms: int
    ) -> float | None:
        """The notional a new entry may use now (capped), or None when it may not happen.

        ``exposure`` is the gross notional already open. The entry is capped rather than
        refused when only its size is the problem; it is refused when no room at all is left.
        ``check_entry`` gives the same answer with the reason for the log. Positional
        arguments allowed: the block replay calls it for nearly every minute's entry.
        """
        self.observe(equity, at_ms)
        if equity <= 0 or self.blocked(at_ms):
            return None
        size_cap, room = self._caps(equity, exposure)
        notional = min(requested_notional, size_cap, room)
        return None if notional < self.min_notional else notional

    def _caps(self, equity: float, exposure: float) -> tuple[float, float]:
        """(position size cap, room left under the total exposure cap) at ``equity``."""
        risk = self.risk
        return risk.max_position_size_percent * equity, risk.max_total_exposure * equity - exposure

    def check_entry(
        self, *, equity: float, exposure: float, requested_notional: float, at_ms: int
    ) -> RiskDecision:
        """``admit``, with why: may a new position of ``requested_notional`` open now, and with
        how much at most?"""
        notional = self.admit(
            equity=equity, exposure=exposure, requested_notional=requested_notional, at_ms=at_ms
        )
        if notional is None:
            return RiskDecision(False, self._refusal(equity, exposure, requested_notional, at_ms))
        if notional < requested_notional:
            size_cap, room = self._caps(equity, exposure)
            limit = "total exposure" if room < size_cap else "position size"
            return RiskDecision(True, f"capped by {limit} at {notional:.2f}", notional)
        return RiskDecision(True, "within limits", notional)

    def _refusal(self, equity: float, exposure: float, requested: float, at_ms: int) -> str:
        """Why ``admit`` refused an entry (the same checks, in the same order)."""
        if equity <= 0:
            return f"equity {equity:.2f} is not positive"
        if self.blocked(at_ms):
            return (
                f"daily loss limit: equity {equity:.2f} is {self.daily_loss(equity) * 100:.2f}% "
                f"below the day's start {self._day_start_equity:.2f} "
                f"(limit {self.risk.daily_loss_limit * 100:g}%); "
                "no new entries until 00:00 UTC"
            )
        size_cap, room = self._caps(equity, exposure)
        if room < self.min_notional:
            return (
                f"total exposure {exposure:.2f} leaves {max(room, 0.0):.2f} of the "
                f"{self.risk.max_total_exposure * 100:g}% cap "
                f"({self.risk.max_total_exposure * equity:.2f})"
            )
        notional = min(requested, size_cap, room)
        return f"entry of {notional:.2f} is below the minimum {self.min_notional:g}"
