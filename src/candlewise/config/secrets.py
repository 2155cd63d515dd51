"""Secrets come only from the environment or ``.env``, and never leave the process in clear.

Every piece of text the system writes (log lines, error_log rows, reports, alerts) passes through
``redact`` so that a key pasted in the wrong place still does not end up on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

#: Environment variables read as secrets; documented in .env.example.
SECRET_ENV_VARS: tuple[str, ...] = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "ALERT_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL",
    "DISCORD_WEBHOOK_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "SMTP_PASSWORD",
)
_MIN_REDACT_LEN = 6  # shorter values (e.g. a chat id "1") would redact ordinary text
MASK = "***"


@dataclass(frozen=True)
class Secrets:
    """Secret values by variable name; ``repr`` never shows them."""

    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def __repr__(self) -> str:
        return f"Secrets(set={sorted(k for k, v in self.values.items() if v)})"

    def redact(self, text: str) -> str:
        for value in sorted(self.values.values(), key=len, reverse=True):
            if value and len(value) >= _MIN_REDACT_LEN and value in text:
                text = text.replace(value, MASK)
        return text


def load_secrets(
    env_file: str | Path = ".env", environ: Mapping[str, str] | None = None
) -> Secrets:
    """Environment first, then ``.env``; ``.env`` does not modify ``os.environ``."""
    environ = os.environ if environ is None else environ
    from_file = dotenv_values(env_file) if Path(env_file).is_file() else {}
    values = {}
    for name in SECRET_ENV_VARS:
        value = environ.get(name) or from_file.get(name)
        if value:
            values[name] = value
    return Secrets(values)


_active = Secrets()


def set_active(secrets: Secrets) -> None:
    """Make ``secrets`` the ones ``redact`` and the logging filter mask (one process, one set)."""
    global _active
    _active = secrets


def redact(text: str) -> str:
    return _active.redact(text)


class RedactingFilter(logging.Filter):
    """Masks secret values in every record, including its arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        record.msg = redact(message)
        record.args = None
        return True
