"""The ledger hash: same run same hash, float noise ignored, real changes detected."""

from __future__ import annotations

import pytest

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.signals.aggregate import Signal
from candlewise.trading.ledger import ledger_hash, trade_record
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade

T0 = 1_735_689_600_000
MIN = 60_000


def run() -> list[ClosedTrade]:
    """A small deterministic paper run: alternating signals on 1m candles of a zig-zag price."""
    broker = PaperBroker(PaperConfig(), RiskConfig())
    trades: list[ClosedTrade] = []
    price = 100.0
    for i in range(60):
        close = price * (1.003 if i % 3 else 0.996)
        trades += broker.on_candle(
            Candle(
                "BTC/USDT",
                "1m",
                T0 + i * MIN,
                price,
                max(price, close),
                min(price, close),
                close,
                1.0,
            )
        )
        direction = "BUY" if i % 2 else "SELL"
        broker.on_signal(
            Signal("BTC/USDT", "1m", T0 + (i + 1) * MIN, direction, 0.9, 0.9, 0.9, ("1m",), True),
            close,
        )
        price = close
    return trades


def test_same_run_same_hash_and_order_does_not_matter() -> None:
    a, b = run(), run()
    assert len(a) > 20
    assert ledger_hash(a) == ledger_hash(b)
    assert ledger_hash(reversed(a)) == ledger_hash(a)
    assert len(ledger_hash(a)) == 64


@pytest.mark.parametrize("noise", [1e-12, -1e-12])
def test_float_noise_does_not_change_the_hash(noise: float) -> None:
    trades = run()
    noisy = [
        t._replace(
            entry_price=t.entry_price + noise,
            exit_price=t.exit_price - noise,
            quantity=t.quantity + noise,
            pnl_absolute=t.pnl_absolute + noise,
        )
        for t in trades
    ]
    assert ledger_hash(noisy) == ledger_hash(trades)


def test_a_real_change_changes_the_hash() -> None:
    trades = run()
    base = ledger_hash(trades)
    changed_price = [
        *trades[:-1],
        trades[-1]._replace(exit_price=trades[-1].exit_price + 0.01),
    ]
    assert ledger_hash(changed_price) != base
    changed_qty = [trades[0]._replace(quantity=trades[0].quantity + 1e-6), *trades[1:]]
    assert ledger_hash(changed_qty) != base
    assert ledger_hash(trades[:-1]) != base
    flipped = [
        trades[0]._replace(
            predicted_direction="SELL" if trades[0].predicted_direction == "BUY" else "BUY",
        ),
        *trades[1:],
    ]
    assert ledger_hash(flipped) != base


def test_record_uses_fixed_decimals_and_no_negative_zero() -> None:
    trade = ClosedTrade(
        position_id=1,
        symbol="BTC/USDT",
        timeframe="1h",
        side="long",
        predicted_direction="BUY",
        confidence=0.85,
        entry_time_ms=T0,
        exit_time_ms=T0 + 60 * MIN,
        entry_price=43300.0,
        exit_price=43350.123456789,
        quantity=0.0231,
        pnl_absolute=-1e-12,
        pnl_percent=0.0,
        fees=0.0,
        outcome="LOSS",
        exit_reason="horizon",
    )
    assert trade_record(trade) == (
        f"BTC/USDT|1h|BUY|{T0}|{T0 + 3_600_000}|43300.00000000|43350.12345679|0.0231000000|"
        "0.00000000"
    )
    assert ledger_hash([]) == ledger_hash(())
