"""The candle value type shared by feeds, aggregation, validation and the store."""

from __future__ import annotations

from dataclasses import dataclass

from candlewise.timeframes import TIMEFRAME_MS


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
