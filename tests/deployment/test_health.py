"""Health checks: the guide's table as a pure function of metrics, boundaries included."""

from __future__ import annotations

from dataclasses import replace

import pytest

from candlewise.config.app_config import (
    AppConfig,
    DeploymentConfig,
    HealthThresholdsConfig,
    RiskConfig,
)
from candlewise.deployment.health import (
    CHECK_NAMES,
    HealthMetrics,
    HealthThresholds,
    HealthTracker,
    evaluate_health,
    rollback_needed,
)

T = HealthThresholds.from_config(AppConfig())

HEALTHY = HealthMetrics(
    max_drawdown_percent=3.21,
    trades=24,
    wins=14,
    errors=0,
    events=60,
    transitions_per_hour=1.0,
    uptime=1.0,
)


def results(**changes: float) -> dict[str, object]:
    return {r.name: r for r in evaluate_health(replace(HEALTHY, **changes), T)}


def test_defaults_are_the_guides_table() -> None:
    assert (
        HealthThresholds(
            max_drawdown_percent=15.0,
            win_rate=0.40,
            min_trades=20,
            error_rate=0.05,
            stability=2.0,
            uptime=0.95,
        )
        == T
    )


def test_healthy_metrics_pass_every_check_in_table_order() -> None:
    checks = evaluate_health(HEALTHY, T)
    assert tuple(r.name for r in checks) == CHECK_NAMES
    assert all(r.passed and r.action == "none" and r.warning is None for r in checks)
    assert [r.as_dict()["check_name"] for r in checks] == list(CHECK_NAMES)
    assert checks[0].as_dict() == {
        "check_name": "max_drawdown",
        "value": 3.21,
        "threshold": 15.0,
        "passed": True,
        "action": "none",
        "detail": "drawdown 3.21%, limit 15%",
    }


@pytest.mark.parametrize(
    ("drawdown", "passed"), [(14.99, True), (15.0, False), (15.0 - 1e-12, False), (20.0, False)]
)
def test_drawdown_at_the_limit_rolls_back(drawdown: float, passed: bool) -> None:
    r = results(max_drawdown_percent=drawdown)["max_drawdown"]
    assert r.passed is passed
    assert r.action == ("none" if passed else "rollback")
    checks = evaluate_health(replace(HEALTHY, max_drawdown_percent=drawdown), T)
    assert rollback_needed(checks) is not passed


def test_drawdown_line() -> None:
    r = results(max_drawdown_percent=15.0)["max_drawdown"]
    assert r.warning == (
        "🔴 CRITICAL: Drawdown 15.0% reached 15% limit: rolling back "
        "(closing all positions, trading stopped)"
    )


def test_win_rate_exactly_40_percent_at_20_trades_passes() -> None:
    r = results(trades=20, wins=8)["win_rate"]
    assert r.judged and r.passed and r.value == 0.4
    assert r.detail == "win rate 40.00% over 20 trades"


def test_win_rate_below_40_percent_at_20_trades_alerts() -> None:
    r = results(trades=20, wins=7)["win_rate"]
    assert (r.passed, r.action) == (False, "alert")
    assert r.warning == "⚠️  WARNING: Win rate 35.00% below 40% threshold"


def test_win_rate_not_judged_before_20_trades() -> None:
    r = results(trades=19, wins=0)["win_rate"]
    assert r.passed and not r.judged and r.action == "none"
    assert r.detail == "not judged yet: 19 of 20 trades closed"


def test_error_rate_line_is_the_guides() -> None:
    # 723 errors in 10,000 handled events over the last hour
    r = results(errors=723, events=10_000)["error_rate"]
    assert (r.passed, r.action) == (False, "alert")
    assert r.warning == "⚠️  WARNING: Error rate 7.23% exceeds 5% threshold"


