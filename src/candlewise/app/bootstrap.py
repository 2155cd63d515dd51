"""The composition root: ``bootstrap`` wires the configuration, secrets, store, model registry,
feed and broker that every command and deployment uses.

It wires the real adapters by default; a test passes its own (an in-memory store, a planner of
fake feeds, a broker factory) to the same function, so that what it checks is the application
as the commands build it. Members are built on first use: a command that never touches the
store (``config validate``) never opens, let alone migrates, one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.config.loader import load_config
from candlewise.config.secrets import Secrets, load_secrets, set_active
from candlewise.market import feed_factory
from candlewise.market.feed_factory import FeedPlan
from candlewise.store.db import database_url, open_store
from candlewise.system.logging_setup import configure_logging
from candlewise.trading.paper_broker import Mode, PaperBroker

if TYPE_CHECKING:  # the registry loads torch (1 s): imported when a command asks for it
    from candlewise.store.model_registry import ModelRegistry

ConfigSource = AppConfig | str | Path | None
"""A config object, a ``config.yaml`` path, or None (``config.yaml`` if present, else defaults)."""


class FeedPlanner(Protocol):
    """``market.feed_factory.plan_feed``'s signature: a feed, its clock and its window."""

    def __call__(
        self,
        name: str,
        cfg: AppConfig,
        symbols: Sequence[str],
        *,
        engine: Engine | None,
        now_ms: int,
        duration_ms: int | None,
        speed: float | None,
        **window: Any,
    ) -> FeedPlan: ...


BrokerFactory = Callable[[AppConfig, Mode], PaperBroker]
"""A broker for an account kind (``paper``, ``live-spot``) under the config's costs and risk."""


def paper_broker(cfg: AppConfig, account: Mode) -> PaperBroker:
    return PaperBroker(cfg.paper, cfg.risk, account)


class Application:
    """What ``bootstrap`` built; each member is built once, on first use."""

    def __init__(
        self,
        config: Callable[[], AppConfig],
        *,
        secrets: Callable[[], Secrets],
        store: Callable[[AppConfig], Engine],
        plan_feed: FeedPlanner,
        broker: BrokerFactory,
    ) -> None:
        self._build_config = config
        self._build_secrets = secrets
        self._build_store = store
        self._plan_feed = plan_feed
        self._broker = broker

    @cached_property
    def config(self) -> AppConfig:
        return self._build_config()

    @cached_property
    def secrets(self) -> Secrets:
        """The secrets, active for redaction (in logs and alerts) from here on."""
        secrets = self._build_secrets()
        set_active(secrets)
        return secrets

    @cached_property
    def store(self) -> Engine:
        """The database, migrated to the current schema."""
        return self._build_store(self.config)

    @property
    def store_opened(self) -> bool:
        return "store" in self.__dict__

    @cached_property
    def registry(self) -> ModelRegistry:
        cfg = self.config
        from candlewise.store.model_registry import ModelRegistry

        return ModelRegistry(self.store, cfg.paths.models_dir, cfg.models.keep_versions)

    def start_logging(self) -> None:
        """Where a command starts working in the project folder: also creates the guide's
        folders, so that e.g. its ``cp data/trading.db backups/...`` works from the start."""
        _ = self.secrets  # redaction must be active before the first line is written
        paths = self.config.paths
        for folder in (paths.logs_dir, paths.reports_dir, paths.backups_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)
        configure_logging(paths.logs_dir, self.config.logging)

    def plan_feed(
        self,
        name: str,
        symbols: Sequence[str],
        *,
        now_ms: int,
        duration_ms: int | None,
        speed: float | None,
        from_store: bool = True,
        **window: Any,
    ) -> FeedPlan:
        """A feed of closed 1m candles (``feed_factory`` explains the windows); ``from_store``
        False keeps the store out of it (a simulated feed that plays its own history)."""
        return self._plan_feed(
            name,
            self.config,
            list(symbols),
            engine=self.store if from_store else None,
            now_ms=now_ms,
            duration_ms=duration_ms,
            speed=speed,
            **window,
        )

    def new_broker(self, account: Mode = "paper") -> PaperBroker:
        return self._broker(self.config, account)

    def close(self) -> None:
        """Release the store's connections, if it was opened."""
        if self.store_opened:
            self.store.dispose()


def bootstrap(
    config: ConfigSource = None,
    *,
    db_url: str | None = None,
    secrets: Secrets | None = None,
    store: Engine | None = None,
    plan_feed: FeedPlanner = feed_factory.plan_feed,
    broker: BrokerFactory = paper_broker,
) -> Application:
    """The application: ``config`` loaded (and validated) on first use, ``db_url`` (a URL or a
    SQLite file path) overriding its database; ``secrets`` from the environment and ``.env``
    unless given; ``store`` opened and migrated from the config's URL unless given."""

    def build_config() -> AppConfig:
        cfg = config if isinstance(config, AppConfig) else load_config(config)
        if db_url:
            url = database_url(db_url)  # a plain path is a SQLite file
            cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": url})})
        return cfg

    def build_store(cfg: AppConfig) -> Engine:
        return store if store is not None else open_store(cfg.database.url)

    return Application(
        build_config,
        secrets=(lambda: secrets) if secrets is not None else load_secrets,
        store=build_store,
        plan_feed=plan_feed,
        broker=broker,
    )
