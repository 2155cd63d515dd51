"""The paper broker: fills with fees and slippage, stops, horizons, reversal, sizing, flattening.

Expected numbers are worked out by hand from the defaults: fee 0.1 % per side, slippage 0.05 %,
10 % of equity per position, stop 2 % from the entry fill.
"""

from __future__ import annotations

import pytest

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.risk.drawdown import DrawdownGuard
from candlewise.signals.aggregate import Signal
from candlewise.trading.paper_broker import (
    FillRequest,
    FlattenError,
    PaperBroker,
    closed_line,
    executed_line,
)

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MIN = 60_000
HOUR = 60 * MIN
T = T0 + HOUR  # the 00:00-01:00 candle has closed


def signal(direction: str = "BUY", tf: str = "1h", at: int = T, symbol: str = "BTC/USDT") -> Signal:
    p = 0.85 if direction == "BUY" else 0.15
    return Signal(symbol, tf, at, direction, 0.85, p, p, (tf,), True)


def candle(
    open_time: int,
    o: float,
    h: float,
    low: float,
    c: float,
    tf: str = "1h",
    symbol: str = "BTC/USDT",
) -> Candle:
    return Candle(symbol, tf, open_time, o, h, low, c, 1.0)


def broker(mode: str = "paper", **kw: object) -> PaperBroker:
    return PaperBroker(PaperConfig(), RiskConfig(), mode, **kw)  # type: ignore[arg-type]


def test_long_round_trip_fee_and_slippage_by_hand() -> None:
    b = broker()
    out = b.on_signal(signal("BUY"), price=100.0)
    assert out.action == "opened"
    pos = out.opened
    assert pos is not None
    # buy fill 100 * 1.0005 = 100.05; notional 10 % of 10_000 = 1000;
    # quantity 1000 / 100.05 = 9.9950024987... rounded down to the 1e-8 step: 9.99500249
    assert pos.entry_price == pytest.approx(100.05, rel=1e-15)
    assert pos.quantity == 9.99500249
    assert pos.fees_paid == pytest.approx(0.9999999991245, rel=1e-12)  # 0.1 % of 999.99999912
    assert pos.stop_price == pytest.approx(100.05 * 0.98)  # 98.049
    assert pos.horizon_ms == T + HOUR
    assert out.log_lines == ("✓ Paper trade executed: BUY BTC/USDT @ $100.05",)
    assert b.cash == pytest.approx(10_000 - 999.9999991245 - 0.9999999991245, rel=1e-12)

    trades = b.on_candle(candle(T, 100.0, 101.0, 99.0, 101.0))  # low above the stop
    assert len(trades) == 1
    trade = trades[0]
    # sell fill 101 * 0.9995 = 100.9495
    # gross     (100.9495 - 100.05) * 9.99500249 = 8.990504739755
    # exit fee  100.9495 * 9.99500249 * 0.001    = 1.008990503864255
    # pnl       8.990504739755 - 0.9999999991245 - 1.008990503864255 = 6.981514236766245
    assert trade.exit_reason == "horizon" and trade.exit_time_ms == T + HOUR
    assert trade.exit_price == pytest.approx(100.9495, rel=1e-15)
    assert trade.fees == pytest.approx(0.9999999991245 + 1.008990503864255, rel=1e-12)
    assert trade.pnl_absolute == pytest.approx(6.981514236766245, rel=1e-12)
    assert trade.pnl_percent == pytest.approx(0.698151424287856, rel=1e-12)  # of 999.99999912
    assert trade.outcome == "WIN"
    assert closed_line(trade) == "[BTC/USDT @ 1h] Trade closed: ✓ WIN (+0.70%)"
    assert b.cash == pytest.approx(10_000 + 6.981514236766245, rel=1e-12)
    assert b.equity() == b.cash and not b.book


def test_short_round_trip_by_hand() -> None:
    b = broker()
    pos = b.on_signal(signal("SELL"), price=100.0).opened
    assert pos is not None and pos.side == "short"
    # sell fill 99.95, quantity 1000 / 99.95, stop 99.95 * 1.02 = 101.949
    assert pos.entry_price == pytest.approx(99.95)
    assert pos.stop_price == pytest.approx(101.949)
    (trade,) = b.on_candle(candle(T, 100.0, 101.0, 94.0, 95.0))
    # buy fill 95 * 1.0005 = 95.0475; gross 4.9025 * 10.0050025 = 49.04952475625
    # fees (99.95 + 95.0475) * 10.0050025 * 0.001 = 1.95095047499...; pnl 47.09857428125625
    q = 10.0050025  # 1000 / 99.95 = 10.00500250125..., rounded down to 1e-8
    assert pos.quantity == q
    expected = (99.95 - 95.0475) * q - 99.95 * q * 0.001 - 95.0475 * q * 0.001
    assert expected == pytest.approx(47.09857428125625, rel=1e-12)
    assert trade.pnl_absolute == pytest.approx(expected, rel=1e-12)
    assert trade.exit_price == pytest.approx(95.0475)
    assert b.cash == pytest.approx(10_000 + expected, rel=1e-12)


