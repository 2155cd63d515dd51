"""``candlewise data import|simulate|download|stream|summary``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import (
    ConfigOpt,
    DbOpt,
    SymbolsOpt,
    check_symbol,
    check_timeframe,
    split_symbols,
)
from candlewise.core.clock import parse_duration_ms, parse_speed
from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS, TIMEFRAME_MS, TIMEFRAMES
from candlewise.market.candle_files import check_file_timeframe, read_candle_file
from candlewise.market.ingest import CandleRecorder, IngestReport, ingest_frame
from candlewise.store import candle_store

if TYPE_CHECKING:
    from candlewise.core.candle import Candle
    from candlewise.market.feed_plan import FeedPlan

SIMULATE_CHUNK_MINUTES = 30 * 1440  # derive 5m..1d once per month of minutes, not per day

app = typer.Typer(
    help="Get candles into the store and look at what it holds.", no_args_is_help=True
)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _print_report(report: IngestReport, what: str) -> None:
    console.print(
        f"✓ {what}: {report.stored:,} new {report.symbol} {report.timeframe} candles stored "
        f"({report.rows_read:,} read, {report.rejected:,} rejected, {report.repaired:,} repaired)"
    )
    if report.derived:
        parts = ", ".join(f"{tf} {n:,}" for tf, n in report.derived.items())
        console.print(f"  derived from 1m: {parts}")
    for issue in report.issues[:5]:
        where = f"data row {issue.row:,}" if issue.row is not None else f"{issue.open_time}"
        console.print(f"  ! {issue.kind} at {where}: {issue.detail} ({issue.action})", markup=False)
    if len(report.issues) > 5:
        console.print(f"  ! ... {len(report.issues) - 5} more, see error_log")


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(help="CSV, CSV.GZ or Parquet with timestamp,open,high,low,close,volume."),
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="e.g. BTC/USDT")],
    timeframe: Annotated[str, typer.Option("--timeframe", help="Timeframe of the file's candles.")],
    derive: Annotated[bool, typer.Option(help="From 1m files, also build 5m..1d.")] = True,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Import candles from a file (rows are validated; problems go to error_log)."""
    ctx = AppContext(config, db)
    check_symbol(symbol)
    check_timeframe(timeframe)
    ctx.start_logging()
    frame = read_candle_file(file)
    check_file_timeframe(frame, timeframe, file)
    unit = frame.attrs.get("timestamp_unit", "milliseconds")
    if unit not in ("milliseconds", "datetime", "ISO-8601 text"):
        console.print(f"  timestamps are in {unit} since the epoch: converted to milliseconds")
    with console.status(f"Importing {len(frame):,} rows from {file.name}..."):
        report = ingest_frame(ctx.engine, frame, symbol, timeframe, "import", derive_higher=derive)
    _print_report(report, f"Imported {file.name}")


