"""``candlewise demo``: the main job on the embedded defaults (simulated market, SQLite).

For now it streams a few simulated days through the real feed -> validation -> aggregation ->
store path into ``data/trading.db`` and prints what was stored; later issues extend it to the
guide's full flow (training, paper-trading validation, phase 1).
"""

from __future__ import annotations

from typing import Annotated

import typer

from candlewise.cli import data_cmd
from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, DbOpt
from candlewise.store.db import safe_url


def demo(
    days: Annotated[float, typer.Option("--days", min=0.1, help="Simulated days to stream.")] = 3,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Stream simulated days into the store and summarise them (no network, no keys)."""
    ctx = AppContext(config, db)
    symbols = ",".join(ctx.config.symbols)
    console.rule("[bold]candlewise demo: simulated market -> data/trading.db")
    console.print(f"Database: {safe_url(ctx.config.database.url)}; symbols: {symbols}")
    data_cmd.stream(
        feed="simulated",
        symbols=symbols,
        duration=f"{days:g}d",
        speed="max",
        files=None,
        config=config,
        db=db,
    )
    data_cmd.summary(config=config, db=db)
    from sqlalchemy import text

    console.print(
        '\nsqlite3 data/trading.db "SELECT symbol, COUNT(*) FROM candles GROUP BY symbol;"'
    )
    with ctx.engine.connect() as conn:
        for symbol, n in conn.execute(
            text("SELECT symbol, COUNT(*) FROM candles GROUP BY symbol;")
        ):
            console.print(f"{symbol}|{n}")
