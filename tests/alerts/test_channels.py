"""Each sender against a real server on 127.0.0.1: the exact bodies, and clean failures."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from candlewise.alerts import Alert, DeliveryError, build_channels
from candlewise.alerts.channels import post_json
from candlewise.config.app_config import AlertsConfig
from candlewise.config.secrets import Secrets

from .conftest import Endpoint

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALERT = Alert("CRITICAL", "drawdown", "Drawdown 12.5% approaching 15% limit", "BTC/USDT", at=AT)
TEXT = "🔴 CRITICAL: Drawdown 12.5% approaching 15% limit"
TOKEN = "123456:PLANTED-bot-token"


def _secrets(url: str) -> Secrets:
    return Secrets(
        {
            "ALERT_WEBHOOK_URL": f"{url}/generic",
            "SLACK_WEBHOOK_URL": f"{url}/slack",
            "DISCORD_WEBHOOK_URL": f"{url}/discord",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "-1001",
        }
    )


def test_http_channels_post_their_json(endpoint: Endpoint) -> None:
    cfg = AlertsConfig(
        channels=("log", "webhook", "slack", "discord", "telegram"),
        telegram_api_url=endpoint.url + "/",
    )
    channels, problems = build_channels(cfg, _secrets(endpoint.url))
    assert problems == []
    for channel in channels:
        channel.send(ALERT)
    bodies = {r.path: r.body for r in endpoint.received()}
    assert bodies == {
        "/generic": {
            "level": "CRITICAL",
            "kind": "drawdown",
            "symbol": "BTC/USDT",
            "message": TEXT,
            "timestamp": "2024-05-01T12:00:00+00:00",
        },
        "/slack": {"text": TEXT},
        "/discord": {"content": TEXT},
        f"/bot{TOKEN}/sendMessage": {"chat_id": "-1001", "text": TEXT},
    }
    assert all(r.content_type.startswith("application/json") for r in endpoint.received())


def test_missing_or_bad_secrets_are_reported_not_raised() -> None:
    cfg = AlertsConfig(channels=("log", "webhook", "slack", "telegram", "email"))
    channels, problems = build_channels(cfg, Secrets({"SLACK_WEBHOOK_URL": "file:///etc/passwd"}))
    assert channels == []
    assert problems == [
        "webhook: ALERT_WEBHOOK_URL is not set in .env",
        "slack: SLACK_WEBHOOK_URL is not http(s) in .env",
        "telegram: TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set",
        "email: smtp_host, smtp_from, smtp_to not set",
    ]


def test_http_errors_carry_status_and_body(endpoint: Endpoint, closed_port_url: str) -> None:
    endpoint.statuses[:] = [500]
    with pytest.raises(DeliveryError, match=r"^HTTP 500 Internal Server Error: boom$"):
        post_json(endpoint.url + "/x", {"a": 1}, timeout=2)
    with pytest.raises(DeliveryError, match="cannot reach endpoint"):
        post_json(closed_port_url, {"a": 1}, timeout=2)


def test_slow_endpoint_times_out(endpoint: Endpoint) -> None:
    endpoint.gate.clear()  # the server reads the request, then holds its answer
    with pytest.raises(DeliveryError, match="timed out"):
        post_json(endpoint.url + "/slow", {"a": 1}, timeout=0.2)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


def _authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"alerts",
        b"PLANTED-smtp-pass",
    )
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Inbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        ready_timeout=5,
    )
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.mark.parametrize("password", ["PLANTED-smtp-pass", "wrong-password"])
def test_email_over_real_smtp(smtp_server: tuple[int, _Inbox], password: str) -> None:
    port, inbox = smtp_server
    cfg = AlertsConfig(
        channels=("email",),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_user="alerts",
        smtp_starttls=False,
        smtp_from="bot@example.test",
        smtp_to=("ops@example.test", "oncall@example.test"),
    )
    (channel,), problems = build_channels(cfg, Secrets({"SMTP_PASSWORD": password}))
    assert problems == []
    if password.startswith("wrong"):
        with pytest.raises(DeliveryError, match="SMTPAuthenticationError"):
            channel.send(ALERT)
        assert inbox.messages == []
        return
    channel.send(ALERT)
    [(sender, recipients, msg)] = inbox.messages
    assert sender == "bot@example.test"
    assert recipients == ["ops@example.test", "oncall@example.test"]
    assert msg["Subject"] == "[candlewise] CRITICAL drawdown BTC/USDT"
    assert TEXT in msg.get_payload(decode=True).decode("utf-8")


def test_email_with_login_needs_the_password() -> None:
    cfg = AlertsConfig(
        channels=("email",),
        smtp_host="127.0.0.1",
        smtp_user="alerts",
        smtp_from="a@example.test",
        smtp_to=("b@example.test",),
    )
    assert build_channels(cfg, Secrets()) == ([], ["email: SMTP_PASSWORD (.env) not set"])
