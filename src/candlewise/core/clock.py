"""Clocks: the only way code that handles events may learn the time or wait.

The same feed and engine code runs on a simulated clock (replay: jumps to each event, as fast as
the CPU allows), a scaled clock (``--speed 60``: one simulated minute per wall second) and the
wall clock (live). Nothing else reads ``time.time()`` or sleeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

MAX_SPEED = 1_000_000.0
"""Fastest ``--speed`` factor (about 11.6 simulated days per wall second); beyond, use ``max``."""
MAX_DURATION_MS = 36_525 * 86_400_000
"""Longest ``--duration``: 100 years."""


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
        if not (0 < speed <= MAX_SPEED):  # also rejects NaN
            raise ValueError(f"speed must be a positive number up to {MAX_SPEED:g}, got {speed!r}")
        self._start = start_ms
        self._speed = speed
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall0 = monotonic()
        self.interrupt: Callable[[], bool] | None = None
        """When it says so, waits end early (a stop request must not wait for the next candle;
        the runner stops at that candle's minute boundary without handling it)."""

    def now_ms(self) -> int:
        return self._start + int((self._monotonic() - self._wall0) * 1000 * self._speed)

    def sleep_until(self, moment_ms: int) -> None:
        while (ahead := moment_ms - self.now_ms()) > 0:
            if self.interrupt is not None and self.interrupt():
                return
            self._sleep(min(ahead / 1000 / self._speed, 0.25))


class WallClock:
    """Real time, for live feeds."""

    def __init__(self) -> None:
        self.interrupt: Callable[[], bool] | None = None

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep_until(self, moment_ms: int) -> None:
        while (ahead := moment_ms - self.now_ms()) > 0:
            if self.interrupt is not None and self.interrupt():
                return
            time.sleep(min(ahead / 1000, 0.25))


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing); ``60`` or ``60x`` -> 60.0.

    Raises ValueError naming the accepted forms for anything else: text, zero, a negative
    number, NaN, infinity (``max`` is the way to say "unpaced") or more than ``MAX_SPEED``.
    """
    value = text.strip().lower()
    if value in {"max", "fast"}:
        return None
    forms = f"use 'max' (no pacing) or a number from above 0 up to {MAX_SPEED:g}, such as 60"
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise ValueError(f"invalid speed {text!r}: {forms}") from None
    if math.isnan(speed):
        raise ValueError(f"invalid speed {text!r}: not a number; {forms}")
    if math.isinf(speed) and speed > 0:
        raise ValueError(f"invalid speed {text!r}: for no pacing write 'max'; else {forms}")
    if speed <= 0:
        raise ValueError(f"invalid speed {text!r}: must be positive; {forms}")
    if speed > MAX_SPEED:
        raise ValueError(f"invalid speed {text!r}: too fast; {forms}")
    return speed


def parse_duration_ms(text: str) -> int:
    """``24h``, ``90m``, ``2d``, ``30s`` -> milliseconds (at least 1 ms, at most 100 years).

    Raises ValueError (never OverflowError) for anything else, including NaN and infinity.
    """
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    forms = "use a positive number and a unit, e.g. 24h, 90m, 2d, 30s"
    value = text.strip().lower()
    if not value or value[-1] not in units:
        raise ValueError(f"invalid duration {text!r}: {forms}")
    try:
        amount = float(value[:-1])
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: {forms}") from None
    if math.isnan(amount) or amount <= 0:
        raise ValueError(f"invalid duration {text!r}: {forms}")
    ms = amount * units[value[-1]]
    if ms > MAX_DURATION_MS:  # also infinity
        raise ValueError(
            f"invalid duration {text!r}: longer than 100 years ({MAX_DURATION_MS // 86_400_000}d)"
        )
    if ms < 1:
        raise ValueError(f"invalid duration {text!r}: shorter than a millisecond; {forms}")
    return int(ms)
