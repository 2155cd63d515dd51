"""A store that cannot be written (a full disk, a read-only ``data/`` folder): a clear error
naming the path and the fix, exit 2, no traceback; a deployment that cannot write stops at its
last checkpoint, is recorded as stopped, and the next start says what happened."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from candlewise.cli.main import run
from tests.deployment.test_rollback import CONFIG
from tests.phase1_project import NO_VALIDATION

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]
#: Pages the store may grow by before SQLite reports ``database or disk is full``: a few
#: simulated hours of a phase 1 at --speed max, so that the limit falls inside the run.
SPARE_PAGES = 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated days and trained models, copied by each test."""
    root = tmp_path_factory.mktemp("storage")
    (root / "config.yaml").write_text(CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    for args in (["data", "simulate", "--symbols", "BTC/USDT", "--days", "3"],
                 ["train", "--symbol", "BTC/USDT"]):  # fmt: skip
        subprocess.run([str(exe), *args], cwd=root, check=True, capture_output=True, timeout=180)
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(trained, root)
    monkeypatch.chdir(root)
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300
    )  # fmt: skip


@pytest.fixture
def disk_full_soon(project: Path) -> Iterator[None]:
    """Every new SQLite connection may grow the store by ``SPARE_PAGES`` pages only: SQLite's
    own ``database or disk is full``, as on a disk that fills during the run."""
    con = sqlite3.connect(project / "data" / "trading.db")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()

    def limit(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + SPARE_PAGES}")

    event.listen(Engine, "connect", limit)
    yield
    event.remove(Engine, "connect", limit)


@pytest.mark.timeout(400)
def test_a_full_disk_stops_the_deployment_recorded_and_explained(
    project: Path, disk_full_soon: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["deploy", "--phase", "1", "--symbol", "BTC/USDT", "--duration", "6h",
                "--speed", "max", *NO_VALIDATION])  # fmt: skip
    err = capsys.readouterr().err
    db = (project / "data" / "trading.db").resolve()
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    assert "Error: Deployment 1 stopped at " in err
    assert f"cannot write {db}: the disk is full (database or disk is full)" in err
    assert f"Hint: free space on the disk holding {db.parent}" in err
    con = sqlite3.connect(db)
    try:
        status = con.execute("SELECT status FROM deployments").fetchall()
        run_status = con.execute("SELECT status, cursor_time FROM engine_runs").fetchall()
        [(message,)] = con.execute("SELECT message FROM error_log").fetchall()
    finally:
        con.close()
    assert status == [("stopped",)]  # not left running
    assert run_status[0][0] == "running"  # the account waits at its last checkpoint
    assert message.startswith(f"Deployment 1 stopped at {run_status[0][1]} UTC: cannot write")
    # the next start (with room again: a process of its own, without the limit) says so
    again = _run(str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol", "BTC/USDT",
                 "--duration", "6h", "--speed", "max", *NO_VALIDATION)  # fmt: skip
    assert again.returncode in (0, 1), again.stdout[-3000:] + again.stderr[-3000:]
    assert f"⚠ {message}. Continuing its account from that checkpoint." in again.stderr


@contextmanager
def read_only(*targets: Path) -> Iterator[None]:
    """``targets`` read-only: chmod for a user; root ignores write bits, so there the
    immutable attribute (chattr +i), where the file system has one."""
    if os.geteuid() != 0:
        for path in targets:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path in targets:
                path.chmod(0o755 if path.is_dir() else 0o644)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root without chattr: no way to make a folder read-only here")
    done = subprocess.run(["chattr", "+i", *map(str, targets)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, targets)], check=True)


@pytest.fixture
def read_only_data(project: Path) -> Iterator[Path]:
    data = project / "data"
    with read_only(data / "trading.db", data):
        yield data


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "command",
    [
        [
            "deploy_production.py",
            "--phase",
            "1",
            "--symbol",
            "BTC/USDT",
            "--speed",
            "max",
            *NO_VALIDATION,
        ],
        ["deploy_production.py", "--rollback"],
        ["monitor_production.py", "--once"],
        ["monitor_production.py", "--report", "--hours", "24"],
    ],
    ids=["phase1", "rollback", "monitor", "report"],
)
def test_a_read_only_data_folder_is_explained(read_only_data: Path, command: list[str]) -> None:
    done = _run(str(ROOT / command[0]), *command[1:])
    db = (read_only_data / "trading.db").resolve()
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert f"Error: cannot use {db}: {db.parent} is read-only" in done.stderr
    assert f"Hint: make {db.parent} and the files in it writable" in done.stderr


@pytest.mark.timeout(300)
def test_a_read_only_reports_folder_is_explained(project: Path) -> None:
    phase1 = _run(str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol", "BTC/USDT",
                  "--duration", "2h", "--speed", "max", *NO_VALIDATION)  # fmt: skip
    assert phase1.returncode in (0, 1), phase1.stdout[-3000:] + phase1.stderr[-3000:]
    reports = project / "production_reports"  # phase 1 wrote its report there
    with read_only(reports):
        done = _run(str(ROOT / "monitor_production.py"), "--report", "--hours", "24")
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert f"Error: cannot use {reports.resolve()}/report_" in done.stderr
    assert f"{reports.resolve()} is read-only" in done.stderr
    assert f"Hint: make {reports.resolve()} and the files in it writable" in done.stderr
