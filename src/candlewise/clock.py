"""Clocks: the only way code that handles events may learn the time or wait.

The same feed and engine code runs on a simulated clock (replay: jumps to each event, as fast as
the CPU allows), a scaled clock (``--speed 60``: one simulated minute per wall second) and the
wall clock (live). Nothing else reads ``time.time()`` or sleeps.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep_until(self, moment_ms: int) -> None:
        """Return once the clock reads ``moment_ms`` or later."""
        ...


class SimulatedClock:
    """Replay time: waiting is free, the clock jumps straight to the awaited moment."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def sleep_until(self, moment_ms: int) -> None:
        self._now = max(self._now, moment_ms)


class ScaledClock:
    """Simulated time running ``speed`` times faster than the wall clock, from ``start_ms``."""

    def __init__(
        self, start_ms: int, speed: float, *, monotonic=time.monotonic, sleep=time.sleep
    ) -> None:  # type: ignore[no-untyped-def]
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start_ms
        self._speed = speed
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall0 = monotonic()

    def now_ms(self) -> int:
        return self._start + int((self._monotonic() - self._wall0) * 1000 * self._speed)

    def sleep_until(self, moment_ms: int) -> None:
        while (ahead := moment_ms - self.now_ms()) > 0:
            self._sleep(min(ahead / 1000 / self._speed, 1.0))


class WallClock:
    """Real time, for live feeds."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep_until(self, moment_ms: int) -> None:
        while (ahead := moment_ms - self.now_ms()) > 0:
            time.sleep(min(ahead / 1000, 1.0))


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing); ``60`` -> 60.0. Raises ValueError with the accepted forms."""
    value = text.strip().lower()
    if value in {"max", "inf", "fast"}:
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise ValueError(f"invalid speed {text!r}: use 'max' or a number such as 60") from None
    if speed <= 0:
        raise ValueError(f"invalid speed {text!r}: must be positive")
    return speed


def parse_duration_ms(text: str) -> int:
    """``24h``, ``90m``, ``2d``, ``30s`` -> milliseconds."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    value = text.strip().lower()
    if value and value[-1] in units:
        try:
            amount = float(value[:-1])
        except ValueError:
            amount = -1
        if amount > 0:
            return int(amount * units[value[-1]])
    raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 24h, 90m, 2d, 30s")
