"""``candlewise train`` and ``candlewise models list|rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from candlewise.cli.context import AppContext, console, err_console
from candlewise.cli.options import ConfigOpt, DbOpt, check_symbol, check_timeframe
from candlewise.core.errors import UserError
from candlewise.core.timeframes import TIMEFRAMES

if TYPE_CHECKING:  # training loads torch: imported once a command needs it
    from candlewise.models.training_config import EpochReport
    from candlewise.store.model_registry import ModelRegistry
    from candlewise.training.first_training import TrainOutcome

app = typer.Typer(help="Trained models: list versions, roll back.", no_args_is_help=True)

SymbolArg = Annotated[str, typer.Option("--symbol", help="e.g. BTC/USDT")]
IntervalOpt = Annotated[
    str | None, typer.Option("--interval", help="One timeframe (default: all configured).")
]


def registry_for(ctx: AppContext) -> ModelRegistry:
    return ctx.registry


def _check(symbol: str, interval: str | None) -> None:
    check_symbol(symbol)
    if interval is not None:
        check_timeframe(interval)


def train(
    symbol: SymbolArg,
    interval: IntervalOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Train the symbol's models (all configured timeframes, or one) from stored candles."""
    ctx = AppContext(config, db)
    _check(symbol, interval)
    ctx.check_known_symbol(symbol)
    ctx.start_logging()
    timeframes = [interval] if interval else list(ctx.config.timeframes.names)
    _history_first(ctx, symbol, [*ctx.config.timeframes.names, *timeframes], config, db)
    registry = registry_for(ctx)
    outcomes = _train_with_progress(ctx, registry, symbol, timeframes)
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes:
        if outcome.ok and outcome.metrics is not None:
            m = outcome.metrics
            console.print(
                f"✓ {symbol} {outcome.timeframe}: v{outcome.version} saved to "
                f"{registry.active_path(symbol, outcome.timeframe)} — val acc "
                f"{100 * m.val_accuracy:.2f}% (baseline {100 * m.majority_baseline:.2f}%), "
                f"val conf {100 * m.val_confidence:.2f}%, ECE {100 * m.ece:.2f}%, "
                f"{m.train_size:,} train / {m.val_size:,} val, {m.duration_s:.2f}s"
            )
    if interval is None and not failed:
        _calibrate_signals(ctx, symbol)
    for outcome in failed:
        err_console.print(f"✗ {outcome.problem}")
        if outcome.hint:
            err_console.print(f"  Hint: {outcome.hint}")
    if failed:
        raise typer.Exit(2)


def _train_with_progress(
    ctx: AppContext, registry: ModelRegistry, symbol: str, timeframes: list[str]
) -> list[TrainOutcome]:
    """The models trained one by one, each with a progress bar over its epochs."""
    from candlewise.training.first_training import train_symbol

    max_epochs = ctx.config.continuous_learning.retraining.max_epochs
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks = {
            tf: bar.add_task(f"{symbol} {tf}", total=max_epochs, status="waiting")
            for tf in timeframes
        }

        def on_epoch(tf: str, report: EpochReport) -> None:
            bar.update(
                tasks[tf],
                completed=report.epoch,
                status=f"epoch {report.epoch}: val acc {100 * report.val_accuracy:.1f}%, "
                f"conf {100 * report.val_confidence:.1f}%",
            )

        outcomes = train_symbol(
            ctx.engine, registry, ctx.config, symbol, timeframes, on_epoch=on_epoch
        )
        for outcome in outcomes:
            task = tasks[outcome.timeframe]
            if outcome.ok:
                bar.update(task, completed=max_epochs, status="done")
            else:
                bar.update(task, status="not trained")
    return outcomes


def _calibrate_signals(ctx: AppContext, symbol: str) -> None:
    from candlewise.training.first_training import calibrate_signals

    with console.status(f"Calibrating {symbol} signals on out-of-sample events..."):
        calibration = calibrate_signals(ctx.engine, ctx.config, symbol)
    if calibration is not None:
        ece = calibration.heldout_ece
        console.print(
            f"✓ {symbol} signal calibration: {sum(calibration.events.values()):,} "
            f"out-of-sample events, held-out ECE "
            f"{'n/a' if ece is None else f'{100 * ece:.2f}%'} "
            f"({calibration.heldout_events:,} events)"
        )


def _history_first(
    ctx: AppContext, symbol: str, timeframes: list[str], config: Path | None, db: str | None
) -> None:
    """A symbol without candles (e.g. just added to ``symbols``) gets its history first: the
    simulated feed simulates it; for a real feed the exact command to get it is named."""
    from candlewise.store import candle_store
    from candlewise.training.first_training import history_days

    with ctx.engine.connect() as conn:
        if candle_store.has_symbol(conn, symbol):
            return
    days = history_days(timeframes)
    feed = ctx.config.data.feed
    if feed == "simulated":
        from candlewise.cli.data_cmd import simulate

        console.print(
            f"No {symbol} candles stored yet: simulating {days} days of its history first "
            "(data.feed is simulated)"
        )
        simulate(symbols=symbol, days=days, seed=None, config=config, db=db)
        return
    command = (
        f"candlewise data download --symbol {symbol} --timeframe 1m --days {days}"
        if feed == "binance"
        else f"candlewise data import FILE --symbol {symbol} --timeframe 1m"
    )
    raise UserError(
        f"no {symbol} candles stored yet (data.feed is {feed}): nothing to train on",
        f"get {days} days of its history first with: {command}; then train again",
    )


@app.command("list")
def list_models(
    symbol: Annotated[str | None, typer.Option("--symbol")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Every model version with its validation figures; * marks the active one."""
    ctx = AppContext(config, db)
    if symbol is not None:
        ctx.check_known_symbol(symbol)
    records = registry_for(ctx).list(symbol)
    if not records:
        console.print("No models trained yet. Train with 'candlewise train --symbol BTC/USDT'.")
        return
    table = Table(title="Models")
    for col in ("", "symbol", "tf", "version", "created (UTC)", "train/val", "val acc",
                "baseline", "val conf", "ECE"):  # fmt: skip
        table.add_column(col)
    order = {tf: i for i, tf in enumerate(TIMEFRAMES)}
    for r in sorted(records, key=lambda r: (r.symbol, order[r.timeframe], r.version)):
        table.add_row(
            "*" if r.active else "",
            r.symbol,
            r.timeframe,
            f"v{r.version}",
            r.created_at,
            f"{r.train_size:,}/{r.val_size:,}",
            f"{100 * r.val_accuracy:.2f}%",
            f"{100 * r.majority_baseline:.2f}%",
            f"{100 * r.val_confidence:.2f}%",
            f"{100 * r.ece:.2f}%",
        )
    console.print(table)


@app.command("rollback")
def rollback(
    symbol: SymbolArg,
    interval: Annotated[str, typer.Option("--interval", help="Timeframe of the model.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Make the previous kept version of a model active again."""
    ctx = AppContext(config, db)
    _check(symbol, interval)
    ctx.check_known_symbol(symbol)
    ctx.start_logging()
    old, new = registry_for(ctx).rollback(symbol, interval)
    console.print(f"✓ {symbol} {interval}: rolled back from v{old} to v{new}")
