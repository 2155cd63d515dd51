"""``candlewise config check|show``."""

from __future__ import annotations

import json
import re
from typing import Any

import typer
import yaml

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt
from candlewise.config.loader import ConfigError
from candlewise.config.secrets import redact
from candlewise.store.db import safe_url

_URL_PASSWORD = re.compile(r"(?P<head>://[^/?#@\s:]*:)[^/?#@\s]*@")

app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOpt = None) -> None:
    """Validate config.yaml: '✓ Configuration valid', or one line per problem and exit code 2."""
    try:
        AppContext(config_path=config).config  # noqa: B018 - loading validates
    except ConfigError as exc:
        console.print(f"✗ Configuration invalid: {exc.source}")
        for problem in exc.problems:
            console.print(f"  ✗ {problem}", markup=False)
        raise typer.Exit(2) from None
    console.print("✓ Configuration valid")


@app.command("show")
def show(config: ConfigOpt = None) -> None:
    """Print the effective configuration (defaults filled in) as YAML, passwords masked.

    An invalid config is reported like ``config check`` does (problem lines, exit code 2).
    """
    ctx = AppContext(config_path=config)
    cfg = ctx.config  # a ConfigError reaches candlewise.cli.main.run: problem lines, exit 2
    data = json.loads(cfg.model_dump_json())
    data["database"]["url"] = safe_url(data["database"]["url"])
    _ = ctx.secrets  # makes the .env values known to redact()
    text = yaml.safe_dump(_mask_url_passwords(data), sort_keys=False, allow_unicode=True)
    console.print(redact(text), markup=False)


def _mask_url_passwords(value: Any) -> Any:
    """Every ``scheme://user:password@host`` in the values, with the password as ``***``."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>***@", value)
    if isinstance(value, dict):
        return {k: _mask_url_passwords(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_url_passwords(v) for v in value]
    return value
