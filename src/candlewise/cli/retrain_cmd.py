"""``candlewise retrain --symbol S --interval TF``: the ``manual`` retrain trigger.

With a deployment running (an ``engine_runs`` row whose process is alive) the request goes
through the store and that engine queues it at its next minute (cooldown bypassed, like every
manual trigger). Otherwise the model is retrained here and now: a challenger on the stored
candles, champion/challenger against the active model, a ``retraining_history`` row either way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, DbOpt, check_symbol, check_timeframe
from candlewise.core.errors import UserError
from candlewise.system.processes import process_alive

if TYPE_CHECKING:  # training loads torch: imported once a retrain runs here
    from candlewise.training.challenger import RetrainResult

SymbolOpt = typer.Option("--symbol", help="e.g. BTC/USDT")
IntervalOpt = typer.Option("--interval", help="The model's timeframe, e.g. 1h.")


def retrain_command(
    symbol: str = SymbolOpt,
    interval: str = IntervalOpt,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Retrain one model now (or ask the running deployment to): the manual trigger."""
    from candlewise.store.retrain_requests import request_retrain
    from candlewise.store.run_store import running_deployments

    check_symbol(symbol)
    check_timeframe(interval)
    ctx = AppContext(config, db)
    ctx.check_known_symbol(symbol)
    if interval not in ctx.config.timeframes.names:
        raise UserError(
            f"{interval} is not a configured timeframe ({', '.join(ctx.config.timeframes.names)})",
            "add it under timeframes.intervals in config.yaml",
        )
    ctx.start_logging()
    with ctx.engine.begin() as conn:
        live = [r for r in running_deployments(conn) if process_alive(r.pid)]
        if live:
            request_retrain(conn, symbol, interval)
    if live:
        console.print(
            f"✓ Retrain of {symbol}_{interval} requested: the running deployment "
            f"(run {live[0].id}, pid {live[0].pid}) starts it at its next candle close"
        )
        return
    _retrain_here(ctx, symbol, interval)


def _retrain_here(ctx: AppContext, symbol: str, interval: str) -> None:
    from candlewise.features.spec import FEATURE_SPEC
    from candlewise.learning.retrain_policy import RetrainJob, RetrainReason, format_started
    from candlewise.system.logging_setup import get_logger
    from candlewise.training.challenger import retrain

    log = get_logger("retrain")
    cfg = ctx.config
    known_at = _newest_close(ctx, symbol, interval)
    registry = ctx.registry
    champion = registry.load_active(symbol, interval, FEATURE_SPEC.fingerprint)
    now_ms = int(time.time() * 1000)
    job = RetrainJob(symbol, interval, RetrainReason.MANUAL, now_ms)
    for line in (format_started(job),):
        log.info("%s", line)
        console.print(line)
    result = retrain(
        ctx.engine, registry, cfg, symbol, interval, known_at, champion.model if champion else None
    )
    line = _outcome_line(result)
    log.info("%s", line)
    console.print(line)
    _record(ctx, result, now_ms, champion.version if champion else None)
    if result.challenger is None:  # nothing could be trained: the data is the problem
        raise UserError(
            f"{symbol}_{interval} could not be retrained: {result.reason}",
            f"store more candles first: candlewise data download --symbol {symbol} "
            "--timeframe 1m --days 30",
        )


def _newest_close(ctx: AppContext, symbol: str, interval: str) -> int:
    """When the newest stored candle closed: the retrain knows the candles up to then."""
    from candlewise.core.timeframes import TIMEFRAME_MS
    from candlewise.store import candle_store

    with ctx.engine.connect() as conn:
        last = candle_store.load_frame(conn, symbol, interval, limit=1)
    if last.empty:
        raise UserError(
            f"no {symbol} {interval} candles stored",
            f"get some first: candlewise data download --symbol {symbol} --timeframe 1m",
        )
    return int(last["timestamp"].iloc[-1]) + TIMEFRAME_MS[interval]


def _outcome_line(result: RetrainResult) -> str:
    from candlewise.learning.retrain_policy import format_succeeded

    symbol, interval = result.symbol, result.timeframe
    if result.accepted:
        return format_succeeded(symbol, interval, result.val_confidence or 0.0, result.duration_s)
    return (
        f"✗ [{symbol}_{interval}] Retraining rejected: {result.reason}, "
        f"Duration: {result.duration_s:.1f}s; keeping the current model"
    )


def _record(ctx: AppContext, result: RetrainResult, now_ms: int, champion: int | None) -> None:
    """The attempt's ``retraining_history`` row, accepted or not."""
    from candlewise.learning.retrain_policy import RetrainReason
    from candlewise.store.learning_store import RetrainAttempt, record_retrain

    with ctx.engine.begin() as conn:
        record_retrain(
            conn,
            RetrainAttempt(
                result.symbol,
                result.timeframe,
                RetrainReason.MANUAL.value,
                now_ms,
                int(time.time() * 1000),
                result.duration_s,
                result.accepted,
                result.val_confidence,
                result.val_accuracy,
                champion,
                result.new_version,
                None if result.accepted else result.reason,
            ),
        )
