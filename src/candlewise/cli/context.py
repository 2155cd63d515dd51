"""What every command needs: the application (``app.bootstrap``: config, secrets, store, ...),
logging, and the consoles it prints to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from sqlalchemy import Engine

from candlewise.app.bootstrap import Application, bootstrap
from candlewise.cli.options import check_symbol, unknown_symbol
from candlewise.config.app_config import AppConfig
from candlewise.config.secrets import Secrets
from candlewise.core.errors import UserError
from candlewise.store import candle_store
from candlewise.store.db import sqlite_path

if TYPE_CHECKING:  # the registry loads torch: imported when a command asks for it
    from candlewise.store.model_registry import ModelRegistry

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
if not console.is_terminal:  # piped or captured: wide tables beat truncated ones
    console.width = 160


@dataclass
class AppContext:
    """A command's view of the application; each member is built on first use (a command that
    needs no store never opens one)."""

    config_path: Path | None = None
    db_url: str | None = None

    @cached_property
    def app(self) -> Application:
        return bootstrap(self.config_path, db_url=self.db_url)

    @property
    def config(self) -> AppConfig:
        return self.app.config

    @property
    def secrets(self) -> Secrets:
        return self.app.secrets

    def start_logging(self) -> None:
        """Where a command starts working in the project folder (every command that writes
        calls it, after checking its arguments): see ``Application.start_logging``."""
        self.app.start_logging()

    @property
    def engine(self) -> Engine:
        """The store (a SQLAlchemy engine), opened and migrated on first use."""
        return self.app.store

    @property
    def registry(self) -> ModelRegistry:
        """The model registry on the store and the config's models folder."""
        return self.app.registry

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
