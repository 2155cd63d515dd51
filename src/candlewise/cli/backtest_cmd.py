"""``candlewise backtest``: the whole loop on a replayed window; a summary and a ledger hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from candlewise.cli.context import AppContext, console
from candlewise.cli.data_cmd import progress_bar
from candlewise.cli.options import ConfigOpt, SymbolsOpt, split_symbols
from candlewise.errors import UserError


def backtest(
    symbols: SymbolsOpt = None,
    feed: Annotated[
        str, typer.Option("--feed", help="simulated (replay of real data: next).")
    ] = "simulated",
    days: Annotated[float, typer.Option("--days", min=0.01, max=3650, help="Days to play.")] = 7,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Simulated market seed.")] = 1,
    warmup_days: Annotated[
        float,
        typer.Option(
            "--warmup-days",
            min=1,
            max=3650,
            help="History before the window that trains the first models.",
        ),
    ] = 60,
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="1m file per symbol for --feed replay.")
    ] = None,
    no_retrain: Annotated[
        bool, typer.Option("--no-retrain", help="Keep the first models.")
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="SQLite file for this run (default: a new file under data/backtests/). "
            "Run the same command again to resume an interrupted run.",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run models, modes, retraining, paper broker and risk over a window; print the summary."""
    from candlewise.backtest import BacktestRequest, Interrupted, run_backtest
    from candlewise.shutdown import StopRequest
    from candlewise.store.timestamps import ms_to_text

    if feed not in ("simulated", "replay"):
        raise UserError(f"unknown feed {feed!r} for a backtest", "use simulated or replay")
    if feed == "replay" and not data:
        raise UserError(
            "--feed replay needs the candles to replay",
            "pass --data FILE, a 1m file per symbol such as BTC_USDT-1m.csv.gz",
        )
    missing = [str(p) for p in data or () if not p.is_file()] if feed == "replay" else []
    if missing:  # checked before the run's database is created, so a typo leaves nothing behind
        raise UserError(f"file not found: {', '.join(missing)}", "check the --data paths")
    path = db or Path("data/backtests") / (
        f"backtest_seed{seed}_{datetime.now(tz=UTC).strftime('%Y%m%d_%H%M%S')}.db"
    )
    resuming = path.exists()
    ctx = AppContext(config, f"sqlite:///{path}")
    chosen = split_symbols(symbols, ctx.config.symbols)
    ctx.start_logging()
    models_dir = str(path.with_suffix("")) + "_models"
    files = tuple(str(p) for p in data or ()) if feed == "replay" else ()
    request = BacktestRequest(tuple(chosen), days, seed, warmup_days, not no_retrain, files)
    if resuming:
        console.print(f"{path} exists: continuing the run it holds (or reporting it again)")
    else:
        console.print(f"Database: {path} (run the same command with --db {path} to resume)")
    with StopRequest() as stop, progress_bar() as bar:
        task = bar.add_task("backtest", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        try:
            report = run_backtest(ctx.config, ctx.engine, models_dir, request, progress, stop)
        except Interrupted as exc:
            bar.stop()
            console.print(
                f"Stopped ({stop.signal_name}) at {ms_to_text(exc.cursor_ms)} UTC, checkpoint "
                f"saved. Resume with the same command and --db {path}"
            )
            raise typer.Exit(130) from None
    fmt = "%Y-%m-%d %H:%M"
    window = (
        f"{datetime.fromtimestamp(report.start_ms / 1000, tz=UTC).strftime(fmt)} → "
        f"{datetime.fromtimestamp(report.end_ms / 1000, tz=UTC).strftime(fmt)} UTC"
    )
    win_rate = f"{100 * report.wins / report.trades:.2f}%" if report.trades else "n/a"
    sharpe = "n/a" if report.sharpe is None else f"{report.sharpe:.2f}"
    retrains = ", ".join(f"{k} {v}" for k, v in sorted(report.retrains.items())) or "none"
    what = (
        f"simulated market, seed {seed}"
        if not files
        else "replay of " + ", ".join(Path(f).name for f in files)
    )
    console.print(f"Backtest ({what}): {', '.join(chosen)}, {window}")
    console.print(f"  Database: {path}")
    console.print(
        f"  Trades: {report.trades} | Win rate: {win_rate} | "
        f"P&L: ${report.pnl:,.2f} closed trades; equity ${report.final_equity:,.2f} "
        f"({report.pnl_percent:+.2f}%)"
    )
    if report.open_positions:
        console.print(
            f"  Still open at the end: {report.open_positions} positions, "
            f"unrealised ${report.unrealized_pnl:,.2f} (not in the ledger)"
        )
    console.print(
        f"  Max drawdown: {report.max_drawdown_percent:.2f}% | Sharpe: {sharpe} | "
        f"Mode transitions/hour (busiest symbol): {report.transitions_per_hour:.3f}"
    )
    console.print(f"  Shadow trades (LEARNING mode, no orders): {report.shadow_trades}")
    share = ", ".join(f"{s} {100 * v:.1f}%" for s, v in report.trading_share.items())
    console.print(f"  Time in TRADING mode: {share}")
    console.print(f"  Retrains by reason: {retrains} ({report.retrains_accepted} accepted)")
    console.print(
        f"  Errors: {report.errors}"
        + (f" | Rollback: {report.rollback}" if report.rollback else "")
    )
    for line in report.untrained:
        console.print(f"  Not trained: {line}")
    console.print(f"Ledger: {report.ledger}")
