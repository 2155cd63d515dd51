"""Opening a database: SQLite tuned for one writer and many readers, or any SQLAlchemy URL.

SQLite runs in WAL mode with a busy timeout so that the monitor and dashboard can read while
the engine writes; foreign keys are on. Relative SQLite paths are relative to the current
directory (``sqlite:///data/trading.db`` -> ``./data/trading.db``), and their folder is created.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from candlewise.core.errors import UserError
from candlewise.store import storage_fault

BUSY_TIMEOUT_MS = 10_000


def safe_url(url: str) -> str:
    """``url`` with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def database_url(text: str) -> str:
    """A ``--db`` value as a URL: a URL stays as given, anything else is a SQLite file path.

    So ``--db data/x.db`` and ``--db sqlite:///data/x.db`` mean the same file everywhere.
    """
    text = text.strip()
    return text if _URL.match(text) else f"sqlite:///{text}"


def sqlite_file(text: str, option: str = "--db") -> Path:
    """A value that must name a SQLite file (a path or a ``sqlite:///`` URL) as its path."""
    url = database_url(text)
    try:
        path = sqlite_path(url)
    except ArgumentError:
        path = None
    if path is None:
        raise UserError(
            f"{option} {safe_url(url) if _URL.match(text.strip()) else text} is not a "
            "SQLite database file",
            f"this takes a file path or a sqlite:/// URL, e.g. {option} runs/btc.db or "
            f"{option} sqlite:///runs/btc.db",
        )
    return path


def sqlite_path(url: str) -> Path | None:
    """File path of a SQLite URL, None for in-memory or other databases."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def create_db_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; raises UserError naming the URL (password masked) when unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"invalid database URL {url!r}",
            "use e.g. sqlite:///data/trading.db or postgresql+psycopg://user@host/db",
        ) from None
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url, read_only=read_only)
        return create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError):
        raise UserError(
            f"no driver for database URL {safe_url(url)}",
            "supported: sqlite:///path.db and postgresql+psycopg://user:pass@host:5432/db",
        ) from None


def _sqlite_engine(url: str, *, read_only: bool) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        if read_only:
            if not path.exists():
                raise UserError(
                    f"database not found: {path}",
                    "run a command that writes it first, e.g. 'candlewise data simulate'",
                )
            url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
    # Pooled: a writer keeps its connection (pragmas once, no WAL checkpoint on every close);
    # profiling a backtest showed per-transaction connect/close as half of its time.
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    if path is not None:  # a full disk or a read-only folder: an operator's fix, named
        storage_fault.watch(engine, path)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once so that a wrong host, password or path fails early with a clear message."""
    try:
        with engine.connect():
            pass
    except DatabaseError as exc:  # includes OperationalError (host, password, permissions)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(
            f"cannot open database {safe_url(str(engine.url))}: {reason}",
            "check database.url in config.yaml or CANDLEWISE_DATABASE_URL "
            "(a file that is not a SQLite database is never overwritten)",
        ) from None


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


def open_store(url: str) -> Engine:
    """Engine for ``url`` with the schema migrated to head: what every writer starts with."""
    from candlewise.store.migrate import upgrade  # local: migrate imports alembic, heavy

    engine = create_db_engine(url)
    check_connection(engine)
    upgrade(engine)
    return engine
