"""What an alert is, independent of where it goes: pure values, no I/O.

``message`` is the guide's text after its level marker (``Drawdown 12.5% approaching 15%
limit``); ``text`` adds the marker back (``🔴 CRITICAL: Drawdown ...``), which is what the log,
the table and the chat channels show, so operators see exactly the lines the guide documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Level = Literal["INFO", "WARNING", "CRITICAL"]
LEVELS: tuple[Level, ...] = ("INFO", "WARNING", "CRITICAL")

#: The guide's markers; WARNING's emoji is followed by two spaces, as the guide prints it.
MARKERS: dict[str, str] = {
    "INFO": "ℹ️  INFO: ",
    "WARNING": "⚠️  WARNING: ",
    "CRITICAL": "🔴 CRITICAL: ",
}

#: Kinds raised today; others are allowed (a new check should not need a change here).
KINDS = (
    "drawdown",
    "win_rate",
    "error_rate",
    "stability",
    "uptime",
    "daily_loss",
    "rollback",
    "phase",
)

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class Alert:
    """One alert. ``at`` is wall time; pass it explicitly where the clock is simulated."""

    level: Level
    kind: str
    message: str
    symbol: str | None = None
    at: datetime = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"alert level {self.level!r} is not one of {', '.join(LEVELS)}")
        if not self.kind or not self.message.strip():
            raise ValueError("an alert needs a kind and a message")
        if self.at.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime as 'at'")

    @property
    def text(self) -> str:
        """The line operators read: ``🔴 CRITICAL: Drawdown 12.5% approaching 15% limit``."""
        return MARKERS[self.level] + self.message

    @property
    def dedupe_key(self) -> tuple[str, str, str | None, str]:
        """Same level, kind, symbol and wording with the numbers blanked out.

        A drawdown moving from 12.5 % to 12.6 % is the same alert (one per interval); an
        escalation from WARNING to CRITICAL is a new one.
        """
        return (self.level, self.kind, self.symbol, _NUMBER.sub("#", self.message))


def drawdown_alert(drawdown_percent: float, limit_percent: float, *, at: datetime) -> Alert:
    """The guide's ``🔴 CRITICAL: Drawdown 12.5% approaching 15% limit``."""
    return Alert(
        "CRITICAL",
        "drawdown",
        f"Drawdown {drawdown_percent:.1f}% approaching {limit_percent:g}% limit",
        at=at,
    )


def error_rate_alert(rate_percent: float, threshold_percent: float, *, at: datetime) -> Alert:
    """The guide's ``⚠️  WARNING: Error rate 7.23% exceeds 5% threshold``."""
    return Alert(
        "WARNING",
        "error_rate",
        f"Error rate {rate_percent:.2f}% exceeds {threshold_percent:g}% threshold",
        at=at,
    )
