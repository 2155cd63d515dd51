"""``candlewise backtest``: the whole loop on a replayed window; a summary and a ledger hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from candlewise.cli.context import AppContext, console
from candlewise.cli.data_cmd import progress_bar
from candlewise.cli.options import ConfigOpt, SymbolsOpt, split_symbols
from candlewise.core.errors import UserError

if TYPE_CHECKING:  # the run's modules load torch: imported only once a run starts
    from candlewise.backtest.report import BacktestReport
    from candlewise.backtest.request import BacktestRequest, Prepared
    from candlewise.system.forked_task import ForkedTask

_TIME_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",  # whole minutes only, e.g. a stored timestamp pasted
    "%Y-%m-%d %H:%M:%S",
)


def parse_utc_minute(text: str, option: str) -> int:
    """``2024-05-01``, ``2024-05-01T12:00`` or ``2024-05-01 12:00`` (UTC) as epoch ms."""
    cleaned = text.strip().removesuffix("Z")
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        if moment.second:
            break
        return int(moment.timestamp()) * 1000
    raise UserError(
        f"{option} {text!r} is not a UTC date or minute",
        f"write e.g. {option} 2024-05-01, {option} 2024-05-01T12:00 or "
        f"{option} '2024-05-01 12:00' (UTC)",
    )


FeedOpt = Annotated[
    str,
    typer.Option(
        "--feed",
        help="simulated (the built-in market, from --seed) or replay (real 1m candles: "
        "the --data files or, without --data, those stored in the configured database "
        "by 'candlewise data import/download').",
    ),
]
DaysOpt = Annotated[
    float,
    typer.Option(
        "--days",
        min=0.01,
        max=3650,
        help="Days to play: the last ones of the replayed data, or from --from, or up to "
        "--to. Ignored when both --from and --to are given.",
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Window start, UTC: 2024-05-01, 2024-05-01T12:00 or '2024-05-01 12:00'. "
        "The first models train on what precedes it (simulated: the history from "
        "2024-01-01, replacing --warmup-days).",
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="Window end, UTC, exclusive (same formats as --from)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Simulated market seed.")]
WarmupDaysOpt = Annotated[
    float,
    typer.Option(
        "--warmup-days",
        min=1,
        max=3650,
        help="Simulated history before the window that trains the first models "
        "(ignored with --from or --to).",
    ),
]
DataOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        help="1m file per symbol for --feed replay, named like BTC_USDT-1m.csv.gz "
        "(repeatable; default: the candles stored in the configured database).",
    ),
]
NoRetrainOpt = Annotated[bool, typer.Option("--no-retrain", help="Keep the first models.")]
EventPathOpt = Annotated[
    bool,
    typer.Option(
        "--event-path",
        help="Replay one candle event at a time even without retraining (the reference "
        "the faster block replay is tested against; same rows and ledger, 5-7x slower).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLite file (path or sqlite:/// URL) for this run (default: a new file under "
        "data/backtests/). "
        "Run the same command again to resume an interrupted run.",
    ),
]


def backtest(
    symbols: SymbolsOpt = None,
    feed: FeedOpt = "simulated",
    days: DaysOpt = 7,
    from_: FromOpt = None,
    to: ToOpt = None,
    seed: SeedOpt = 1,
    warmup_days: WarmupDaysOpt = 60,
    data: DataOpt = None,
    no_retrain: NoRetrainOpt = False,
    event_path: EventPathOpt = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run models, modes, retraining, paper broker and risk over a window; print the summary.

    The window is [--from, --to) in UTC minutes; without them, the last --days of the replayed
    candles, or --days after --warmup-days of simulated history.
    """
    from candlewise.backtest.history import history_beside
    from candlewise.backtest.request import BacktestRequest, prepare

    start_ms, end_ms = _checked_window(feed, data, from_, to)
    path = _run_database(db, seed)
    resuming = path.exists()
    files = tuple(str(p) for p in data or ()) if feed == "replay" else ()
    replay_url = _stored_candles_url(config, path) if feed == "replay" and not files else None
    ctx = AppContext(config, f"sqlite:///{path}")
    chosen = split_symbols(symbols, ctx.config.symbols)
    request = BacktestRequest(
        tuple(chosen),
        days,
        seed,
        warmup_days,
        not no_retrain,
        files,
        start_ms=start_ms,
        end_ms=end_ms,
        replay_url=replay_url,
    )
    # a new run's candles and window are checked before its database exists: a mistake
    # (a window outside the data, no stored candles) leaves nothing behind
    prepared = None if resuming else prepare(request)
    ctx.start_logging()
    history = history_beside(ctx.engine, request, prepared)  # written while torch loads
    from candlewise.system.memory import freeze_start_up_objects

    freeze_start_up_objects()

    if resuming:
        console.print(f"{path} exists: continuing the run it holds (or reporting it again)")
    else:
        console.print(f"Database: {path} (run the same command with --db {path} to resume)")
    report = _play(ctx, path, request, prepared, history, block_replay=not event_path)
    what = _source_label(files, replay_url, seed)
    _print_report(report, f"Backtest ({what}): {', '.join(chosen)}", path)


