"""Phase 1's prerequisite, as the guide states it: an approved 48-hour paper-trading validation.
Without one the guide's command refuses (exit 2, the fix named, nothing deployed) unless
``--force --reason``, which is recorded in ``deployments`` and shown in the phase 1 results and
the monitor's report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from candlewise.cli.main import run

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

FIX = "Hint: run 'python run_paper_trading_validation.py --duration 48'; or deploy without one"
PHASE1_2H = ["deploy", "--phase", "1", "--symbol", "BTC/USDT", "--duration", "2h", "--speed", "max"]


def _validation(root: Path, verdict: str, hours: int) -> Path:
    folder = root / "validation_results"
    folder.mkdir(exist_ok=True)
    path = folder / f"20260101_000000_{verdict}.json"
    end = f"2026-01-0{1 + hours // 24} {hours % 24:02d}:00:00"
    met = 4 if verdict == "APPROVED" else 2
    window = {"start": "2026-01-01 00:00:00", "end": end}
    path.write_text(json.dumps({"verdict": verdict, "criteria_met": met, "window": window}))
    return path


def _deployments(root: Path) -> list[tuple]:  # type: ignore[type-arg]
    con = sqlite3.connect(root / "data" / "trading.db")
    try:
        return con.execute("SELECT phase, validation_override FROM deployments").fetchall()
    finally:
        con.close()


def test_the_guides_command_refuses_without_a_validation(project: Path, capsys) -> None:
    assert run(["deploy", "--phase", "1", "--symbol", "BTC/USDT"]) == 2  # verbatim
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "Feed: simulated, real time (--speed max to replay at full speed)" in out
    folder = (project / "validation_results").as_posix()
    assert f"⚠️  Paper trading validation: none found in {folder}/" in out
    assert (
        "Error: phase 1 needs an approved 48-hour paper-trading validation (the guide's "
        "prerequisite): no approved paper-trading validation result"
    ) in captured.err
    assert FIX in captured.err and '--force --reason "..."' in captured.err
    assert "Initializing system components..." not in out
    assert _deployments(project) == []


def test_a_rejected_validation_refuses_phase1_too(project: Path, capsys) -> None:
    rejected = _validation(project, "REJECTED", 48)
    assert run(PHASE1_2H) == 2
    captured = capsys.readouterr()
    line = f"⚠️  Paper trading validation: REJECTED ({rejected.as_posix()}, 2/5 criteria)"
    assert line in captured.out.splitlines()
    assert "the newest paper-trading validation was not approved" in captured.err
    assert FIX.replace("run 'python", "fix what failed, then run 'python") in captured.err
    assert _deployments(project) == []


def test_force_with_a_reason_deploys_and_the_reason_is_recorded_and_reported(
    project: Path, capsys
) -> None:
    _validation(project, "REJECTED", 48)
    reason = "simulated rehearsal, validation pending"
    assert run([*PHASE1_2H, "--force", "--reason", reason]) in (0, 1)
    out = capsys.readouterr().out.splitlines()
    assert f"⚠️  Deploying without an approved paper-trading validation (--force): {reason}" in out
    status = [line for line in out if line.startswith("Status: candle time ")]
    assert len(status) == 2 and all("(full speed) | " in line for line in status), status
    assert _deployments(project) == [(1, reason)]
    (results,) = (project / "production_reports").glob("phase1_*.json")
    assert json.loads(results.read_text())["validation_override"] == reason

    assert run(["monitor", "--report", "--hours", "2"]) == 0
    shown = capsys.readouterr().out
    (report,) = (project / "production_reports").glob("report_*.json")
    assert json.loads(report.read_text())["deployment"]["validation_override"] == reason
    assert "ran without an approved paper-trading validation (--force): " + reason in shown


def test_an_approved_48_hour_validation_lets_phase1_start_with_nothing_forced(
    project: Path, capsys
) -> None:
    approved = _validation(project, "APPROVED", 48)
    assert run(PHASE1_2H) in (0, 1)
    out = capsys.readouterr().out.splitlines()
    assert f"✓ Paper trading validation: APPROVED ({approved.as_posix()}, 4/5 criteria)" in out
    assert _deployments(project) == [(1, None)]
