"""The drawdown kill switch: alert at 80 % of the limit, roll back at the limit.

Drawdown is measured on mark-to-market equity (cash plus open positions at their last price)
from its high-water mark, not on the running sum of closed trades: a position that is down 20 %
and still open has lost that money already, and a guard that waited for the close would fire too
late, or never if the stop cannot fill. ``max_drawdown_percent`` is in percent, as the guide's
config gives it.

Per breach episode the critical alert fires once: an episode starts when the drawdown first
reaches the alert level and ends only when equity makes a new high-water mark, so equity wobbling
around the alert level does not repeat the alert. At the limit the guard emits ``rollback`` once
and stays halted: the engine then flattens every position (``PaperBroker.flatten_all``) and stops
trading; the guard never re-arms itself, a restart after a rollback is a human decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The alert fires at this fraction of the limit (12 % for the default 15 % limit).
ALERT_FRACTION = 0.8
#: Percentage points of float noise tolerated at a threshold: exactly 80 % or 100 % of the limit
#: must fire even when the arithmetic lands a hair below it.
THRESHOLD_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class DrawdownEvent:
    """What the guard saw: ``alert`` (approaching the limit) or ``rollback`` (limit reached)."""

    kind: Literal["alert", "rollback"]
    drawdown_percent: float
    limit_percent: float
    equity: float
    peak: float
    at_ms: int

    @property
    def message(self) -> str:
        """The guide's log line (``🔴 CRITICAL: Drawdown 12.5% approaching 15% limit``)."""
        if self.kind == "alert":
            return (
                f"🔴 CRITICAL: Drawdown {self.drawdown_percent:.1f}% approaching "
                f"{self.limit_percent:g}% limit"
            )
        return (
            f"🔴 CRITICAL: Drawdown {self.drawdown_percent:.1f}% reached "
            f"{self.limit_percent:g}% limit: rolling back (closing all positions, trading stopped)"
        )


class DrawdownGuard:
    """Tracks the equity high-water mark and fires the alert and the rollback."""

    def __init__(
        self,
        max_drawdown_percent: float,
        *,
        alert_fraction: float = ALERT_FRACTION,
        initial_peak: float | None = None,
    ) -> None:
        if not 0 < max_drawdown_percent <= 100:
            raise ValueError(
                f"max_drawdown_percent must be in (0, 100], got {max_drawdown_percent}"
            )
        if not 0 < alert_fraction < 1:
            raise ValueError(f"alert_fraction must be in (0, 1), got {alert_fraction}")
        self.limit_percent = max_drawdown_percent
        self.alert_percent = max_drawdown_percent * alert_fraction
        self.peak = initial_peak
        self.drawdown_percent = 0.0
        self.max_drawdown_percent = 0.0
        """Deepest drawdown seen: the ``max_drawdown`` that phase validation reports."""
        self._alerted = False
        self.halted = False

    def update(self, equity: float, at_ms: int) -> DrawdownEvent | None:
        """Feed the current mark-to-market equity; returns an event when a threshold is crossed.

        After the rollback the guard is halted and returns None: the rollback happens once.
        """
        if self.halted:
            return None
        if self.peak is None or equity > self.peak:
            self.peak = equity
            self._alerted = False
        peak = self.peak
        dd = (peak - equity) * 100.0 / peak if peak > 0 else 0.0
        self.drawdown_percent = dd
        self.max_drawdown_percent = max(self.max_drawdown_percent, dd)
        kind: Literal["alert", "rollback"] | None = None
        if dd >= self.limit_percent - THRESHOLD_EPSILON:
            self.halted = True
            kind = "rollback"
        elif dd >= self.alert_percent - THRESHOLD_EPSILON and not self._alerted:
            self._alerted = True
            kind = "alert"
        if kind is None:
            return None
        return DrawdownEvent(kind, dd, self.limit_percent, equity, peak, at_ms)
