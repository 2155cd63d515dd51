"""Channel senders: one attempt each, raising ``DeliveryError`` on failure; stdlib only.

Retries, backoff and recording belong to the dispatcher, so a sender stays a few lines and a
new channel cannot get them wrong. URLs and tokens are secrets: they never enter an error text.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from candlewise.alerts.model import Alert
from candlewise.config.app_config import AlertsConfig
from candlewise.config.secrets import Secrets

_USER_AGENT = "candlewise-alerts/1"
_BODY_EXCERPT = 200


class DeliveryError(Exception):
    """One failed attempt; the text is safe to log and store (no URL, no token)."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The generic webhook's JSON: flat fields a receiver can route on without parsing text."""
    return {
        "level": alert.level,
        "kind": alert.kind,
        "symbol": alert.symbol,
        "message": alert.text,
        "timestamp": alert.at.isoformat(timespec="seconds"),
    }


def post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST ``payload``; any non-2xx answer, network error or timeout is a DeliveryError."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            if not 200 <= status < 300:
                raise DeliveryError(f"HTTP {status}")
    except urllib.error.HTTPError as exc:
        body = exc.read(_BODY_EXCERPT).decode("utf-8", "replace").strip()
        detail = f": {body}" if body else ""
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}{detail}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"cannot reach endpoint: {exc.reason}") from None
    except TimeoutError:
        raise DeliveryError(f"timed out after {timeout:g}s") from None
    except OSError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class JsonPostChannel:
    """Webhook-style channels differ only in URL and body shape."""

    name: str
    url: str = field(repr=False)
    body: Callable[[Alert], dict[str, Any]]
    timeout: float

    def send(self, alert: Alert) -> None:
        post_json(self.url, self.body(alert), self.timeout)


@dataclass(frozen=True)
class EmailChannel:
    name: str
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str
    password: str | None = field(repr=False)
    starttls: bool
    timeout: float

    def send(self, alert: Alert) -> None:
        msg = EmailMessage()
        where = f" {alert.symbol}" if alert.symbol else ""
        msg["Subject"] = f"[candlewise] {alert.level} {alert.kind}{where}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(f"{alert.text}\n\nat {alert.at.isoformat(timespec='seconds')}\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise DeliveryError(f"SMTP timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc.strerror or exc}") from None


def _http_url(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def build_channels(cfg: AlertsConfig, secrets: Secrets) -> tuple[list[Channel], list[str]]:
    """The configured external channels and, for each one unusable, why (``log`` is implicit)."""
    channels: list[Channel] = []
    problems: list[str] = []
    t = cfg.timeout_seconds
    hooks: dict[str, tuple[str, Callable[[Alert], dict[str, Any]]]] = {
        "webhook": ("ALERT_WEBHOOK_URL", webhook_payload),
        "slack": ("SLACK_WEBHOOK_URL", lambda a: {"text": a.text}),
        "discord": ("DISCORD_WEBHOOK_URL", lambda a: {"content": a.text}),
    }
    for name in dict.fromkeys(cfg.channels):  # a channel listed twice is sent once
        if name in hooks:
            var, body = hooks[name]
            url = secrets.get(var)
            if not _http_url(url):
                problems.append(f"{name}: {var} is {'not http(s)' if url else 'not set'} in .env")
                continue
            channels.append(JsonPostChannel(name, str(url), body, t))
        elif name == "telegram":
            token, chat = secrets.get("TELEGRAM_BOT_TOKEN"), secrets.get("TELEGRAM_CHAT_ID")
            if not token or not chat:
                problems.append("telegram: TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set")
                continue
            url = f"{cfg.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
            channels.append(
                JsonPostChannel(name, url, lambda a, c=chat: {"chat_id": c, "text": a.text}, t)
            )
        elif name == "email":
            password = secrets.get("SMTP_PASSWORD")
            missing = [k for k in ("smtp_host", "smtp_from", "smtp_to") if not getattr(cfg, k)]
            if cfg.smtp_user and not password:
                missing.append("SMTP_PASSWORD (.env)")
            if missing:
                problems.append(f"email: {', '.join(missing)} not set")
                continue
            channels.append(
                EmailChannel(
                    name,
                    cfg.smtp_host,
                    cfg.smtp_port,
                    cfg.smtp_from,
                    cfg.smtp_to,
                    cfg.smtp_user,
                    password,
                    cfg.smtp_starttls,
                    t,
                )
            )
    return channels, problems