@app.command("simulate")
def simulate(
    symbols: SymbolsOpt = None,
    days: Annotated[
        float, typer.Option("--days", min=0.01, help="Days of 1m candles, ending now.")
    ] = 7,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Market seed (default: data.seed).")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Fill the store with the built-in simulated market (1m candles and 5m..1d derived)."""
    from candlewise.market.feeds import simulated_source
    from candlewise.market.simulated import market_at

    ctx = AppContext(config, db)
    chosen = split_symbols(symbols, ctx.config.symbols)
    ctx.start_logging()
    market_seed = ctx.config.data.seed if seed is None else seed
    now = int(time.time() * 1000)
    end = now - now % MINUTE_MS
    total = int(days * 1440)
    start = end - total * MINUTE_MS
    market = market_at(chosen, market_seed, start)
    source = simulated_source(market_seed)
    engine = ctx.engine
    stored = dict.fromkeys(chosen, 0)
    with progress_bar() as bar:
        task = bar.add_task(f"Simulating {', '.join(chosen)}", total=total)
        while (done := (market.next_open_time - start) // MINUTE_MS) < total:
            block = market.generate(min(SIMULATE_CHUNK_MINUTES, total - done))
            for symbol in chosen:
                series = block[symbol]
                frame = series.to_frame().drop(columns="regime")
                stored[symbol] += ingest_frame(engine, frame, symbol, "1m", source).stored
                with engine.begin() as conn:
                    candle_store.insert_regimes(
                        conn, symbol, series.open_time, series.regime_labels()
                    )
            bar.update(task, advance=len(block[chosen[0]]))
    for symbol in chosen:
        console.print(f"✓ {symbol}: {stored[symbol]:,} simulated 1m candles (seed {market_seed})")
    console.print("  [dim]Simulated market: not real prices.[/dim]")


@app.command("download")
def download(
    symbol: Annotated[str, typer.Option("--symbol", help="e.g. BTC/USDT")],
    timeframe: Annotated[str, typer.Option("--timeframe")] = "1m",
    days: Annotated[float, typer.Option("--days", min=0.01)] = 30,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Download closed candles from Binance over REST (ccxt) into the store."""
    from candlewise.market.binance_rest import fetch_candles, make_exchange

    ctx = AppContext(config, db)
    check_symbol(symbol)
    check_timeframe(timeframe)
    ctx.start_logging()
    exchange = make_exchange(ctx.config.exchange.rest_url)  # market data is public: no keys sent
    now = int(time.time() * 1000)
    since = now - int(days * 86_400_000)
    expected = max(1, int((now - since) // (TIMEFRAME_MS[timeframe])))
    with progress_bar() as bar:
        task = bar.add_task(f"Downloading {symbol} {timeframe}", total=expected)
        candles = fetch_candles(
            exchange,
            symbol,
            timeframe,
            since,
            now,
            on_progress=lambda n, _last: bar.update(task, completed=min(n, expected)),
        )
        bar.update(task, completed=expected)
    if not candles:
        raise UserError(
            f"Binance returned no {symbol} {timeframe} candles for the last {days:g} days"
        )
    frame = candle_store.candles_to_frame(candles)
    report = ingest_frame(ctx.engine, frame, symbol, timeframe, "binance")
    _print_report(report, "Downloaded from Binance")


@app.command("stream")
def stream(
    feed: Annotated[
        str | None,
        typer.Option("--feed", help="simulated | replay | binance (default: data.feed)."),
    ] = None,
    symbols: SymbolsOpt = None,
    duration: Annotated[str, typer.Option("--duration", help="e.g. 24h, 90m, 2d.")] = "1d",
    speed: Annotated[
        str, typer.Option("--speed", help="'max' or a factor, e.g. 60 (one minute per second).")
    ] = "max",
    files: Annotated[
        list[Path] | None, typer.Option("--file", help="Replay these files (repeatable).")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Run a feed into the store: validate, build 5m..1d, log every close as the guide shows."""

    ctx = AppContext(config, db)
    chosen = split_symbols(symbols, ctx.config.symbols)
    try:
        duration_ms = parse_duration_ms(duration)
        pace = parse_speed(speed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    ctx.start_logging()
    engine = ctx.engine
    name = feed or ctx.config.data.feed
    plan = ctx.app.plan_feed(
        name,
        chosen,
        now_ms=int(time.time() * 1000),
        duration_ms=duration_ms,
        speed=pace,
        files=files or (),
        record_regimes=True,  # the recorder stores them
    )
    show = pace is not None or name == "binance"
    source = getattr(plan.feed, "source", name)
    take_regimes = getattr(plan.feed, "take_regimes", None)
    on_close = _print_close if show else None
    recorder = CandleRecorder(engine, chosen, source, on_close=on_close, regimes=take_regimes)
    recorder.resume_from_store()
    started = time.monotonic()
    interrupted = _record(plan, recorder, f"{name} feed", len(chosen))
    elapsed = time.monotonic() - started
    closes = ", ".join(f"{tf} {recorder.closes.get(tf, 0):,}" for tf in TIMEFRAMES)
    mark = "Interrupted:" if interrupted else "✓"
    console.print(
        f"{mark} {recorder.accepted:,} new 1m candles recorded from the {name} feed in "
        f"{elapsed:.1f}s ({recorder.already_stored:,} already stored, "
        f"{recorder.rejected:,} rejected). Closes: {closes}"
    )
    if name == "simulated":
        console.print("  [dim]Simulated market: not real prices.[/dim]")
    if interrupted:
        raise typer.Exit(130)


def _print_close(bar: Candle) -> None:
    """A closed 5m..1d candle, as the guide's log shows it (paced and live feeds only)."""
    if bar.timeframe != "1m":
        stamp = datetime.fromtimestamp(bar.close_time / 1000, tz=UTC).strftime("%H:%M:%S")
        console.print(
            f"[{stamp}] [{bar.symbol} @ {bar.timeframe}] Candle closed: "
            f"O={bar.open:.2f} C={bar.close:.2f}",
            markup=False,
        )


def _record(plan: FeedPlan, recorder: CandleRecorder, label: str, n_symbols: int) -> bool:
    """The feed's candles into the recorder under a progress bar; True when Ctrl-C cut it short
    (what was recorded is stored either way)."""
    minutes = None if plan.end_ms is None else (plan.end_ms - plan.start_ms) // MINUTE_MS
    try:
        with progress_bar() as bar:
            task = bar.add_task(label, total=(minutes or 0) * n_symbols or None)
            for candle in plan.feed.candles():
                recorder.add(candle)
                bar.advance(task)
    except KeyboardInterrupt:
        return True
    finally:
        recorder.flush()
    return False


@app.command("summary")
def summary(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """What the store holds: rows and time span per symbol and timeframe."""
    ctx = AppContext(config, db)
    rows = candle_store.summary(ctx.engine)
    if not rows:
        console.print("The store holds no candles yet. Try 'candlewise data simulate'.")
        return
    order = {tf: i for i, tf in enumerate(TIMEFRAMES)}
    table = Table(title="Stored candles")
    for col in ("symbol", "timeframe", "candles", "first (UTC)", "last (UTC)"):
        table.add_column(col, justify="right" if col == "candles" else "left")
    for symbol, tf, n, first, last in sorted(rows, key=lambda r: (r[0], order.get(r[1], 99))):
        fmt = "%Y-%m-%d %H:%M"
        table.add_row(
            symbol,
            tf,
            f"{n:,}",
            datetime.fromtimestamp(first / 1000, tz=UTC).strftime(fmt),
            datetime.fromtimestamp(last / 1000, tz=UTC).strftime(fmt),
        )
    console.print(table)
