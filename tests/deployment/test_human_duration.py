"""The banner's durations read as the guide writes them ("Duration: 24 hours")."""

from __future__ import annotations

import pytest

from candlewise.deployment.phase import human_duration

H = 3_600_000


@pytest.mark.parametrize(
    ("ms", "text"),
    [(24 * H, "24 hours"), (48 * H, "48 hours"), (72 * H, "72 hours"), (96 * H, "4 days"),
     (H, "1 hour"), (90 * 60_000, "90 minutes"), (60_000, "1 minute"), (90_000, "1.5 minutes")],
)  # fmt: skip
def test_durations_read_like_the_guide(ms: int, text: str) -> None:
    assert human_duration(ms) == text
