"""The drawdown guard: the guide's alert at exactly 80 % of the limit, rollback at exactly 100 %."""

from __future__ import annotations

import pytest

from candlewise.risk.drawdown import DrawdownEvent, DrawdownGuard

T0 = 1_735_689_600_000


def test_alert_at_exactly_80_percent_once_then_rollback_at_exactly_the_limit() -> None:
    guard = DrawdownGuard(15.0)
    assert guard.update(10_000.0, T0) is None
    assert guard.update(8_800.01, T0 + 1) is None  # 11.9999 %
    alert = guard.update(8_800.0, T0 + 2)  # 12 % = 80 % of 15 %
    assert alert is not None and alert.kind == "alert"
    assert alert.drawdown_percent == pytest.approx(12.0)
    assert alert.message == "🔴 CRITICAL: Drawdown 12.0% approaching 15% limit"
    assert (alert.equity, alert.peak, alert.at_ms) == (8_800.0, 10_000.0, T0 + 2)
    assert guard.update(8_700.0, T0 + 3) is None  # same episode: no second alert
    assert guard.update(9_000.0, T0 + 4) is None  # recovering below a new high: same episode
    assert guard.update(8_600.0, T0 + 5) is None
    assert guard.update(8_500.01, T0 + 6) is None
    rollback = guard.update(8_500.0, T0 + 7)  # exactly 15 %
    assert rollback is not None and rollback.kind == "rollback"
    assert rollback.drawdown_percent == pytest.approx(15.0)
    assert rollback.message.startswith("🔴 CRITICAL: Drawdown 15.0% reached 15% limit")
    assert guard.halted
    assert guard.update(8_000.0, T0 + 8) is None  # once: the guard stays halted
    assert guard.max_drawdown_percent == pytest.approx(15.0)


def test_guide_message_format() -> None:
    event = DrawdownEvent("alert", 12.5, 15.0, 8_750.0, 10_000.0, T0)
    assert event.message == "🔴 CRITICAL: Drawdown 12.5% approaching 15% limit"


def test_a_new_high_water_mark_ends_the_episode() -> None:
    guard = DrawdownGuard(15.0)
    guard.update(10_000.0, T0)
    assert guard.update(8_700.0, T0 + 1) is not None
    assert guard.update(10_100.0, T0 + 2) is None  # new high: re-armed, peak moves up
    assert guard.peak == 10_100.0
    again = guard.update(8_888.0, T0 + 3)  # 12 % below 10_100
    assert again is not None and again.kind == "alert" and again.peak == 10_100.0


def test_jump_straight_past_the_limit_rolls_back_and_custom_limit() -> None:
    guard = DrawdownGuard(15.0, initial_peak=10_000.0)
    event = guard.update(8_000.0, T0)
    assert event is not None and event.kind == "rollback"
    tight = DrawdownGuard(12.0)  # the guide's "tighten risk controls" value
    tight.update(10_000.0, T0)
    alert = tight.update(9_040.0, T0 + 1)  # 9.6 % = 80 % of 12 %
    assert alert is not None and alert.message == "🔴 CRITICAL: Drawdown 9.6% approaching 12% limit"


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        DrawdownGuard(0.0)
    with pytest.raises(ValueError):
        DrawdownGuard(15.0, alert_fraction=1.0)
