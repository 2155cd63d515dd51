"""``UnifiedDataProvider``: the guide's one-line check, and what it refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from candlewise.app.provider import UnifiedDataProvider
from candlewise.config.loader import ConfigError
from candlewise.core.errors import UserError

REPO = Path(__file__).resolve().parents[2]
GUIDE_CHECK = (
    "from src.data.provider import UnifiedDataProvider; "
    "p = UnifiedDataProvider.get_instance(); print('✓ Provider OK')"
)


def test_guide_check_prints_provider_ok_from_the_repository_root(tmp_path: Path) -> None:
    """Run exactly as the guide does: ``python -c`` in the repository root."""
    env = {**os.environ, "CANDLEWISE_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    proc = subprocess.run(
        [sys.executable, "-c", GUIDE_CHECK],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "✓ Provider OK"


def test_singleton_and_stored_candles(workdir: Path) -> None:
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    first = UnifiedDataProvider.get_instance()
    assert UnifiedDataProvider.get_instance() is first
    assert first.candle_count() == 0
    plan = first.feed(["BTC/USDT"], duration_ms=10 * 60_000, now_ms=1_735_689_600_000)
    assert len(list(plan.feed.candles())) == 10
    assert (workdir / "data" / "trading.db").exists()


def test_bad_config_fails_before_anything_runs(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("risk:\n  daily_loss_limit: 5\n")
    with pytest.raises(ConfigError):
        UnifiedDataProvider.get_instance()


def test_replay_feed_without_data_is_refused(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("data:\n  feed: replay\n")
    with pytest.raises(UserError, match="nothing to replay"):
        UnifiedDataProvider.get_instance()


def test_unreachable_binance_is_named(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(
        "data:\n  feed: binance\nexchange:\n  rest_url: http://127.0.0.1:9/api/v3\n"
    )
    with pytest.raises(UserError, match=r"127\.0\.0\.1:9"):
        UnifiedDataProvider.get_instance()


def test_known_at_never_returns_a_candle_that_has_not_closed(workdir: Path) -> None:
    from candlewise.market.ingest import ingest_frame
    from candlewise.market.simulated import market_at

    day0 = 1_735_689_600_000
    series = market_at(["BTC/USDT"], 1, day0).generate(2 * 1440)["BTC/USDT"]
    provider = UnifiedDataProvider.get_instance()
    ingest_frame(provider.engine, series.to_frame().drop(columns="regime"), "BTC/USDT", "1m", "t")
    noon_day2 = day0 + 86_400_000 + 12 * 3_600_000
    by_open = provider.get_candles("BTC/USDT", "1d", end_ms=noon_day2)
    known = provider.get_candles("BTC/USDT", "1d", known_at_ms=noon_day2)
    assert len(by_open) == 2 and by_open["timestamp"].iloc[-1] == day0 + 86_400_000
    assert known["timestamp"].tolist() == [day0]  # day 2 closes at midnight: not known at noon
