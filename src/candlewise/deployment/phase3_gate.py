"""What phase 3 requires before it deploys anything: an APPROVED phase 1 and the operator's
approval of it (phase 2: ``--approve`` or y in a terminal), or ``--force --reason``.

A refusal names the phase 1 it judged: the newest one with a verdict (a later run stopped
before its validation does not hide a REJECTED one), its verdict and when it ended, and the
command that fixes it."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from candlewise.core.errors import UserError
from candlewise.deployment.validation import APPROVED
from candlewise.store import deployment_store
from candlewise.store.deployment_store import DeploymentRecord

FORCE = '(or --force --reason "...")'


@dataclass(frozen=True)
class Phase3Approval:
    approve: bool
    """``--approve`` given."""
    force_reason: str | None
    """``--force --reason``: no approved phase 1 needed, the reason is recorded."""
    confirm: Callable[[str], bool] | None
    """Asks the operator (a terminal's y/N) when ``--approve`` is missing; None: never ask."""


def approve_phase3(
    conn: Connection, symbols: Sequence[str], approval: Phase3Approval
) -> DeploymentRecord | None:
    """The validated phase 1 that phase 3 builds on (None: forced without one), its approval
    recorded; raises UserError naming what is missing and how to fix it."""
    phase1 = deployment_store.latest(conn, 1, validated=True)
    approve = approval.approve
    if approval.force_reason is None:
        _require_approved(conn, phase1)
        assert phase1 is not None
        if phase1.approved_by is None and not approve and approval.confirm is not None:
            question = (
                f"Phase 1 (deployment {phase1.id}, {', '.join(phase1.symbols)}) was "
                f"APPROVED with {phase1.criteria_met}/5 criteria met. Approve phase 3 for "
                f"{', '.join(symbols)}?"
            )
            if not approval.confirm(question):
                raise UserError(
                    "phase 3 was not approved: nothing deployed",
                    "review phase 1 (python monitor_production.py --report --hours 24), "
                    "then run phase 3 again and answer y, or pass --approve",
                )
            approve = True
        if phase1.approved_by is None and not approve:
            raise UserError(
                "phase 2 is the operator's approval of phase 1's result",
                "review it (python monitor_production.py --report --hours 24), then add --approve",
            )
    if phase1 is not None and (approve or approval.force_reason):
        deployment_store.approve(conn, phase1.id, operator(), approval.force_reason)
    return phase1


def _require_approved(conn: Connection, phase1: DeploymentRecord | None) -> None:
    newest = deployment_store.latest(conn, 1)
    later = newest if newest is not None and newest.verdict is None else None
    if phase1 is None:
        if later is None:
            raise UserError(
                "phase 3 needs an approved phase 1, and no phase 1 has run",
                f"run python deploy_production.py --phase 1 --symbol BTC/USDT first {FORCE}",
            )
        raise UserError(
            f"phase 3 needs an approved phase 1, and {_unvalidated(later)}",
            f"run phase 1 to its end: python deploy_production.py --phase 1 --symbol "
            f"{later.symbols[0] if later.symbols else 'BTC/USDT'} {FORCE}",
        )
    if phase1.verdict == APPROVED:
        return
    tail = f"; {_unvalidated(later)}" if later is not None else ""
    symbol = phase1.symbols[0] if phase1.symbols else "BTC/USDT"
    raise UserError(
        f"phase 3 needs an approved phase 1, and the last one (deployment {phase1.id}, "
        f"{', '.join(phase1.symbols)}) was {phase1.verdict} at "
        f"{phase1.ended_at or phase1.started_at} UTC: {_shortfall(phase1)}{tail}",
        'fix what failed (the guide\'s "If Phase 1 Fails"), then run phase 1 again: '
        f"python deploy_production.py --phase 1 --symbol {symbol} {FORCE}",
    )


def _unvalidated(record: DeploymentRecord) -> str:
    """``phase 1 (deployment 4) was stopped at ... UTC before its validation``."""
    which = f"phase 1 (deployment {record.id})"
    when = f"{record.ended_at or record.started_at} UTC"
    if record.status == deployment_store.RUNNING:
        return f"{which}, started at {when}, has not finished its validation"
    what = {
        deployment_store.STOPPED: "was stopped",
        deployment_store.ROLLED_BACK: "was rolled back",
    }.get(record.status, f"ended {record.status}")
    return f"{which} {what} at {when} before its validation"


def _shortfall(record: DeploymentRecord) -> str:
    """``3/5 criteria met, 4 required (failed: win_rate, profitability)``."""
    met = f"{record.criteria_met}/5 criteria met"
    if not record.criteria:
        return met
    result = json.loads(record.criteria)
    failed = [name for name, c in result.get("criteria", {}).items() if not c.get("passed")]
    total = result.get("criteria_total", 5)
    met = f"{record.criteria_met}/{total} criteria met, {result.get('min_criteria', 4)} required"
    return f"{met} (failed: {', '.join(failed)})" if failed else met


def operator() -> str:
    """Who approved: the login name, recorded with the phase 1 it approved."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"
