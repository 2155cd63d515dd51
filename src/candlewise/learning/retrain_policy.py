"""When a model retrains: triggers, a per-model cooldown and a queue without duplicates.

A model is one (symbol, timeframe) pair, written ``BTC/USDT_1h`` as in the guide's logs.
Triggers (their reason strings are stored in ``retraining_history.trigger_reason``):

- ``loss_immediate``: a trade attributed to that model closed with ``pnl < 0`` (a break-even
  trade is not a loss), when ``retraining.on_loss`` is true.
- ``drift``: the model's drift score is at or above ``retraining.drift_threshold``.
- ``low_confidence``: ``retraining.patience`` consecutive signals of that model's event
  timeframe were in LEARNING mode. Counted per *model*, not per symbol: the guide logs triggers
  per ``[symbol @ timeframe]``, and a per-symbol count would retrain six models for one
  model's weakness. A TRADING signal resets the count; so does queueing the job and finishing
  a retrain (the new model deserves a fresh count). During a cooldown the count keeps growing,
  so the trigger fires on the first LEARNING signal after the cooldown ends.
- ``manual``: an operator asked. Manual requests **bypass the cooldown**: the cooldown exists to
  stop automatic triggers from retraining in a loop, not to overrule a deliberate decision.

Cooldown: ``min_interval_hours`` from the *end* of the model's last retrain (the only time this
module is told); a trigger exactly ``min_interval`` later is allowed. It applies whether the
retrain succeeded (new model accepted) or not (rejected challenger or failed run): otherwise a
model whose challengers keep losing would retrain on every candle.

Queue: FIFO, never the same model twice. A trigger for a model that is already queued or being
retrained is *merged*: the first reason is kept and ``RetrainJob.merged`` counts the extra
triggers (a running retrain is treated like a queued one, since a second run straight after
would be blocked by the cooldown anyway).

Pure core: no clock, no I/O; every event carries its time in milliseconds.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum

from candlewise.config.app_config import ContinuousLearningConfig, RetrainingConfig
from candlewise.core.timeframes import TIMEFRAMES
from candlewise.learning.modes import Mode

HOUR_MS = 3_600_000

ModelKey = tuple[str, str]


class RetrainReason(StrEnum):
    LOSS_IMMEDIATE = "loss_immediate"
    DRIFT = "drift"
    LOW_CONFIDENCE = "low_confidence"
    MANUAL = "manual"


class Outcome(StrEnum):
    QUEUED = "queued"
    """A new job was added to the queue."""
    MERGED = "merged"
    """The model was already queued or retraining; the trigger was counted on that job."""
    COOLDOWN = "cooldown"
    """The model retrained less than ``min_interval_hours`` ago; nothing was queued."""


@dataclass(frozen=True, slots=True)
class RetrainJob:
    symbol: str
    timeframe: str
    reason: RetrainReason
    triggered_at_ms: int
    merged: int = 0
    """Further triggers merged into this job while it was queued or running."""

    @property
    def model(self) -> str:
        return model_name(self.symbol, self.timeframe)


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """What a trigger led to; the caller logs ``Retraining triggered`` only when QUEUED."""

    symbol: str
    timeframe: str
    reason: RetrainReason
    outcome: Outcome
    at_ms: int
    job: RetrainJob | None
    """The queued or merged-into job; None on COOLDOWN."""


class RetrainPolicy:
    """Turns trading, drift and signal events into a FIFO queue of retrain jobs."""

    def __init__(self, config: RetrainingConfig, automatic: bool = True) -> None:
        """``automatic=False`` (``continuous_learning.enabled: false``) queues manual jobs only."""
        self.config = config
        self.automatic = automatic
        self._cooldown_ms = round(config.min_interval_hours * HOUR_MS)
        self._queue: OrderedDict[ModelKey, RetrainJob] = OrderedDict()
        self._running: dict[ModelKey, RetrainJob] = {}
        self._last_finished: dict[ModelKey, int] = {}
        self._learning_streak: dict[ModelKey, int] = {}
        self.merged_total = 0
        self.cooldown_total = 0

    @classmethod
    def from_config(cls, config: ContinuousLearningConfig) -> RetrainPolicy:
        return cls(config.retraining, automatic=config.enabled)

    # --- triggers ------------------------------------------------------------------------------

    def on_trade_closed(
        self, symbol: str, tf: str, pnl: float, at_ms: int
    ) -> TriggerDecision | None:
        """A trade of this model closed; a loss triggers ``loss_immediate`` when on_loss."""
        if math.isnan(pnl):
            raise ValueError("pnl is NaN")
        if not (self.automatic and self.config.on_loss and pnl < 0):
            return None
        return self._trigger(symbol, tf, RetrainReason.LOSS_IMMEDIATE, at_ms)

    def on_drift(self, symbol: str, tf: str, score: float, at_ms: int) -> TriggerDecision | None:
        """The model's drift score; at or above ``drift_threshold`` triggers ``drift``."""
        if not (0.0 <= score <= 1.0):
            raise ValueError(f"drift score must be in [0, 1], got {score!r}")
        if not (self.automatic and score >= self.config.drift_threshold):
            return None
        return self._trigger(symbol, tf, RetrainReason.DRIFT, at_ms)

    def on_signal(
        self, symbol: str, tf: str, mode: Mode | str, at_ms: int
    ) -> TriggerDecision | None:
        """A signal at this model's event timeframe, in ``mode`` (after the mode update)."""
        key = _key(symbol, tf)
        trading = Mode(mode) is Mode.TRADING
        streak = self.count_signal(key, trading)
        if trading or not (self.automatic and streak >= self.config.patience):
            return None
        decision = self._trigger(symbol, tf, RetrainReason.LOW_CONFIDENCE, at_ms)
        if decision.outcome is not Outcome.COOLDOWN:
            self._learning_streak[key] = 0
        return decision

    def count_signal(self, key: ModelKey, trading: bool, n: int = 1) -> int:
        """The ``low_confidence`` streak rule alone: a TRADING signal resets the model's count,
        a LEARNING one adds to it; returns the new count. ``n`` signals in the same mode count
        as ``n`` calls (``n >= 1``). ``on_signal`` triggers on it; the block replay (which never
        retrains automatically) counts each model's signals between two mode transitions at
        once, so the counts a checkpoint holds are the same whichever path ran. ``key`` is not
        validated."""
        if trading:
            self._learning_streak[key] = 0
            return 0
        streak = self._learning_streak[key] = self._learning_streak.get(key, 0) + n
        return streak

    def request_manual(self, symbol: str, tf: str, at_ms: int) -> TriggerDecision:
        """An operator's request: queued even during a cooldown (merged if already queued)."""
        return self._trigger(symbol, tf, RetrainReason.MANUAL, at_ms, bypass_cooldown=True)

    # --- queue ---------------------------------------------------------------------------------

    def next_job(self) -> RetrainJob | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        if not self._queue:
            return None
        key, job = self._queue.popitem(last=False)
        self._running[key] = job
        return job

    def on_retrain_finished(self, symbol: str, tf: str, at_ms: int, success: bool) -> RetrainJob:
        """The running retrain of this model ended; its cooldown starts now either way.

        ``success`` is whether the new model was accepted; a rejected or failed retrain also
        starts the cooldown. Returns the finished job (with its final merge count).
        """
        key = _key(symbol, tf)
        job = self._running.pop(key, None)
        if job is None:
            raise ValueError(f"{model_name(symbol, tf)} is not retraining (call next_job first)")
        self._last_finished[key] = at_ms
        self._learning_streak[key] = 0
        return job

    def requeue_running(self) -> None:
        """After a restart: retrains that were running (in a worker) are queued again, first."""
        for key, job in reversed(list(self._running.items())):
            self._queue[key] = job
            self._queue.move_to_end(key, last=False)
        self._running.clear()

    def restore_cooldown(self, symbol: str, tf: str, finished_at_ms: int) -> None:
        """After a restart: the model's last retrain (from the store) ended at this time."""
        key = _key(symbol, tf)
        self._last_finished[key] = max(finished_at_ms, self._last_finished.get(key, 0))

    def cooldown_until(self, symbol: str, tf: str) -> int | None:
        """First time an automatic trigger is allowed again; None if never retrained."""
        last = self._last_finished.get(_key(symbol, tf))
        return None if last is None else last + self._cooldown_ms

    def in_cooldown(self, symbol: str, tf: str, at_ms: int) -> bool:
        until = self.cooldown_until(symbol, tf)
        return until is not None and at_ms < until

    def pending(self) -> tuple[RetrainJob, ...]:
        """Queued jobs, oldest first."""
        return tuple(self._queue.values())

    def running(self) -> tuple[RetrainJob, ...]:
        return tuple(self._running.values())

    def __len__(self) -> int:
        return len(self._queue)

    # --- internals -----------------------------------------------------------------------------

    def _trigger(
        self,
        symbol: str,
        tf: str,
        reason: RetrainReason,
        at_ms: int,
        bypass_cooldown: bool = False,
    ) -> TriggerDecision:
        key = _key(symbol, tf)
        for jobs in (self._queue, self._running):
            if key in jobs:
                jobs[key] = replace(jobs[key], merged=jobs[key].merged + 1)
                self.merged_total += 1
                return TriggerDecision(symbol, tf, reason, Outcome.MERGED, at_ms, jobs[key])
        if not bypass_cooldown and self.in_cooldown(symbol, tf, at_ms):
            self.cooldown_total += 1
            return TriggerDecision(symbol, tf, reason, Outcome.COOLDOWN, at_ms, None)
        job = self._queue[key] = RetrainJob(symbol, tf, reason, at_ms)
        return TriggerDecision(symbol, tf, reason, Outcome.QUEUED, at_ms, job)


