"""Deployments in the store (``deployments``): the phased rollout's record, and the channel
through which ``deploy_production.py --rollback`` reaches a deployment running in another
terminal (its ``control`` column, polled every minute; the recorded pid gets a signal too)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from candlewise.core.timestamps import now_text
from candlewise.store.tables import deployments

RUNNING = "running"
COMPLETED = "completed"
STOPPED = "stopped"
ROLLED_BACK = "rolled_back"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    phase: int
    symbols: tuple[str, ...]
    status: str
    started_at: str
    ended_at: str | None
    run_id: int | None
    pid: int | None
    control: str | None
    verdict: str | None
    criteria_met: int | None
    approved_by: str | None
    forced_reason: str | None
    criteria: str | None = None
    """The verdict's criteria as stored (JSON), once validated."""
    validation_override: str | None = None
    """Why this deployment started without an approved paper-trading validation (``--force
    --reason``); None when it had one (or, as phase 3, needs none)."""


def create_deployment(
    conn: Connection,
    phase: int,
    symbols: Sequence[str],
    run_id: int | None,
    validation_override: str | None = None,
) -> int:
    result = conn.execute(
        insert(deployments).values(
            phase=phase,
            symbols=",".join(symbols),
            status=RUNNING,
            started_at=now_text(),
            run_id=run_id,
            pid=os.getpid(),
            validation_override=validation_override,
        )
    )
    return int(result.inserted_primary_key[0])


def get_deployment(conn: Connection, deployment_id: int) -> DeploymentRecord | None:
    row = (
        conn.execute(select(deployments).where(deployments.c.id == deployment_id))
        .mappings()
        .first()
    )
    return None if row is None else _record(row)


def running(conn: Connection) -> list[DeploymentRecord]:
    rows = conn.execute(
        select(deployments).where(deployments.c.status == RUNNING).order_by(deployments.c.id)
    ).mappings()
    return [_record(r) for r in rows]


def of_run(conn: Connection, run_id: int) -> DeploymentRecord | None:
    """The newest deployment that ran the engine run ``run_id``."""
    c = deployments.c
    stmt = select(deployments).where(c.run_id == run_id).order_by(c.id.desc()).limit(1)
    row = conn.execute(stmt).mappings().first()
    return None if row is None else _record(row)


def latest(conn: Connection, phase: int, *, validated: bool = False) -> DeploymentRecord | None:
    """The newest deployment of ``phase``; with ``validated``, the newest that has a verdict
    (a later one stopped before its validation does not hide it)."""
    c = deployments.c
    stmt = select(deployments).where(c.phase == phase)
    if validated:
        stmt = stmt.where(c.verdict.is_not(None))
    row = conn.execute(stmt.order_by(c.id.desc()).limit(1)).mappings().first()
    return None if row is None else _record(row)


def phase_of_run(conn: Connection, run_id: int) -> int | None:
    """The phase of the deployment that ran this engine run (None: no deployment did)."""
    c = deployments.c
    return conn.execute(
        select(c.phase).where(c.run_id == run_id).order_by(c.id.desc()).limit(1)
    ).scalar()


def request_control(conn: Connection, deployment_id: int, control: str) -> None:
    conn.execute(
        update(deployments).where(deployments.c.id == deployment_id).values(control=control)
    )


def finish(
    conn: Connection,
    deployment_id: int,
    status: str,
    *,
    verdict: str | None = None,
    criteria_met: int | None = None,
    criteria: Mapping[str, Any] | None = None,
    report_path: str | None = None,
) -> None:
    conn.execute(
        update(deployments)
        .where(deployments.c.id == deployment_id)
        .values(
            status=status,
            ended_at=now_text(),
            verdict=verdict,
            criteria_met=criteria_met,
            criteria=None if criteria is None else json.dumps(criteria),
            report_path=report_path,
        )
    )


def approve(
    conn: Connection, deployment_id: int, who: str, forced_reason: str | None = None
) -> None:
    conn.execute(
        update(deployments)
        .where(deployments.c.id == deployment_id)
        .values(approved_by=who, approved_at=now_text(), forced_reason=forced_reason)
    )


def _record(row: Mapping[str, Any]) -> DeploymentRecord:
    return DeploymentRecord(
        id=int(row["id"]),
        phase=int(row["phase"]),
        symbols=tuple(s for s in str(row["symbols"]).split(",") if s),
        status=str(row["status"]),
        started_at=str(row["started_at"]),
        ended_at=row["ended_at"],
        run_id=row["run_id"],
        pid=row["pid"],
        control=row["control"],
        verdict=row["verdict"],
        criteria_met=row["criteria_met"],
        approved_by=row["approved_by"],
        forced_reason=row["forced_reason"],
        criteria=row["criteria"],
        validation_override=row["validation_override"],
    )