def test_losing_trade_log_line() -> None:
    b = broker()
    b.on_signal(signal("BUY"), price=100.0)
    (trade,) = b.on_candle(candle(T, 100.0, 100.5, 98.5, 99.0))
    assert trade.outcome == "LOSS"
    # (99 * 0.9995 - 100.05) / 100.05 - 0.001 - 99 * 0.9995 / 100.05 * 0.001 = -1.29785 %
    assert trade.pnl_percent == pytest.approx(-1.2978515742128853, rel=1e-12)
    assert closed_line(trade) == "[BTC/USDT @ 1h] Trade closed: ✗ LOSS (-1.30%)"


def test_stop_loss_intra_candle_and_stop_before_horizon() -> None:
    b = broker()
    b.on_signal(signal("BUY", tf="4h"), price=100.0)
    # 1m candles: first stays above the stop (98.049), second's low pierces it
    assert b.on_candle(candle(T, 100.0, 100.2, 98.1, 99.0, tf="1m")) == []
    (trade,) = b.on_candle(candle(T + MIN, 99.0, 99.5, 97.0, 99.4, tf="1m"))
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(100.05 * 0.98 * 0.9995)  # stop, then slippage
    assert trade.exit_time_ms == T + 2 * MIN
    assert trade.outcome == "LOSS"

    b2 = broker()
    b2.on_signal(signal("BUY"), price=100.0)
    # the horizon candle also hits the stop: stop first (the worse assumption)
    (trade2,) = b2.on_candle(candle(T, 100.0, 103.0, 97.0, 102.0))
    assert trade2.exit_reason == "stop_loss"
    assert trade2.exit_price == pytest.approx(98.049 * 0.9995)


def test_stop_gap_fills_at_open_and_short_stop() -> None:
    b = broker()
    b.on_signal(signal("BUY"), price=100.0)
    (trade,) = b.on_candle(candle(T, 95.0, 96.0, 94.0, 95.5, tf="1m"))
    assert trade.exit_price == pytest.approx(95.0 * 0.9995)
    b.on_signal(signal("SELL", at=T + MIN), price=95.5)
    (short,) = b.on_candle(candle(T + MIN, 95.5, 98.0, 95.0, 96.0, tf="1m"))
    stop = 95.5 * 0.9995 * 1.02
    assert short.exit_reason == "stop_loss"
    assert short.exit_price == pytest.approx(stop * 1.0005)


def test_candle_starting_before_entry_cannot_stop_but_can_reach_horizon() -> None:
    b = broker()
    b.on_signal(signal("BUY", tf="5m", at=T + 5 * MIN), price=100.0)
    # a 1h candle opening at T: its low may be from before the entry, so no stop from it;
    # it closes after the 5m horizon, so the position exits at its close
    (trade,) = b.on_candle(candle(T, 100.0, 101.0, 90.0, 100.5))
    assert trade.exit_reason == "horizon" and trade.exit_price == pytest.approx(100.5 * 0.9995)


def test_horizon_exit_at_the_close_of_the_candle_at_the_horizon() -> None:
    b = broker()
    b.on_signal(signal("BUY", tf="5m"), price=100.0)
    for i in range(4):
        assert b.on_candle(candle(T + i * MIN, 100.0, 100.5, 99.5, 100.2 + i / 10, tf="1m")) == []
    (trade,) = b.on_candle(candle(T + 4 * MIN, 100.5, 101.0, 100.0, 100.8, tf="1m"))
    assert trade.exit_reason == "horizon"
    assert trade.exit_time_ms == T + 5 * MIN
    assert trade.exit_price == pytest.approx(100.8 * 0.9995)


def test_one_position_per_symbol_and_timeframe() -> None:
    b = broker()
    assert b.on_signal(signal("BUY"), 100.0).action == "opened"
    again = b.on_signal(signal("BUY", at=T + MIN), 100.0)
    assert again.action == "skipped" and "already long" in again.reason
    assert b.on_signal(signal("BUY", tf="4h"), 100.0).action == "opened"
    assert b.on_signal(signal("BUY", symbol="ETH/USDT"), 10.0).action == "opened"
    assert len(b.book) == 3


