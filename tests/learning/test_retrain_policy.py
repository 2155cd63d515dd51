"""When models retrain: each trigger, the cooldown boundary, queue dedupe and order, log lines."""

from __future__ import annotations

import pytest

from candlewise.config.app_config import ContinuousLearningConfig, RetrainingConfig
from candlewise.learning.modes import Mode
from candlewise.learning.retrain_policy import (
    HOUR_MS,
    Outcome,
    RetrainJob,
    RetrainPolicy,
    RetrainReason,
    format_failed,
    format_rejected,
    format_started,
    format_succeeded,
    format_triggered,
)

T0 = 1_735_689_600_000
MIN = 60_000
BTC, ETH = "BTC/USDT", "ETH/USDT"


def policy(**overrides: object) -> RetrainPolicy:
    return RetrainPolicy(RetrainingConfig(**overrides))  # type: ignore[arg-type]


def finish(p: RetrainPolicy, symbol: str, tf: str, at_ms: int, success: bool = True) -> None:
    job = p.next_job()
    assert job is not None and (job.symbol, job.timeframe) == (symbol, tf)
    p.on_retrain_finished(symbol, tf, at_ms, success)


# --- triggers ----------------------------------------------------------------------------------


def test_losing_trade_triggers_loss_immediate() -> None:
    p = policy()
    d = p.on_trade_closed(BTC, "1h", -23.4, T0)
    assert d is not None and d.outcome is Outcome.QUEUED
    assert p.next_job() == RetrainJob(BTC, "1h", RetrainReason.LOSS_IMMEDIATE, T0)
    assert RetrainReason.LOSS_IMMEDIATE == "loss_immediate"


def test_winning_or_break_even_trade_triggers_nothing() -> None:
    p = policy()
    assert p.on_trade_closed(BTC, "1h", 45.2, T0) is None
    assert p.on_trade_closed(BTC, "1h", 0.0, T0) is None
    assert p.next_job() is None


def test_on_loss_false_never_retrains_on_a_loss() -> None:
    p = policy(on_loss=False)
    assert p.on_trade_closed(BTC, "1h", -100.0, T0) is None
    assert len(p) == 0 and p.next_job() is None
    assert p.on_drift(BTC, "1h", 0.9, T0) is not None  # other triggers still work


def test_drift_at_threshold_triggers() -> None:
    p = policy(drift_threshold=0.70)
    assert p.on_drift(BTC, "4h", 0.6999, T0) is None
    d = p.on_drift(BTC, "4h", 0.70, T0)
    assert d is not None and d.reason == "drift" and d.outcome is Outcome.QUEUED
    with pytest.raises(ValueError):
        p.on_drift(BTC, "4h", 1.2, T0)


def test_low_confidence_after_patience_consecutive_learning_signals_of_that_model() -> None:
    p = policy(patience=3)
    assert p.on_signal(BTC, "1h", Mode.LEARNING, T0) is None
    assert p.on_signal(BTC, "1h", "LEARNING", T0 + HOUR_MS) is None
    assert p.on_signal(BTC, "4h", Mode.LEARNING, T0 + HOUR_MS) is None  # another model's count
    d = p.on_signal(BTC, "1h", Mode.LEARNING, T0 + 2 * HOUR_MS)
    assert d is not None and d.reason == "low_confidence" and d.outcome is Outcome.QUEUED
    assert p.pending() == (RetrainJob(BTC, "1h", RetrainReason.LOW_CONFIDENCE, T0 + 2 * HOUR_MS),)


def test_a_trading_signal_resets_the_learning_count() -> None:
    p = policy(patience=3)
    p.on_signal(BTC, "1h", Mode.LEARNING, T0)
    p.on_signal(BTC, "1h", Mode.LEARNING, T0 + 1)
    p.on_signal(BTC, "1h", Mode.TRADING, T0 + 2)
    assert p.on_signal(BTC, "1h", Mode.LEARNING, T0 + 3) is None
    assert p.on_signal(BTC, "1h", Mode.LEARNING, T0 + 4) is None
    assert p.on_signal(BTC, "1h", Mode.LEARNING, T0 + 5) is not None


