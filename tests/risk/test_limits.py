"""Pre-trade limits: position size, total exposure, and the daily loss latch on UTC days."""

from __future__ import annotations

import pytest

from candlewise.config.app_config import RiskConfig
from candlewise.risk.limits import DAY_MS, RiskLimits, utc_day

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
HOUR = 3_600_000


def check(limits: RiskLimits, equity: float, at: int, exposure: float = 0.0, want: float = 1e9):
    return limits.check_entry(equity=equity, exposure=exposure, requested_notional=want, at_ms=at)


def test_utc_day_boundaries() -> None:
    assert utc_day(T0) == 20089
    assert utc_day(T0 - 1) == 20088
    assert utc_day(T0 + DAY_MS - 1) == 20089
    assert utc_day(T0 + DAY_MS) == 20090


def test_position_size_caps_the_entry() -> None:
    limits = RiskLimits(RiskConfig())
    d = check(limits, 10_000.0, T0, want=5_000.0)
    assert d.allowed and d.notional == pytest.approx(1_000.0)
    assert d.reason == "capped by position size at 1000.00"
    d2 = check(limits, 10_000.0, T0, want=400.0)
    assert d2.allowed and d2.notional == 400.0 and d2.reason == "within limits"


def test_total_exposure_caps_then_refuses() -> None:
    limits = RiskLimits(RiskConfig(max_total_exposure=0.5))
    d = check(limits, 10_000.0, T0, exposure=4_500.0)
    assert d.allowed and d.notional == pytest.approx(500.0)
    assert d.reason == "capped by total exposure at 500.00"
    full = check(limits, 10_000.0, T0, exposure=5_000.0)
    assert not full.allowed and full.notional == 0.0
    assert full.reason == "total exposure 5000.00 leaves 0.00 of the 50% cap (5000.00)"
    dust = check(limits, 10_000.0, T0, exposure=4_997.0)  # 3 left: under the 5 minimum
    assert not dust.allowed


def test_tiny_request_is_refused() -> None:
    d = check(RiskLimits(RiskConfig()), 10_000.0, T0, want=1.0)
    assert not d.allowed and "below the minimum" in d.reason


def test_daily_loss_exactly_at_the_limit_blocks_until_the_next_utc_day() -> None:
    limits = RiskLimits(RiskConfig())  # 5 %
    limits.observe(10_000.0, T0 + HOUR)  # first event of the day: the day's start
    assert limits.day_start_equity == 10_000.0
    assert check(limits, 9_500.01, T0 + 2 * HOUR).allowed  # 4.9999 % down
    blocked = check(limits, 9_500.0, T0 + 3 * HOUR)  # exactly 5 % down
    assert not blocked.allowed
    assert blocked.reason == (
        "daily loss limit: equity 9500.00 is 5.00% below the day's start 10000.00 (limit 5%); "
        "no new entries until 00:00 UTC"
    )
    # a latch: recovering the same day does not reopen entries
    assert not check(limits, 9_900.0, T0 + DAY_MS - 1).allowed
    # the next UTC day starts from the equity at its first event
    nxt = check(limits, 9_900.0, T0 + DAY_MS)
    assert nxt.allowed and limits.day_start_equity == 9_900.0
    assert limits.daily_loss(9_900.0) == 0.0


def test_daily_loss_limit_tolerates_float_noise_at_the_boundary() -> None:
    limits = RiskLimits(RiskConfig(daily_loss_limit=0.03))
    start = 1_234.56
    limits.observe(start, T0)
    assert not check(limits, start * (1 - 0.03), T0 + 1).allowed


def test_exits_are_never_checked_and_observing_a_loss_latches() -> None:
    limits = RiskLimits(RiskConfig())
    limits.observe(10_000.0, T0)
    limits.observe(9_400.0, T0 + HOUR)  # a candle marks the loss, no entry asked yet
    assert limits.blocked(T0 + HOUR)
    assert not limits.blocked(T0 + DAY_MS)
    assert not check(limits, 0.0, T0 + DAY_MS).allowed  # no equity, no entry


@pytest.mark.parametrize("exposure", [0.0, 4_000.0, 9_000.0, 9_997.0, 20_000.0])
@pytest.mark.parametrize("equity", [-5.0, 0.0, 20.0, 10_000.0, 9_400.0])
@pytest.mark.parametrize("want", [1.0, 400.0, 5_000.0])
def test_admit_gives_check_entrys_answer_without_the_reason(
    equity: float, exposure: float, want: float
) -> None:
    """The block replay calls ``admit``; the broker ``check_entry``: same notional, same state."""
    quiet, told = RiskLimits(RiskConfig()), RiskLimits(RiskConfig())
    for limits in (quiet, told):
        limits.observe(10_000.0, T0)  # the day starts at 10,000: 9,400 is past the 5% limit
    notional = quiet.admit(equity=equity, exposure=exposure, requested_notional=want, at_ms=T0)
    decision = check(told, equity, T0, exposure=exposure, want=want)
    assert notional == (decision.notional if decision.allowed else None)
    assert (quiet.blocked_day, quiet.day_start_equity) == (told.blocked_day, told.day_start_equity)
