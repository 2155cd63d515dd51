"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from candlewise.core.errors import UserError
from candlewise.core.symbols import symbol_problem
from candlewise.core.timeframes import TIMEFRAMES

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: ./config.yaml, else built-in defaults)."
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///data/trading.db, postgresql+psycopg://...) or SQLite file "
        "path; overrides database.url and CANDLEWISE_DATABASE_URL.",
    ),
]
FeedOpt = Annotated[
    str | None,
    typer.Option("--feed", help="simulated | replay | binance (default: data.feed)."),
]
SpeedOpt = Annotated[
    str,
    typer.Option("--speed", help="'max' (simulated/replay: as fast as possible) or a factor; "
                 "1 = real time, 60 = a simulated minute per second."),
]  # fmt: skip
SymbolsOpt = Annotated[
    str | None,
    typer.Option(
        "--symbols", "-s", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT (default: config)."
    ),
]


def split_symbols(text: str | None, default: tuple[str, ...]) -> list[str]:
    """``--symbols`` as a list; None (option not given) means ``default`` (the config's).

    Raises UserError for an empty list (``""``, ``,,,``), a malformed or a repeated symbol.
    """
    if text is None:
        return list(default)
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise UserError(
            f"no symbols in --symbols {text!r}",
            "give comma-separated symbols, e.g. --symbols BTC/USDT,ETH/USDT, "
            "or omit --symbols to use the config's",
        )
    for s in symbols:
        check_symbol(s)
    dupes = sorted({s for s in symbols if symbols.count(s) > 1})
    if dupes:
        raise UserError(
            f"symbol listed twice in --symbols: {', '.join(dupes)}", "list each symbol once"
        )
    return symbols


def check_symbol(symbol: str) -> str:
    """``symbol`` if it is a well-formed BASE/QUOTE symbol, else a UserError with the fix."""
    problem = symbol_problem(symbol)
    if problem:
        raise UserError(f"malformed symbol {symbol!r}", problem)
    return symbol


def check_timeframe(timeframe: str) -> str:
    if timeframe not in TIMEFRAMES:
        raise UserError(f"unknown timeframe {timeframe!r}", f"use one of {', '.join(TIMEFRAMES)}")
    return timeframe


def unknown_symbol(symbol: str, configured: Sequence[str], stored: Sequence[str]) -> UserError:
    """The error for a well-formed symbol neither configured nor stored, naming the known ones."""
    known = ", ".join(sorted({*configured, *stored})) or "none yet"
    return UserError(
        f"unknown symbol {symbol}: it is not in the config's symbols "
        f"({', '.join(configured) or 'none'}) and the database holds no candles of it",
        f"known symbols: {known}. To use {symbol}, add it under symbols in config.yaml "
        f"(or store its candles: candlewise data import FILE --symbol {symbol} --timeframe 1m)",
    )