def _key(symbol: str, tf: str) -> ModelKey:
    if tf not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {tf!r}; valid timeframes: {', '.join(TIMEFRAMES)}")
    return (symbol, tf)


def model_name(symbol: str, timeframe: str) -> str:
    """The guide's model name, ``BTC/USDT_1h``."""
    return f"{symbol}_{timeframe}"


# --- the guide's log lines ----------------------------------------------------------------------


def format_triggered(event: RetrainJob | TriggerDecision) -> str:
    """``[BTC/USDT @ 1h] Retraining triggered: loss_immediate``."""
    return f"[{event.symbol} @ {event.timeframe}] Retraining triggered: {event.reason.value}"


def format_started(job: RetrainJob) -> str:
    """``⚙ [BTC/USDT_1h] Starting retraining (reason: loss_immediate)``."""
    return f"⚙ [{job.model}] Starting retraining (reason: {job.reason.value})"


def format_succeeded(symbol: str, tf: str, confidence: float, duration_s: float) -> str:
    """``✓ [BTC/USDT_1h] Retraining successful! Confidence: 83.45%, Duration: 164.2s``."""
    return (
        f"✓ [{model_name(symbol, tf)}] Retraining successful! "
        f"Confidence: {_pct(confidence)}, Duration: {duration_s:.1f}s"
    )


def format_rejected(
    symbol: str, tf: str, confidence: float, current_confidence: float, duration_s: float
) -> str:
    """The challenger was not at least as good as the current model, which stays in service.

    ``✗ [BTC/USDT_1h] Retraining rejected: Confidence: 78.10% (current model: 81.20%),
    Duration: 150.3s; keeping the current model`` (one line). Same field layout as the
    success line, so both parse alike.
    """
    return (
        f"✗ [{model_name(symbol, tf)}] Retraining rejected: "
        f"Confidence: {_pct(confidence)} (current model: {_pct(current_confidence)}), "
        f"Duration: {duration_s:.1f}s; keeping the current model"
    )


def format_failed(symbol: str, tf: str, error: str, duration_s: float) -> str:
    """``✗ [BTC/USDT_1h] Retraining failed after 12.0s: <error>``; the current model stays."""
    return f"✗ [{model_name(symbol, tf)}] Retraining failed after {duration_s:.1f}s: {error}"


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"
