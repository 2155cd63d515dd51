"""A deployment that could not write its store stops, and the next start says what happened.

When a checkpoint fails for lack of storage (a full disk, a read-only folder), the deployment
stops there: its account stays at its last checkpoint (open positions kept) and it is recorded
as stopped with the reason in ``error_log``, as far as the store still takes writes. A full
disk may refuse even that; the next start then finds it ``running`` with its process gone,
records it as stopped and says so. Either way the next start tells the operator before it
continues the account.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from candlewise.store import deployment_store
from candlewise.store.error_log import record_error
from candlewise.store.storage_fault import StorageFault
from candlewise.store.tables import error_log
from candlewise.system.logging_setup import get_logger
from candlewise.system.processes import process_alive

COMPONENT = "deployment"
FAULT = "storage_fault"
log = get_logger("deployment")


def stop_message(deployment_id: int, at_text: str, fault: StorageFault) -> str:
    return f"Deployment {deployment_id} stopped at {at_text} UTC: {fault.message}"


def record_fault(store: Engine, deployment_id: int, at_text: str, fault: StorageFault) -> bool:
    """Stopped, with the reason; False when the store refuses even that (the next start
    finds the deployment ``running`` with its process gone and says so)."""
    message = stop_message(deployment_id, at_text, fault)
    log.error("%s", message)
    try:
        with store.begin() as conn:
            deployment_store.finish(conn, deployment_id, deployment_store.STOPPED)
            record_error(conn, FAULT, message, component=COMPONENT)
    except StorageFault:
        return False
    return True


def report_unfinished(store: Engine, continued_run_id: int | None) -> list[str]:
    """Warnings for the operator: deployments left ``running`` by a process that is gone (now
    recorded as stopped), and the storage fault that stopped the run being continued."""
    lines: list[str] = []
    with store.begin() as conn:
        for d in deployment_store.running(conn):
            if process_alive(d.pid):
                continue
            deployment_store.finish(conn, d.id, deployment_store.STOPPED)
            lines.append(
                f"⚠ Deployment {d.id} (phase {d.phase}, {', '.join(d.symbols)}) did not record "
                "its end: its process is gone (a crash, a kill, or a store it could not write; "
                "see logs/error.log). Recorded as stopped now."
            )
        if continued_run_id is not None:
            c = deployment_store.of_run(conn, continued_run_id)
            if c is not None:
                stmt = (
                    select(error_log.c.message)
                    .where(error_log.c.error_type == FAULT, error_log.c.component == COMPONENT)
                    .where(error_log.c.message.like(f"Deployment {c.id} stopped %"))
                    .order_by(error_log.c.id.desc())
                    .limit(1)
                )
                fault = conn.execute(stmt).scalar_one_or_none()
                if fault is not None:
                    lines.append(f"⚠ {fault}. Continuing its account from that checkpoint.")
    for line in lines:
        log.warning("%s", line)
    return lines
