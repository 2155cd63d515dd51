"""The guide's deployment script, run from the repository root with the venv's python:

    python deploy_production.py --phase 1 --symbol BTC/USDT [--duration 24h] [--feed simulated]
                                [--speed max|N] [--config PATH] [--train-missing]
    python deploy_production.py --phase 3 [--approve | --force --reason "..."] [--stagger 30s]
    python deploy_production.py --rollback

The same as ``candlewise deploy ...`` (``--help`` lists every option).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from candlewise.cli.main import run

    sys.exit(run(["deploy", *sys.argv[1:]]))
