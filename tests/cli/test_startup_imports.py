"""The command's start-up imports no torch: a backtest forks its history writer while torch
loads (about a second), and ``config check``, ``store``, ``monitor`` never need it at all."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_leaves_torch_for_the_commands_that_train_or_predict() -> None:
    probe = (
        "import sys, candlewise.cli.main; print(sorted({'torch', 'sqlalchemy'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['sqlalchemy']"  # the store is cheap; torch comes later
