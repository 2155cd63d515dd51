"""The guide's training entry point, run from the repository root:

    python src/multi_currency_system.py --train --symbol ETH/USDT
    python src/multi_currency_system.py --train --symbol ETH/USDT --interval 4h

The same as ``candlewise train --symbol ETH/USDT [--interval 4h]``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train the per-timeframe models of a symbol from the stored candles."
    )
    parser.add_argument("--train", action="store_true", help="train models (the only action)")
    parser.add_argument("--symbol", required=True, help="e.g. BTC/USDT")
    parser.add_argument("--interval", help="one timeframe: 1m, 5m, 15m, 1h, 4h or 1d")
    parser.add_argument("--config", help="config file (default: ./config.yaml)")
    args = parser.parse_args(argv)
    if not args.train:
        parser.error("nothing to do: pass --train")
    from candlewise.cli.main import run

    command = ["train", "--symbol", args.symbol]
    if args.interval:
        command += ["--interval", args.interval]
    if args.config:
        command += ["--config", args.config]
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
