"""Exponential backoff with jitter, for reconnecting to an exchange.

Jitter spreads the retries of many clients (or many restarts of one) so they do not hammer the
exchange in lock-step after an outage; the cap keeps a long outage from growing the delay without
bound. The random source is passed in so that tests, and replays, are deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``attempt`` (0 for the first retry).

    The un-jittered delay is ``initial_s * factor ** attempt``, capped at ``max_s``. Jitter then
    removes a random fraction of it, up to ``jitter``: the delay lies in
    ``[(1 - jitter) * d, d]``, so it never exceeds the cap and never drops below
    ``(1 - jitter) * initial_s``.
    """

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not self.initial_s > 0:
            raise ValueError(f"initial_s must be > 0, got {self.initial_s}")
        if not self.max_s >= self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay for ``attempt``: the upper bound of :meth:`delay`."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        try:
            raw = self.initial_s * self.factor**attempt
        except OverflowError:  # a very long outage: the cap applies anyway
            return self.max_s
        return min(self.max_s, raw)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``attempt``, drawn with ``rng`` (one draw per call)."""
        ceiling = self.ceiling(attempt)
        return ceiling * (1.0 - self.jitter * rng.random())