def test_opposite_signal_reverses_in_paper_mode() -> None:
    b = broker()
    b.on_signal(signal("BUY", tf="4h"), 100.0)
    out = b.on_signal(signal("SELL", tf="4h", at=T + HOUR), 102.0)
    assert out.action == "reversed"
    assert out.closed is not None and out.closed.exit_reason == "opposite_signal"
    assert out.closed.exit_price == pytest.approx(102.0 * 0.9995)
    assert out.opened is not None and out.opened.side == "short"
    assert out.opened.entry_price == pytest.approx(102.0 * 0.9995)
    assert out.log_lines[1] == closed_line(out.closed)
    assert out.log_lines[2] == executed_line("SELL", "BTC/USDT", out.opened.entry_price)

    no_rev = broker(reverse=False)
    no_rev.on_signal(signal("BUY", tf="4h"), 100.0)
    out2 = no_rev.on_signal(signal("SELL", tf="4h", at=T + HOUR), 102.0)
    assert out2.action == "closed" and out2.opened is None and not no_rev.book


def test_live_spot_is_long_only() -> None:
    b = broker("live-spot")
    skipped = b.on_signal(signal("SELL"), 100.0)
    assert skipped.action == "skipped"
    assert skipped.reason == "live-spot is long only: SELL with no open long on BTC/USDT @ 1h"
    assert not b.book and b.cash == 10_000
    b.on_signal(signal("BUY", tf="4h"), 100.0)
    out = b.on_signal(signal("SELL", tf="4h", at=T + HOUR), 101.0)
    assert out.action == "closed" and out.opened is None
    assert out.closed is not None and out.closed.exit_reason == "opposite_signal"
    assert "spot cannot short" in out.reason and not b.book


def test_live_spot_entries_are_capped_by_cash() -> None:
    b = PaperBroker(PaperConfig(), RiskConfig(max_position_size_percent=0.9), "live-spot")
    first = b.on_signal(signal("BUY", tf="1h"), 100.0).opened
    assert first is not None and first.notional == pytest.approx(9000.0)
    cash = b.cash  # 10_000 - 9000 - 9 = 991
    second = b.on_signal(signal("BUY", tf="4h"), 100.0).opened
    assert second is not None
    assert second.notional == pytest.approx(cash / 1.001)
    assert b.cash == pytest.approx(0.0, abs=1e-5)  # < one 1e-8 step of a 100 coin


def test_sizing_is_capped_by_position_size_and_total_exposure() -> None:
    b = PaperBroker(PaperConfig(), RiskConfig(max_total_exposure=0.25), "paper")
    for tf in ("1m", "5m"):
        before = b.equity()
        pos = b.on_signal(signal("BUY", tf=tf), 100.0).opened
        assert pos is not None
        assert pos.notional == pytest.approx(0.10 * before)  # 10 % of equity
    equity, exposure = b.equity(), b.exposure()
    assert 0.10 * equity > 0.25 * equity - exposure  # less room left than one full position
    out = b.on_signal(signal("BUY", tf="15m"), 100.0)
    assert out.opened is not None and out.reason.startswith("capped by total exposure")
    assert out.opened.notional == pytest.approx(0.25 * equity - exposure)
    full = b.on_signal(signal("BUY", tf="4h"), 100.0)
    assert full.action == "skipped" and full.reason.startswith("total exposure")


def test_first_entry_is_ten_percent_of_equity() -> None:
    b = broker()
    pos = b.on_signal(signal("BUY"), 250.0).opened
    assert pos is not None and pos.notional == pytest.approx(1000.0)
    second = b.on_signal(signal("BUY", tf="4h"), 250.0).opened
    assert second is not None
    # equity fell by the first entry's fee and slippage: 10_000 - 1 - 1000 * 0.0005 / 1.0005
    assert second.notional == pytest.approx(0.10 * (10_000 - 1.0 - 1000 * 0.0005 / 1.0005))


def test_daily_loss_blocks_entries_in_the_broker() -> None:
    b = PaperBroker(
        PaperConfig(), RiskConfig(max_position_size_percent=0.5, stop_loss=0.5), "paper"
    )
    b.on_signal(signal("BUY", tf="1d", at=T), 100.0)
    b.on_candle(candle(T, 100.0, 100.0, 89.0, 89.0))  # equity about 10_000 - 5_550: > 5 % down
    out = b.on_signal(signal("BUY", tf="4h", at=T + HOUR), 89.0)
    assert out.action == "skipped" and out.reason.startswith("daily loss limit")


