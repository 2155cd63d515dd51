"""Block replay: a whole block of minutes through the engine's rules in one pass.

``TradingEngine.on_candles`` handles one symbol's candle close at a time, which is what live
trading needs and costs ~110 us a minute in Python. A replay knows the block's candles in
advance, so this module takes a block (the runner's read-ahead, ``READ_AHEAD_MINUTES``) and:

1. predicts every close of the block per (symbol, timeframe) in one vectorised call and mixes
   the fresh predictions into each minute's raw P(up) column-wise (``block_signals``);
2. walks the minutes once, in event order, calling the rules the event engine calls: exits
   and entries on the books (``FastBook``), ``platt_one`` per event timeframe (mapped over the
   block's column for 1m), ``next_mode``/``ModeMachine.move`` (outside each model's
   ``hold_range``), ``RetrainPolicy.count_signal`` (each model's signals between transitions
   at once), the drawdown guard and the daily loss limit, equity samples; the walk batches
   around them, never restates them;
3. appends the same rows to the engine's outbox, built by the event path's row builders
   (plain tuples in the records' field order, timestamps formatted once per block), and
   writes the same log lines in one batch.

It is the same run as the event path, not an approximation: ``tests/engine/replay`` runs
backtests both ways (three fixed scenarios and random configs of every field
``block_support`` marks as walked) and compares every stored row, log line and the ledger.
The engine's objects stay the state (checkpoints and resumes do not know which path ran) and
the rare events (drawdown alert and rollback, the daily loss announcement) are handled by the
engine's own methods, with the books handed back to the brokers around the call.

Only for runs that never retrain automatically (``--no-retrain``): a retrain swaps a model in
at a moment that depends on the trades, which a block cannot know ahead. Drift monitors and
the prediction scorer's judgements feed nothing but those triggers, so they are not updated
here (``block_support.eligibility`` says why a run cannot use the block path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from candlewise.core.timeframes import MINUTE_MS, TIMEFRAME_MS, TIMEFRAMES
from candlewise.core.timestamps import minute_texts, ms_to_text
from candlewise.engine.replay.block_aggregation import SymbolBlock
from candlewise.engine.replay.block_signals import (
    KeyPredictions,
    SymbolMix,
    advance_latest,
    mix,
    predict_keys,
)
from candlewise.engine.replay.block_support import eligibility
from candlewise.engine.replay.fast_book import FastBook
from candlewise.engine.trading_engine import EQUITY_SAMPLE_MINUTES, TradingEngine
from candlewise.engine.trading_engine import log as engine_log
from candlewise.learning.modes import (
    Mode,
    ModeTransition,
    SymbolState,
    format_transition,
    hold_range,
    next_mode,
    trading_line,
)
from candlewise.models.calibration import PlattCalibrator, platt_one
from candlewise.risk.limits import DAY_MS
from candlewise.store.signal_store import prediction_rows
from candlewise.store.tables import confidence_history, timeframe_predictions
from candlewise.system.logging_setup import info_lines
from candlewise.trading.positions import ClosedTrade, closed_line, executed_line

_EQUITY_EVERY = EQUITY_SAMPLE_MINUTES * MINUTE_MS


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
        predictor = engine.predictor
        self.calibrators = predictor.aggregator.calibrators()
        calibrators = self.calibrators
        self.platt = {k: (c.a, c.b) for k, c in calibrators.items() if type(c) is PlattCalibrator}
        self.weighted = {tf for tf, w in predictor.weights.items() if w > 0.0}
        self.minute_index = {t: i for i, t in enumerate(times.tolist())}
        modes = engine.modes
        self.states: dict[str, SymbolState] = {
            symbol: state for symbol in mixes if (state := modes.state(symbol)) is not None
        }
        """The ``ModeMachine``'s state of each symbol observed so far (held, not looked up)."""
        self.ordering = engine.cfg.live_trading.enabled
        self.last_signal: dict[str, int] = {}
        """Each symbol's last signal time in this block (``SymbolState.last_ms`` at its end)."""
        self.uncounted: dict[tuple[str, str], int] = {}
        """Signals per model not yet given to ``RetrainPolicy.count_signal``: all in the mode
        their symbol has now (counted before any transition, rare event and at the end)."""

    def text(self, ms: int) -> str:
        found = self.texts.get(ms)
        return found if found is not None else ms_to_text(ms)

    def count_signals(self) -> None:
        """``RetrainPolicy.count_signal`` for the signals since the last call (in the order of
        each model's first one: the policy's counts end up as the event path leaves them)."""
        count_signal, states = self.engine.policy.count_signal, self.states
        for key, n in self.uncounted.items():
            count_signal(key, states[key[0]].mode is _TRADING, n)
        self.uncounted.clear()  # in place: the signal step holds it

    def finish(self) -> None:
        self.count_signals()
        modes = self.engine.modes
        for symbol, at_ms in self.last_signal.items():
            modes.state_at(symbol, at_ms)  # the time of the symbol's last signal, as observe
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
        stats = self.engine.stats
        real, shadow = self.real, self.shadow
        texts_get, text = self.texts.get, self.text
        candle_rows = self.engine.outbox.candle_rows
        self.store_predictions(blocks)
        signals, states = self.signal_step(), self.states
        only_1m = ("1m",) if "1m" in self.weighted else ()
        trading_minutes = stats.trading_minutes
        per = [(b.symbol, *(c.tolist() for c in b.minutes.columns()), b.closes) for b in blocks]
        current = day = -1
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
                current, day = now, now // DAY_MS
                now_text = texts_get(now) or text(now)
            stats.candles += 1
            o, h, lo, c = o_[row], h_[row], l_[row], c_[row]
            if candle_source is not None:
                candle_rows.append(
                    (symbol, "1m", open_ms, texts_get(open_ms) or text(open_ms), o, h, lo, c,
                     v_[row], candle_source)
                )  # fmt: skip
            higher = closes.get(row)
            events = only_1m if higher is None else self.close(symbol, higher, candle_source)
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
            if events:
                signals(symbol, events, now, now_text, day, c)
            state = states.get(symbol)
            if state is not None and state.mode is _TRADING:
                trading_minutes[symbol] = trading_minutes.get(symbol, 0) + 1
        if current >= 0:
            self.end_minute(current)

    def close(
        self, symbol: str, higher: Sequence[tuple[Any, ...]], candle_source: str | None
    ) -> list[str]:
        """The higher candles that closed with a minute: their log lines and rows; returns the
        event timeframes among all that closed (1m first): those with a weight give a signal."""
        weighted = self.weighted
        events = ["1m"] if "1m" in weighted else []
        lines, candle_rows, text = self.lines, self.engine.outbox.candle_rows, self.text
        for tf, b_open, b_o, b_h, b_l, b_c, b_v in higher:
            if tf in weighted:
                events.append(tf)
            lines.append(f"[{symbol} @ {tf}] Candle closed: O={b_o:.2f} C={b_c:.2f}")
            if candle_source is not None:
                candle_rows.append(
                    (symbol, tf, b_open, text(b_open), b_o, b_h, b_l, b_c, b_v, candle_source)
                )
        return events

    def store_predictions(self, blocks: Sequence[SymbolBlock]) -> None:
        """Every prediction of the block as a ``timeframe_predictions`` row, in event order
        (close time, symbol order, then timeframe order, 1m first). No decision of the walk
        changes them, so they are built in one go, with the event path's row builder."""
        rank = {b.symbol: i for i, b in enumerate(blocks)}
        minutes = self.times
        minute_texts = list(map(self.texts.__getitem__, minutes.tolist()))  # all there
        rows: list[tuple[object, ...]] = []
        times, ranks, tfs = [], [], []
        for (symbol, tf), kp in self.keys.items():
            p = np.asarray(kp.p_up, dtype=np.float64)
            keep = ~np.isnan(p)
            closes = (kp.bars.open_ms + TIMEFRAME_MS[tf])[keep]
            at = np.searchsorted(minutes, closes)  # each close ends a minute of the block
            texts = list(map(minute_texts.__getitem__, at.tolist()))
            rows += prediction_rows(symbol, tf, texts, p[keep], kp.version)
            times.append(closes)
            ranks.append(np.full(closes.size, rank[symbol]))
            tfs.append(np.full(closes.size, TIMEFRAMES.index(tf)))
        if rows:
            order = np.lexsort((np.concatenate(tfs), np.concatenate(ranks), np.concatenate(times)))
            self.prediction_rows.extend(map(rows.__getitem__, order.tolist()))

    def signal_step(self) -> Callable[[str, Sequence[str], int, str, int, float], None]:
        """``(symbol, event timeframes, now, its text, UTC day, price)``: the signal of each
        event timeframe, in order, through ``TradingEngine._on_signal``'s rules: the scalar
        calibration, ``next_mode``, the policy's streak, then a shadow trade or an order.
        A closure over the block's constants: the minute loop calls it every minute."""
        engine, lines, mixes, index = self.engine, self.lines, self.mixes, self.minute_index
        modes, stats, uncounted = engine.modes, engine.stats, self.uncounted
        count_later, count_signals = uncounted.get, self.count_signals
        minute_columns, holds = self.minute_columns(), self.hold_ranges()
        aggregated = self.aggregated_lines()
        threshold, exit_below = modes.threshold, modes.exit_below
        calibrators, platt, states = self.calibrators, self.platt, self.states
        shadow, real, rows, ordering = self.shadow, self.real, self.signal_rows, self.ordering
        transition, order, record_shadow = self.transition, self.order, self.record_shadow
        last_signal = self.last_signal

        def signals(
            symbol: str, events: Sequence[str], now: int, text: str, day: int, c: float
        ) -> None:
            mixed = mixes[symbol]
            k = index[now]
            raw = mixed.raw[k]
            if raw != raw:  # no timeframe is fresh: no signal
                return
            lines.append(aggregated[symbol][mixed.used[k]])
            state = states.get(symbol)
            if state is None:  # the first observation (``finish`` brings last_ms up to date)
                state = states[symbol] = modes.state_at(symbol, now)
            confidence = raw
            column = minute_columns.get(symbol)
            for tf in events:
                key = (symbol, tf)
                if column is not None and tf == "1m":
                    p, confidence = column[0][k], column[1][k]
                else:
                    ab = platt.get(key)
                    if ab is not None:
                        p = platt_one(ab[0], ab[1], raw)
                    else:
                        calibrator = calibrators.get(key)
                        p = calibrator.apply_one(raw) if calibrator is not None else raw
                    confidence = max(p, 1.0 - p)
                buy = p >= 0.5
                lo, hi = holds[key][state.mode is _TRADING]
                if confidence < lo or confidence >= hi:  # outside the band: next_mode decides
                    calibrated = key in calibrators
                    new = next_mode(state.mode, confidence, calibrated, threshold, exit_below)
                    if new is not None:
                        count_signals()  # in the mode they were given in
                        transition(modes.move(symbol, state, new, confidence, calibrated, now), tf)
                trading = state.mode is _TRADING
                uncounted[key] = count_later(key, 0) + 1
                if not trading:
                    if shadow.open or shadow.poor != (day, shadow.cash):
                        _opened, closed_trade = shadow.on_signal(
                            symbol, tf, TIMEFRAME_MS[tf], now, buy, confidence, c
                        )
                        if closed_trade is not None:
                            record_shadow(closed_trade)
                    # else: a flat book refused this cash today already (on_signal
                    # would only set the price the candle set)
                elif ordering and real.halt_reason is None:
                    order(symbol, tf, now, buy, confidence, c)
                rows.append(  # ``SignalRow``'s fields, as a plain tuple (``Outbox.take``)
                    (symbol, text, confidence, "BUY" if buy else "SELL",
                     "TRADING" if trading else "LEARNING")
                )  # fmt: skip
            stats.signals += len(events)
            stats.confidence[symbol] = confidence
            last_signal[symbol] = now

        return signals

    def minute_columns(self) -> dict[str, tuple[list[float], list[float]]]:
        """Each symbol's 1m signal at every minute of the block, calibrated (``platt_one``, or
        none without a calibrator) and its confidence, when 1m gives a signal every minute:
        mapped over the raw column at once instead of one call a minute."""
        if "1m" not in self.weighted:
            return {}
        columns = {}
        for symbol, mixed in self.mixes.items():
            key = (symbol, "1m")
            ab = self.platt.get(key)
            if ab is not None:
                p = list(map(platt_one, repeat(ab[0]), repeat(ab[1]), mixed.raw))
            elif key not in self.calibrators:
                p = mixed.raw
            else:
                continue  # another calibrator: its scalar method, signal by signal
            columns[symbol] = (p, list(map(max, p, map((1.0).__sub__, p))))
        return columns

    def aggregated_lines(self) -> dict[str, list[str]]:
        """Each symbol's "aggregated" log line for 0 to all timeframes mixed, formatted once."""
        counts = range(len(TIMEFRAMES) + 1)
        return {
            symbol: [f"[{symbol}] {n} timeframe predictions aggregated" for n in counts]
            for symbol in self.mixes
        }

    def hold_ranges(self) -> dict[tuple[str, str], tuple[tuple[float, float], ...]]:
        """Each model's ``hold_range`` in LEARNING and in TRADING (index ``mode is TRADING``)."""
        modes, calibrators = self.engine.modes, self.calibrators
        return {
            key: tuple(hold_range(m, key in calibrators, modes.threshold, modes.exit_below)
                       for m in _MODES)
            for key in ((symbol, tf) for symbol in self.mixes for tf in self.weighted)
        }  # fmt: skip

    def order(
        self, symbol: str, tf: str, now: int, buy: bool, confidence: float, price: float
    ) -> None:
        """A TRADING-mode signal on the real book (``TradingEngine._on_signal``'s last part)."""
        direction = "BUY" if buy else "SELL"
        lines = self.lines
        lines.append(trading_line(symbol, direction, confidence, self.engine.flavour))
        opened, closed_trade = self.real.on_signal(
            symbol, tf, TIMEFRAME_MS[tf], now, buy, confidence, price
        )
        if closed_trade is not None:
            lines.append(executed_line(direction, symbol, closed_trade.exit_price))
            self.record_trade(closed_trade)
        if opened is not None:
            lines.append(executed_line(direction, symbol, opened.entry_price))
            self.engine.stats.orders += 1
            self.engine.outbox.open_position(opened, self.engine.cfg.live_trading.mode, self.text)

    def transition(self, transition: ModeTransition, timeframe: str) -> None:
        """A transition ``ModeMachine.move`` made: counted, stored and logged as the engine does."""
        self.engine.stats.count_transition(transition.symbol)
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
        self.count_signals()
        self.flush_lines()
        self.real.save()
        self.shadow.save()
        call()
        self.real.load()
        self.shadow.load()


_TRADING = Mode.TRADING
_MODES = (Mode.LEARNING, Mode.TRADING)  # indexed by ``mode is _TRADING``


def _event_order(blocks: Sequence[SymbolBlock]) -> Iterable[tuple[int, int]]:
    """(symbol index, row) of every minute, by open time then symbol order (feed order)."""
    if len(blocks) == 1:
        return zip(repeat(0), range(len(blocks[0].minutes)), strict=False)
    opens = np.concatenate([b.minutes.open_ms for b in blocks])
    ranks = np.concatenate([np.full(len(b.minutes), i) for i, b in enumerate(blocks)])
    rows = np.concatenate([np.arange(len(b.minutes)) for b in blocks])
    order = np.lexsort((ranks, opens))
    return zip(ranks[order].tolist(), rows[order].tolist(), strict=True)
