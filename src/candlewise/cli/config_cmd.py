"""``candlewise config check|show``."""

from __future__ import annotations

import json

import typer
import yaml

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt
from candlewise.config_loader import ConfigError
from candlewise.store.db import safe_url

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
    """Print the effective configuration (defaults filled in) as YAML."""
    cfg = AppContext(config_path=config).config
    data = json.loads(cfg.model_dump_json())
    data["database"]["url"] = safe_url(data["database"]["url"])
    console.print(yaml.safe_dump(data, sort_keys=False), markup=False)
