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
            "--db", help="SQLite file for this run (default: a new file under data/backtests/)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run models, modes, retraining, paper broker and risk over a window; print the summary."""
    from candlewise.backtest import BacktestRequest, run_backtest

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
    if path.exists():
        raise UserError(f"{path} exists", "give a new --db path (each backtest gets its own file)")
    ctx = AppContext(config, f"sqlite:///{path}")
    chosen = split_symbols(symbols, ctx.config.symbols)
    ctx.start_logging()
    models_dir = str(path.with_suffix("")) + "_models"
    files = tuple(str(p) for p in data or ()) if feed == "replay" else ()
    request = BacktestRequest(tuple(chosen), days, seed, warmup_days, not no_retrain, files)
    with progress_bar() as bar:
        task = bar.add_task("backtest", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        report = run_backtest(ctx.config, ctx.engine, models_dir, request, progress)
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
