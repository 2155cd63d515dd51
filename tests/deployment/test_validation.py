"""Phase validation: the five criteria, the verdict and the guide's block, byte for byte."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from candlewise.config.app_config import AppConfig, PhaseValidationConfig
from candlewise.deployment.validation import (
    RULE,
    ValidationResult,
    closing_line,
    render_phase_validation,
    validate,
)
from tests.conftest import SHARED

THRESHOLDS = AppConfig().deployment.validation

#: The guide's "After 24 Hours" block, as printed for the guide's numbers.
GUIDE_BLOCK = """\
================================================================================
PHASE 1 COMPLETE - VALIDATING RESULTS
================================================================================
Validating Phase 1 results...
================================================================================
PHASE 1 VALIDATION RESULTS
================================================================================
Criteria Met: 5/5

✓ win_rate: 0.5621 (threshold: 0.5000)
✓ max_drawdown: 8.34 (threshold: 15.0000)
✓ error_rate: 0.0042 (threshold: 0.0500)
✓ profitability: 485.67 (threshold: 0.0000)
✓ stability: 0.1667 (threshold: 2.0000)

Verdict: APPROVED
================================================================================
✅ Phase 1 APPROVED - Ready for Phase 3 (Full Rollout)"""


@dataclass(frozen=True)
class Metrics:
    win_rate: float = 0.5621
    max_drawdown_percent: float = 8.34
    error_rate: float = 0.0042
    pnl: float = 485.67
    transitions_per_hour: float = 0.1667
    trades: int = 48


def test_guides_numbers_give_the_guides_block() -> None:
    result = validate(Metrics(), THRESHOLDS)
    assert "\n".join(render_phase_validation(result)) == GUIDE_BLOCK
    assert result.verdict == "APPROVED" and result.criteria_met == 5


@pytest.mark.skipif(SHARED is None, reason="../shared is absent")
def test_block_is_the_one_in_the_guide() -> None:
    assert SHARED is not None
    guide = (SHARED / "seed" / "PRODUCTION_DEPLOYMENT_GUIDE.md").read_text()
    assert GUIDE_BLOCK in guide


def test_rejected_block_marks_failures_and_closes_with_rejection() -> None:
    result = validate(
        Metrics(win_rate=0.45, max_drawdown_percent=16.5, pnl=-12.3, transitions_per_hour=2.5),
        THRESHOLDS,
    )
    lines = render_phase_validation(result)
    assert lines[7:14] == [
        "Criteria Met: 1/5",
        "",
        "✗ win_rate: 0.4500 (threshold: 0.5000)",
        "✗ max_drawdown: 16.50 (threshold: 15.0000)",
        "✓ error_rate: 0.0042 (threshold: 0.0500)",
        "✗ profitability: -12.30 (threshold: 0.0000)",
        "✗ stability: 2.5000 (threshold: 2.0000)",
    ]
    assert lines[-3:] == [
        "Verdict: REJECTED",
        RULE,
        "❌ Phase 1 REJECTED - 1/5 criteria met, 4 required: fix the failed criteria before "
        "Phase 3",
    ]
    assert [c.name for c in result.failed()] == [
        "win_rate",
        "max_drawdown",
        "profitability",
        "stability",
    ]


@pytest.mark.parametrize(
    ("metrics", "passed"),
    [
        (Metrics(win_rate=0.50), True),  # >= 0.50
        (Metrics(win_rate=0.4999), False),
        (Metrics(max_drawdown_percent=15.0), True),  # <= 15.0
        (Metrics(max_drawdown_percent=15.01), False),
        (Metrics(error_rate=0.05), False),  # < 0.05
        (Metrics(error_rate=0.0499), True),
        (Metrics(pnl=0.0), False),  # > 0
        (Metrics(pnl=0.01), True),
        (Metrics(transitions_per_hour=2.0), False),  # < 2.0
        (Metrics(transitions_per_hour=1.99), True),
    ],
)
def test_each_criterion_boundary(metrics: Metrics, passed: bool) -> None:
    result = validate(metrics, THRESHOLDS)
    assert result.criteria_met == (5 if passed else 4)
    assert result.verdict == "APPROVED"  # one failure still approves (4 of 5)


def test_four_of_five_approve_three_do_not() -> None:
    four = validate(Metrics(pnl=-1.0), THRESHOLDS)
    three = validate(Metrics(pnl=-1.0, error_rate=0.2), THRESHOLDS)
    assert (four.criteria_met, four.verdict) == (4, "APPROVED")
    assert (three.criteria_met, three.verdict) == (3, "REJECTED")
    assert closing_line(four) == "✅ Phase 1 APPROVED - Ready for Phase 3 (Full Rollout)"


def test_thresholds_and_min_criteria_come_from_config() -> None:
    strict = PhaseValidationConfig(win_rate=0.6, profitability=500.0, min_criteria=5)
    result = validate(Metrics(), strict)
    assert result.criteria_met == 3 and result.verdict == "REJECTED"
    assert result.criterion("win_rate").line == "✗ win_rate: 0.5621 (threshold: 0.6000)"
    assert result.criterion("profitability").line == "✗ profitability: 485.67 (threshold: 500.0000)"


def test_result_as_json_and_back() -> None:
    result = validate(Metrics(pnl=-5.0), THRESHOLDS)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["verdict"] == "APPROVED"
    assert data["approved"] is True
    assert (data["criteria_met"], data["criteria_total"], data["min_criteria"]) == (4, 5, 4)
    assert data["criteria"]["profitability"] == {
        "value": -5.0,
        "threshold": 0.0,
        "comparison": ">",
        "passed": False,
        "shortfall": None,
    }
    assert list(data["criteria"]) == [
        "win_rate",
        "max_drawdown",
        "error_rate",
        "profitability",
        "stability",
    ]
    again = ValidationResult.from_dict(data)
    assert render_phase_validation(again) == render_phase_validation(result)


def test_other_phase_numbers() -> None:
    lines = render_phase_validation(validate(Metrics(), THRESHOLDS), phase=3)
    assert lines[1] == "PHASE 3 COMPLETE - VALIDATING RESULTS"
    assert lines[3] == "Validating Phase 3 results..."
    assert lines[5] == "PHASE 3 VALIDATION RESULTS"
    assert lines[-1] == "✅ Phase 3 APPROVED - 5/5 criteria met"


def test_a_win_rate_over_too_few_trades_fails() -> None:
    from dataclasses import replace

    one_trade = validate(replace(Metrics(), trades=1), THRESHOLDS)  # type: ignore[call-arg]
    line = one_trade.criterion("win_rate").line
    assert line == "✗ win_rate: 0.5621 (threshold: 0.5000, only 1 trade, 20 needed)"
    assert one_trade.criteria_met == 4
    enough = validate(replace(Metrics(), trades=20), THRESHOLDS)  # type: ignore[call-arg]
    assert enough.criterion("win_rate").passed
