"""A phase's validation: the guide's five criteria, the verdict and its printed block.

| Criterion     | Value                                          | Passes when          |
|---------------|------------------------------------------------|----------------------|
| win_rate      | closed trades won / closed trades              | >= 0.50              |
| max_drawdown  | deepest mark-to-market drawdown, percent       | <= 15.0              |
| error_rate    | system errors / candle events handled          | < 0.05               |
| profitability | realised P&L in the quote currency (USDT)      | > 0                  |
| stability     | mode transitions per hour (busiest symbol)     | < 2.0                |

Thresholds and the number of criteria needed (``min_criteria``, 4) come from
``deployment.validation``; the verdict is ``APPROVED`` when at least that many pass, otherwise
``REJECTED``. With no closed trade the win rate is 0 (the criterion fails). The values are
computed from the store over the phase's window (``candlewise.deployment.metrics``); this module
only judges and formats them. Feed data errors (bad data from the exchange) are not system
errors: they are reported on their own line (:func:`feed_data_errors_line`), judged by none.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from candlewise.config.app_config import PhaseValidationConfig

RULE = "=" * 80
APPROVED = "APPROVED"
REJECTED = "REJECTED"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
}


class PhaseMetrics(Protocol):
    """What the criteria read; ``metrics.WindowMetrics`` provides it."""

    @property
    def win_rate(self) -> float: ...
    @property
    def max_drawdown_percent(self) -> float: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def pnl(self) -> float: ...
    @property
    def transitions_per_hour(self) -> float: ...


@dataclass(frozen=True)
class Criterion:
    name: str
    value: float
    threshold: float
    comparison: str
    """How value must compare with threshold to pass: >=, <=, < or >."""
    decimals: int
    """Decimals the value is shown with (the guide: 2 for percent and money, else 4)."""
    shortfall: str | None = None
    """Why the value cannot be judged (too few trades for a win rate): the criterion fails."""

    @property
    def passed(self) -> bool:
        return self.shortfall is None and _COMPARE[self.comparison](self.value, self.threshold)

    @property
    def line(self) -> str:
        """``✓ win_rate: 0.5621 (threshold: 0.5000)``; ``✗`` when it fails."""
        mark = "✓" if self.passed else "✗"
        value = f"{self.value:.{self.decimals}f}"
        tail = f", {self.shortfall}" if self.shortfall else ""
        return f"{mark} {self.name}: {value} (threshold: {self.threshold:.4f}{tail})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "passed": self.passed,
            "shortfall": self.shortfall,
        }


@dataclass(frozen=True)
class ValidationResult:
    criteria: tuple[Criterion, ...]
    min_criteria: int

    @property
    def criteria_met(self) -> int:
        return sum(c.passed for c in self.criteria)

    @property
    def approved(self) -> bool:
        return self.criteria_met >= self.min_criteria

    @property
    def verdict(self) -> str:
        return APPROVED if self.approved else REJECTED

    def criterion(self, name: str) -> Criterion:
        return next(c for c in self.criteria if c.name == name)

    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: verdict, counts and every criterion (value, threshold, passed)."""
        return {
            "verdict": self.verdict,
            "approved": self.approved,
            "criteria_met": self.criteria_met,
            "criteria_total": len(self.criteria),
            "min_criteria": self.min_criteria,
            "criteria": {c.name: c.as_dict() for c in self.criteria},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResult:
        """The result back from :meth:`as_dict` (e.g. a ``validation_results/*.json`` file)."""
        criteria = tuple(
            Criterion(
                name,
                float(c["value"]),
                float(c["threshold"]),
                str(c["comparison"]),
                _DECIMALS.get(name, 4),
                c.get("shortfall"),
            )
            for name, c in data["criteria"].items()
        )
        return cls(criteria, int(data["min_criteria"]))


_DECIMALS = {"max_drawdown": 2, "profitability": 2}


def validate(metrics: PhaseMetrics, thresholds: PhaseValidationConfig) -> ValidationResult:
    """Judge the five criteria in the guide's order."""
    t = thresholds
    criteria = (
        Criterion("win_rate", float(metrics.win_rate), t.win_rate, ">=", 4, _too_few(metrics, t)),
        Criterion("max_drawdown", float(metrics.max_drawdown_percent), t.max_drawdown, "<=", 2),
        Criterion("error_rate", float(metrics.error_rate), t.error_rate, "<", 4),
        Criterion("profitability", float(metrics.pnl), t.profitability, ">", 2),
        Criterion("stability", float(metrics.transitions_per_hour), t.stability, "<", 4),
    )
    return ValidationResult(criteria, t.min_criteria)


def _too_few(metrics: PhaseMetrics, t: PhaseValidationConfig) -> str | None:
    """A win rate over a handful of trades says nothing: below ``min_trades`` it fails."""
    trades = int(getattr(metrics, "trades", t.min_trades))
    if trades >= t.min_trades:
        return None
    return f"only {trades} trade{'s' if trades != 1 else ''}, {t.min_trades} needed"


def render_results(
    result: ValidationResult, title: str = "PHASE 1 VALIDATION RESULTS"
) -> list[str]:
    """From the title to ``Verdict: ...``, each line as the guide prints it."""
    return [
        RULE,
        title,
        RULE,
        f"Criteria Met: {result.criteria_met}/{len(result.criteria)}",
        "",
        *(c.line for c in result.criteria),
        "",
        f"Verdict: {result.verdict}",
    ]


def closing_line(result: ValidationResult, phase: int = 1) -> str:
    """Phase 1's verdict as the guide closes it; phase 1 leads to phase 3 (full rollout)."""
    met = f"{result.criteria_met}/{len(result.criteria)} criteria met"
    if result.approved:
        if phase == 1:
            return "✅ Phase 1 APPROVED - Ready for Phase 3 (Full Rollout)"
        return f"✅ Phase {phase} APPROVED - {met}"
    before = " before Phase 3" if phase == 1 else ""
    return (
        f"❌ Phase {phase} REJECTED - {met}, {result.min_criteria} required: "
        f"fix the failed criteria{before}"
    )


def feed_data_errors_line(count: int) -> str:
    """The line printed after a phase's block: bad exchange data, which error_rate leaves out."""
    return (
        f"Feed data errors: {count} (bad data from the exchange, skipped and backfilled; "
        "not counted in error_rate)"
    )


def render_phase_validation(result: ValidationResult, phase: int = 1) -> list[str]:
    """The guide's block printed when a phase ends (``PHASE 1 COMPLETE - VALIDATING RESULTS``
    to ``✅ Phase 1 APPROVED - Ready for Phase 3 (Full Rollout)``), one string per line."""
    return [
        RULE,
        f"PHASE {phase} COMPLETE - VALIDATING RESULTS",
        RULE,
        f"Validating Phase {phase} results...",
        *render_results(result, f"PHASE {phase} VALIDATION RESULTS"),
        RULE,
        closing_line(result, phase),
    ]
