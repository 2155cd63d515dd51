"""The guide's health check criteria, judged from a deployment's metrics (plain Python).

| Check          | Passes when                      | Action if failed |
|----------------|----------------------------------|------------------|
| max_drawdown   | drawdown < risk.max_drawdown_percent | ``rollback``  |
| win_rate       | >= 40 % (judged from 20 trades on) | ``alert``      |
| error_rate     | < 5 %                            | ``alert``        |
| mode_stability | < 2 transitions/hour             | ``alert``        |
| uptime         | > 95 %                           | ``alert``        |

The guide's table reads "Max Drawdown ≤ 15%"; a drawdown that *reaches* the limit already rolls
back, as the risk guard (``candlewise.risk.drawdown``) does, so the health check never keeps
running at a drawdown the guard has stopped at. Thresholds come from ``deployment.health`` and
``risk.max_drawdown_percent`` (:meth:`HealthThresholds.from_config`).

What the numbers mean (the caller computes them from the store, see
``candlewise.deployment.metrics``; :meth:`HealthMetrics.from_windows` combines two windows):

* **max drawdown**: the deepest mark-to-market drawdown since the deployment started, in
  percent of the equity high-water mark;
* **win rate**: closed trades won / closed trades since the deployment started; not judged
  (passes, ``judged=False``) before ``min_trades`` trades have closed;
* **error rate**: system errors recorded in ``error_log`` (engine, feed and exchange
  components) over the last hour divided by the candle events handled in that hour (one event
  per symbol and closed 1m candle); errors with no event handled count as a 100 % error rate.
  Feed data errors (bad data from the exchange, skipped and backfilled) are not system errors
  and are not counted (``metrics.WindowMetrics.feed_data_errors`` reports them);
* **mode stability**: LEARNING/TRADING transitions of the busiest symbol over the last hour,
  per hour;
* **uptime**: the share of the deployment's elapsed minutes (per symbol) whose 1m candle the
  engine handled on schedule; a feed outage, a crash or a stall lowers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from candlewise.config.app_config import AppConfig

ROLLBACK = "rollback"
ALERT = "alert"
NONE = "none"

#: Tolerance at the drawdown limit: exactly the limit must roll back even when the arithmetic
#: lands a hair below it (the same tolerance as the risk guard).
DRAWDOWN_EPSILON = 1e-9

CHECK_NAMES = ("max_drawdown", "win_rate", "error_rate", "mode_stability", "uptime")


@dataclass(frozen=True)
class HealthThresholds:
    max_drawdown_percent: float = 15.0
    """Percent; reaching it fails the check and rolls back."""
    win_rate: float = 0.40
    min_trades: int = 20
    error_rate: float = 0.05
    stability: float = 2.0
    """Mode transitions per hour."""
    uptime: float = 0.95

    @classmethod
    def from_config(cls, cfg: AppConfig) -> HealthThresholds:
        h = cfg.deployment.health
        return cls(
            max_drawdown_percent=cfg.risk.max_drawdown_percent,
            win_rate=h.win_rate,
            min_trades=h.min_trades,
            error_rate=h.error_rate,
            stability=h.stability,
            uptime=h.uptime,
        )


class HealthInputs(Protocol):
    """What the checks read; :class:`HealthMetrics` and ``metrics.WindowMetrics`` provide it."""

    @property
    def max_drawdown_percent(self) -> float: ...
    @property
    def trades(self) -> int: ...
    @property
    def win_rate(self) -> float: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def transitions_per_hour(self) -> float: ...
    @property
    def uptime(self) -> float: ...


class _Window(Protocol):
    @property
    def max_drawdown_percent(self) -> float: ...
    @property
    def trades(self) -> int: ...
    @property
    def wins(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def transitions_per_hour(self) -> float: ...
    @property
    def uptime(self) -> float: ...


def win_fraction(wins: int, trades: int) -> float:
    return wins / trades if trades else 0.0


def error_fraction(errors: int, events: int) -> float:
    """Errors per handled candle event; errors with no event handled count as 100 %."""
    if events:
        return errors / events
    return 1.0 if errors else 0.0


@dataclass(frozen=True)
class HealthMetrics:
    """The inputs of one health check (see the module docstring for each definition)."""

    max_drawdown_percent: float
    trades: int
    wins: int
    errors: int
    events: int
    transitions_per_hour: float
    uptime: float

    @property
    def win_rate(self) -> float:
        return win_fraction(self.wins, self.trades)

    @property
    def error_rate(self) -> float:
        return error_fraction(self.errors, self.events)

    @classmethod
    def from_windows(cls, deployment: _Window, last_hour: _Window) -> HealthMetrics:
        """Drawdown, trades and uptime since the deployment started; errors and mode
        transitions over the last hour."""
        return cls(
            max_drawdown_percent=deployment.max_drawdown_percent,
            trades=deployment.trades,
            wins=deployment.wins,
            errors=last_hour.errors,
            events=last_hour.events,
            transitions_per_hour=last_hour.transitions_per_hour,
            uptime=deployment.uptime,
        )


@dataclass(frozen=True)
class HealthResult:
    """One check: ``action`` is what failing it calls for (``none`` when it passed)."""

    name: str
    value: float
    threshold: float
    passed: bool
    action: str
    detail: str
    judged: bool = True
    """False while the check has too little data (win rate before ``min_trades``)."""

    @property
    def warning(self) -> str | None:
        """The line to log and alert with, None when the check passed."""
        if self.passed:
            return None
        return _WARNINGS[self.name](self)

    def as_dict(self) -> dict[str, object]:
        """A ``health_checks`` row's fields (``check_name`` is ``name``)."""
        return {
            "check_name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "action": self.action,
            "detail": self.detail,
        }