def test_error_rate_boundary_and_no_events() -> None:
    assert results(errors=4, events=100)["error_rate"].passed
    at = results(errors=5, events=100)["error_rate"]
    assert not at.passed
    assert at.warning == "⚠️  WARNING: Error rate 5.00% reaches 5% threshold"
    assert results(errors=0, events=0)["error_rate"].passed
    nothing_handled = results(errors=3, events=0)["error_rate"]
    assert nothing_handled.value == 1.0 and not nothing_handled.passed


def test_mode_stability() -> None:
    assert results(transitions_per_hour=1.99)["mode_stability"].passed
    r = results(transitions_per_hour=2.0)["mode_stability"]
    assert (r.passed, r.action) == (False, "alert")
    assert r.warning == "⚠️  WARNING: Mode transitions 2.00/hour reach 2/hour threshold"
    assert (
        results(transitions_per_hour=3.0)["mode_stability"].warning
        == "⚠️  WARNING: Mode transitions 3.00/hour exceed 2/hour threshold"
    )


def test_uptime_must_be_above_95_percent() -> None:
    assert results(uptime=0.951)["uptime"].passed
    at = results(uptime=0.95)["uptime"]
    assert (at.passed, at.action) == (False, "alert")
    assert at.warning == "⚠️  WARNING: Uptime 95.00% not above 95% threshold"
    assert results(uptime=0.9)["uptime"].warning == "⚠️  WARNING: Uptime 90.00% below 95% threshold"


def test_thresholds_come_from_config() -> None:
    cfg = AppConfig(
        risk=RiskConfig(max_drawdown_percent=12.0),
        deployment=DeploymentConfig(
            health=HealthThresholdsConfig(win_rate=0.5, min_trades=10, uptime=0.99)
        ),
    )
    t = HealthThresholds.from_config(cfg)
    checks = {
        r.name: r
        for r in evaluate_health(
            replace(HEALTHY, max_drawdown_percent=12.0, trades=10, wins=4, uptime=0.98), t
        )
    }
    assert checks["max_drawdown"].action == "rollback"
    assert checks["win_rate"].action == "alert"
    assert checks["uptime"].warning == "⚠️  WARNING: Uptime 98.00% below 99% threshold"


def test_from_windows_takes_rates_of_the_last_hour() -> None:
    since_start = replace(HEALTHY, errors=50, events=1000, transitions_per_hour=0.2)
    last_hour = replace(HEALTHY, trades=2, wins=0, errors=6, events=60, uptime=0.5,
                        transitions_per_hour=3.0, max_drawdown_percent=1.0)  # fmt: skip
    m = HealthMetrics.from_windows(since_start, last_hour)
    assert (m.trades, m.wins, m.uptime, m.max_drawdown_percent) == (24, 14, 1.0, 3.21)
    assert (m.errors, m.events, m.transitions_per_hour) == (6, 60, 3.0)
    assert m.error_rate == 0.1


def test_tracker_counts_consecutive_passes_and_resets_on_failure() -> None:
    tracker = HealthTracker()
    ok = evaluate_health(HEALTHY, T)
    assert tracker.record(ok) == ["✓ Health check passed (1 consecutive)"]
    assert tracker.record(ok) == ["✓ Health check passed (2 consecutive)"]
    assert tracker.record(ok) == ["✓ Health check passed (3 consecutive)"]
    bad = evaluate_health(replace(HEALTHY, errors=723, events=10_000, uptime=0.9), T)
    assert tracker.record(bad) == [
        "⚠️  WARNING: Error rate 7.23% exceeds 5% threshold",
        "⚠️  WARNING: Uptime 90.00% below 95% threshold",
    ]
    assert tracker.consecutive == 0
    assert tracker.record(ok) == ["✓ Health check passed (1 consecutive)"]
    assert (tracker.checks, tracker.failed_checks) == (5, 1)


def test_a_win_rate_not_yet_judged_does_not_break_the_streak() -> None:
    tracker = HealthTracker()
    early = evaluate_health(replace(HEALTHY, trades=3, wins=0), T)
    assert tracker.record(early) == ["✓ Health check passed (1 consecutive)"]
