"""Market-data benchmark: one year of simulated 1m candles for one symbol.

Measures, on this machine:
  * simulation (1m candles generated per second),
  * aggregation into 5m, 15m, 1h, 4h, 1d in memory: incremental (the live path, one candle at a
    time) and batch (numpy, the import path),
  * ingest into SQLite: bare 1m inserts, and the full import (validation, 1m and derived 5m..1d).
Targets (issue 2): >= 200,000 candles/s aggregated, >= 50,000 candles/s stored.

Run: make bench   (or .venv/bin/python bench/bench_market.py [--minutes N] [--repeat R])
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch  # noqa: F401  - the same process footprint as the application

from candlewise.core.timeframes import HIGHER_TIMEFRAMES
from candlewise.market.aggregation import TimeframeAggregator, aggregate_frame
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import SimulatedMarket
from candlewise.store import candle_store
from candlewise.store.db import open_store

YEAR = 365 * 1440
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=YEAR)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.minutes

    rows: list[tuple[str, int, float, str]] = []

    def market() -> object:
        return SimulatedMarket(["BTC/USDT"], 42, START).generate(n)

    t, _ = best_of(args.repeat, market)
    rows.append(("simulate 1m candles", n, t, ""))
    series = SimulatedMarket(["BTC/USDT"], 42, START).generate(n)["BTC/USDT"]
    candles = series.candles()
    frame = series.to_frame().drop(columns="regime")

    def incremental() -> object:
        agg = TimeframeAggregator("BTC/USDT")
        add = agg.add
        closed = 0
        for c in candles:
            closed += len(add(c))
        return closed

    t, _ = best_of(args.repeat, incremental)
    rows.append(("aggregate, incremental (live path)", n, t, ">= 200,000/s"))

    def batch() -> object:
        return [aggregate_frame(frame, tf) for tf in HIGHER_TIMEFRAMES]

    t, _ = best_of(args.repeat, batch)
    rows.append(("aggregate, batch (numpy)", n, t, ">= 200,000/s"))

    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for i in range(args.repeat):
            engine = open_store(f"sqlite:///{Path(tmp) / f'bare{i}.db'}")
            t0 = time.perf_counter()
            with engine.begin() as conn:
                candle_store.insert_frame(conn, frame, "BTC/USDT", "1m", "bench")
            times.append(time.perf_counter() - t0)
            engine.dispose()
        rows.append(("store 1m in SQLite (insert only)", n, min(times), ">= 50,000/s"))
        times = []
        for i in range(args.repeat):
            engine = open_store(f"sqlite:///{Path(tmp) / f'full{i}.db'}")
            t0 = time.perf_counter()
            ingest_frame(engine, frame, "BTC/USDT", "1m", "bench")
            times.append(time.perf_counter() - t0)
            engine.dispose()
        rows.append(("import: validate + store 1m + derive 5m..1d", n, min(times), ">= 50,000/s"))

    print(f"\ncandlewise market benchmark — {n:,} 1m candles (one symbol), best of {args.repeat}")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    print(f"| {'step':<45} | {'seconds':>8} | {'1m candles/s':>13} | {'target':>13} |")
    print(f"|{'-' * 47}|{'-' * 10}|{'-' * 15}|{'-' * 15}|")
    for name, count, secs, target in rows:
        print(f"| {name:<45} | {secs:8.3f} | {count / secs:13,.0f} | {target:>13} |")


if __name__ == "__main__":
    main()
