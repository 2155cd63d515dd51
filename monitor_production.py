"""The guide's production monitor, run from the project folder with the venv's python:

    python monitor_production.py [--symbol BTC/USDT] [--refresh 10] [--once]
    python monitor_production.py --report --hours 6

Reads the store only (read-only connections), so it runs in another terminal while a
deployment writes. The same as ``candlewise monitor ...`` (``--help`` lists every option).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from candlewise.cli.main import run

    sys.exit(run(["monitor", *sys.argv[1:]]))
