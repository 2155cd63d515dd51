"""Alert values: the guide's exact texts and what counts as "the same alert"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from candlewise.alerts import Alert, drawdown_alert, error_rate_alert

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_guide_texts_exactly() -> None:
    assert drawdown_alert(12.5, 15.0, at=AT).text == (
        "🔴 CRITICAL: Drawdown 12.5% approaching 15% limit"
    )
    assert error_rate_alert(7.234, 5.0, at=AT).text == (
        "⚠️  WARNING: Error rate 7.23% exceeds 5% threshold"
    )


def test_dedupe_key_ignores_numbers_not_level_kind_or_symbol() -> None:
    a = drawdown_alert(12.5, 15.0, at=AT)
    assert a.dedupe_key == drawdown_alert(13.1, 15.0, at=AT).dedupe_key
    assert a.dedupe_key != Alert("WARNING", "drawdown", a.message, at=AT).dedupe_key
    assert a.dedupe_key != Alert("CRITICAL", "daily_loss", a.message, at=AT).dedupe_key
    assert a.dedupe_key != Alert("CRITICAL", "drawdown", a.message, "BTC/USDT", at=AT).dedupe_key


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": "ERROR"}, "not one of"),
        ({"message": "  "}, "needs a kind"),
        ({"at": datetime(2024, 5, 1)}, "naive"),
    ],
)
def test_invalid_alerts_are_rejected(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"level": "INFO", "kind": "phase", "message": "Phase 1", "at": AT}
    with pytest.raises(ValueError, match=match):
        Alert(**{**base, **kwargs})  # type: ignore[arg-type]


def test_default_time_is_aware_utc() -> None:
    assert Alert("INFO", "phase", "Phase 1 started").at.tzinfo is UTC
