"""Feeds: sources of closed 1m candles for a list of symbols, paced by a clock.

Every feed yields candles ordered by open time, then by the configured symbol order, and waits
on the clock until each candle's close before yielding it, so the same consumer code serves
replay (simulated clock: no waiting), accelerated demos (scaled clock) and live trading.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candlewise.clock import Clock
from candlewise.market.candle import Candle
from candlewise.market.simulated import SimulatedMarket
from candlewise.timeframes import MINUTE_MS

SIM_BLOCK_MINUTES = 60


@dataclass(frozen=True)
class SimulatedFeed:
    """The built-in simulated exchange: deterministic per seed, no network.

    ``end_ms`` None streams forever (live use); otherwise candles opening before ``end_ms``.
    ``anchors`` (symbol -> price) rescales a symbol's path so that its first open equals the
    given price: a feed resumed after stored candles continues their price level, while returns,
    volatility and regimes are those of the seeded market.
    """

    symbols: Sequence[str]
    seed: int
    start_ms: int
    clock: Clock
    end_ms: int | None = None
    anchors: Mapping[str, float] = field(default_factory=dict)
    name: str = "simulated"

    def candles(self) -> Iterator[Candle]:
        market = SimulatedMarket(list(self.symbols), self.seed, self.start_ms)
        scale: dict[str, float] = {}
        while self.end_ms is None or market.next_open_time < self.end_ms:
            minutes = SIM_BLOCK_MINUTES
            if self.end_ms is not None:
                minutes = min(minutes, (self.end_ms - market.next_open_time) // MINUTE_MS)
            block = market.generate(minutes)
            if not scale:
                scale = {
                    s: self.anchors[s] / float(block[s].open[0]) if s in self.anchors else 1.0
                    for s in self.symbols
                }
            per_symbol = [_scaled(block[s].candles(), scale[s]) for s in self.symbols]
            for i in range(minutes):
                for series in per_symbol:
                    candle = series[i]
                    self.clock.sleep_until(candle.close_time)
                    yield candle


def _scaled(candles: list[Candle], factor: float) -> list[Candle]:
    if factor == 1.0:
        return candles
    return [
        Candle(
            c.symbol,
            c.timeframe,
            c.open_time,
            c.open * factor,
            c.high * factor,
            c.low * factor,
            c.close * factor,
            c.volume,
        )
        for c in candles
    ]


@dataclass(frozen=True)
class FrameReplayFeed:
    """Replays 1m candle frames (from the store or from files), one frame per symbol."""

    frames: dict[str, pd.DataFrame]
    symbols: Sequence[str]
    clock: Clock
    name: str = "replay"

    def candles(self) -> Iterator[Candle]:
        streams = [self._stream(s) for s in self.symbols if s in self.frames]
        for _time, _rank, candle in heapq.merge(*streams):
            self.clock.sleep_until(candle.close_time)
            yield candle

    def _stream(self, symbol: str) -> Iterator[tuple[int, int, Candle]]:
        rank = list(self.symbols).index(symbol)
        frame = self.frames[symbol]
        cols = [
            frame[c].to_numpy() for c in ("timestamp", "open", "high", "low", "close", "volume")
        ]
        ts = cols[0].astype(np.int64)
        for i in range(len(frame)):
            t = int(ts[i])
            yield (
                t,
                rank,
                Candle(
                    symbol,
                    "1m",
                    t,
                    float(cols[1][i]),
                    float(cols[2][i]),
                    float(cols[3][i]),
                    float(cols[4][i]),
                    float(cols[5][i]),
                ),
            )