def test_low_confidence_waits_out_the_cooldown_then_fires_at_once() -> None:
    p = policy(patience=2, min_interval_hours=1.0)
    p.request_manual(BTC, "1m", T0)
    finish(p, BTC, "1m", T0)
    outcomes = [p.on_signal(BTC, "1m", Mode.LEARNING, T0 + k * MIN) for k in (20, 40, 59)]
    assert outcomes[0] is None
    assert [d.outcome for d in outcomes[1:] if d] == [Outcome.COOLDOWN, Outcome.COOLDOWN]
    d = p.on_signal(BTC, "1m", Mode.LEARNING, T0 + HOUR_MS)
    assert d is not None and d.outcome is Outcome.QUEUED


def test_manual_request() -> None:
    p = policy()
    d = p.request_manual(ETH, "1d", T0)
    assert d.outcome is Outcome.QUEUED and d.reason == "manual"
    assert p.next_job() == RetrainJob(ETH, "1d", RetrainReason.MANUAL, T0)


def test_unknown_timeframe_is_rejected() -> None:
    with pytest.raises(ValueError, match="1H"):
        policy().on_drift(BTC, "1H", 0.9, T0)


def test_disabled_continuous_learning_queues_manual_jobs_only() -> None:
    p = RetrainPolicy.from_config(ContinuousLearningConfig(enabled=False))
    assert p.on_trade_closed(BTC, "1h", -1.0, T0) is None
    assert p.on_drift(BTC, "1h", 1.0, T0) is None
    for _ in range(20):
        assert p.on_signal(BTC, "1h", Mode.LEARNING, T0) is None
    assert p.request_manual(BTC, "1h", T0).outcome is Outcome.QUEUED


# --- cooldown ----------------------------------------------------------------------------------


def test_cooldown_boundary_is_inclusive() -> None:
    p = policy(min_interval_hours=2.0)
    p.on_trade_closed(BTC, "1h", -1.0, T0)
    finish(p, BTC, "1h", T0 + 3 * MIN)  # cooldown counts from the end of the retrain
    until = T0 + 3 * MIN + 2 * HOUR_MS
    assert p.cooldown_until(BTC, "1h") == until
    d = p.on_trade_closed(BTC, "1h", -1.0, until - 1)
    assert d is not None and d.outcome is Outcome.COOLDOWN and d.job is None
    assert p.in_cooldown(BTC, "1h", until - 1) and not p.in_cooldown(BTC, "1h", until)
    d = p.on_trade_closed(BTC, "1h", -1.0, until)
    assert d is not None and d.outcome is Outcome.QUEUED
    assert p.cooldown_total == 1


def test_cooldown_is_per_model() -> None:
    p = policy(min_interval_hours=1.0)
    p.on_trade_closed(BTC, "1h", -1.0, T0)
    finish(p, BTC, "1h", T0)
    assert p.on_trade_closed(BTC, "4h", -1.0, T0 + 1).outcome is Outcome.QUEUED  # type: ignore[union-attr]
    assert p.on_trade_closed(ETH, "1h", -1.0, T0 + 1).outcome is Outcome.QUEUED  # type: ignore[union-attr]
    assert p.on_trade_closed(BTC, "1h", -1.0, T0 + 1).outcome is Outcome.COOLDOWN  # type: ignore[union-attr]


def test_a_rejected_retrain_also_starts_the_cooldown() -> None:
    p = policy(min_interval_hours=1.0)
    p.on_drift(BTC, "1h", 0.9, T0)
    finish(p, BTC, "1h", T0 + MIN, success=False)
    assert p.on_drift(BTC, "1h", 0.9, T0 + 2 * MIN).outcome is Outcome.COOLDOWN  # type: ignore[union-attr]


def test_manual_bypasses_the_cooldown() -> None:
    p = policy(min_interval_hours=24.0)
    p.on_trade_closed(BTC, "1h", -1.0, T0)
    finish(p, BTC, "1h", T0)
    assert p.in_cooldown(BTC, "1h", T0 + MIN)
    d = p.request_manual(BTC, "1h", T0 + MIN)
    assert d.outcome is Outcome.QUEUED
    assert p.next_job() == RetrainJob(BTC, "1h", RetrainReason.MANUAL, T0 + MIN)


def test_zero_interval_means_no_cooldown() -> None:
    p = policy(min_interval_hours=0.0)
    p.on_trade_closed(BTC, "1h", -1.0, T0)
    finish(p, BTC, "1h", T0 + MIN)
    assert p.on_trade_closed(BTC, "1h", -1.0, T0 + MIN).outcome is Outcome.QUEUED  # type: ignore[union-attr]


