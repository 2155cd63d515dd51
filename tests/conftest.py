"""Shared fixtures: temporary working folders, SQLite and PostgreSQL stores, the shared data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from candlewise.app.provider import UnifiedDataProvider
from candlewise.config.secrets import Secrets, set_active
from candlewise.store.db import open_store

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``../shared`` next to the repository (or ``CANDLEWISE_SHARED``), None when absent."""
    env = os.environ.get("CANDLEWISE_SHARED")
    candidate = Path(env) if env else REPO.parent / "shared"
    return candidate if (candidate / "data" / "candles").is_dir() else None


SHARED = shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data is absent")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees another's provider singleton, secrets or database URL override."""
    monkeypatch.delenv("CANDLEWISE_DATABASE_URL", raising=False)
    UnifiedDataProvider.reset()
    set_active(Secrets())
    yield
    UnifiedDataProvider.reset()
    set_active(Secrets())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current directory, as a user running commands from a project folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'trading.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = open_store(sqlite_url)
    yield engine
    engine.dispose()


def _pg_admin_url() -> str | None:
    return os.environ.get("CANDLEWISE_TEST_PG_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server named by CANDLEWISE_TEST_PG_URL.

    CI starts one (scripts/pg_test_server.sh); elsewhere these tests skip.
    """
    admin = _pg_admin_url()
    if not admin:
        if os.environ.get("CI") == "true":  # CI must not go green without PostgreSQL
            pytest.fail("CI=true but CANDLEWISE_TEST_PG_URL is not set (.ci/run starts a server)")
        pytest.skip("CANDLEWISE_TEST_PG_URL not set (scripts/pg_test_server.sh start)")
    name = f"cw_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # server down: say so rather than fail obscurely
        admin_engine.dispose()
        pytest.fail(f"PostgreSQL at {admin} is not reachable: {exc}")
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same test on SQLite and on PostgreSQL (skipped when no server is configured)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'any.db'}"
        engine = open_store(url)
        yield engine
        engine.dispose()
    else:
        url = request.getfixturevalue("pg_url")
        engine = open_store(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def phase1_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder after a real simulated phase 1 (see tests/phase1_project.py); shared by
    the whole session, so tests must only read it (copy it to write)."""
    from tests.phase1_project import build_phase1_project

    return build_phase1_project(tmp_path_factory.mktemp("phase1") / "project")
