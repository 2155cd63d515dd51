"""Engine runs and their checkpoints (``engine_runs``): what a restart resumes from.

A run is identified by its request (kind + parameters as canonical JSON); the same command on
the same database finds its unfinished run and continues it. The checkpoint (cursor + snapshot)
is written in the caller's transaction, together with the outbox rows that led to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from candlewise.core.timestamps import ms_to_text, now_text
from candlewise.store.tables import engine_runs

PREPARING = "preparing"
RUNNING = "running"
FINISHED = "finished"
#: The kind of a deployment's run (the engine trading a set of symbols on a live or paced feed).
DEPLOYMENT_KIND = "deployment"


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    params: dict[str, Any]
    status: str
    cursor_ms: int | None
    snapshot: bytes | None
    pid: int | None


def canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def find_run(conn: Connection, kind: str, params: Mapping[str, Any]) -> RunRecord | None:
    """The newest run of this kind with exactly these parameters."""
    c = engine_runs.c
    row = (
        conn.execute(
            select(engine_runs)
            .where(c.kind == kind, c.params == canonical(params))
            .order_by(c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else _record(row)


def latest_run(conn: Connection, kind: str | None = None) -> RunRecord | None:
    c = engine_runs.c
    stmt = select(engine_runs).order_by(c.id.desc()).limit(1)
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    row = conn.execute(stmt).mappings().first()
    return None if row is None else _record(row)


def running_deployments(conn: Connection) -> list[RunRecord]:
    """Live engine runs marked running (not backtests); the caller checks their process."""
    c = engine_runs.c
    rows = conn.execute(
        select(engine_runs).where(c.status == RUNNING, c.kind != "backtest").order_by(c.id)
    ).mappings()
    return [_record(row) for row in rows]


def create_run(conn: Connection, kind: str, params: Mapping[str, Any]) -> int:
    now = now_text()
    result = conn.execute(
        insert(engine_runs).values(
            kind=kind,
            params=canonical(params),
            status=PREPARING,
            started_at=now,
            updated_at=now,
            pid=os.getpid(),
        )
    )
    return int(result.inserted_primary_key[0])


def save_checkpoint(
    conn: Connection,
    run_id: int,
    cursor_ms: int,
    snapshot: bytes,
    status: str = RUNNING,
    *,
    pid: int | None = None,
) -> None:
    """``pid``: the process running the run (default this one; a writer process passes the
    replay's)."""
    values: dict[str, Any] = {
        "status": status,
        "cursor_ms": cursor_ms,
        "cursor_time": ms_to_text(cursor_ms),
        "snapshot": snapshot,
        "updated_at": now_text(),
        "pid": pid if pid is not None else os.getpid(),
    }
    if status == FINISHED:
        values["finished_at"] = values["updated_at"]
    conn.execute(update(engine_runs).where(engine_runs.c.id == run_id).values(**values))


def claim_run(conn: Connection, run_id: int) -> None:
    """This process now runs it (the recorded pid is how an operator or rollback finds it)."""
    conn.execute(
        update(engine_runs)
        .where(engine_runs.c.id == run_id)
        .values(pid=os.getpid(), updated_at=now_text())
    )


def _record(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        kind=str(row["kind"]),
        params=json.loads(row["params"]),
        status=str(row["status"]),
        cursor_ms=None if row["cursor_ms"] is None else int(row["cursor_ms"]),
        snapshot=row["snapshot"],
        pid=row["pid"],
    )