def _checked_window(
    feed: str, data: list[Path] | None, from_: str | None, to: str | None
) -> tuple[int | None, int | None]:
    """The options checked before the run's database is created, so a typo leaves nothing
    behind; the window's bounds as epoch ms."""
    if feed not in ("simulated", "replay"):
        raise UserError(f"unknown feed {feed!r} for a backtest", "use simulated or replay")
    missing = [str(p) for p in data or () if not p.is_file()] if feed == "replay" else []
    if missing:
        raise UserError(f"file not found: {', '.join(missing)}", "check the --data paths")
    start_ms = None if from_ is None else parse_utc_minute(from_, "--from")
    end_ms = None if to is None else parse_utc_minute(to, "--to")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise UserError(
            f"--from {from_} is not before --to {to}",
            "the window is [--from, --to) in UTC: pick a --to after --from",
        )
    return start_ms, end_ms


def _run_database(db: str | None, seed: int) -> Path:
    """``--db``, or a new file under data/backtests/ named by the seed and the wall clock."""
    from candlewise.store.db import sqlite_file

    if db is not None:
        return sqlite_file(db)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d_%H%M%S")
    return Path("data/backtests") / (f"backtest_seed{seed}_{stamp}.db")


def _stored_candles_url(config: Path | None, path: Path) -> str:
    """The configured database (config / CANDLEWISE_DATABASE_URL) whose candles a replay
    without --data plays, read before --db replaces it; never the run's own database."""
    from candlewise.store.db import sqlite_path

    replay_url = AppContext(config).config.database.url
    source_path = sqlite_path(replay_url)
    if source_path is not None and source_path.resolve() == path.resolve():
        raise UserError(
            f"--db {path} is the database holding the candles to replay",
            "give the backtest its own --db (or none: a new file under data/backtests/)",
        )
    return replay_url


def _play(
    ctx: AppContext,
    path: Path,
    request: BacktestRequest,
    prepared: Prepared | None,
    history: ForkedTask | None,
    *,
    block_replay: bool,
) -> BacktestReport:
    """The run under a progress bar; Ctrl-C checkpoints and exits 130."""
    from candlewise.backtest.run import Interrupted, run_backtest
    from candlewise.core.timestamps import ms_to_text
    from candlewise.system.shutdown import StopRequest

    models_dir = str(path.with_suffix("")) + "_models"
    with StopRequest() as stop, progress_bar() as bar:
        task = bar.add_task("backtest", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        try:
            return run_backtest(
                ctx.config,
                ctx.engine,
                models_dir,
                request,
                progress,
                stop,
                prepared,
                block_replay=block_replay,
                history=history,
            )
        except Interrupted as exc:
            bar.stop()
            console.print(
                f"Stopped ({stop.signal_name}) at {ms_to_text(exc.cursor_ms)} UTC, checkpoint "
                f"saved. Resume with the same command and --db {path}"
            )
            raise typer.Exit(130) from None


def _source_label(files: tuple[str, ...], replay_url: str | None, seed: int) -> str:
    from candlewise.store.db import safe_url, sqlite_path

    if files:
        return "replay of " + ", ".join(Path(f).name for f in files)
    if replay_url is not None:
        return f"replay of the candles stored in {sqlite_path(replay_url) or safe_url(replay_url)}"
    return f"simulated market, seed {seed}"


def _print_report(report: BacktestReport, title: str, path: Path) -> None:
    fmt = "%Y-%m-%d %H:%M"
    window = (
        f"{datetime.fromtimestamp(report.start_ms / 1000, tz=UTC).strftime(fmt)} → "
        f"{datetime.fromtimestamp(report.end_ms / 1000, tz=UTC).strftime(fmt)} UTC"
    )
    win_rate = f"{100 * report.wins / report.trades:.2f}%" if report.trades else "n/a"
    sharpe = "n/a" if report.sharpe is None else f"{report.sharpe:.2f}"
    retrains = ", ".join(f"{k} {v}" for k, v in sorted(report.retrains.items())) or "none"
    console.print(f"{title}, {window}")
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
    if report.skipped_costs:
        console.print(f"  Signals below costs (not traded): {report.skipped_costs}")
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