def evaluate_health(
    metrics: HealthInputs, thresholds: HealthThresholds
) -> tuple[HealthResult, ...]:
    """The five checks, in the guide's table order."""
    t = thresholds
    drawdown = float(metrics.max_drawdown_percent)
    drawdown_ok = drawdown < t.max_drawdown_percent - DRAWDOWN_EPSILON
    trades = int(metrics.trades)
    win_rate = float(metrics.win_rate)
    judged = trades >= t.min_trades
    win_ok = not judged or win_rate >= t.win_rate
    error_rate = float(metrics.error_rate)
    stability = float(metrics.transitions_per_hour)
    uptime = float(metrics.uptime)
    return (
        _result(
            "max_drawdown", drawdown, t.max_drawdown_percent, drawdown_ok, ROLLBACK,
            f"drawdown {drawdown:.2f}%, limit {t.max_drawdown_percent:g}%",
        ),
        _result(
            "win_rate", win_rate, t.win_rate, win_ok, ALERT,
            f"win rate {100 * win_rate:.2f}% over {trades} trades"
            if judged
            else f"not judged yet: {trades} of {t.min_trades} trades closed",
            judged=judged,
        ),
        _result(
            "error_rate", error_rate, t.error_rate, error_rate < t.error_rate, ALERT,
            f"error rate {100 * error_rate:.2f}% over the last hour",
        ),
        _result(
            "mode_stability", stability, t.stability, stability < t.stability, ALERT,
            f"{stability:.2f} mode transitions per hour over the last hour",
        ),
        _result(
            "uptime", uptime, t.uptime, uptime > t.uptime, ALERT,
            f"uptime {100 * uptime:.2f}% since the deployment started",
        ),
    )  # fmt: skip


def _result(
    name: str,
    value: float,
    threshold: float,
    passed: bool,
    on_failure: str,
    detail: str,
    *,
    judged: bool = True,
) -> HealthResult:
    return HealthResult(
        name, value, threshold, passed, NONE if passed else on_failure, detail, judged
    )


def rollback_needed(results: Sequence[HealthResult]) -> bool:
    return any(r.action == ROLLBACK for r in results)


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def _drawdown_line(r: HealthResult) -> str:
    # the risk guard's wording (candlewise.risk.drawdown.DrawdownEvent.message)
    return (
        f"🔴 CRITICAL: Drawdown {r.value:.1f}% reached {r.threshold:g}% limit: rolling back "
        "(closing all positions, trading stopped)"
    )


def _win_rate_line(r: HealthResult) -> str:
    return f"⚠️  WARNING: Win rate {100 * r.value:.2f}% below {_pct(r.threshold)} threshold"


def _error_rate_line(r: HealthResult) -> str:
    verb = "exceeds" if r.value > r.threshold else "reaches"
    return f"⚠️  WARNING: Error rate {100 * r.value:.2f}% {verb} {_pct(r.threshold)} threshold"


def _stability_line(r: HealthResult) -> str:
    verb = "exceed" if r.value > r.threshold else "reach"
    return f"⚠️  WARNING: Mode transitions {r.value:.2f}/hour {verb} {r.threshold:g}/hour threshold"


def _uptime_line(r: HealthResult) -> str:
    where = "below" if r.value < r.threshold else "not above"
    return f"⚠️  WARNING: Uptime {100 * r.value:.2f}% {where} {_pct(r.threshold)} threshold"


_WARNINGS = {
    "max_drawdown": _drawdown_line,
    "win_rate": _win_rate_line,
    "error_rate": _error_rate_line,
    "mode_stability": _stability_line,
    "uptime": _uptime_line,
}


class HealthTracker:
    """Counts consecutive all-pass health checks and phrases each check's log lines."""

    def __init__(self) -> None:
        self.consecutive = 0
        """All-pass checks in a row, up to and including the last one."""
        self.checks = 0
        self.failed_checks = 0

    def record(self, results: Sequence[HealthResult]) -> list[str]:
        """``✓ Health check passed (3 consecutive)`` when every check passed, else one warning
        line per failed check (and the consecutive count starts again)."""
        self.checks += 1
        failed = [r for r in results if not r.passed]
        if not failed:
            self.consecutive += 1
            return [f"✓ Health check passed ({self.consecutive} consecutive)"]
        self.consecutive = 0
        self.failed_checks += 1
        return [r.warning for r in failed if r.warning is not None]
