"""Per-symbol TRADING/LEARNING mode with hysteresis: trade only while confidence is high.

A symbol enters TRADING when a *calibrated* signal's confidence is at or above
``threshold`` and falls back to LEARNING once confidence drops below
``threshold - hysteresis``; inside that band the mode holds. Without the band a confidence
hovering around the threshold would flip the mode on every candle, and the guide's health
check allows fewer than 2 transitions per hour.

An uncalibrated confidence is not a probability, so it can never *enter* TRADING. It may still
*leave* TRADING by the ordinary exit rule (below ``threshold - hysteresis``): a low number is
reason enough to stop, while forcing an exit on every uncalibrated signal would make the mode
flap whenever one event timeframe has a calibrator and another has not.

Pure core: no clock, no I/O. Every call takes the event time in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from candlewise.config.app_config import ConfidenceConfig
from candlewise.signals.aggregate import Signal

HOUR_MS = 3_600_000


class Mode(StrEnum):
    TRADING = "TRADING"
    """Signals may place orders."""
    LEARNING = "LEARNING"
    """Signals are predicted and scored (shadow trades) but place no orders."""


@dataclass(frozen=True, slots=True)
class ModeTransition:
    """One change of a symbol's mode, with the confidence that caused it."""

    symbol: str
    previous: Mode
    mode: Mode
    confidence: float
    reason: str
    """Human-readable cause, e.g. ``confidence 83.45% >= threshold 80.00%``."""
    at_ms: int


@dataclass(slots=True)
class SymbolState:
    """One symbol's mode; a driver that walks many signals holds it between ``ModeMachine``
    calls (``state_at``, ``move``) instead of looking the symbol up for each."""

    mode: Mode
    since_ms: int
    """Time of the last transition, or of the first observation when there was none."""
    last_ms: int


_SymbolState = SymbolState
"""The name checkpoints written before ``SymbolState`` was public refer to."""


def hold_range(
    mode: Mode, calibrated: bool, threshold: float, exit_below: float
) -> tuple[float, float]:
    """``(lo, hi)``: ``mode`` holds for a confidence unless it is below ``lo`` or at or above
    ``hi`` (the hysteresis band; an uncalibrated signal never enters TRADING). ``next_mode``
    decides with it; a driver that walks many signals holds it per model and mode and asks
    ``next_mode`` only about a confidence outside it."""
    if mode is Mode.LEARNING:
        return -math.inf, threshold if calibrated else math.inf
    return exit_below, math.inf


def next_mode(
    mode: Mode, confidence: float, calibrated: bool, threshold: float, exit_below: float
) -> Mode | None:
    """The mode a signal moves a symbol to, None when the mode holds: the hysteresis rule.

    On plain values (no lookup, no validation) because the block replay applies it to the
    signals of its minute loop (outside ``hold_range``); ``ModeMachine.observe`` to every one.
    """
    lo, hi = hold_range(mode, calibrated, threshold, exit_below)
    if confidence < lo or confidence >= hi:
        return Mode.TRADING if mode is Mode.LEARNING else Mode.LEARNING
    return None


