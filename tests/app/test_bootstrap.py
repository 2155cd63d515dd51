"""The composition root: ``bootstrap`` builds what commands and deployments use, lazily, and a
test hands it fakes (an in-memory store, a feed planner, a broker factory) through the same
function the commands call."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from candlewise.app.bootstrap import Application, bootstrap
from candlewise.app.provider import UnifiedDataProvider
from candlewise.cli.context import AppContext
from candlewise.config.app_config import AppConfig
from candlewise.config.secrets import Secrets, redact
from candlewise.core.clock import SimulatedClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.deployment.session import Deployment, DeploymentRequest
from candlewise.market.feed_factory import FeedPlan
from candlewise.market.feeds import SimulatedFeed
from candlewise.store.db import open_store
from candlewise.trading.paper_broker import Mode, PaperBroker

REPO = Path(__file__).resolve().parents[2]
DAY0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
SECRET = "sk-0123456789abcdef"


class FakePlanner:
    """A feed planner that plays ``minutes`` of a seeded simulated market from DAY0, and
    remembers what it was asked."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self.calls: list[dict[str, Any]] = []

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
    ) -> FeedPlan:
        self.calls.append({"name": name, "symbols": list(symbols), "engine": engine, **window})
        clock = SimulatedClock(DAY0)
        end = DAY0 + self.minutes * MINUTE_MS
        return FeedPlan(SimulatedFeed(list(symbols), 7, DAY0, clock, end), clock, DAY0, end)


@pytest.fixture
def memory_store() -> Iterator[Engine]:
    store = open_store("sqlite://")
    yield store
    store.dispose()


def _fakes(store: Engine, planner: FakePlanner, brokers: list[str]) -> Application:
    def broker(cfg: AppConfig, account: Mode) -> PaperBroker:
        brokers.append(account)
        return PaperBroker(cfg.paper, cfg.risk, account)

    cfg = AppConfig(symbols=["BTC/USDT"])
    return bootstrap(
        cfg, secrets=Secrets({"API_KEY": SECRET}), store=store, plan_feed=planner, broker=broker
    )


def test_a_deployment_runs_on_the_fakes_given_to_bootstrap(
    memory_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the models folder is relative
    planner, brokers = FakePlanner(30), list[str]()
    app = _fakes(memory_store, planner, brokers)
    request = DeploymentRequest(1, ("BTC/USDT",), "simulated", 30 * MINUTE_MS, None)

    deployment = Deployment.prepare(app, request, now_ms=DAY0 + 30 * MINUTE_MS)
    outcome = deployment.run()

    assert (outcome.status, outcome.start_ms, outcome.end_ms) == (
        "completed", DAY0, DAY0 + 30 * MINUTE_MS,
    )  # fmt: skip
    assert brokers == ["paper"]
    assert [(c["name"], c["symbols"], c["engine"]) for c in planner.calls] == [
        ("simulated", ["BTC/USDT"], None)  # a simulated feed plays its own history
    ]
    with memory_store.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*) FROM candles WHERE timeframe = '1m'"))
        assert stored.scalar_one() == 30  # the fake feed's candles, in the store given
        runs = conn.execute(text("SELECT kind, cursor_ms FROM engine_runs")).all()
    assert runs == [("deployment", DAY0 + 30 * MINUTE_MS)]


def test_members_are_built_on_first_use_and_the_secrets_redact(
    memory_store: Engine, tmp_path: Path
) -> None:
    planner, brokers = FakePlanner(5), list[str]()
    app = _fakes(memory_store, planner, brokers)
    assert redact(f"key={SECRET}") == f"key={SECRET}"  # not active before they are asked for
    assert app.secrets.get("API_KEY") == SECRET
    assert SECRET not in redact(f"key={SECRET}")
    assert not app.store_opened
    assert app.registry.engine is memory_store and app.store_opened
    plan = app.plan_feed("replay", ["BTC/USDT"], now_ms=DAY0, duration_ms=None, speed=None)
    assert planner.calls[-1]["engine"] is memory_store and plan.start_ms == DAY0
    assert app.new_broker("live-spot").mode == "live-spot" and brokers == ["live-spot"]


def test_a_command_that_needs_no_store_never_opens_one(workdir: Path) -> None:
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    ctx = AppContext(workdir / "config.yaml", "other.db")
    assert ctx.config.database.url == "sqlite:///other.db"  # --db: a path is a SQLite file
    assert ctx.config.symbols and not ctx.app.store_opened
    assert not (workdir / "other.db").exists()
    with ctx.engine.connect() as conn:  # asked for: opened and migrated
        assert conn.execute(text("SELECT COUNT(*) FROM candles")).scalar_one() == 0
    assert ctx.app.store_opened and (workdir / "other.db").exists()


def test_the_provider_is_built_through_bootstrap(workdir: Path) -> None:
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    provider = UnifiedDataProvider.get_instance()
    assert isinstance(provider.app, Application)
    assert provider.engine is provider.app.store
    assert provider.config is provider.app.config
    assert provider.config.symbols == ("BTC/USDT", "ETH/USDT")  # config.yaml's


def test_the_provider_runs_on_an_application_given_fakes(memory_store: Engine) -> None:
    planner, brokers = FakePlanner(10), list[str]()
    provider = UnifiedDataProvider.get_instance(app=_fakes(memory_store, planner, brokers))
    assert provider.engine is memory_store
    plan = provider.feed(duration_ms=10 * MINUTE_MS, now_ms=DAY0)
    assert len(list(plan.feed.candles())) == 10
    assert planner.calls[-1]["engine"] is memory_store
    assert UnifiedDataProvider.get_instance() is provider
