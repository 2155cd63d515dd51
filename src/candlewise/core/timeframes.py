"""Timeframes and their UTC alignment.

Every higher timeframe is built from 1m candles. Buckets are aligned to UTC boundaries by taking
the open time modulo the timeframe's length: the Unix epoch starts at a UTC midnight, so this
aligns 1d candles to 00:00 UTC and 4h candles to 00/04/08/12/16/20 UTC, as Binance does.
"""

from __future__ import annotations

from typing import Final

MINUTE_MS: Final = 60_000

#: Supported timeframes in ascending order; this order is also the order of candle-close events.
TIMEFRAMES: Final[tuple[str, ...]] = ("1m", "5m", "15m", "1h", "4h", "1d")

TIMEFRAME_MS: Final[dict[str, int]] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}

HIGHER_TIMEFRAMES: Final[tuple[str, ...]] = TIMEFRAMES[1:]


def timeframe_ms(timeframe: str) -> int:
    """Length of ``timeframe`` in milliseconds; raises ValueError naming the valid ones."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; valid timeframes: {', '.join(TIMEFRAMES)}"
        ) from None


def bucket_start(open_time_ms: int, timeframe: str) -> int:
    """Open time of the ``timeframe`` candle holding the 1m candle opening at ``open_time_ms``."""
    length = TIMEFRAME_MS[timeframe]
    return open_time_ms - open_time_ms % length


def timeframe_rank(timeframe: str) -> int:
    """Position of ``timeframe`` in the fixed event order (1m first, 1d last)."""
    return TIMEFRAMES.index(timeframe)
