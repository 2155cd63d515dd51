"""The guide's paper-trading validation, run from the repository root with the venv's python:

    python run_paper_trading_validation.py --duration 48 [--symbols BTC/USDT] [--feed simulated]
                                           [--speed max|N] [--config PATH]

``--duration`` is in hours (``48``) or with a unit (``90m``, ``2d``). The same as
``candlewise validate-paper ...``.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from candlewise.cli.main import run

    sys.exit(run(["validate-paper", *sys.argv[1:]]))