def test_restored_cooldown_survives_a_restart() -> None:
    p = policy(min_interval_hours=1.0)
    p.restore_cooldown(BTC, "1h", T0)
    assert p.on_drift(BTC, "1h", 0.9, T0 + 59 * MIN).outcome is Outcome.COOLDOWN  # type: ignore[union-attr]
    assert p.on_drift(BTC, "1h", 0.9, T0 + 60 * MIN).outcome is Outcome.QUEUED  # type: ignore[union-attr]


# --- queue -------------------------------------------------------------------------------------


def test_queue_never_holds_a_model_twice_and_keeps_the_first_reason() -> None:
    p = policy()
    first = p.on_trade_closed(BTC, "1h", -1.0, T0)
    assert first is not None and first.outcome is Outcome.QUEUED
    d = p.on_drift(BTC, "1h", 0.95, T0 + MIN)
    assert d is not None and d.outcome is Outcome.MERGED and d.reason == "drift"
    m = p.request_manual(BTC, "1h", T0 + 2 * MIN)
    assert m.outcome is Outcome.MERGED
    assert p.pending() == (RetrainJob(BTC, "1h", RetrainReason.LOSS_IMMEDIATE, T0, merged=2),)
    assert p.merged_total == 2 and len(p) == 1


def test_trigger_while_retraining_is_merged_into_the_running_job() -> None:
    p = policy(min_interval_hours=0.0)
    p.on_trade_closed(BTC, "1h", -1.0, T0)
    running = p.next_job()
    assert running is not None and p.running() == (running,)
    d = p.on_trade_closed(BTC, "1h", -2.0, T0 + MIN)
    assert d is not None and d.outcome is Outcome.MERGED and len(p) == 0
    done = p.on_retrain_finished(BTC, "1h", T0 + 3 * MIN, success=True)
    assert done.merged == 1 and p.running() == ()


def test_jobs_come_out_first_in_first_out() -> None:
    p = policy()
    p.on_drift(ETH, "4h", 0.8, T0)
    p.on_trade_closed(BTC, "1h", -1.0, T0 + 1)
    p.request_manual(BTC, "1d", T0 + 2)
    p.on_drift(ETH, "4h", 0.9, T0 + 3)  # merged: does not move ETH 4h back
    order = [(j.symbol, j.timeframe, j.reason) for j in iter(p.next_job, None)]
    assert order == [
        (ETH, "4h", RetrainReason.DRIFT),
        (BTC, "1h", RetrainReason.LOSS_IMMEDIATE),
        (BTC, "1d", RetrainReason.MANUAL),
    ]


def test_finishing_a_model_that_is_not_retraining_is_an_error() -> None:
    p = policy()
    p.on_trade_closed(BTC, "1h", -1.0, T0)  # queued, not yet started
    with pytest.raises(ValueError, match="not retraining"):
        p.on_retrain_finished(BTC, "1h", T0, success=True)


# --- the guide's log lines ---------------------------------------------------------------------


def test_guide_log_lines() -> None:
    job = RetrainJob(BTC, "1h", RetrainReason.LOSS_IMMEDIATE, T0)
    assert format_triggered(job) == "[BTC/USDT @ 1h] Retraining triggered: loss_immediate"
    assert format_started(job) == "⚙ [BTC/USDT_1h] Starting retraining (reason: loss_immediate)"
    assert format_succeeded(BTC, "1h", 0.8345, 164.2) == (
        "✓ [BTC/USDT_1h] Retraining successful! Confidence: 83.45%, Duration: 164.2s"
    )
    assert format_succeeded(BTC, "4h", 0.8123, 191.49) == (
        "✓ [BTC/USDT_4h] Retraining successful! Confidence: 81.23%, Duration: 191.5s"
    )
    assert format_rejected(BTC, "1h", 0.781, 0.812, 150.26) == (
        "✗ [BTC/USDT_1h] Retraining rejected: Confidence: 78.10% (current model: 81.20%), "
        "Duration: 150.3s; keeping the current model"
    )
    assert format_failed(BTC, "1h", "out of memory", 12.0) == (
        "✗ [BTC/USDT_1h] Retraining failed after 12.0s: out of memory"
    )
    d = policy().on_drift(ETH, "4h", 0.9, T0)
    assert d is not None and format_triggered(d) == "[ETH/USDT @ 4h] Retraining triggered: drift"
