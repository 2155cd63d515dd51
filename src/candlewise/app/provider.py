"""``UnifiedDataProvider``: one object that knows the configured feed and the stored history.

The guide checks it with ``UnifiedDataProvider.get_instance()`` before a deployment: getting the
instance validates the configuration, opens (and migrates) the store and makes sure the
configured feed can deliver, so a failure here names the problem before anything trades.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.config.loader import load_config
from candlewise.config.secrets import load_secrets, set_active
from candlewise.core.errors import UserError
from candlewise.market.feed_factory import FeedPlan, plan_feed
from candlewise.store import candle_store
from candlewise.store.db import open_store


class UnifiedDataProvider:
    _instance: ClassVar[UnifiedDataProvider | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, config: AppConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    @classmethod
    def get_instance(cls, config_path: str | Path | None = None) -> UnifiedDataProvider:
        """The process-wide provider, created on first use from ``config.yaml`` (or defaults)."""
        with cls._lock:
            if cls._instance is None:
                config = load_config(config_path)
                set_active(load_secrets())
                provider = cls(config, open_store(config.database.url))
                provider.check_feed()
                cls._instance = provider
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Forget the instance (tests, or after the config file changed)."""
        with cls._lock:
            if cls._instance is not None:
                cls._instance.engine.dispose()
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
        return plan_feed(
            name or self.config.data.feed,
            self.config,
            list(symbols or self.config.symbols),
            engine=self.engine,
            now_ms=now_ms if now_ms is not None else int(time.time() * 1000),
            duration_ms=duration_ms,
            speed=speed,
        )
