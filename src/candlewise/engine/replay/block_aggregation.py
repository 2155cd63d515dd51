"""One symbol's block of 1m columns aggregated into 5m..1d, continuing a ``TimeframeAggregator``.

The aggregation itself is the aggregator's (``TimeframeAggregator.add_block``: the same
candles, emitted at the same minute in the same order, with the same bits, as ``add`` on each
minute); this pairs it with the minutes for the block driver.
``tests/engine/replay/test_block_aggregation.py`` compares both on random blocks with gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.bars import Bars, ClosedBar


@dataclass(frozen=True, slots=True)
class SymbolBlock:
    """A symbol's minutes in a block and what they closed."""

    symbol: str
    minutes: Bars
    closes: dict[int, list[ClosedBar]]
    """Row of ``minutes`` -> the higher candles closed with that minute, in event order."""
    higher: dict[str, Bars]
    """Per higher timeframe, the candles closed in the block, in order."""


def aggregate_block(aggregator: TimeframeAggregator, minutes: Bars) -> SymbolBlock:
    """The higher candles ``minutes`` close, with ``aggregator`` advanced past them."""
    closed = aggregator.add_block(minutes)
    return SymbolBlock(aggregator.symbol, minutes, closed.by_row, closed.per_timeframe)
