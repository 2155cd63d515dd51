"""Entry point of the ``candlewise`` command: sub-commands, and where errors become exit codes.

A ``UserError`` or ``ConfigError`` prints what is wrong and how to fix it and exits with 2;
Ctrl+C exits with 130 after the command has saved what it had. Anything else is a bug and
keeps its traceback (without local variables, which could hold secrets).
"""

from __future__ import annotations

import signal
import sys
import threading

import typer

from candlewise.cli import (
    backtest_cmd,
    config_cmd,
    data_cmd,
    demo_cmd,
    deploy_cmd,
    evaluate_cmd,
    models_cmd,
    monitor_cmd,
    retrain_cmd,
    store_cmd,
)
from candlewise.cli.context import err_console
from candlewise.config.loader import ConfigError
from candlewise.config.secrets import redact
from candlewise.core.errors import UserError
from candlewise.store import storage_fault

app = typer.Typer(
    name="candlewise",
    help="Continuous-learning crypto trading system.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(store_cmd.db_app, name="db")
app.command("backup")(store_cmd.backup_command)
app.command("restore")(store_cmd.restore_command)
app.add_typer(models_cmd.app, name="models")
app.command("train")(models_cmd.train)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("backtest")(backtest_cmd.backtest)
app.command("retrain")(retrain_cmd.retrain_command)
app.command("deploy")(deploy_cmd.deploy)
app.command("validate-paper")(deploy_cmd.validate_paper)
app.command("demo")(demo_cmd.demo)
app.command("monitor")(monitor_cmd.monitor)


def _terminate(_signum: int, _frame: object) -> None:
    """SIGTERM (systemd, docker stop, kill) takes the Ctrl+C path: save, then exit."""
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except ConfigError as exc:
        err_console.print(f"✗ Configuration invalid: {exc.source}", markup=False)
        for problem in exc.problems:
            err_console.print(f"  ✗ {problem}", markup=False)
        err_console.print(
            "  Fix config.yaml, then check it with: candlewise config check", markup=False
        )
        return 2
    except UserError as exc:
        err_console.print(f"Error: {redact(exc.message)}", markup=False)
        if exc.hint:
            err_console.print(f"Hint: {redact(exc.hint)}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return 130
    except OSError as exc:  # a file beside the store: a full disk, a read-only folder
        fault = storage_fault.from_os_error(exc)
        if fault is None:
            raise
        err_console.print(f"Error: {fault.message}", markup=False)
        err_console.print(f"Hint: {fault.hint}", markup=False)
        return fault.exit_code
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
