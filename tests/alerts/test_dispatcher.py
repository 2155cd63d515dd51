"""The dispatcher against real HTTP servers and a real SQLite store: retries, dedupe, no block."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, select

from candlewise.alerts import Alert, AlertDispatcher, drawdown_alert, error_rate_alert
from candlewise.config.app_config import AlertsConfig
from candlewise.config.secrets import Secrets
from candlewise.store.tables import alerts

from .conftest import Endpoint

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET_PATH = "/hooks/PLANTED-webhook-secret"


def _cfg(**kw: object) -> AlertsConfig:
    base: dict[str, object] = {
        "channels": ("log", "webhook"),
        "retry_backoff_seconds": 0.02,
        "timeout_seconds": 2.0,
    }
    return AlertsConfig(**{**base, **kw})  # type: ignore[arg-type]


def _hook(endpoint: Endpoint) -> Secrets:
    return Secrets({"ALERT_WEBHOOK_URL": endpoint.url + SECRET_PATH})


def _rows(store: Engine) -> list[dict[str, object]]:
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(alerts).order_by(alerts.c.id))]


def test_log_only_logs_the_guide_line_and_records_a_row(
    store: Engine, alert_log: list[logging.LogRecord]
) -> None:
    with AlertDispatcher(AlertsConfig(), Secrets(), store) as dispatcher:
        assert dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
        assert dispatcher.raise_alert(error_rate_alert(7.23, 5, at=AT))
    assert [(r.levelno, r.getMessage()) for r in alert_log] == [
        (logging.CRITICAL, "🔴 CRITICAL: Drawdown 12.5% approaching 15% limit"),
        (logging.WARNING, "⚠️  WARNING: Error rate 7.23% exceeds 5% threshold"),
    ]
    first = _rows(store)[0]
    assert {k: first[k] for k in ("timestamp", "level", "kind", "channels", "delivered")} == {
        "timestamp": "2024-05-01 12:00:00",
        "level": "CRITICAL",
        "kind": "drawdown",
        "channels": "log",
        "delivered": True,
    }
    assert (first["attempts"], first["last_error"]) == (1, None)
    assert dispatcher.sent_count == 2


def test_every_http_channel_gets_the_alert(endpoint: Endpoint, store: Engine) -> None:
    secrets = Secrets(
        {
            "ALERT_WEBHOOK_URL": endpoint.url + "/generic",
            "SLACK_WEBHOOK_URL": endpoint.url + "/slack",
            "DISCORD_WEBHOOK_URL": endpoint.url + "/discord",
            "TELEGRAM_BOT_TOKEN": "42:tok",
            "TELEGRAM_CHAT_ID": "7",
        }
    )
    cfg = _cfg(
        channels=("log", "webhook", "slack", "discord", "telegram"), telegram_api_url=endpoint.url
    )
    alert = Alert("WARNING", "win_rate", "Win rate 35.00% below 40%", "ETH/USDT", at=AT)
    with AlertDispatcher(cfg, secrets, store) as dispatcher:
        dispatcher.raise_alert(alert)
    assert sorted(r.path for r in endpoint.received()) == [
        "/bot42:tok/sendMessage",
        "/discord",
        "/generic",
        "/slack",
    ]
    assert endpoint.received("/generic")[0].body["symbol"] == "ETH/USDT"
    [row] = _rows(store)
    assert row["channels"] == "log,webhook,slack,discord,telegram"
    assert (row["delivered"], row["attempts"], row["symbol"]) == (True, 1, "ETH/USDT")
    assert dispatcher.delivered_count == 1


def test_two_failures_then_success_is_delivered_on_the_third_attempt(
    endpoint: Endpoint, store: Engine
) -> None:
    endpoint.statuses[:] = [500, 500]
    with AlertDispatcher(_cfg(), _hook(endpoint), store) as dispatcher:
        dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
    assert len(endpoint.received()) == 3
    [row] = _rows(store)
    assert (row["delivered"], row["attempts"]) == (True, 3)
    assert "HTTP 500" in str(row["last_error"])  # what it recovered from


def test_dead_endpoint_never_blocks_and_is_recorded_undelivered(
    endpoint: Endpoint, store: Engine, alert_log: list[logging.LogRecord]
) -> None:
    endpoint.statuses[:] = [500] * 10
    dispatcher = AlertDispatcher(_cfg(retry_backoff_seconds=0.2), _hook(endpoint), store)
    endpoint.gate.clear()  # the endpoint holds its first answer until the test lets it go
    dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
    # raise_alert returned while the first attempt's answer is still held: the attempts and
    # their backoff happen elsewhere (a blocking send would have made all 3 by now)
    assert len(endpoint.received()) <= 1
    assert endpoint.arrived.wait(10)
    endpoint.gate.set()
    assert dispatcher.close(timeout=10)
    [row] = _rows(store)
    assert (row["delivered"], row["attempts"]) == (False, 3)
    assert str(row["last_error"]).startswith("webhook: HTTP 500 Internal Server Error")
    assert "PLANTED" not in str(row["last_error"])
    assert dispatcher.failed_count == 1
    assert any("not delivered to webhook after 3" in r.getMessage() for r in alert_log)


def test_unreachable_endpoint_is_recorded_with_its_error(
    closed_port_url: str, store: Engine
) -> None:
    secrets = Secrets({"ALERT_WEBHOOK_URL": closed_port_url})
    with AlertDispatcher(_cfg(), secrets, store) as dispatcher:
        dispatcher.raise_alert(Alert("INFO", "phase", "Phase 1 started", at=AT))
    [row] = _rows(store)
    assert row["delivered"] is False
    assert "cannot reach endpoint" in str(row["last_error"])


def test_repeats_within_the_interval_are_suppressed(endpoint: Endpoint, store: Engine) -> None:
    now = [1000.0]
    cfg = _cfg(min_interval_seconds=300.0)
    with AlertDispatcher(cfg, _hook(endpoint), store, clock=lambda: now[0]) as dispatcher:
        assert dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
        now[0] += 100
        assert not dispatcher.raise_alert(drawdown_alert(12.9, 15, at=AT))  # same, new number
        assert dispatcher.raise_alert(Alert("WARNING", "drawdown", "Drawdown 9.0% high", at=AT))
        # a different level (and wording) is a different alert
        per_symbol = Alert("CRITICAL", "drawdown", "Drawdown 12.5% approaching 15% limit", "X/Y")
        assert dispatcher.raise_alert(per_symbol)  # another symbol is another alert
        now[0] += 200  # 300 s after the first
        assert dispatcher.raise_alert(drawdown_alert(13.5, 15, at=AT))
    assert (dispatcher.sent_count, dispatcher.suppressed_count) == (4, 1)
    assert len(endpoint.received()) == 4
    assert len(_rows(store)) == 4


def test_full_queue_drops_the_oldest(endpoint: Endpoint) -> None:
    endpoint.gate.clear()  # the first delivery hangs until released
    cfg = _cfg(queue_size=2, min_interval_seconds=0.0)
    dispatcher = AlertDispatcher(cfg, _hook(endpoint), None)
    dispatcher.raise_alert(Alert("INFO", "phase", "first", at=AT))
    assert endpoint.arrived.wait(5)
    for name in ("second", "third", "fourth", "fifth"):
        dispatcher.raise_alert(Alert("INFO", "phase", name, at=AT))
    endpoint.gate.set()
    assert dispatcher.close(timeout=10)
    assert dispatcher.dropped_count == 2
    texts = [r.body["message"] for r in endpoint.received()]
    assert [t.rsplit(" ", 1)[-1] for t in texts] == ["first", "fourth", "fifth"]


def test_broken_store_costs_a_warning_not_a_crash(
    endpoint: Endpoint, tmp_path: object, alert_log: list[logging.LogRecord]
) -> None:
    unmigrated = create_engine(f"sqlite:///{tmp_path}/empty.db")  # no alerts table
    with AlertDispatcher(_cfg(), _hook(endpoint), unmigrated) as dispatcher:
        dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
    unmigrated.dispose()
    assert len(endpoint.received()) == 1
    assert (dispatcher.delivered_count, dispatcher.store_errors) == (1, 1)
    assert any("not recorded in the database" in r.getMessage() for r in alert_log)


def test_channel_without_its_secret_warns_once_and_is_skipped(
    store: Engine, alert_log: list[logging.LogRecord]
) -> None:
    cfg = _cfg(channels=("log", "slack", "slack"))
    with AlertDispatcher(cfg, Secrets(), store) as dispatcher:
        dispatcher.raise_alert(drawdown_alert(12.5, 15, at=AT))
        dispatcher.raise_alert(error_rate_alert(7.23, 5, at=AT))
    warnings = [r.getMessage() for r in alert_log if "skipped" in r.getMessage()]
    assert warnings == ["⚠ Alert channel skipped: slack: SLACK_WEBHOOK_URL is not set in .env"]
    assert [r["channels"] for r in _rows(store)] == ["log", "log"]
    assert dispatcher.channels == []
