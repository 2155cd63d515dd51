"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: ./config.yaml, else built-in defaults)."
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="SQLAlchemy database URL; overrides database.url and CANDLEWISE_DATABASE_URL."
    ),
]
SymbolsOpt = Annotated[
    str | None,
    typer.Option(
        "--symbols", "-s", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT (default: config)."
    ),
]


def split_symbols(text: str | None, default: tuple[str, ...]) -> list[str]:
    from candlewise.errors import UserError
    from candlewise.symbols import symbol_problem

    symbols = [s.strip() for s in text.split(",") if s.strip()] if text else list(default)
    for s in symbols:
        problem = symbol_problem(s)
        if problem:
            raise UserError(f"malformed symbol {s!r}", problem)
    return symbols
