"""What the next start says about a deployment that could not record its end (a full disk
refuses even the stop) or that recorded a storage fault."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import Engine

from candlewise.deployment.unfinished import record_fault, report_unfinished
from candlewise.store import deployment_store
from candlewise.store.run_store import DEPLOYMENT_KIND, create_run
from candlewise.store.storage_fault import describe


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _deployment(store: Engine, pid: int) -> tuple[int, int]:
    with store.begin() as conn:
        run_id = create_run(conn, DEPLOYMENT_KIND, {"symbols": ["BTC/USDT"]})
        d_id = deployment_store.create_deployment(conn, 1, ["BTC/USDT"], run_id)
        conn.exec_driver_sql(f"UPDATE deployments SET pid = {pid} WHERE id = {d_id}")
    return d_id, run_id


def test_a_deployment_left_running_by_a_gone_process_is_reported_and_stopped(
    sqlite_engine: Engine,
) -> None:
    d_id, _ = _deployment(sqlite_engine, _gone_pid())

    lines = report_unfinished(sqlite_engine, None)

    assert lines == [
        f"⚠ Deployment {d_id} (phase 1, BTC/USDT) did not record its end: its process is gone "
        "(a crash, a kill, or a store it could not write; see logs/error.log). "
        "Recorded as stopped now."
    ]
    with sqlite_engine.connect() as conn:
        record = deployment_store.get_deployment(conn, d_id)
    assert record is not None and record.status == deployment_store.STOPPED
    assert report_unfinished(sqlite_engine, None) == []  # said once


def test_a_recorded_storage_fault_is_told_when_its_account_continues(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    d_id, run_id = _deployment(sqlite_engine, _gone_pid())
    fault = describe(tmp_path / "trading.db", "database or disk is full")
    assert fault is not None
    assert record_fault(sqlite_engine, d_id, "2026-01-01 10:00:00", fault)

    lines = report_unfinished(sqlite_engine, run_id)

    assert lines == [
        f"⚠ Deployment {d_id} stopped at 2026-01-01 10:00:00 UTC: {fault.message}. "
        "Continuing its account from that checkpoint."
    ]
