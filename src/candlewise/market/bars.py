"""Candles as columns: the batch and block form of many ``Candle`` objects of one timeframe.

One type for every columnar OHLCV in the market and replay code (history aggregation, a
replay block's minutes and the higher candles they close, ``TimeframeAggregator.add_block``),
so no caller converts between look-alikes. ``signals.block_predictor.CandleColumns`` stays
separate: it is the float64-only layout of the feature code, a lower layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Bars:
    """Candles of one (symbol, timeframe), oldest first: open time in ms (int64) and OHLCV."""

    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.open_ms.size)

    def slice(self, start: int, stop: int) -> Bars:
        return Bars(*(column[start:stop] for column in self.columns()))

    def take(self, rows: np.ndarray) -> Bars:
        """The candles at ``rows`` (indices or a boolean mask), copied."""
        return Bars(*(column[rows] for column in self.columns()))

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.open_ms, self.open, self.high, self.low, self.close, self.volume)

    @classmethod
    def of(cls, open_ms: Sequence[int], *ohlcv: Sequence[float]) -> Bars:
        """Columns from any sequences: open times as int64, prices and volumes as float64."""
        return cls(
            np.asarray(open_ms, dtype=np.int64), *(np.asarray(c, dtype=np.float64) for c in ohlcv)
        )

    @classmethod
    def empty(cls) -> Bars:
        return cls.of([], [], [], [], [], [])


ClosedBar = tuple[str, int, float, float, float, float, float]
"""A closed higher candle as plain values: (timeframe, open ms, open, high, low, close, volume)."""


@dataclass(frozen=True, slots=True)
class BlockCloses:
    """What a block of 1m candles closed, exactly as ``add`` on each minute returns it."""

    by_row: dict[int, list[ClosedBar]]
    """Row of the block -> the higher candles closed with that minute, in event order."""
    per_timeframe: dict[str, Bars]
    """Per higher timeframe, the candles closed in the block, oldest first."""
    vectorised: bool
    """True when the column path ran (contiguous minutes), False for ``add`` per minute."""
