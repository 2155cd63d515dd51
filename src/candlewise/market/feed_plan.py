"""What a feed is and what a feed plan hands its runner: the feed, its clock and its window.

Its own module so that the feed factory and the live (Binance) feed, which plans its own
window, both build plans without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from candlewise.core.candle import Candle
from candlewise.core.clock import Clock


class Feed(Protocol):
    name: str

    @property
    def source(self) -> str:
        """Label stored with the candles: simulated:<seed>, replay or binance."""
        ...

    def candles(self) -> Iterator[Candle]: ...


@dataclass(frozen=True)
class FeedPlan:
    """A feed plus the clock pacing it and the window it covers (end None: open-ended)."""

    feed: Feed
    clock: Clock
    start_ms: int
    end_ms: int | None
