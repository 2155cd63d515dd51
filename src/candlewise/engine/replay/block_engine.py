"""Block replay: a whole block of minutes through the engine's rules in one pass.

``TradingEngine.on_candles`` handles one symbol's candle close at a time, which is what live
trading needs and costs ~110 us a minute in Python. A replay knows the block's candles in
advance, so this module takes a block (the runner's read-ahead, ``READ_AHEAD_MINUTES``) and:

1. predicts every close of the block per (symbol, timeframe) in one vectorised call and mixes
   the fresh predictions into each minute's raw P(up) column-wise (``block_signals``);
2. walks the minutes once, in event order, with the rules of ``TradingEngine._handle`` and
   ``end_minute``: exits, signals (calibrated per event timeframe with the scalar calibrator),
   TRADING/LEARNING modes, orders on the real book and shadow trades on the shadow book
   (``FastBook``), the drawdown guard and the daily loss limit, equity samples;
3. appends the same rows to the engine's outbox (tuples, timestamps formatted once per block)
   and writes the same log lines in one batch.

It is the same run as the event path, not an approximation: ``tests/replay`` runs backtests
both ways and compares every stored row and the ledger. The engine's objects stay the state
(checkpoints and resumes do not know which path ran) and the rare events (drawdown alert and
rollback, the daily loss announcement) are handled by the engine's own methods, with the books
handed back to the brokers around the call.

Only for runs that never retrain automatically (``--no-retrain``): a retrain swaps a model in
at a moment that depends on the trades, which a block cannot know ahead. Drift monitors and
the prediction scorer's judgements feed nothing but those triggers, so they are not updated
here (``eligibility`` says why a run cannot use the block path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from math import exp, log, log1p

import numpy as np

from candlewise.core.timeframes import MINUTE_MS, TIMEFRAME_MS
from candlewise.core.timestamps import minute_texts, ms_to_text
from candlewise.engine.replay.block_aggregation import SymbolBlock
from candlewise.engine.replay.block_signals import (
    KeyPredictions,
    SymbolMix,
    advance_latest,
    mix,
    predict_keys,
)
from candlewise.engine.replay.fast_book import FastBook
from candlewise.engine.trading_engine import EQUITY_SAMPLE_MINUTES, TradingEngine
from candlewise.engine.trading_engine import log as engine_log
from candlewise.learning.modes import (
    Mode,
    ModeTransition,
    _pct,
    _SymbolState,
    format_transition,
)
from candlewise.models.calibration import EPS, PlattCalibrator
from candlewise.risk.limits import DAY_MS
from candlewise.store.tables import confidence_history, timeframe_predictions
from candlewise.system.logging_setup import info_lines
from candlewise.trading.positions import ClosedTrade, closed_line, executed_line
from candlewise.training.retrain_worker import InlineRetrainer

_EQUITY_EVERY = EQUITY_SAMPLE_MINUTES * MINUTE_MS
_ONE_MINUS_EPS = 1.0 - EPS


def eligibility(engine: TradingEngine) -> str | None:
    """Why ``engine`` cannot run blocks (None: it can)."""
    if engine.retraining:
        return "automatic retraining is on"
    if not isinstance(engine.retrainer, InlineRetrainer) or engine.policy.pending():
        return "retrains are queued or run in a worker"
    if engine.cfg.risk.min_edge_over_costs > 0:
        return "risk.min_edge_over_costs is on"
    for broker in (engine.broker, engine.shadow):
        if broker.mode != "paper" or not broker.reverse or broker.fill_hook is not None:
            return "the broker is not a plain paper broker"
    return None


class BlockReplay:
    def __init__(self, engine: TradingEngine) -> None:
        reason = eligibility(engine)
        if reason is not None:
            raise ValueError(f"block replay is not possible: {reason}")
        self.engine = engine

    def run(self, blocks: Sequence[SymbolBlock], candle_source: str | None = None) -> int:
        """Handle a block: each symbol's minutes (in the configured symbol order) and the
        higher candles they close, whole minutes only; ``candle_source`` labels the candles to
        store (None: stored already). Returns the close time of the last minute (ended)."""
        engine = self.engine
        predictor = engine.predictor
        keys = predict_keys(predictor, blocks)
        times = np.unique(np.concatenate([b.minutes.open_ms for b in blocks])) + MINUTE_MS
        mixes = {b.symbol: mix(predictor, b.symbol, times, keys) for b in blocks}
        advance_latest(predictor, engine.scorer, keys)
        texts = minute_texts(np.union1d(times - MINUTE_MS, times))
        walk = _Walk(engine, keys, mixes, times, texts)
        try:
            walk.run(blocks, candle_source)
        finally:
            walk.finish()
        return int(times[-1])


class _Walk:
    """The minute loop of one block (state in locals and the two ``FastBook``s)."""

    def __init__(
        self,
        engine: TradingEngine,
        keys: dict[tuple[str, str], KeyPredictions],
        mixes: dict[str, SymbolMix],
        times: np.ndarray,
        texts: dict[int, str],
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.mixes = mixes
        self.times = times
        self.texts = texts
        self.real = FastBook(engine.broker)
        self.shadow = FastBook(engine.shadow)
        self.lines: list[str] = []
        self.last_equity: float | None = None
        """Equity of the last ``DrawdownGuard.update`` (an update with it again is a no-op)."""
        rows = engine.outbox.rows
        self.signal_rows = rows[confidence_history]
        self.prediction_rows = rows[timeframe_predictions]

    def text(self, ms: int) -> str:
        found = self.texts.get(ms)
        return found if found is not None else ms_to_text(ms)

    def finish(self) -> None:
        self.real.save()
        self.shadow.save()
        self.flush_lines()

    def flush_lines(self) -> None:
        if self.lines:
            info_lines(engine_log, self.lines)
            self.lines.clear()  # in place: the minute loop holds this list

    def run(self, blocks: Sequence[SymbolBlock], candle_source: str | None) -> None:
        """``TradingEngine.on_candles`` for every minute of every symbol in event order (close
        time, then symbol order), ``end_minute`` at each minute's end."""
        engine = self.engine
        stats = engine.stats
        predictor = engine.predictor
        calibrators = predictor.aggregator.calibrators()
        platt = {key: (c.a, c.b) for key, c in calibrators.items() if type(c) is PlattCalibrator}
        weighted = {tf for tf, w in predictor.weights.items() if w > 0.0}
        modes = engine.modes
        states = modes._states
        threshold, exit_below = modes.threshold, modes.exit_below
        streaks = engine.policy._learning_streak
        real, shadow = self.real, self.shadow
        lines = self.lines
        text = self.text
        texts_get = self.texts.get
        keys = self.keys
        signal_rows, prediction_rows = self.signal_rows, self.prediction_rows
        candle_rows = engine.outbox.candle_rows
        trading_enabled = engine.cfg.live_trading.enabled
        flavour = engine._flavour
        position_mode = engine.cfg.live_trading.mode
        cursor = {key: iter(kp.p_up) for key, kp in keys.items()}
        versions = {key: kp.version for key, kp in keys.items()}
        minute_index = {t: i for i, t in enumerate(self.times.tolist())}
        trading_minutes = stats.trading_minutes
        learning, trading = Mode.LEARNING, Mode.TRADING
        per = [(b.symbol, *(c.tolist() for c in b.minutes.columns()), b.closes) for b in blocks]
        current = -1
        day = -1
        now_text = ""
        for si, row in _event_order(blocks):
            symbol, opens, o_, h_, l_, c_, v_, closes = per[si]
            open_ms = opens[row]
            now = open_ms + MINUTE_MS
            if now != current:
                if current >= 0 and (
                    real.open
                    or real.cash != self.last_equity
                    or real.blocked_day is not None
                    or current % _EQUITY_EVERY == 0
                ):  # otherwise end_minute would find nothing to do
                    self.end_minute(current)
                current = now
                day = now // DAY_MS
                now_text = texts_get(now) or text(now)
            stats.candles += 1
            o, h, lo, c = o_[row], h_[row], l_[row], c_[row]
            if candle_source is not None:
                candle_rows.append(
                    (symbol, "1m", open_ms, texts_get(open_ms) or text(open_ms), o, h, lo, c,
                     v_[row], candle_source)
                )  # fmt: skip
            higher = closes.get(row)
            if higher is None:
                timeframes: Sequence[str] = _ONLY_1M
            else:
                timeframes = ["1m"]
                for tf, b_open, b_o, b_h, b_l, b_c, b_v in higher:
                    timeframes.append(tf)
                    lines.append(f"[{symbol} @ {tf}] Candle closed: O={b_o:.2f} C={b_c:.2f}")
                    if candle_source is not None:
                        candle_rows.append(
                            (symbol, tf, b_open, text(b_open), b_o, b_h, b_l, b_c, b_v,
                             candle_source)
                        )  # fmt: skip
            if real.open:
                for trade in real.on_candle(symbol, open_ms, now, o, h, lo, c):
                    self.record_trade(trade)
            else:  # on_candle of a flat book; observing a seen (day, equity) changes nothing
                real.prices[symbol] = c
                if real.seen != (day, real.cash):
                    real.observe(real.cash, now)
            if shadow.open:
                for trade in shadow.on_candle(symbol, open_ms, now, o, h, lo, c):
                    self.record_shadow(trade)
            else:
                shadow.prices[symbol] = c
                if shadow.seen != (day, shadow.cash):
                    shadow.observe(shadow.cash, now)
            events = []
            for tf in timeframes:
                key = (symbol, tf)
                p = next(cursor[key])
                if p == p:  # a prediction (NaN: none)
                    prediction_rows.append(
                        (symbol, tf, now_text, p, p if p >= 0.5 else 1.0 - p,
                         "BUY" if p >= 0.5 else "SELL", versions[key])
                    )  # fmt: skip
                if tf in weighted:
                    events.append(tf)
            state = states.get(symbol)
            if events:
                sym_mix = self.mixes[symbol]
                k = minute_index[now]
                raw = sym_mix.raw[k]
                if raw == raw:  # some timeframe is fresh: one signal per event timeframe
                    lines.append(f"[{symbol}] {sym_mix.used[k]} timeframe predictions aggregated")
                    if state is None:  # ModeMachine.observe: first observation
                        state = states[symbol] = _SymbolState(learning, now, now)
                    for tf in events:
                        calibrator = calibrators.get((symbol, tf))
                        ab = platt.get((symbol, tf))
                        if ab is not None:  # PlattCalibrator.apply_one, inlined (hot)
                            q = min(max(raw, EPS), _ONE_MINUS_EPS)
                            z = ab[0] * (log(q) - log1p(-q)) + ab[1]
                            if z >= 0:
                                p = 1.0 / (1.0 + exp(-z))
                            else:
                                e = exp(z)
                                p = e / (1.0 + e)
                        else:
                            p = calibrator.apply_one(raw) if calibrator is not None else raw
                        buy = p >= 0.5
                        confidence = max(p, 1.0 - p)
                        state.last_ms = now
                        if state.mode is learning:
                            if calibrator is not None and confidence >= threshold:
                                self.transition(
                                    state, symbol, tf, trading, confidence, now,
                                    f"confidence {_pct(confidence)} >= threshold "
                                    f"{_pct(threshold)}",
                                )  # fmt: skip
                        elif confidence < exit_below:
                            reason = (
                                f"confidence {_pct(confidence)} < {_pct(exit_below)} (threshold "
                                f"{_pct(threshold)} - hysteresis {_pct(modes.hysteresis)})"
                            )
                            if calibrator is None:
                                reason += ", uncalibrated"
                            self.transition(state, symbol, tf, learning, confidence, now, reason)
                        mode = state.mode
                        key = (symbol, tf)  # RetrainPolicy.on_signal: the LEARNING streak
                        if mode is trading:
                            streaks[key] = 0
                            mode_name = "TRADING"
                        else:
                            streaks[key] = streaks.get(key, 0) + 1
                            mode_name = "LEARNING"
                        if mode is not trading:
                            if shadow.open or shadow.poor != (day, shadow.cash):
                                _opened, closed_trade = shadow.on_signal(
                                    symbol, tf, TIMEFRAME_MS[tf], now, buy, confidence, c
                                )
                                if closed_trade is not None:
                                    self.record_shadow(closed_trade)
                            # else: a flat book refused this cash today already (on_signal
                            # would only set the price the candle set)
                        elif trading_enabled and real.halt_reason is None:
                            self.order(symbol, tf, now, buy, confidence, c, flavour, position_mode)
                        signal_rows.append(
                            (symbol, now_text, confidence, "BUY" if buy else "SELL", mode_name)
                        )
                    stats.signals += len(events)
                    stats.confidence[symbol] = confidence
            if state is not None and state.mode is trading:
                trading_minutes[symbol] = trading_minutes.get(symbol, 0) + 1
        if current >= 0:
            self.end_minute(current)

    def order(
        self, symbol: str, tf: str, now: int, buy: bool, confidence: float, price: float,
        flavour: str, position_mode: str,
    ) -> None:  # fmt: skip
        """A TRADING-mode signal on the real book (``TradingEngine._on_signal``'s last part)."""
        direction = "BUY" if buy else "SELL"
        lines = self.lines
        lines.append(f"[{symbol}] TRADING MODE: {direction} @ {_pct(confidence)} ({flavour})")
        opened, closed_trade = self.real.on_signal(
            symbol, tf, TIMEFRAME_MS[tf], now, buy, confidence, price
        )
        if closed_trade is not None:
            lines.append(executed_line(direction, symbol, closed_trade.exit_price))
            self.record_trade(closed_trade)
        if opened is not None:
            lines.append(executed_line(direction, symbol, opened.entry_price))
            self.engine.stats.orders += 1
            self.engine.outbox.open_position(opened, position_mode, self.text)

    def transition(
        self,
        state: _SymbolState,
        symbol: str,
        timeframe: str,
        mode: Mode,
        confidence: float,
        now: int,
        reason: str,
    ) -> None:
        transition = ModeTransition(symbol, state.mode, mode, confidence, reason, now)
        state.mode = mode
        state.since_ms = now
        stats = self.engine.stats
        stats.transitions += 1
        stats.transitions_by_symbol[symbol] = stats.transitions_by_symbol.get(symbol, 0) + 1
        self.engine.outbox.transition(transition)
        self.lines.append(format_transition(transition, timeframe))

    def record_trade(self, trade: ClosedTrade) -> None:
        """``TradingEngine._record_trade`` (automatic retraining is off: no trigger)."""
        stats = self.engine.stats
        stats.trades += 1
        stats.wins += trade.outcome == "WIN"
        self.engine.outbox.close_trade(trade, self.text)
        self.lines.append(closed_line(trade))

    def record_shadow(self, trade: ClosedTrade) -> None:
        self.engine.outbox.shadow_trade(trade, self.text)
        self.engine.stats.shadow_trades += 1

    def end_minute(self, now: int) -> None:
        """``TradingEngine.end_minute`` (no retrains can be queued on this path)."""
        engine = self.engine
        real = self.real
        equity = real.equity() if real.open else real.cash
        if equity != self.last_equity:  # the same equity again changes nothing in the guard
            self.last_equity = equity
            event = engine.drawdown.update(equity, now)
            if event is not None:
                self._by_engine(lambda: engine.on_drawdown_event(event, now))
                self.last_equity = None
        if (
            real.blocked_day is not None
            and real.limits.blocked(now)
            and engine.stats.daily_loss_day != now // DAY_MS
        ):
            self._by_engine(lambda: engine.check_daily_loss(now))
        if now % _EQUITY_EVERY == 0:  # real.equity() again: a rare event may have moved the books
            engine.outbox.equity(
                engine.run_id, now, real.equity(), engine.drawdown.drawdown_percent, self.text
            )

    def _by_engine(self, call: Callable[[], None]) -> None:
        """Let the engine's own code handle a rare event, on the brokers' objects."""
        self.flush_lines()
        self.real.save()
        self.shadow.save()
        call()
        self.real.load()
        self.shadow.load()


_ONLY_1M = ("1m",)


def _event_order(blocks: Sequence[SymbolBlock]) -> Iterable[tuple[int, int]]:
    """(symbol index, row) of every minute, by open time then symbol order (feed order)."""
    if len(blocks) == 1:
        return zip(repeat(0), range(len(blocks[0].minutes)), strict=False)
    opens = np.concatenate([b.minutes.open_ms for b in blocks])
    ranks = np.concatenate([np.full(len(b.minutes), i) for i, b in enumerate(blocks)])
    rows = np.concatenate([np.arange(len(b.minutes)) for b in blocks])
    order = np.lexsort((ranks, opens))
    return zip(ranks[order].tolist(), rows[order].tolist(), strict=True)
