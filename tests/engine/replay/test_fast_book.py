"""``FastBook`` follows ``PaperBroker`` to the last bit: the same random candles and signals
through both give the same trades, cash, equity, limits state and open positions."""

from __future__ import annotations

import random

import pytest

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.core.timeframes import MINUTE_MS, TIMEFRAME_MS
from candlewise.engine.replay.fast_book import FastBook
from candlewise.signals.aggregate import Signal
from candlewise.trading.paper_broker import PaperBroker

SYMBOLS = ("BTC/USDT", "ETH/USDT")
TIMEFRAMES = ("1m", "5m", "15m")
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC


def _as_tuple(trade) -> tuple:  # type: ignore[no-untyped-def]
    return (
        trade.position_id, trade.symbol, trade.timeframe, trade.confidence, trade.entry_time_ms,
        trade.exit_time_ms, trade.entry_price, trade.exit_price, trade.quantity,
        trade.pnl_absolute, trade.pnl_percent, trade.fees, trade.outcome, trade.exit_reason,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_candles_and_signals_give_identical_books(seed: int) -> None:
    rng = random.Random(seed)
    risk = RiskConfig(stop_loss=0.003, daily_loss_limit=0.06, max_position_size_percent=0.2,
                      max_total_exposure=0.9)  # fmt: skip
    reference = PaperBroker(PaperConfig(), risk)
    fast = FastBook(PaperBroker(PaperConfig(), risk))
    prices = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}
    trades = ref_trades = 0
    for minute in range(3 * 1440):  # three UTC days: the daily loss latch rolls
        open_ms = T0 + minute * MINUTE_MS
        now = open_ms + MINUTE_MS
        for symbol in SYMBOLS:
            o = prices[symbol]
            c = o * (1 + rng.gauss(0, 0.002))
            h, lo = (
                max(o, c) * (1 + abs(rng.gauss(0, 0.001))),
                min(o, c) * (1 - abs(rng.gauss(0, 0.001))),
            )
            prices[symbol] = c
            candle = Candle(symbol, "1m", open_ms, o, h, lo, c, 1.0)
            expected = [_as_tuple(t) for t in reference.on_candle(candle)]
            got = [_as_tuple(t) for t in fast.on_candle(symbol, open_ms, now, o, h, lo, c)]
            assert got == expected
            ref_trades += len(expected)
            for tf in TIMEFRAMES:
                if rng.random() < 0.5:  # any minute: opposite signals before the horizon too
                    continue
                p = rng.random()
                signal = Signal(symbol, tf, now, "BUY" if p >= 0.5 else "SELL", max(p, 1 - p),
                                p, p, (tf,), True)  # fmt: skip
                outcome = reference.on_signal(signal, c)
                opened, closed = fast.on_signal(
                    symbol, tf, TIMEFRAME_MS[tf], now, p >= 0.5, signal.confidence, c
                )
                assert (closed and _as_tuple(closed)) == (
                    outcome.closed and _as_tuple(outcome.closed)
                )
                assert opened == outcome.opened
                trades += closed is not None
            assert fast.cash == reference.cash
            assert fast.equity() == reference.equity()
            assert fast.blocked(now) == reference.limits.blocked(now)
    fast.save()
    saved = fast.broker
    assert list(saved.book) == list(reference.book)
    assert (saved.cash, saved.book.next_id) == (reference.cash, reference.book.next_id)
    assert saved.limits.blocked_day == reference.limits.blocked_day
    assert saved.limits.day_start_equity == reference.limits.day_start_equity
    assert ref_trades > 200 and trades > 50  # stops, horizons and opposite signals happened
    assert reference.limits.blocked_day is not None  # the daily loss latch was exercised


def test_a_broker_it_cannot_follow_is_refused() -> None:
    broker = PaperBroker(PaperConfig(), RiskConfig(), "live-spot")
    with pytest.raises(ValueError, match="paper broker"):
        FastBook(broker)
