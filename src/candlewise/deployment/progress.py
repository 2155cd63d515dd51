"""What the operator's terminal shows of a running deployment: the banner's feed line and a
one-line status at a steady cadence (candle time, lag, trades, P&L, modes).

Cadence: every 5 minutes of wall time when the feed is paced, counted in candle time (at
``--speed N`` that is ``5 x N`` candle minutes), but at least every simulated hour, so that a
fast replay (``--speed max`` or a large N, where 5 wall minutes would span days) still shows
its progress: 24 lines for the guide's day, readable between the deployment blocks. Counting in
candle time keeps the lines deterministic and a lagging feed still reports (its lag grows).
"""

from __future__ import annotations

from collections.abc import Callable

from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.engine.trading_engine import TradingEngine

HOUR_MS = 60 * MINUTE_MS
#: Wall minutes between two status lines of a paced feed.
STATUS_WALL_MINUTES = 5


def feed_line(feed: str, speed: float | None) -> str:
    """The banner's ``Feed:`` line: which feed, and how fast it plays (with the other way)."""
    if feed == "binance":
        return "Feed: binance, live"
    if speed is None:
        return f"Feed: {feed}, full speed (--speed max; --speed 1 plays it in real time)"
    if speed == 1:
        return f"Feed: {feed}, real time (--speed max to replay at full speed)"
    return f"Feed: {feed}, {speed:g}x real time (--speed {speed:g}; --speed max: full speed)"


def status_every_ms(speed: float | None) -> int:
    """Candle time between two status lines (see the module doc), whole minutes."""
    if speed is None:
        return HOUR_MS
    every = int(STATUS_WALL_MINUTES * MINUTE_MS * speed) // MINUTE_MS * MINUTE_MS
    return max(MINUTE_MS, min(HOUR_MS, every))


class StatusLine:
    """Prints ``Status: ...`` every ``status_every_ms`` of candle time since ``start_ms``.

    Figures are the engine's own (no query): trades closed and the change of the account's
    equity since this deployment started, each symbol's mode and last confidence. The lag is
    how far the clock is past the minute just handled (0 for a replay at full speed)."""

    def __init__(
        self,
        engine: TradingEngine,
        symbols: list[str],
        start_ms: int,
        speed: float | None,
        clock_now: Callable[[], int],
        out: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.symbols = symbols
        self.start_ms = start_ms
        self.speed = speed
        self.every_ms = status_every_ms(speed)
        self.clock_now = clock_now
        self.out = out
        self.trades0 = engine.stats.trades
        self.equity0 = engine.broker.equity()

    def on_minute(self, now: int) -> None:
        if now == self.start_ms or (now - self.start_ms) % self.every_ms:
            return
        self.out(self.line(now))

    def line(self, now: int) -> str:
        engine = self.engine
        pnl = engine.broker.equity() - self.equity0
        lag = max(0, self.clock_now() - now) / 1000
        timing = "full speed" if self.speed is None else f"lag {lag:.1f}s"
        modes = ", ".join(
            f"{s} {engine.modes.mode(s).value}"
            + (f" ({engine.stats.confidence[s]:.2%})" if s in engine.stats.confidence else "")
            for s in self.symbols
        )
        sign = "-" if pnl < 0 else ""
        return (
            f"Status: candle time {ms_to_text(now)} UTC ({timing}) | "
            f"{engine.stats.trades - self.trades0} trades | P&L {sign}${abs(pnl):,.2f} | {modes}"
        )
