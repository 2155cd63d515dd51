"""What every command needs: the validated config, secrets, logging and the store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from candlewise.cli.options import check_symbol, unknown_symbol
from candlewise.config.app_config import AppConfig
from candlewise.config.loader import load_config
from candlewise.config.secrets import Secrets, load_secrets, set_active
from candlewise.core.errors import UserError
from candlewise.store import candle_store
from candlewise.store.db import database_url, open_store, sqlite_path
from candlewise.system.logging_setup import configure_logging

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
if not console.is_terminal:  # piped or captured: wide tables beat truncated ones
    console.width = 160


@dataclass
class AppContext:
    config_path: Path | None = None
    db_url: str | None = None

    @cached_property
    def config(self) -> AppConfig:
        cfg = load_config(self.config_path)
        if self.db_url:
            url = database_url(self.db_url)  # a plain path is a SQLite file
            cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": url})})
        return cfg

    @cached_property
    def secrets(self) -> Secrets:
        secrets = load_secrets()
        set_active(secrets)
        return secrets

    def start_logging(self) -> None:
        """Where a command starts working in the project folder (every command that writes
        calls it, after checking its arguments): also creates the guide's folders, so that
        e.g. its ``cp data/trading.db backups/...`` works from the first start on."""
        _ = self.secrets  # redaction must be active before the first line is written
        paths = self.config.paths
        for folder in (paths.logs_dir, paths.reports_dir, paths.backups_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)
        configure_logging(paths.logs_dir, self.config.logging)

    @cached_property
    def engine(self) -> Engine:
        return open_store(self.config.database.url)

    def check_known_symbol(self, symbol: str, engine: Engine | None = None) -> str:
        """``symbol`` if it is well formed and configured or stored (in ``engine``, default the
        store), else a UserError naming the known symbols: a typo must not pass silently."""
        check_symbol(symbol)
        configured = self.config.symbols
        if symbol in configured:
            return symbol
        with (engine or self.engine).connect() as conn:
            if candle_store.has_symbol(conn, symbol):
                return symbol
            stored = candle_store.stored_symbols(conn)
        raise unknown_symbol(symbol, configured, stored)

    @property
    def db_path(self) -> Path:
        path = sqlite_path(self.config.database.url)
        if path is None:
            raise UserError(
                "this command works on a SQLite database file only",
                "for PostgreSQL use pg_dump/pg_restore",
            )
        return path