class ModeMachine:
    """Holds each symbol's mode; symbols are independent and start in LEARNING."""

    def __init__(self, threshold: float, hysteresis: float) -> None:
        if not (0.0 < threshold <= 1.0):
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if not (0.0 <= hysteresis < threshold):
            raise ValueError(
                f"hysteresis must be in [0, threshold={threshold:g}), got {hysteresis!r}"
            )
        self.threshold = threshold
        self.hysteresis = hysteresis
        # Rounded so that 0.80 - 0.05 is exactly 0.75, not 0.7500000000000001 or 0.7499999...:
        # the exit bound the user configured, not an artefact of binary floats.
        self.exit_below = round(threshold - hysteresis, 12)
        self._states: dict[str, SymbolState] = {}

    @classmethod
    def from_config(cls, confidence: ConfidenceConfig) -> ModeMachine:
        """From ``continuous_learning.confidence`` in config.yaml."""
        return cls(threshold=confidence.trading_threshold, hysteresis=confidence.hysteresis)

    def observe(
        self, symbol: str, confidence: float, at_ms: int, calibrated: bool = True
    ) -> ModeTransition | None:
        """Feed one signal's confidence; returns the transition it caused, if any."""
        if not (isinstance(confidence, int | float) and 0.0 <= confidence <= 1.0):
            raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
        state = self._states.get(symbol)
        if state is not None and at_ms < state.last_ms:
            raise ValueError(
                f"{symbol}: event time went backwards ({at_ms} < {state.last_ms}); "
                "signals must be observed in event order"
            )
        state = self.state_at(symbol, at_ms)
        new = next_mode(state.mode, confidence, calibrated, self.threshold, self.exit_below)
        if new is None:
            return None
        return self.move(symbol, state, new, confidence, calibrated, at_ms)

    def state_at(self, symbol: str, at_ms: int) -> SymbolState:
        """The symbol's state for signals at ``at_ms`` (trusted to be in event order); the first
        observation of a symbol starts it in LEARNING."""
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = SymbolState(Mode.LEARNING, at_ms, at_ms)
        state.last_ms = at_ms
        return state

    def move(
        self,
        symbol: str,
        state: SymbolState,
        new: Mode,
        confidence: float,
        calibrated: bool,
        at_ms: int,
    ) -> ModeTransition:
        """Put ``state`` (``symbol``'s) in the mode ``next_mode`` chose; the transition says why."""
        transition = ModeTransition(
            symbol, state.mode, new, confidence, self.reason(new, confidence, calibrated), at_ms
        )
        state.mode = new
        state.since_ms = at_ms
        return transition

    def reason(self, new: Mode, confidence: float, calibrated: bool) -> str:
        """Why a signal of ``confidence`` moved a symbol to ``new`` (``learning_states.reason``)."""
        if new is Mode.TRADING:
            return f"confidence {pct(confidence)} >= threshold {pct(self.threshold)}"
        reason = (
            f"confidence {pct(confidence)} < {pct(self.exit_below)} "
            f"(threshold {pct(self.threshold)} - hysteresis {pct(self.hysteresis)})"
        )
        return reason if calibrated else reason + ", uncalibrated"

    def state(self, symbol: str) -> SymbolState | None:
        """The symbol's state, None if never observed (a driver may hold it, see ``state_at``)."""
        return self._states.get(symbol)

    def mode(self, symbol: str) -> Mode:
        """Current mode; a symbol never observed is in LEARNING."""
        state = self._states.get(symbol)
        return state.mode if state is not None else Mode.LEARNING

    def time_in_mode(self, symbol: str, now_ms: int) -> int:
        """Milliseconds since the last transition (or first observation); 0 if never observed."""
        state = self._states.get(symbol)
        if state is None:
            return 0
        if now_ms < state.since_ms:
            raise ValueError(f"now_ms {now_ms} is before the mode began ({state.since_ms})")
        return now_ms - state.since_ms

    def restore(self, symbol: str, mode: Mode | str, since_ms: int) -> None:
        """Re-establish a stored mode after a restart, so a crash does not reset it."""
        self._states[symbol] = SymbolState(Mode(mode), since_ms, since_ms)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._states)


def transitions_per_hour(
    transitions: Iterable[ModeTransition], window_ms: int, now_ms: int | None = None
) -> float:
    """Transition rate over a window, for the guide's "< 2 transitions/hour" stability check.

    Without ``now_ms`` every transition given is counted (the caller already selected the
    window); with it, only those with ``now_ms - window_ms < at_ms <= now_ms``. Pass the
    transitions of one symbol to get that symbol's rate.
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    if now_ms is None:
        count = sum(1 for _ in transitions)
    else:
        count = sum(1 for t in transitions if now_ms - window_ms < t.at_ms <= now_ms)
    return count * HOUR_MS / window_ms


def format_transition(t: ModeTransition, timeframe: str) -> str:
    """The guide's line ``✓ [BTC/USDT @ 1h] Transitioned to TRADING mode (confidence: 83.45%)``.

    ``timeframe`` is that of the event whose signal caused the transition. Falling back to
    LEARNING is marked ``⚠`` instead of ``✓``: trading stopped, which deserves a second look.
    """
    mark = "✓" if t.mode is Mode.TRADING else "⚠"
    return (
        f"{mark} [{t.symbol} @ {timeframe}] Transitioned to {t.mode.value} mode "
        f"(confidence: {pct(t.confidence)})"
    )


def format_trading_signal(signal: Signal, live_or_paper: Literal["live", "paper"]) -> str:
    """The guide's line ``[BTC/USDT] TRADING MODE: BUY @ 82.45% (live)``."""
    if live_or_paper not in ("live", "paper"):
        raise ValueError(f"live_or_paper must be 'live' or 'paper', got {live_or_paper!r}")
    return trading_line(signal.symbol, signal.direction, signal.confidence, live_or_paper)


def trading_line(symbol: str, direction: str, confidence: float, flavour: str) -> str:
    """``format_trading_signal`` on plain values (the block replay has no ``Signal`` object)."""
    return f"[{symbol}] TRADING MODE: {direction} @ {pct(confidence)} ({flavour})"


def pct(x: float) -> str:
    """A probability as the guide's logs show it, ``83.45%``."""
    return f"{x * 100:.2f}%"
