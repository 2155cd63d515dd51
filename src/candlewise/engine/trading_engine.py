"""The event engine: what happens when a candle closes, the same for replay, demo and live.

Per symbol and closed 1m candle (with the higher candles that closed with it, 1m first),
``on_candles``:
  1. the broker runs the exits of open positions on the 1m candle (stop-loss, horizon);
     every closed trade is stored and may trigger a ``loss_immediate`` retrain;
  2. every timeframe that closed predicts its next candle; the fresh predictions are combined
     into one signal per closed timeframe;
  3. each signal moves the symbol's TRADING/LEARNING mode; in TRADING it becomes an order
     (risk checked by the broker), in LEARNING a shadow trade on a separate paper book, scored
     the same way and stored apart (``shadow_trades``), so the system keeps measuring itself;
     every model's previous prediction is judged as its candle closes, and that error stream
     feeds its drift monitor (a ``drift`` retrain at ``drift_threshold``).
Once every symbol's candle of a minute is in, ``end_minute``:
  4. values the whole account mark-to-market for the drawdown guard (an alert at 80 % of the
     limit; at the limit everything is flattened and trading stops) and samples the equity;
  5. runs the queued retrains (inline: deterministic, as replay needs) and swaps a better model in.

Durability: events go to an :class:`Outbox`, written by the driver's checkpoint in one
transaction with a snapshot of every piece of state (``state``), so after a crash the run resumes
from the last checkpoint and recomputes what came after it: nothing lost, nothing written twice.
The engine never opens a transaction: the driver checkpoints on its own schedule and at each step
of ``retrain_steps`` (before and after every retrain: a retrain reads the stored candles and
registers a model, both must match the snapshot); an engine driven without checkpoints saves its
outbox there through its persistence port (``engine.persistence``).
The engine never reads the wall clock for decisions: times come from the candles. Wall time is
only measured for retrain durations, which are reported, never acted on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from candlewise.alerts.model import Alert
from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.persistence import EnginePersistence
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.drift import DriftMonitor
from candlewise.learning.modes import Mode, ModeMachine, format_trading_signal, format_transition
from candlewise.learning.retrain_policy import (
    Outcome,
    RetrainPolicy,
    TriggerDecision,
    format_failed,
    format_started,
    format_succeeded,
    format_triggered,
    model_name,
)
from candlewise.learning.scoring import PredictionScorer
from candlewise.risk.drawdown import DrawdownEvent, DrawdownGuard
from candlewise.risk.edge import check_edge, mean_abs_move, round_trip_cost
from candlewise.risk.limits import utc_day
from candlewise.signals.aggregate import Signal, TimeframePrediction
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store.learning_store import RetrainAttempt
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.outbox import Outbox
from candlewise.system.logging_setup import get_logger
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade, closed_line
from candlewise.training.retrain_worker import Retrainer, RetrainOutcome

log = get_logger("engine")

#: Equity is stored every this many candle minutes (``equity_history``: curve, Sharpe).
EQUITY_SAMPLE_MINUTES = 5


@dataclass
class EngineStats:
    candles: int = 0
    signals: int = 0
    orders: int = 0
    transitions: int = 0
    transitions_by_symbol: dict[str, int] = field(default_factory=dict)
    trading_minutes: dict[str, int] = field(default_factory=dict)
    retrains: dict[str, int] = field(default_factory=dict)
    retrains_accepted: int = 0
    shadow_trades: int = 0
    errors: int = 0
    rollback: str | None = None
    skipped_costs: int = 0
    """Signals not traded (nor shadow-traded) because their expected gain is below costs."""
    daily_loss_day: int | None = None
    """UTC day (days since the epoch) whose daily loss limit was last announced."""
    trades: int = 0
    wins: int = 0
    confidence: dict[str, float] = field(default_factory=dict)
    """Each symbol's last aggregated confidence (metrics endpoint)."""

    def count_transition(self, symbol: str) -> None:
        """A mode transition of ``symbol`` (both drivers count them here)."""
        self.transitions += 1
        self.transitions_by_symbol[symbol] = self.transitions_by_symbol.get(symbol, 0) + 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A snapshot from an older version lacks the newer counters: they start at zero."""
        self.__dict__.update({f.name: _default(f) for f in fields(self)} | state)


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


class TradingEngine:
    def __init__(
        self,
        cfg: AppConfig,
        persistence: EnginePersistence,
        registry: ModelRegistry,
        predictor: LivePredictor,
        broker: PaperBroker,
        *,
        retrainer: Retrainer,
        retraining: bool = True,
        outbox: Outbox | None = None,
        run_id: int | None = None,
        alert: Callable[[Alert], None] | None = None,
    ) -> None:
        """Built by ``engine.setup.new_engine`` (the store's adapters) or, in tests, with fakes."""
        self.cfg = cfg
        self.persistence = persistence
        self.registry = registry
        self.predictor = predictor
        self.broker = broker
        self.modes = ModeMachine.from_config(cfg.continuous_learning.confidence)
        self.retraining = retraining and cfg.continuous_learning.enabled
        # Automatic triggers only when retraining is on; manual requests are always honoured.
        self.policy = RetrainPolicy(cfg.continuous_learning.retraining, automatic=self.retraining)
        self.drawdown = DrawdownGuard(cfg.risk.max_drawdown_percent)
        # Shadow book: LEARNING-mode signals trade here on paper only; its own risk state must
        # not stop the scoring, so only the daily loss limit is relaxed.
        shadow_risk = cfg.risk.model_copy(update={"daily_loss_limit": 0.99})
        self.shadow = PaperBroker(cfg.paper, shadow_risk, "paper")
        self.scorer = PredictionScorer()
        self.drift: dict[tuple[str, str], DriftMonitor] = {}
        self.stats = EngineStats()
        self.outbox = outbox if outbox is not None else Outbox()
        self.run_id = run_id
        self._flavour = "live" if cfg.live_trading.mode == "live" else "paper"
        self.retrainer = retrainer
        self.alert = alert
        self._cost = round_trip_cost(cfg.paper.fee_rate, cfg.paper.slippage)
        """Where alerts go (a deployment's dispatcher); the log always gets them."""

    @property
    def flavour(self) -> str:
        """``live`` or ``paper``: how the ``TRADING MODE`` lines name the orders."""
        return self._flavour

    # --- events --------------------------------------------------------------------------------

    def on_candles(self, closed: Sequence[Candle]) -> None:
        """One symbol's candles that closed at one moment, 1m first (the recorder's output).

        An exception here is recorded and counted; it never stops the other symbols.
        """
        if not closed:
            return
        minute = closed[0]
        try:
            self._handle(minute, closed)
        except Exception as exc:  # one symbol's fault must not stop the run
            self.stats.errors += 1
            log.error("[%s] Error handling candle at %d: %s", minute.symbol, minute.close_time, exc)
            self.outbox.error(type(exc).__name__, str(exc), minute.symbol, minute.close_time)
        if self.modes.mode(minute.symbol) == Mode.TRADING:
            minutes = self.stats.trading_minutes
            minutes[minute.symbol] = minutes.get(minute.symbol, 0) + 1

    def end_minute(self, now: int) -> None:
        """Every symbol's candle of the minute closing at ``now`` has been handled (a driver
        with checkpoints calls ``settle_minute`` and steps through ``retrain_steps`` itself)."""
        self.settle_minute(now)
        self.run_retrains(now)  # manual requests run even with automatic retraining off

    def settle_minute(self, now: int) -> None:
        """The minute's account rules: drawdown guard, daily loss, equity sample."""
        self._check_drawdown(now)
        self.check_daily_loss(now)
        if now % (EQUITY_SAMPLE_MINUTES * MINUTE_MS) == 0:
            self.outbox.equity(
                self.run_id, now, self.broker.equity(), self.drawdown.drawdown_percent
            )

    def _handle(self, minute: Candle, closed: Sequence[Candle]) -> None:
        symbol, now = minute.symbol, minute.close_time
        self.stats.candles += 1
        for bar in closed[1:]:
            log.info(
                "[%s @ %s] Candle closed: O=%.2f C=%.2f", symbol, bar.timeframe, bar.open, bar.close
            )
        for trade in self.broker.on_candle(minute):
            self._record_trade(trade, now)
        for trade in self.shadow.on_candle(minute):
            self._record_shadow(trade)
        predictions: list[TimeframePrediction] = []
        for bar in closed:
            self._score(bar)
            prediction = self.predictor.on_close(bar)
            if prediction is not None:
                predictions.append(prediction)
                self.scorer.expect(prediction, bar.close)
        self.outbox.predictions(predictions)
        signals = self.predictor.signals(symbol, now, [b.timeframe for b in closed])
        for signal in signals:
            self._on_signal(signal, minute.close)
            self.outbox.signal(signal, str(self.modes.mode(symbol)))
        self.stats.signals += len(signals)

    def _on_signal(self, signal: Signal, price: float) -> None:
        transition = self.modes.observe(
            signal.symbol, signal.confidence, signal.timestamp, calibrated=signal.calibrated
        )
        if transition is not None:
            self.stats.count_transition(signal.symbol)
            self.outbox.transition(transition)
            log.info("%s", format_transition(transition, signal.timeframe))
        self.stats.confidence[signal.symbol] = signal.confidence
        mode = self.modes.mode(signal.symbol)
        decision = self.policy.on_signal(signal.symbol, signal.timeframe, mode, signal.timestamp)
        self._log_trigger(decision)
        min_edge = self.cfg.risk.min_edge_over_costs
        if min_edge > 0 and not self._pays_costs(signal, min_edge):
            self.stats.skipped_costs += 1  # a trade that cannot pay its costs: no order, no shadow
            return
        if mode != Mode.TRADING:
            shadow = self.shadow.on_signal(signal, price)
            if shadow.closed is not None:
                self._record_shadow(shadow.closed)
            return
        if not self.cfg.live_trading.enabled or self.broker.halted:
            return
        log.info("%s", format_trading_signal(signal, self._flavour))
        outcome = self.broker.on_signal(signal, price)
        for line in outcome.log_lines:
            log.info("%s", line)
        if outcome.closed is not None:  # its "Trade closed" line is among the outcome's lines
            self._record_trade(outcome.closed, signal.timestamp, log_line=False)
        if outcome.opened is not None:
            self.stats.orders += 1
            self.outbox.open_position(outcome.opened, self.cfg.live_trading.mode)

    def _pays_costs(self, signal: Signal, min_edge: float) -> bool:
        closes = self.predictor.closes(signal.symbol, signal.timeframe)
        return check_edge(signal.confidence, mean_abs_move(closes), self._cost, min_edge).passes

    def _record_trade(self, trade: ClosedTrade, now: int, *, log_line: bool = True) -> None:
        self.stats.trades += 1
        self.stats.wins += trade.outcome == "WIN"
        self.outbox.close_trade(trade)
        if log_line:
            log.info("%s", closed_line(trade))
        decision = self.policy.on_trade_closed(
            trade.symbol, trade.timeframe, trade.pnl_absolute, now
        )
        self._log_trigger(decision)

    @staticmethod
    def _log_trigger(decision: TriggerDecision | None) -> None:
        """``Retraining triggered`` for a new job only; merges and cooldowns are counted by
        the policy, not logged (a model in LEARNING would log one per signal)."""
        if decision is not None and decision.outcome is Outcome.QUEUED:
            log.info("%s", format_triggered(decision))

    def _record_shadow(self, trade: ClosedTrade) -> None:
        self.outbox.shadow_trade(trade)
        self.stats.shadow_trades += 1

    def _score(self, bar: Candle) -> None:
        """Judge the model's previous prediction on this candle and update its drift score."""
        scored = self.scorer.resolve(bar)
        if scored is None:
            return
        key = (bar.symbol, bar.timeframe)
        monitor = self.drift.get(key)
        if monitor is None:
            monitor = self.drift[key] = DriftMonitor(at_ms=bar.close_time)
        score = monitor.update(0.0 if scored.correct else 1.0, None, bar.close_time)
        decision = self.policy.on_drift(bar.symbol, bar.timeframe, score, bar.close_time)
        self._log_trigger(decision)

    def _check_drawdown(self, now: int) -> None:
        event = self.drawdown.update(self.broker.equity(), now)
        if event is not None:
            self.on_drawdown_event(event, now)

    def on_drawdown_event(self, event: DrawdownEvent, now: int) -> None:
        """The alert at 80 % of the limit; at the limit also the rollback."""
        self._alert("CRITICAL", "drawdown", event.message.split(": ", 1)[-1], now)
        if event.kind == "rollback":
            self.rollback(now, event.message)

    def check_daily_loss(self, now: int) -> None:
        """Announce (log and alert) the first minute of a UTC day blocked by the daily loss."""
        limits = self.broker.limits
        day = utc_day(now)
        if not limits.blocked(now) or self.stats.daily_loss_day == day:
            return
        self.stats.daily_loss_day = day
        loss = limits.daily_loss(self.broker.equity()) * 100
        message = (
            f"Daily loss limit reached: equity {loss:.2f}% below the day's start "
            f"(limit {self.cfg.risk.daily_loss_limit * 100:g}%); no new entries until 00:00 UTC"
        )
        self._alert("WARNING", "daily_loss", message, now)

    def _alert(self, level: str, kind: str, message: str, now: int) -> None:
        """To the alert sink, which logs it too; without one, to the log alone."""
        alert = Alert(level, kind, message, at=datetime.fromtimestamp(now / 1000, tz=UTC))  # type: ignore[arg-type]
        if self.alert is not None:
            self.alert(alert)
        else:
            log.log(logging.CRITICAL if level == "CRITICAL" else logging.WARNING, "%s", alert.text)

    def rollback(self, now: int, reason: str) -> None:
        """Flatten every position at the last prices and stop new entries, for good."""
        prices = dict(self.broker.last_prices)
        for trade in self.broker.flatten_all(prices, now, reason=reason):
            self._record_trade(trade, now)
        if self.stats.rollback is None:
            self.stats.rollback = reason
        log.critical("Automatic rollback: all positions closed, trading stopped (%s)", reason)

    # --- retraining ----------------------------------------------------------------------------

    def run_retrains(self, now: int) -> None:
        """``retrain_steps``, the outbox saved through the port at each step."""
        for _ in self.retrain_steps(now):
            self.persistence.save(self.outbox)

    def retrain_steps(self, now: int) -> Iterator[None]:
        """Start the queued retrains and apply the finished ones, pausing (yielding) wherever
        the run must be durable: the driver checkpoints at each pause.

        Inline (replay): each runs now, between two checkpoints (see the module doc). In a
        worker process (live): they start now and are applied at a later minute, as they
        finish; the event loop never waits for one.
        """
        yield from self._apply(self.retrainer.poll(), now)
        while self.policy.pending():
            yield  # the retrain reads stored candles; a crash redoes it
            job = self.policy.next_job()
            assert job is not None
            log.info("%s", format_started(job))
            self.stats.retrains[job.reason] = self.stats.retrains.get(job.reason, 0) + 1
            self.retrainer.submit(job, now, self.predictor.model_slot(job.symbol, job.timeframe))
            yield from self._apply(self.retrainer.poll(), now)

    def _apply(self, outcomes: list[RetrainOutcome], now: int) -> Iterator[None]:
        for outcome in outcomes:
            job, result = outcome.job, outcome.result
            self.policy.on_retrain_finished(job.symbol, job.timeframe, now, outcome.accepted)
            for line in result.training_lines if result is not None else ():
                log.info("%s", line)
            slot = outcome.slot
            if slot is not None:
                self.stats.retrains_accepted += 1
                self.predictor.set_model(job.symbol, job.timeframe, slot)
                if (job.symbol, job.timeframe) in self.drift:  # a new model, a new baseline
                    self.drift[(job.symbol, job.timeframe)].reset(now)
                confidence = result.val_confidence if result else None
                line = format_succeeded(
                    job.symbol, job.timeframe, confidence or 0.0, outcome.duration_s
                )
            elif result is None:
                line = format_failed(
                    job.symbol, job.timeframe, outcome.error or "unknown", outcome.duration_s
                )
            else:
                line = (
                    f"✗ [{model_name(job.symbol, job.timeframe)}] Retraining rejected: "
                    f"{result.reason}, Duration: {outcome.duration_s:.1f}s; "
                    "keeping the current model"
                )
            log.info("%s", line)
            self.outbox.retrain(
                RetrainAttempt(
                    job.symbol,
                    job.timeframe,
                    str(job.reason),
                    job.triggered_at_ms,
                    now,
                    outcome.duration_s,
                    outcome.accepted,
                    result.val_confidence if result else None,
                    result.val_accuracy if result else None,
                    outcome.champion_version,
                    result.new_version if result else None,
                    None if outcome.accepted else (result.reason if result else outcome.error),
                )
            )
            yield

    def queue_manual_retrains(self, now: int, requests: Sequence[tuple[str, str]]) -> int:
        """Queue ``candlewise retrain`` requests (symbol, timeframe): a live driver's minute
        hook takes them from the store (``engine.runner.manual_retrain_hook``); replays do not,
        they are reproducible experiments."""
        for symbol, timeframe in requests:
            decision = self.policy.request_manual(symbol, timeframe, now)
            log.info("%s", format_triggered(decision))
        return len(requests)

    # --- durability ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Save the outbox through the port, without a snapshot (callers that do not resume,
        e.g. tests)."""
        self.persistence.save(self.outbox)

    def state(self) -> dict[str, Any]:
        """Everything in memory the run needs to continue exactly (pickled into a checkpoint)."""
        return {
            "broker": self.broker,
            "shadow": self.shadow,
            "modes": self.modes,
            "policy": self.policy,
            "drawdown": self.drawdown,
            "scorer": self.scorer,
            "drift": self.drift,
            "stats": self.stats,
            "predictor": self.predictor.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the models are reloaded from the registry by version."""
        self.broker = state["broker"]
        self.shadow = state["shadow"]
        self.modes = state["modes"]
        self.policy = state["policy"]
        self.drawdown = state["drawdown"]
        self.scorer = state["scorer"]
        self.drift = state["drift"]
        self.stats = state["stats"]
        self.policy.requeue_running()  # retrains a worker had not finished: start them again
        predictor = state["predictor"]
        models = {}
        for (symbol, tf), version in predictor["versions"].items():
            if version is None:
                continue
            self.registry.discard_newer(symbol, tf, version)
            loaded = self.registry.load_version(symbol, tf, version, FEATURE_SPEC.fingerprint)
            if loaded is not None:
                models[(symbol, tf)] = ModelSlot(loaded.model, version)
        self.predictor.restore(predictor, models)
