"""The event engine: what happens when a candle closes, the same for replay, demo and live.

Per symbol and closed 1m candle (with the higher candles that closed with it, 1m first):
  1. the broker runs the exits of open positions on the 1m candle (stop-loss, horizon);
     every closed trade is stored and may trigger a ``loss_immediate`` retrain;
  2. every timeframe that closed predicts its next candle; the fresh predictions are combined
     into one signal per closed timeframe;
  3. each signal moves the symbol's TRADING/LEARNING mode; in TRADING it becomes an order
     (risk checked by the broker), in LEARNING a shadow trade on a separate paper book, scored
     the same way and stored apart (``shadow_trades``), so the system keeps measuring itself;
     every model's previous prediction is judged as its candle closes, and that error stream
     feeds its drift monitor (a ``drift`` retrain at ``drift_threshold``);
  4. mark-to-market equity feeds the drawdown guard: an alert at 80 % of the limit, at the limit
     everything is flattened and trading stops;
  5. queued retrains run (inline: deterministic, as replay needs) and a better model is swapped in.
The engine never reads the wall clock for decisions: times come from the candles. Wall time is
only measured for retrain durations, which are reported, never acted on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from candlewise.config import AppConfig
from candlewise.learning.drift import DriftMonitor
from candlewise.learning.modes import Mode, ModeMachine, format_trading_signal, format_transition
from candlewise.learning.retrain_policy import (
    RetrainJob,
    RetrainPolicy,
    format_started,
    format_succeeded,
    format_triggered,
    model_name,
)
from candlewise.learning.scoring import PredictionScorer
from candlewise.logging_setup import get_logger
from candlewise.market.candle import Candle
from candlewise.models.registry import ModelRegistry
from candlewise.retraining import retrain
from candlewise.risk.drawdown import DrawdownGuard
from candlewise.signals.aggregate import Signal, TimeframePrediction
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store.learning_store import RetrainAttempt, record_retrain, record_transition
from candlewise.store.signal_store import record_predictions, record_signals
from candlewise.store.trade_store import record_close, record_open, record_shadow
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade, closed_line

log = get_logger("engine")


@dataclass
class EngineStats:
    candles: int = 0
    signals: int = 0
    orders: int = 0
    transitions: int = 0
    transitions_by_symbol: dict[str, int] = field(default_factory=dict)
    retrains: dict[str, int] = field(default_factory=dict)
    retrains_accepted: int = 0
    errors: int = 0
    rollback: str | None = None


class TradingEngine:
    def __init__(
        self,
        cfg: AppConfig,
        store: Engine,
        registry: ModelRegistry,
        predictor: LivePredictor,
        broker: PaperBroker,
        *,
        retraining: bool = True,
        on_error: Callable[[str, str, Exception], None] | None = None,
        before_retrain: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.registry = registry
        self.predictor = predictor
        self.broker = broker
        self.modes = ModeMachine.from_config(cfg.continuous_learning.confidence)
        self.policy = RetrainPolicy.from_config(cfg.continuous_learning)
        self.drawdown = DrawdownGuard(cfg.risk.max_drawdown_percent)
        self.retraining = retraining and cfg.continuous_learning.enabled
        # Shadow book: LEARNING-mode signals trade here on paper only; its own risk state must
        # not stop the scoring, so only the daily loss limit is relaxed.
        shadow_risk = cfg.risk.model_copy(update={"daily_loss_limit": 0.99})
        self.shadow = PaperBroker(cfg.paper, shadow_risk, "paper")
        self.shadow_trades = 0
        self.scorer = PredictionScorer()
        self.drift: dict[tuple[str, str], DriftMonitor] = {}
        self.stats = EngineStats()
        self.closed_trades: list[ClosedTrade] = []
        self._on_error = on_error
        self._before_retrain = before_retrain  # e.g. write pending candles: retrains read them
        self._flavour = "live" if cfg.live_trading.mode == "live" else "paper"

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
            if self._on_error:
                self._on_error(minute.symbol, type(exc).__name__, exc)

    def _handle(self, minute: Candle, closed: Sequence[Candle]) -> None:
        symbol, now = minute.symbol, minute.close_time
        self.stats.candles += 1
        for bar in closed[1:]:
            log.info(
                "[%s @ %s] Candle closed: O=%.2f C=%.2f", symbol, bar.timeframe, bar.open, bar.close
            )
        trades = self.broker.on_candle(minute)
        shadows = self.shadow.on_candle(minute)
        predictions: list[TimeframePrediction] = []
        for bar in closed:
            self._score(bar)
            prediction = self.predictor.on_close(bar)
            if prediction is not None:
                predictions.append(prediction)
                self.scorer.expect(prediction, bar.close)
        signals = self.predictor.signals(symbol, now, [b.timeframe for b in closed])
        with self.store.begin() as conn:
            for trade in trades:
                self._record_trade(conn, trade, now)
            for trade in shadows:
                record_shadow(conn, trade)
            self.shadow_trades += len(shadows)
            record_predictions(conn, predictions)
            for signal in signals:
                self._on_signal(conn, signal, minute.close)
                record_signals(conn, [signal], mode=str(self.modes.mode(symbol)))
        self.stats.signals += len(signals)
        self._check_drawdown(now)
        if self.retraining:
            self._run_retrains(now)

    def _on_signal(self, conn, signal: Signal, price: float) -> None:  # type: ignore[no-untyped-def]
        transition = self.modes.observe(
            signal.symbol, signal.confidence, signal.timestamp, calibrated=signal.calibrated
        )
        if transition is not None:
            self.stats.transitions += 1
            by_symbol = self.stats.transitions_by_symbol
            by_symbol[signal.symbol] = by_symbol.get(signal.symbol, 0) + 1
            record_transition(conn, transition)
            log.info("%s", format_transition(transition, signal.timeframe))
        mode = self.modes.mode(signal.symbol)
        decision = self.policy.on_signal(signal.symbol, signal.timeframe, mode, signal.timestamp)
        if decision is not None:
            log.info("%s", format_triggered(decision))
        if mode != Mode.TRADING:
            shadow = self.shadow.on_signal(signal, price)
            if shadow.closed is not None:
                record_shadow(conn, shadow.closed)
                self.shadow_trades += 1
            return
        if not self.cfg.live_trading.enabled or self.broker.halted:
            return
        log.info("%s", format_trading_signal(signal, self._flavour))
        outcome = self.broker.on_signal(signal, price)
        for line in outcome.log_lines:
            log.info("%s", line)
        if outcome.closed is not None:
            self._record_trade(conn, outcome.closed, signal.timestamp)
        if outcome.opened is not None:
            self.stats.orders += 1
            record_open(conn, outcome.opened, self.cfg.live_trading.mode)

    def _record_trade(self, conn, trade: ClosedTrade, now: int) -> None:  # type: ignore[no-untyped-def]
        record_close(conn, trade)
        self.closed_trades.append(trade)
        log.info("%s", closed_line(trade))
        decision = self.policy.on_trade_closed(
            trade.symbol, trade.timeframe, trade.pnl_absolute, now
        )
        if decision is not None:
            log.info("%s", format_triggered(decision))

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
        if decision is not None:
            log.info("%s", format_triggered(decision))

    def _check_drawdown(self, now: int) -> None:
        event = self.drawdown.update(self.broker.equity(), now)
        if event is None:
            return
        log.critical("%s", event.message)
        if event.kind == "rollback":
            trades = self.broker.flatten_all(dict(self.broker.last_prices), now)
            with self.store.begin() as conn:
                for trade in trades:
                    self._record_trade(conn, trade, now)
            self.stats.rollback = event.message
            log.critical("Automatic rollback: all positions closed, trading stopped")

    def _run_retrains(self, now: int) -> None:
        while (job := self.policy.next_job()) is not None:
            accepted = False
            try:
                accepted = self._retrain(job, now)
            finally:  # a failed retrain must not leave the model stuck as "running"
                self.policy.on_retrain_finished(job.symbol, job.timeframe, now, accepted)
            if accepted and (job.symbol, job.timeframe) in self.drift:
                self.drift[(job.symbol, job.timeframe)].reset(now)  # a new model, a new baseline

    def _retrain(self, job: RetrainJob, now: int) -> bool:
        log.info("%s", format_started(job))
        self.stats.retrains[job.reason] = self.stats.retrains.get(job.reason, 0) + 1
        if self._before_retrain:
            self._before_retrain()
        slot = self.predictor.model_slot(job.symbol, job.timeframe)
        result = retrain(
            self.store,
            self.registry,
            self.cfg,
            job.symbol,
            job.timeframe,
            now,
            slot.model if slot else None,
        )
        if result.accepted and result.challenger is not None:
            self.stats.retrains_accepted += 1
            self.predictor.set_model(
                job.symbol, job.timeframe, ModelSlot(result.challenger, result.new_version)
            )
            log.info(
                "%s",
                format_succeeded(
                    job.symbol, job.timeframe, result.val_confidence or 0.0, result.duration_s
                ),
            )
        else:
            log.info(
                "✗ [%s] Retraining rejected: %s, Duration: %.1fs; keeping the current model",
                model_name(job.symbol, job.timeframe),
                result.reason,
                result.duration_s,
            )
        with self.store.begin() as conn:
            record_retrain(
                conn,
                RetrainAttempt(
                    job.symbol,
                    job.timeframe,
                    str(job.reason),
                    job.triggered_at_ms,
                    now,
                    result.duration_s,
                    result.accepted,
                    result.val_confidence,
                    result.val_accuracy,
                    slot.version if slot else None,
                    result.new_version,
                    None if result.accepted else result.reason,
                ),
            )
        return result.accepted
