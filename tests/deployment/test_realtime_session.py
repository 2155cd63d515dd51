"""The issue's case: ``deploy_production.py --phase 1`` in real time, started minutes after an
earlier deployment (``make demo``'s phase 1) ended. It used to replay [end of that one, now)
on a clock started there, so it ran those minutes behind the wall clock for good; it now
handles them at once and then follows the wall clock for the whole duration."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from candlewise.app.bootstrap import bootstrap
from candlewise.cli.main import run
from candlewise.config.loader import load_config
from candlewise.core.timeframes import MINUTE_MS
from candlewise.deployment.session import Deployment, DeploymentRequest
from candlewise.store import candle_store, deployment_store
from candlewise.store.db import open_store

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

DAY_MS = 24 * 60 * MINUTE_MS


def test_a_real_time_phase1_after_another_deployment_follows_the_wall_clock(
    project: Path,
) -> None:
    earlier_run = ["deploy", "--phase", "1", "--symbol", "BTC/USDT", "--duration", "2h",
                   "--speed", "max", "--force", "--reason", "the earlier deployment"]  # fmt: skip
    assert run(earlier_run) in (0, 1)
    cfg = load_config(project / "config.yaml")
    store = open_store(cfg.database.url)
    with store.connect() as conn:
        earlier = deployment_store.latest(conn, 1)
        newest = candle_store.last_open_time(conn, "BTC/USDT", "1m")
    assert earlier is not None and newest is not None
    later = int(time.time() * 1000) + 7 * MINUTE_MS  # seven minutes after it ended
    request = DeploymentRequest(1, ("BTC/USDT",), "simulated", DAY_MS, 1.0)
    deployment = Deployment.prepare(bootstrap(cfg, store=store), request, now_ms=later)
    try:
        plan = deployment.plan
        minute = later - later % MINUTE_MS
        # continues right after the earlier one's last candle, at least 7 minutes back
        assert plan.start_ms == newest + MINUTE_MS <= minute - 7 * MINUTE_MS
        assert plan.end_ms == minute + DAY_MS  # then the whole 24 hours, live
        assert 0 <= plan.clock.now_ms() - later < 60_000  # on the wall clock, not 7 min behind
    finally:
        deployment.retrainer.close()
        store.dispose()
