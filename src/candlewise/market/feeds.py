"""Feeds: sources of closed 1m candles for a list of symbols, paced by a clock.

Every feed yields candles ordered by open time, then by the configured symbol order, and waits
on the clock until each candle's close before yielding it, so the same consumer code serves
replay (simulated clock: no waiting), accelerated demos (scaled clock) and live trading.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candlewise.core.candle import Candle
from candlewise.core.clock import Clock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.simulated import SimulatedSeries, market_at

SIM_BLOCK_MINUTES = 60


@dataclass(frozen=True)
class SimulatedFeed:
    """The built-in simulated exchange: deterministic per seed, no network.

    Every window is a slice of the seed's one history (``market_at``), so a feed started after
    stored candles continues them exactly. ``end_ms`` None streams forever (live use); otherwise
    candles opening before ``end_ms``. With ``record_regimes`` the ground-truth regime of every
    candle yielded is kept in ``regimes`` for the recorder to store apart (it is never part of
    a ``Candle``); off by default, since nobody else empties the list (a 30-day replay of four
    symbols held 18 MB of it).
    """

    symbols: Sequence[str]
    seed: int
    start_ms: int
    clock: Clock
    end_ms: int | None = None
    name: str = "simulated"
    record_regimes: bool = False
    regimes: list[tuple[str, int, str]] = field(default_factory=list, compare=False)

    @property
    def source(self) -> str:
        return simulated_source(self.seed)

    def take_regimes(self) -> list[tuple[str, int, str]]:
        taken = list(self.regimes)
        self.regimes.clear()
        return taken

    def candles(self) -> Iterator[Candle]:
        for block in self.series(SIM_BLOCK_MINUTES):
            per_symbol = [block[s].candles() for s in self.symbols]
            labels = [block[s].regime_labels() for s in self.symbols]
            for i in range(len(per_symbol[0])):
                for series, regime in zip(per_symbol, labels, strict=True):
                    candle = series[i]
                    if not closed_by(self.clock, candle.close_time):
                        return  # a stop ended the wait: the candle has not closed yet
                    if self.record_regimes:
                        self.regimes.append((candle.symbol, candle.open_time, str(regime[i])))
                    yield candle

    def series(self, minutes: int) -> Iterator[dict[str, SimulatedSeries]]:
        """The window's candles as every symbol's columns, ``minutes`` at a time (the last
        chunk shorter), unpaced: the block replay's source, and ``candles``'."""
        market = market_at(list(self.symbols), self.seed, self.start_ms)
        while self.end_ms is None or market.next_open_time < self.end_ms:
            take = minutes
            if self.end_ms is not None:
                take = min(take, (self.end_ms - market.next_open_time) // MINUTE_MS)
            yield market.generate(take)


def closed_by(clock: Clock, close_ms: int) -> bool:
    """Wait for a candle's close; False when a stop request ended the wait first. A paced feed
    never hands on a candle before its close by the clock (that would be lookahead, and the
    engine would handle a minute that has not ended)."""
    clock.sleep_until(close_ms)
    return clock.now_ms() >= close_ms


def simulated_source(seed: int) -> str:
    """Source label of simulated candles: the seed is part of it, histories differ by seed."""
    return f"simulated:{seed}"


@dataclass(frozen=True)
class FrameReplayFeed:
    """Replays 1m candle frames (from the store or from files), one frame per symbol."""

    frames: dict[str, pd.DataFrame]
    symbols: Sequence[str]
    clock: Clock
    name: str = "replay"
    source: str = "replay"

    def candles(self) -> Iterator[Candle]:
        streams = [self._stream(s) for s in self.symbols if s in self.frames]
        for _time, _rank, candle in heapq.merge(*streams):
            if not closed_by(self.clock, candle.close_time):
                return  # a stop ended the wait: the candle has not closed yet
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
