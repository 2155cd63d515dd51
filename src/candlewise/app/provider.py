"""``UnifiedDataProvider``: one object that knows the configured feed and the stored history.

The guide checks it with ``UnifiedDataProvider.get_instance()`` before a deployment: getting the
instance validates the configuration, opens (and migrates) the store and makes sure the
configured feed can deliver, so a failure here names the problem before anything trades. It is
built through the composition root (``app.bootstrap``), as every command is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
from sqlalchemy import Engine

from candlewise.app.bootstrap import Application, bootstrap
from candlewise.config.app_config import AppConfig
from candlewise.core.errors import UserError
from candlewise.market.feed_factory import FeedPlan
from candlewise.store import candle_store


class UnifiedDataProvider:
    _instance: ClassVar[UnifiedDataProvider | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, app: Application) -> None:
        self.app = app

    @property
    def config(self) -> AppConfig:
        return self.app.config

    @property
    def engine(self) -> Engine:
        """The store (a SQLAlchemy engine)."""
        return self.app.store

    @classmethod
    def get_instance(
        cls, config_path: str | Path | None = None, *, app: Application | None = None
    ) -> UnifiedDataProvider:
        """The process-wide provider, created on first use: on ``app``, else on what
        ``bootstrap`` builds from ``config.yaml`` (or defaults)."""
        with cls._lock:
            if cls._instance is None:
                app = app if app is not None else bootstrap(config_path)
                _ = app.config, app.secrets, app.store  # validated, redaction on, migrated
                provider = cls(app)
                provider.check_feed()
                cls._instance = provider
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Forget the instance (tests, or after the config file changed)."""
        with cls._lock:
            if cls._instance is not None:
                cls._instance.app.close()
            cls._instance = None

    def check_feed(self) -> None:
        """Cheap proof that the configured feed can deliver candles."""
        feed = self.config.data.feed
        if feed == "binance":
            from candlewise.market.binance_rest import load_spot_markets, make_exchange

            load_spot_markets(
                make_exchange(self.config.exchange.rest_url), list(self.config.symbols)
            )
        elif feed == "replay" and not self.config.data.replay_files:
            with self.engine.connect() as conn:
                if candle_store.count(conn, timeframe="1m") == 0:
                    raise UserError(
                        "the replay feed has nothing to replay: the store holds no 1m candles",
                        "import some with 'candlewise data import' or set data.replay_files",
                    )

    def candle_count(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        with self.engine.connect() as conn:
            return candle_store.count(conn, symbol, timeframe)

    def get_candles(
        self,
        symbol: str,
        timeframe: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        known_at_ms: int | None = None,
    ) -> pd.DataFrame:
        """Stored candles, oldest first: timestamp (open time, ms UTC), open, high, low, close,
        volume."""
        with self.engine.connect() as conn:
            return candle_store.load_frame(
                conn, symbol, timeframe, start_ms, end_ms, limit, known_at_ms=known_at_ms
            )

    def feed(
        self,
        symbols: Sequence[str] | None = None,
        *,
        name: str | None = None,
        duration_ms: int | None = None,
        speed: float | None = None,
        now_ms: int | None = None,
    ) -> FeedPlan:
        """A feed of closed 1m candles (see ``feed_factory`` for the time windows)."""
        return self.app.plan_feed(
            name or self.config.data.feed,
            list(symbols or self.config.symbols),
            now_ms=now_ms if now_ms is not None else int(time.time() * 1000),
            duration_ms=duration_ms,
            speed=speed,
        )
