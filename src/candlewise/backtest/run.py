"""``candlewise backtest``: the whole system (models, modes, retraining, paper broker, risk) on a
replayed window, as fast as the CPU allows, into its own database.

Simulated runs are anchored to the seed's history (``HISTORY_ORIGIN_MS``): ``warmup_days`` of
history train the first models, then ``days`` are played. The window is therefore the same on
every run and so is the ledger (same seed, same trades). Nothing used before a moment is taken
from after it: models train on candles known at the window start, retrains on candles known at
their trigger.

Replay runs play real 1m candles, from files or from another database (what ``candlewise data
import``/``download`` stored): the candles up to the window end are copied into the run's
database, everything before the window is the history the first models train on.

``start_ms``/``end_ms`` (``--from``/``--to``) set the window explicitly, instead of the last
``days`` of the data (replay) or ``warmup_days`` after the simulated history's origin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from candlewise.backtest.history import simulate_history
from candlewise.backtest.report import BacktestReport, build_report
from candlewise.backtest.request import (
    BacktestRequest,
    Prepared,
    prepare,
    stored_window,
    url_identity,
)
from candlewise.config.app_config import AppConfig
from candlewise.core.clock import SimulatedClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.engine.replay.column_blocks import feed_blocks
from candlewise.engine.runner import EngineRunner, Interrupted, Progress
from candlewise.engine.setup import build_predictor, new_engine, primed_aggregators, warm_up
from candlewise.engine.trading_engine import TradingEngine
from candlewise.market.feed_plan import Feed
from candlewise.market.feeds import FrameReplayFeed, SimulatedFeed, simulated_source
from candlewise.market.ingest import ingest_frame
from candlewise.store import checkpoint_writer
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.run_store import (
    FINISHED,
    PREPARING,
    RunRecord,
    claim_run,
    create_run,
    find_run,
)
from candlewise.store.snapshots import load_snapshot
from candlewise.system.forked_task import ForkedTask
from candlewise.system.logging_setup import get_logger
from candlewise.system.memory import release_freed_memory
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training.calibration_child import CalibrationBeside
from candlewise.training.first_training import train_symbol

__all__ = [
    "BacktestReport",
    "BacktestRequest",
    "Interrupted",
    "Prepared",
    "prepare",
    "run_backtest",
]

log = get_logger("backtest")


RUN_KIND = "backtest"


def run_backtest(
    cfg: AppConfig,
    store: Engine,
    models_dir: str,
    req: BacktestRequest,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    prepared: Prepared | None = None,
    block_replay: bool = True,
    history: ForkedTask | None = None,
) -> BacktestReport:
    """Run (or resume, or re-report) the backtest ``req`` in ``store``.

    The same request on the same database continues its unfinished run from the last
    checkpoint (after a crash or ``kill -9``) and gives the ledger of an uninterrupted run;
    on a finished run it reports again. ``stop`` is polled at minute boundaries; when it says
    so, the run checkpoints and raises :class:`Interrupted`. ``prepared`` is what
    :func:`prepare` returned for ``req`` (read here when not given and a new run needs it).
    ``block_replay`` False forces the one-event-at-a-time path (the reference the block path
    is tested against); otherwise runs without automatic retraining replay in blocks.
    ``history`` is ``backtest_history.history_beside``'s child writing the simulated history,
    if one was started (waited for here; without it the history is written here).
    """
    checkpoint_writer.wait_for_writers(store)  # a killed run's writer may still be committing
    # The block path computes rows as fast as SQLite stores them: a writer process (forked,
    # idle until the replay) stores them beside it.
    writer = (
        checkpoint_writer.CheckpointWriter(store)
        if block_replay and not req.retrain and checkpoint_writer.usable(store)
        else None
    )
    try:
        return _run(
            cfg, store, models_dir, req, progress, stop, prepared, block_replay, writer, history
        )
    finally:
        if history is not None:
            history.end()  # waited for already, unless the run failed before
        if writer is not None:
            writer.close()  # every checkpoint submitted is committed (or this raises)


@dataclass(frozen=True)
class _Context:
    """What every step of a run reads: the configuration, the stores and the request."""

    cfg: AppConfig
    store: Engine
    registry: ModelRegistry
    models_dir: str
    req: BacktestRequest

    @property
    def symbols(self) -> list[str]:
        return list(self.req.symbols)


@dataclass(frozen=True)
class _Start:
    """Where the replay starts: the run, its engine, the checkpoint it continues from and the
    candles still to play (replay runs)."""

    run_id: int
    engine: TradingEngine
    snapshot: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    cursor: int


def _run(
    cfg: AppConfig,
    store: Engine,
    models_dir: str,
    req: BacktestRequest,
    progress: Progress | None,
    stop: Callable[[], bool] | None,
    prepared: Prepared | None,
    block_replay: bool,
    writer: checkpoint_writer.CheckpointWriter | None,
    history: ForkedTask | None,
) -> BacktestReport:
    params = _params(cfg, req)
    with store.begin() as conn:
        run = find_run(conn, RUN_KIND, params)
    registry = ModelRegistry(store, models_dir, cfg.models.keep_versions)
    ctx = _Context(cfg, store, registry, models_dir, req)
    if run is not None and run.status == FINISHED and run.snapshot is not None:
        snapshot = load_snapshot(run.snapshot)
        engine = _engine(ctx, run.id)
        engine.restore(snapshot["engine"])
        return _report(ctx, engine, run.id, snapshot)
    source = "replay" if req.replaying else simulated_source(req.seed)
    if run is None or run.status == PREPARING or run.snapshot is None:
        begun = _prepare_run(ctx, run, params, prepared, history, source, progress)
    else:
        begun = _resume_run(ctx, run)
    start, end = begun.snapshot["window"]
    runner = _runner(ctx, begun, source, stop, block_replay, writer)
    if run is None or run.snapshot is None:
        runner.checkpoint(start)  # prepared: from here on a restart resumes, not retrains
    cursor, total = begun.cursor, (end - start) // MINUTE_MS
    feed = _feed(req, begun.frames, ctx.symbols, cursor, end)
    if runner.path == "block":
        blocks = feed_blocks(feed, runner.block_width)
        runner.run_blocks(blocks, cursor, progress=progress, total_minutes=total, start=start)
    else:
        runner.run(feed.candles(), cursor, progress=progress, total_minutes=total, start=start)
    runner.checkpoint(end, FINISHED)
    if writer is not None:
        writer.close()  # the report reads what the writer stored
    return _report(ctx, begun.engine, begun.run_id, begun.snapshot)


def _prepare_run(
    ctx: _Context,
    run: RunRecord | None,
    params: dict[str, Any],
    prepared: Prepared | None,
    history: ForkedTask | None,
    source: str,
    progress: Progress | None,
) -> _Start:
    """A new run (or one whose preparation was cut short): store its candles and history,
    train the first models and warm the engine up to the window start."""
    store, symbols = ctx.store, ctx.symbols
    if prepared is None:
        prepared = prepare(ctx.req)
    start, end = prepared.window
    for symbol, frame in prepared.imports.items():
        if progress:
            progress(f"storing {symbol} candles", 0, 1)
        ingest_frame(store, frame, symbol, "1m", source)
    if run is None:
        with store.begin() as conn:
            run_id = create_run(conn, RUN_KIND, params)
    else:
        run_id = run.id
        for symbol in symbols:  # a preparation cut short: train again, same versions
            for tf in ctx.cfg.timeframes.names:
                ctx.registry.discard_newer(symbol, tf, None)
    if not ctx.req.replaying and (history is None or not history.wait()):
        simulate_history(store, symbols, ctx.req.seed, start, source, progress)
    untrained = _train(ctx.cfg, store, ctx.registry, ctx.models_dir, symbols, start, progress)
    release_freed_memory()
    engine = _engine(ctx, run_id)
    warm_up(engine.predictor, store, symbols, start)
    snapshot = {
        "aggregators": primed_aggregators(store, symbols, start),
        "untrained": untrained,
        "window": (start, end),
    }
    return _Start(run_id, engine, snapshot, prepared.frames, start)


def _resume_run(ctx: _Context, run: RunRecord) -> _Start:
    """An interrupted run, from its last checkpoint."""
    with ctx.store.begin() as conn:
        claim_run(conn, run.id)
    snapshot = load_snapshot(run.snapshot)
    start, end = snapshot["window"]
    engine = _engine(ctx, run.id)
    engine.restore(snapshot["engine"])
    cursor = run.cursor_ms if run.cursor_ms is not None else start
    # the rest of the window, from the copy in the run's database: neither the files nor
    # the source database are needed again, and a change to them cannot change the run
    frames = stored_window(ctx.store, ctx.symbols, cursor, end) if ctx.req.replaying else {}
    log.info("Resuming backtest run %d from %s UTC", run.id, ms_to_text(cursor))
    return _Start(run.id, engine, snapshot, frames, cursor)


def _runner(
    ctx: _Context,
    begun: _Start,
    source: str,
    stop: Callable[[], bool] | None,
    block_replay: bool,
    writer: checkpoint_writer.CheckpointWriter | None,
) -> EngineRunner:
    runner = EngineRunner(
        begun.engine,
        ctx.store,
        begun.run_id,
        begun.snapshot,
        candle_source=None if ctx.req.replaying else source,  # replayed candles are stored
        read_ahead=True,
        stop=stop,
        block_replay=block_replay,
    )
    if runner.path == "block":  # nothing reads the store during a block replay
        runner.writer = writer
    log.info(
        "Replay path: %s", runner.path + (", checkpoint writer process" if runner.writer else "")
    )
    return runner


def _params(cfg: AppConfig, req: BacktestRequest) -> dict[str, Any]:
    """What identifies a run: the request and the configuration it runs with.

    A request without ``--from``/``--to`` or a source database has the same identity as before
    they existed (its database resumes); with them, what they make irrelevant is left out, so
    that e.g. ``--from A --to B`` resumes whatever ``--days`` is.
    """
    params: dict[str, Any] = {
        "symbols": list(req.symbols),
        "days": req.days,
        "seed": req.seed,
        "warmup_days": req.warmup_days,
        "retrain": req.retrain,
        "files": [str(Path(f).resolve()) for f in req.files],
        "config": hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16],
    }
    explicit = req.start_ms is not None or req.end_ms is not None
    if explicit:
        params["from"] = req.start_ms
        params["to"] = req.end_ms
        if req.start_ms is not None and req.end_ms is not None:
            params["days"] = None
    if req.replay_url is not None and not req.files:
        params["replay_db"] = url_identity(req.replay_url)
    if explicit or "replay_db" in params:
        params["warmup_days"] = None if req.replaying or explicit else req.warmup_days
        if req.replaying:
            params["seed"] = None  # no market is simulated
    return params


def _feed(
    req: BacktestRequest, frames: dict[str, pd.DataFrame], symbols: list[str], cursor: int, end: int
) -> Feed:
    """The window's candles from ``cursor`` on (the start, or where a resumed run stopped)."""
    if req.replaying:
        window = {
            s: f[(f["timestamp"] >= cursor) & (f["timestamp"] < end)] for s, f in frames.items()
        }
        return FrameReplayFeed(window, symbols, SimulatedClock(cursor))
    return SimulatedFeed(symbols, req.seed, cursor, SimulatedClock(cursor), end)


