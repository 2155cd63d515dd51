"""An optional Prometheus ``/metrics`` endpoint inside the deploying process.

The figures come from the running engine itself at each minute end, so a scrape never touches
the store; the endpoint listens on ``monitoring.prometheus.host`` (127.0.0.1 unless exposed on
purpose: metrics reveal the account). Its own registry, not prometheus_client's global one, so
two deployments in one test process never share series.

Event-loop lag is how far behind its clock the engine finished a minute: 0 in an unpaced replay,
seconds in a live deployment that falls behind the exchange (a stall, a slow store, a retrain
applied inline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from candlewise.config.app_config import PrometheusConfig
from candlewise.core.errors import UserError
from candlewise.learning.modes import Mode

if TYPE_CHECKING:
    from candlewise.engine.trading_engine import TradingEngine

PREFIX = "candlewise"


class MetricsEndpoint:
    def __init__(self, cfg: PrometheusConfig, symbols: Sequence[str]) -> None:
        self.cfg = cfg
        self.symbols = list(symbols)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.equity = Gauge(f"{PREFIX}_equity_usdt", "Account equity, marked to market", registry=r)
        self.drawdown = Gauge(
            f"{PREFIX}_drawdown_percent", "Drawdown from the equity high-water mark", registry=r
        )
        self.mode = Gauge(
            f"{PREFIX}_trading_mode", "1 while the symbol is in TRADING mode, 0 in LEARNING",
            ["symbol"], registry=r,
        )  # fmt: skip
        self.confidence = Gauge(
            f"{PREFIX}_confidence", "Last aggregated signal confidence", ["symbol"], registry=r
        )
        self.trades = Counter(f"{PREFIX}_trades", "Closed trades", ["outcome"], registry=r)
        self.retrains = Counter(f"{PREFIX}_retrains", "Retrains run", ["reason"], registry=r)
        self.errors = Counter(f"{PREFIX}_errors", "Errors in event handling", registry=r)
        self.open_positions = Gauge(f"{PREFIX}_open_positions", "Open positions", registry=r)
        self.lag = Gauge(
            f"{PREFIX}_event_loop_lag_seconds",
            "How far behind its clock the engine finished the last minute", registry=r,
        )  # fmt: skip
        self.minute = Gauge(
            f"{PREFIX}_last_minute_timestamp_seconds", "Close time of the last minute handled",
            registry=r,
        )  # fmt: skip
        self._seen: dict[str, float] = {}
        self._server = None

    def start(self) -> None:
        try:
            self._server, _thread = start_http_server(
                self.cfg.port, addr=self.cfg.host, registry=self.registry
            )
        except OSError as exc:
            raise UserError(
                f"cannot serve metrics on {self.cfg.host}:{self.cfg.port}: {exc.strerror or exc}",
                "choose a free monitoring.prometheus.port in config.yaml (or set enabled: false)",
            ) from None

    @property
    def url(self) -> str:
        port = self._server.server_port if self._server is not None else self.cfg.port
        return f"http://{self.cfg.host}:{port}/metrics"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def observe(self, engine: TradingEngine, minute_ms: int, clock_now_ms: int) -> None:
        """Copy the engine's figures after a minute end (counters advance by the difference,
        so a resumed run's totals continue from its snapshot)."""
        stats = engine.stats
        self.equity.set(engine.broker.equity())
        self.drawdown.set(engine.drawdown.drawdown_percent)
        self.open_positions.set(len(engine.broker.book))
        for symbol in self.symbols:
            self.mode.labels(symbol).set(1 if engine.modes.mode(symbol) is Mode.TRADING else 0)
            if symbol in stats.confidence:
                self.confidence.labels(symbol).set(stats.confidence[symbol])
        self._advance(self.trades.labels("WIN"), "win", stats.wins)
        self._advance(self.trades.labels("LOSS"), "loss", stats.trades - stats.wins)
        for reason, count in stats.retrains.items():
            self._advance(self.retrains.labels(reason), f"retrain:{reason}", count)
        self._advance(self.errors, "errors", stats.errors)
        self.minute.set(minute_ms / 1000)
        self.lag.set(max(0.0, (clock_now_ms - minute_ms) / 1000))

    def _advance(self, counter: Counter, key: str, total: float) -> None:
        step = total - self._seen.get(key, 0.0)
        if step > 0:
            counter.inc(step)
        self._seen[key] = max(total, self._seen.get(key, 0.0))
