"""Phase 3's prerequisite: which phase 1 it judges, and what a refusal says (the verdict, when,
what failed, the fix). Deployments are recorded through the store's own code."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from candlewise.core.errors import UserError
from candlewise.deployment.phase3_gate import Phase3Approval, approve_phase3
from candlewise.store import deployment_store

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
APPROVE = Phase3Approval(approve=True, force_reason=None, confirm=None)
CRITERIA = {
    "verdict": "REJECTED",
    "criteria_total": 5,
    "min_criteria": 4,
    "criteria": {
        "win_rate": {"passed": False},
        "max_drawdown": {"passed": True},
        "error_rate": {"passed": True},
        "profitability": {"passed": False},
        "stability": {"passed": True},
    },
}


def _phase1(engine: Engine, status: str, verdict: str | None = None, met: int | None = None):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        dep = deployment_store.create_deployment(conn, 1, ["BTC/USDT"], None)
        criteria = CRITERIA if verdict == "REJECTED" else None
        deployment_store.finish(
            conn, dep, status, verdict=verdict, criteria_met=met, criteria=criteria
        )
        return deployment_store.get_deployment(conn, dep)


def _refusal(engine: Engine, approval: Phase3Approval = APPROVE) -> UserError:
    with engine.begin() as conn, pytest.raises(UserError) as caught:
        approve_phase3(conn, SYMBOLS, approval)
    return caught.value


def test_no_phase1_at_all(sqlite_engine: Engine) -> None:
    error = _refusal(sqlite_engine)
    assert error.message == "phase 3 needs an approved phase 1, and no phase 1 has run"
    assert error.hint is not None
    assert "python deploy_production.py --phase 1 --symbol BTC/USDT" in error.hint


def test_a_rejected_phase1_is_named_with_its_time_even_after_a_stopped_rerun(
    sqlite_engine: Engine,
) -> None:
    """Before: a later phase 1 stopped by Ctrl+C hid the REJECTED one ("none has finished")."""
    rejected = _phase1(sqlite_engine, "completed", "REJECTED", 3)
    stopped = _phase1(sqlite_engine, "stopped")
    error = _refusal(sqlite_engine)
    assert error.message == (
        f"phase 3 needs an approved phase 1, and the last one (deployment {rejected.id}, "
        f"BTC/USDT) was REJECTED at {rejected.ended_at} UTC: 3/5 criteria met, 4 required "
        f"(failed: win_rate, profitability); phase 1 (deployment {stopped.id}) was stopped at "
        f"{stopped.ended_at} UTC before its validation"
    )
    assert error.hint is not None and "run phase 1 again" in error.hint
    assert "--force" in error.hint


def test_a_phase1_stopped_before_its_validation(sqlite_engine: Engine) -> None:
    stopped = _phase1(sqlite_engine, "stopped")
    error = _refusal(sqlite_engine)
    assert error.message == (
        f"phase 3 needs an approved phase 1, and phase 1 (deployment {stopped.id}) was stopped "
        f"at {stopped.ended_at} UTC before its validation"
    )


def test_an_approved_phase1_passes_and_the_approval_is_recorded(sqlite_engine: Engine) -> None:
    approved = _phase1(sqlite_engine, "completed", "APPROVED", 4)
    _phase1(sqlite_engine, "stopped")  # a later rerun stopped early: the approval still holds
    with sqlite_engine.begin() as conn:
        assert approve_phase3(conn, SYMBOLS, APPROVE) == approved
        record = deployment_store.get_deployment(conn, approved.id)
    assert record is not None and record.approved_by


def test_force_needs_no_phase1(sqlite_engine: Engine) -> None:
    forced = Phase3Approval(approve=False, force_reason="drill", confirm=None)
    with sqlite_engine.begin() as conn:
        assert approve_phase3(conn, SYMBOLS, forced) is None
