"""The candle value type shared by feeds, aggregation, validation and the store, and the record
of a candle that validation rejected or repaired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from candlewise.core.timeframes import TIMEFRAME_MS


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed OHLCV candle. ``open_time`` is the candle's open, in ms since epoch, UTC."""

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def close_time(self) -> int:
        """First millisecond after the candle: the moment it is known, as Binance's ``T + 1``."""
        return self.open_time + TIMEFRAME_MS[self.timeframe]


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """Event: ``candle`` has closed. Emitted in a fixed order (see ``aggregation``)."""

    candle: Candle

    @property
    def close_time(self) -> int:
        return self.candle.close_time


Action = Literal["rejected", "repaired"]


@dataclass(frozen=True, slots=True)
class CandleIssue:
    """One rejected or repaired candle, as written to ``error_log``.

    ``open_time`` is None only for a file row whose timestamp is not an integer at all. ``row``
    is the 1-based data row of a frame (a file's row below its header), None for a stream; it
    is not part of equality, so both paths' issues still compare equal.
    """

    symbol: str
    timeframe: str
    open_time: int | None
    kind: str
    action: Action
    detail: str
    row: int | None = field(default=None, compare=False)
