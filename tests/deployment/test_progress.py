"""The banner's feed line and the status line's cadence."""

from __future__ import annotations

from candlewise.deployment.progress import feed_line, status_every_ms

MINUTE = 60_000


def test_the_banner_names_the_feed_and_its_speed() -> None:
    assert feed_line("simulated", 1.0) == (
        "Feed: simulated, real time (--speed max to replay at full speed)"
    )
    assert feed_line("simulated", None) == (
        "Feed: simulated, full speed (--speed max; --speed 1 plays it in real time)"
    )
    assert feed_line("replay", 60.0) == (
        "Feed: replay, 60x real time (--speed 60; --speed max: full speed)"
    )
    assert feed_line("binance", 1.0) == "Feed: binance, live"


def test_status_every_five_wall_minutes_and_at_least_every_simulated_hour() -> None:
    assert status_every_ms(1.0) == 5 * MINUTE  # real time: five minutes
    assert status_every_ms(2.0) == 10 * MINUTE  # still five wall minutes
    assert status_every_ms(0.1) == MINUTE  # slower than real time: each minute at most
    assert status_every_ms(60.0) == 60 * MINUTE  # 5 wall minutes would be 5 hours: hourly
    assert status_every_ms(None) == 60 * MINUTE  # full speed: every simulated hour