def _train(
    cfg: AppConfig,
    store: Engine,
    registry: ModelRegistry,
    models_dir: str,
    symbols: list[str],
    start: int,
    progress: Progress | None,
) -> list[str]:
    """The first models, on candles known at the window start; returns what could not train."""
    untrained = []
    with CalibrationBeside(store, cfg, symbols, start, models_dir):  # on the other core
        for symbol in symbols:
            if progress:
                progress(f"training {symbol}", 0, 1)
            outcomes = train_symbol(
                store, registry, cfg, symbol, cfg.timeframes.names, known_at_ms=start
            )
            untrained += [o.problem or f"{o.symbol} {o.timeframe}" for o in outcomes if not o.ok]
    return untrained


def _engine(ctx: _Context, run_id: int) -> TradingEngine:
    predictor = build_predictor(ctx.cfg, ctx.registry, ctx.models_dir, ctx.symbols)
    broker = PaperBroker(ctx.cfg.paper, ctx.cfg.risk, "paper")
    retraining = ctx.req.retrain
    return new_engine(
        ctx.cfg, ctx.store, ctx.registry, predictor, broker, retraining=retraining, run_id=run_id
    )


def _report(
    ctx: _Context, engine: TradingEngine, run_id: int, snapshot: dict[str, Any]
) -> BacktestReport:
    start, end = snapshot["window"]
    with ctx.store.connect() as conn:
        return build_report(
            conn,
            engine,
            ctx.req.symbols,
            run_id,
            start,
            end,
            ctx.cfg.paper.starting_balance,
            snapshot.get("untrained", ()),
        )
