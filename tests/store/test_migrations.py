"""The migrations build exactly the schema that ``tables.py`` declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from candlewise.store.db import create_db_engine, table_names
from candlewise.store.migrate import current_revision, head_revision, upgrade
from candlewise.store.tables import metadata

GUIDE_TABLES = {
    "candles",
    "positions",
    "trade_outcomes",
    "retraining_history",
    "confidence_history",
    "learning_states",
    "error_log",
}


def test_migrated_schema_equals_declared_tables(any_engine: Engine) -> None:
    assert set(table_names(any_engine)) >= GUIDE_TABLES
    assert current_revision(any_engine) == head_revision()
    with any_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(any_engine: Engine) -> None:
    assert upgrade(any_engine) is False


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(tmp_path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x' / 'y.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    assert (tmp_path / "x" / "y.db").exists()