def test_flatten_all_retries_failed_fills_and_halts() -> None:
    failures = {"ETH/USDT": 2}
    seen: list[FillRequest] = []

    def flaky(request: FillRequest) -> bool:
        seen.append(request)
        if request.purpose == "exit" and failures.get(request.symbol, 0) > 0:
            failures[request.symbol] -= 1
            return False
        return True

    b = broker(fill_hook=flaky)
    b.on_signal(signal("BUY"), 100.0)
    b.on_signal(signal("SELL", tf="4h"), 100.0)
    b.on_signal(signal("BUY", symbol="ETH/USDT"), 10.0)
    trades = b.flatten_all({"BTC/USDT": 90.0, "ETH/USDT": 11.0}, T + 10 * MIN)
    assert len(trades) == 3 and not b.book
    assert {t.exit_reason for t in trades} == {"rollback"}
    assert [t.symbol for t in trades] == ["BTC/USDT", "BTC/USDT", "ETH/USDT"]
    assert sum(r.symbol == "ETH/USDT" and r.purpose == "exit" for r in seen) == 3  # 2 failed
    assert b.halted
    assert b.equity() == pytest.approx(10_000 + sum(t.pnl_absolute for t in trades))
    out = b.on_signal(signal("BUY", at=T + HOUR), 90.0)
    assert out.action == "skipped" and out.reason == "trading halted: drawdown rollback"


def test_flatten_all_gives_up_after_max_attempts() -> None:
    b = broker(fill_hook=lambda r: r.purpose == "entry" or r.symbol != "ETH/USDT")
    b.on_signal(signal("BUY"), 100.0)
    b.on_signal(signal("BUY", symbol="ETH/USDT"), 10.0)
    with pytest.raises(FlattenError, match=r"could not flatten 1 position\(s\): #2 ETH/USDT") as e:
        b.flatten_all({"BTC/USDT": 100.0, "ETH/USDT": 10.0}, T, max_attempts=3)
    assert len(e.value.closed) == 1 and [p.symbol for p in e.value.remaining] == ["ETH/USDT"]


def test_failed_exit_fill_is_retried_on_the_next_candle() -> None:
    attempts = {"n": 0}

    def fail_first_exit(request: FillRequest) -> bool:
        if request.purpose == "exit":
            attempts["n"] += 1
            return attempts["n"] > 1
        return True

    b = broker(fill_hook=fail_first_exit)
    b.on_signal(signal("BUY", tf="1m"), 100.0)
    assert b.on_candle(candle(T, 100.0, 100.5, 99.5, 100.2, tf="1m")) == []
    (trade,) = b.on_candle(candle(T + MIN, 100.2, 100.5, 99.5, 100.4, tf="1m"))
    assert trade.exit_reason == "horizon" and trade.exit_time_ms == T + 2 * MIN


def test_drawdown_rollback_on_mark_to_market_equity_without_a_closed_trade() -> None:
    # no fees, no slippage, 80 % position, wide stop: equity = 2000 + 80 * price exactly
    b = PaperBroker(
        PaperConfig(fee_rate=0.0, slippage=0.0),
        RiskConfig(max_position_size_percent=0.8, stop_loss=0.5, daily_loss_limit=0.5),
    )
    guard = DrawdownGuard(15.0)
    assert guard.update(b.equity(), T) is None
    pos = b.on_signal(signal("BUY", tf="1d"), 100.0).opened
    assert pos is not None and pos.quantity == pytest.approx(80.0)
    events = []
    for i, close in enumerate((95.0, 90.0, 85.01, 85.0, 83.0, 81.26, 81.25)):
        assert b.on_candle(candle(T + i * MIN, close, close, close, close, tf="1m")) == []
        event = guard.update(b.equity(), T + (i + 1) * MIN)
        events.append(None if event is None else (event.kind, event.equity))
    assert events == [None, None, None, ("alert", 8800.0), None, None, ("rollback", 8500.0)]
    (trade,) = b.flatten_all(b.last_prices, T + 8 * MIN)
    assert trade.exit_reason == "rollback"
    assert trade.pnl_absolute == pytest.approx(80 * (81.25 - 100.0))
    assert b.equity() == pytest.approx(8500.0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="mode"):
        broker("live")
    with pytest.raises(ValueError, match="price must be positive"):
        broker().on_signal(signal(), 0.0)
    assert executed_line("BUY", "BTC/USDT", 43300.0) == (
        "✓ Paper trade executed: BUY BTC/USDT @ $43300.00"
    )
