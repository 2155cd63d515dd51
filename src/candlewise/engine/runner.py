"""Driving an engine from a feed, minute by minute, with checkpoints: what a backtest and a
deployment share.

Each 1m candle is aggregated into the higher candles that close with it and handed to the
engine; when the next minute starts, the engine ends the previous one (drawdown, equity,
retrains: the runner checkpoints at each of the engine's retrain steps), the ``on_minute`` hook
runs (health checks, operator requests such as ``manual_retrains``) and, when due, a checkpoint
writes the engine's outbox with a snapshot of all state in one transaction (``engine_runs``).
A stop request (Ctrl+C, SIGTERM, a rollback) is honoured at a minute boundary, after a
checkpoint, so nothing is ever half-written.

Replays read ``read_ahead`` minutes ahead so that the predictor computes each model's coming
closes in one vectorised call; a paced or live feed is never read ahead (it would wait for the
future). With ``block_replay`` (backtests without automatic retraining) each read-ahead block
goes through ``replay.block_engine`` in one pass instead of one ``on_candles`` call per candle:
the same rows and ledger, 5-7x faster; stop requests and checkpoints then fall on block ends.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Engine

from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.replay.block_aggregation import aggregate_block
from candlewise.engine.replay.block_engine import BlockReplay, eligibility
from candlewise.engine.trading_engine import TradingEngine
from candlewise.learning import drift
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.bars import Bars
from candlewise.signals.live import LivePredictor
from candlewise.store.checkpoint_writer import CheckpointWriter
from candlewise.store.run_store import RUNNING, save_checkpoint
from candlewise.store.snapshots import dump_snapshot

#: A checkpoint is written at least every this many candle minutes and this many wall seconds
#: (whichever comes first); where they fall does not change the run, only how much a restart
#: recomputes.
CHECKPOINT_MINUTES = 1440
CHECKPOINT_SECONDS = 1.0
#: The block path replays a day in ~10 ms: a checkpoint a day cost more than the day's rules
#: (snapshot, commit, index pages rewritten), so there the day rule becomes a week (of one
#: symbol's rows: divided by the number of symbols, so that memory stays bounded).
BLOCK_CHECKPOINT_MINUTES = 7 * 1440
#: Replay reads this many minutes of candles ahead to predict them in vectorised blocks.
READ_AHEAD_MINUTES = 1440

Progress = Callable[[str, int, int], None]


class Interrupted(Exception):
    """A stop was requested: the run stopped at a checkpoint and can be resumed."""

    def __init__(self, cursor_ms: int) -> None:
        super().__init__(cursor_ms)
        self.cursor_ms = cursor_ms


class EngineRunner:
    def __init__(
        self,
        engine: TradingEngine,
        store: Engine,
        run_id: int,
        snapshot: dict[str, Any],
        *,
        candle_source: str | None,
        read_ahead: bool,
        stop: Callable[[], bool] | None = None,
        on_minute: Callable[[int], None] | None = None,
        block_replay: bool = False,
        writer: CheckpointWriter | None = None,
    ) -> None:
        """``snapshot`` holds ``aggregators`` (per symbol) and anything the caller wants kept
        with each checkpoint; ``candle_source`` labels the candles to store (None: the feed's
        candles are stored already, as in a replay of stored candles); ``writer`` commits the
        checkpoints in a process of its own (the caller closes it)."""
        self.engine = engine
        self.store = store
        self.run_id = run_id
        self.snapshot = snapshot
        self.aggregators: dict[str, TimeframeAggregator] = snapshot["aggregators"]
        self.candle_source = candle_source
        self.read_ahead = read_ahead
        self.stop = stop
        self.on_minute = on_minute
        self.writer = writer
        self._saved = (time.monotonic(), 0)
        self.block: BlockReplay | None = None
        """The block path, when asked for and possible (``path`` says which one runs)."""
        self.path = "event"
        self._checkpoint_minutes = CHECKPOINT_MINUTES
        if block_replay:
            why_not = eligibility(engine)
            if why_not is None and (on_minute is not None or not read_ahead):
                why_not = "the feed is paced or watched minute by minute"
            if why_not is None:
                self.block = BlockReplay(engine)
                self.path = "block"
                # about a week of one symbol's rows a checkpoint, however many symbols
                symbols = max(1, len(self.aggregators))
                self._checkpoint_minutes = max(
                    CHECKPOINT_MINUTES, BLOCK_CHECKPOINT_MINUTES // symbols
                )
            else:
                self.path = f"event ({why_not})"
        if self.block is None:
            drift.preload()  # the event path makes a drift monitor per model at its first close

    @property
    def saved_ms(self) -> int:
        """The cursor of the last checkpoint written: where a restart continues."""
        return self._saved[1]

    def checkpoint(self, now: int, status: str = RUNNING) -> None:
        self.snapshot["engine"] = self.engine.state()
        blob = dump_snapshot(self.snapshot)
        if self.writer is not None:
            self.writer.submit(self.engine.outbox, self.run_id, now, blob, status)
        else:
            with self.store.begin() as conn:
                self.engine.outbox.flush(conn)
                save_checkpoint(conn, self.run_id, now, blob, status)
        self._saved = (time.monotonic(), now)

    def run(
        self,
        candles: Iterable[Candle],
        cursor: int,
        *,
        progress: Progress | None = None,
        total_minutes: int = 0,
        start: int | None = None,
    ) -> int | None:
        """Handle every candle; returns the close time of the last minute handled (ended)."""
        self._saved = (time.monotonic(), cursor)
        self.retrain(cursor)  # a checkpoint taken just before a retrain: do it now
        current: int | None = None  # close time of the minute being handled
        ended = False  # whether that minute has been ended already
        seen = 0  # candles of that minute handled
        # A paced or live feed waits a minute for the next minute's first candle: it ends a
        # minute as soon as every symbol's candle of it is in, so that the engine keeps up with
        # the clock within the time it takes to handle them (a missing candle: the next minute
        # ends it, as in a replay).
        complete = len(self.aggregators) if not self.read_ahead else 0
        origin = cursor if start is None else start
        for block in self._blocks(iter(candles)):
            for candle in block:
                if candle.close_time != current:
                    if current is not None and not ended:
                        self._end_minute(current)
                    current, ended, seen = candle.close_time, False, 0
                    if progress and (current // MINUTE_MS) % 1000 == 0:
                        progress("replaying", (current - origin) // MINUTE_MS, total_minutes)
                closed = [candle, *self.aggregators[candle.symbol].add(candle)]
                if self.candle_source is not None:
                    self.engine.outbox.candles(closed, self.candle_source)
                self.engine.on_candles(closed)
                seen += 1
                if seen == complete:
                    ended = True
                    self._end_minute(current)
        if current is not None and not ended:
            self._settle(current)
            if self.on_minute:
                self.on_minute(current)
        return current

    @property
    def block_width(self) -> int:
        """Candles per read-ahead block (a day of every symbol)."""
        return READ_AHEAD_MINUTES * max(1, len(self.aggregators))

    def run_blocks(
        self,
        blocks: Iterable[dict[str, Bars]],
        cursor: int,
        *,
        progress: Progress | None = None,
        total_minutes: int = 0,
        start: int | None = None,
    ) -> int | None:
        """The block path (``path == "block"``): each symbol's 1m columns per block (from
        ``column_blocks.feed_blocks`` with ``block_width``), whole minutes only; stops and
        checkpoints fall on block ends. Returns the close time of the last minute handled."""
        if self.block is None:
            raise ValueError(f"this runner cannot run blocks: {self.path}")
        self._saved = (time.monotonic(), cursor)
        origin = cursor if start is None else start
        current: int | None = None
        for columns in blocks:
            symbol_blocks = [
                aggregate_block(self.aggregators[symbol], minutes)
                for symbol, minutes in columns.items()
                if len(minutes)
            ]
            if not symbol_blocks:
                continue
            before = current
            current = self.block.run(symbol_blocks, self.candle_source)
            if progress and (before is None or current // 60_000_000 != before // 60_000_000):
                progress("replaying", (current - origin) // MINUTE_MS, total_minutes)
            self._checkpoint_or_stop(current)
        return current

    def _blocks(self, candles: Iterator[Candle]) -> Iterator[list[Candle]]:
        if not self.read_ahead:
            for candle in candles:
                yield [candle]
            return
        width = READ_AHEAD_MINUTES * max(1, len(self.aggregators))
        while block := list(islice(candles, width)):
            _prime(self.engine.predictor, block, self.aggregators)
            yield block

    def retrain(self, now: int) -> None:
        """The engine's queued and finished retrains, checkpointed at each of its steps."""
        for _ in self.engine.retrain_steps(now):
            self.checkpoint(now)

    def _settle(self, now: int) -> None:
        """``TradingEngine.end_minute``, with this runner's checkpoints."""
        self.engine.settle_minute(now)
        self.retrain(now)  # manual requests run even with automatic retraining off

    def _end_minute(self, now: int) -> None:
        self._settle(now)
        if self.on_minute:
            self.on_minute(now)
        self._checkpoint_or_stop(now)

    def _checkpoint_or_stop(self, now: int) -> None:
        """At a minute (or block) end: checkpoint when due, and stop there when asked."""
        stopping = self.stop is not None and self.stop()
        last_time, last_ms = self._saved
        due = (
            now - last_ms >= self._checkpoint_minutes * MINUTE_MS
            or time.monotonic() - last_time >= CHECKPOINT_SECONDS
        )
        if due or stopping:
            self.checkpoint(now)
        if stopping:
            raise Interrupted(now)


def manual_retrains(engine: TradingEngine, symbols: Sequence[str], now: int) -> int:
    """A live driver's minute-hook step: queue the ``candlewise retrain`` requests waiting for
    ``symbols``, taken through the engine's persistence port (they run at the next minute end);
    returns how many."""
    requests = engine.persistence.take_retrain_requests(symbols, engine.run_id)
    return engine.queue_manual_retrains(now, requests)


def _prime(
    predictor: LivePredictor,
    block: list[Candle],
    aggregators: dict[str, TimeframeAggregator],
) -> None:
    """Tell the predictor which closes come next, per (symbol, timeframe), so that it predicts
    them in one vectorised call. Read-ahead only: copies of the aggregators produce the higher
    closes, the real ones still see each candle when the engine does."""
    upcoming: dict[tuple[str, str], list[Candle]] = {}
    ahead = {s: copy.deepcopy(a) for s, a in aggregators.items()}
    for candle in block:
        for bar in (candle, *ahead[candle.symbol].add(candle)):
            upcoming.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    for (symbol, timeframe), bars in upcoming.items():
        predictor.prime(symbol, timeframe, bars)
