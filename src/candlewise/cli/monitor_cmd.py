"""``python monitor_production.py`` (= ``candlewise monitor``): the guide's terminal monitor and
its JSON reports, from another terminal while a deployment runs.

Only reads the store, through read-only connections (one short transaction per screen), so it
never blocks or slows the deployment's writes. Bad input is a ``UserError`` (exit 2, no
traceback); Ctrl+C exits with 130 (``candlewise.cli.main``).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from sqlalchemy import Engine

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, DbOpt, check_symbol
from candlewise.core.errors import UserError

MAX_HOURS = 24 * 366


def monitor(
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="One symbol (default: every active symbol).")
    ] = None,
    refresh: Annotated[
        str | None,
        typer.Option(
            "--refresh", help="Seconds between redraws (default: monitoring.refresh_seconds)."
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one screen and exit.")] = False,
    report: Annotated[
        bool, typer.Option("--report", help="Write production_reports/report_<stamp>.json.")
    ] = False,
    hours: Annotated[
        str | None,
        typer.Option(
            "--hours", help="Hours covered by the report, or by the screen's performance (24)."
        ),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The production monitor (redrawn every --refresh seconds), or a report with --report."""
    if symbol is not None:
        check_symbol(symbol)
    window = parse_hours(hours)
    ctx = AppContext(config, db)
    cfg = ctx.config
    every = parse_refresh(refresh, cfg.monitoring.refresh_seconds)
    from candlewise.monitoring.status import database_label, open_reader

    engine = open_reader(cfg.database.url)
    label = database_label(cfg.database.url)
    try:
        if symbol is not None:
            ctx.check_known_symbol(symbol, engine)
        if report:
            code = _report(ctx, engine, label, symbol, window)
            if code:
                raise typer.Exit(code)
            return
        if once:
            console.print(_screen(ctx, engine, label, symbol, window, None), end="")
            return
        _live(ctx, engine, label, symbol, window, every)
    finally:
        engine.dispose()


def parse_hours(text: str | None) -> float:
    if text is None:
        return 24.0
    try:
        value = float(text.strip().removesuffix("h"))
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_HOURS:
        raise UserError(
            f"invalid --hours {text!r}: a number of hours above 0 and up to {MAX_HOURS} is needed",
            "e.g. --hours 6 (the guide's progress report) or --hours 48",
        )
    return value


def parse_refresh(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text.strip().removesuffix("s"))
    except ValueError:
        value = 0
    if not 1 <= value <= 3600:
        raise UserError(
            f"invalid --refresh {text!r}: whole seconds from 1 to 3600 are needed",
            "e.g. --refresh 10",
        )
    return value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _screen(
    ctx: AppContext, engine: Engine, label: str, symbol: str | None, hours: float,
    refresh: int | None,
) -> Text:  # fmt: skip
    from candlewise.monitoring.screen import render_screen, styled
    from candlewise.monitoring.status import read_status

    with engine.connect() as conn:
        status = read_status(
            conn, ctx.config, now_ms=_now_ms(), symbol=symbol, hours=hours, database=label
        )
    return styled(render_screen(status, refresh))


def _live(
    ctx: AppContext, engine: Engine, label: str, symbol: str | None, hours: float, every: int
) -> None:
    """Clear and redraw every ``every`` seconds: the whole screen stays visible in any
    terminal height (a cropped in-place region would hide the last symbols)."""
    # Ctrl+C sets a flag instead of raising wherever it lands: raised inside the database
    # driver's cleanup it could be swallowed, and the monitor would keep redrawing.
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()  # where handlers can be set
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if main else None
    try:
        while not stop.is_set():
            text = _screen(ctx, engine, label, symbol, hours, every)
            if console.is_terminal:
                console.clear()
            console.print(text, end="")
            stop.wait(every)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    raise KeyboardInterrupt  # the CLI's Ctrl+C exit (130)


def _report(ctx: AppContext, engine: Engine, label: str, symbol: str | None, hours: float) -> int:
    from candlewise.monitoring.report import build_report, summary_lines, write_report

    with engine.connect() as conn:
        data = build_report(
            conn, ctx.config, now_ms=_now_ms(), hours=hours, symbol=symbol, database=label
        )
    if data is None:
        console.print(
            f"Nothing to report: no deployment has run and {label} holds no trading events yet.\n"
            "Start one with: python deploy_production.py --phase 1 --symbol BTC/USDT",
            markup=False,
        )
        return 1
    path = write_report(data, Path(ctx.config.paths.reports_dir))
    for line in summary_lines(data, path):
        console.print(line, markup=False)
    return 0
