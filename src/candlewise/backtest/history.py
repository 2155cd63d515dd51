"""The simulated history before a backtest's window: what its first models train on.

Torch-free on purpose: ``candlewise backtest`` forks ``history_beside`` before it imports the
engine, so that the history (~0.7 s for 60 days) is written while torch loads (~1 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from candlewise.backtest.request import BacktestRequest, Prepared
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.feeds import simulated_source
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import HISTORY_ORIGIN_MS, market_at
from candlewise.system.forked_task import ForkedTask

Progress = Callable[[str, int, int], None]


def simulate_history(
    store: Engine,
    symbols: Sequence[str],
    seed: int,
    start: int,
    source: str,
    progress: Progress | None = None,
) -> None:
    """The seed's history before the window (idempotent: the same rows on every run)."""
    market = market_at(symbols, seed, HISTORY_ORIGIN_MS)
    total = (start - HISTORY_ORIGIN_MS) // MINUTE_MS
    while (done := (market.next_open_time - HISTORY_ORIGIN_MS) // MINUTE_MS) < total:
        block = market.generate(min(30 * 1440, total - done))
        for symbol in symbols:
            frame = block[symbol].to_frame().drop(columns="regime")
            ingest_frame(store, frame, symbol, "1m", source)
        if progress:
            progress("simulating history", done, total)


def history_beside(
    store: Engine, req: BacktestRequest, prepared: Prepared | None
) -> ForkedTask | None:
    """A new simulated run's history, started in a forked child (None: nothing to simulate).
    Hand it to ``run_backtest``, which waits for it (or writes the history itself)."""
    if prepared is None or req.replaying:
        return None
    start = prepared.window[0]
    source = simulated_source(req.seed)
    return ForkedTask(
        lambda: simulate_history(store, req.symbols, req.seed, start, source), store
    ).start()
