"""Whole-command benchmark: ``candlewise backtest ... --no-retrain`` timed as a user runs it.

Issue 4's target is "≥ 50,000 1m candles/s for one symbol as a whole process". This runs the
installed ``candlewise`` command in a fresh scratch folder (no config file: the repository's
defaults, a new SQLite database) and times the process from ``exec`` to exit: interpreter and
imports, the simulated history (or the file's import), the first training and calibration,
the replay with every row stored, and the report. Throughput = 1m candles replayed / wall
seconds. Best and median of ``--repeat`` runs (the machine's speed drifts by ~5 %); the ledger
hash must be the same in every repeat. Peak RSS is the largest child's ``ru_maxrss``.

Scenarios: one symbol for 30 days, 270 days (about where the target is crossed), a year and two
years on the defaults; the same year with ``bench_engine.py``'s heavier no-cost config (a
shadow trade nearly every minute); and, when ``../shared/data`` is present, the real BTC/USDT
1m file (its last 30 days; the models train on the 33 days before).

Run: .venv/bin/python bench/bench_backtest_command.py [--repeat 3] [--skip 730,nocost]

``--vs OTHER`` (another checkout's installed ``candlewise``, e.g. a worktree of the previous
release) times both commands side by side, alternating A B A B, and prints each one's median
and the ratio; both must print the same ledger (the same run, only faster or slower).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench_engine import CONFIG_YAML  # this folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("candlewise")
SHARED = Path(os.environ.get("CANDLEWISE_SHARED", ROOT.parent / "shared"))
REAL_FILE = SHARED / "data" / "candles" / "BTC_USDT-1m.csv.gz"
NO_COST_CONFIG = CONFIG_YAML  # bench_engine.py's: no fees, no slippage, threshold 0.60
TARGET = 50_000


def scenarios() -> list[tuple[str, str, list[str], str | None]]:
    """(key, label, arguments, config text or None for the defaults)."""
    sim = ["--symbols", "BTC/USDT", "--feed", "simulated", "--seed", "1", "--no-retrain"]
    plan = [
        ("30", "1 symbol, 30 days, defaults", [*sim, "--days", "30"], None),
        ("270", "1 symbol, 270 days, defaults", [*sim, "--days", "270"], None),
        ("365", "1 symbol, 365 days, defaults", [*sim, "--days", "365"], None),
        ("730", "1 symbol, 730 days, defaults", [*sim, "--days", "730"], None),
        ("nocost", "1 symbol, 365 days, no costs (heavy)", [*sim, "--days", "365"], NO_COST_CONFIG),
    ]
    if REAL_FILE.is_file():
        real = ["--symbols", "BTC/USDT", "--feed", "replay", "--data", str(REAL_FILE)]
        real += ["--days", "30", "--no-retrain"]
        plan.append(("real", "real BTC/USDT file, last 30 days", real, None))
    return plan


def run_once(
    args: list[str], config: str | None, command: Path = COMMAND
) -> tuple[float, int, str]:
    """Wall seconds, 1m candles replayed and the ledger of one fresh run."""
    workdir = Path(tempfile.mkdtemp(prefix="cw_bench_cmd_"))
    try:
        if config is not None:
            (workdir / "config.yaml").write_text(config)
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(command), "backtest", *args, "--db", "run.db"],
            cwd=workdir,
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"candlewise backtest failed:\n{done.stdout}\n{done.stderr}")
        out = done.stdout
        ledger = re.search(r"Ledger: ([0-9a-f]{64})", out)
        span = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) → (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", out)
        if ledger is None or span is None:
            raise SystemExit(f"unexpected output:\n{out}")
        start, end = (datetime.strptime(s, "%Y-%m-%d %H:%M") for s in span.groups())
        minutes = int((end - start).total_seconds() // 60)
        return wall, minutes, ledger.group(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list of scenario keys")
    parser.add_argument("--vs", type=Path, help="another candlewise command, timed alternately")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.vs is not None:
        side_by_side(args.vs, args.repeat, skip)
        return
    rows = []
    for key, label, cli_args, config in scenarios():
        if key in skip:
            continue
        walls, ledgers = [], set()
        minutes = 0
        for i in range(args.repeat):
            wall, minutes, ledger = run_once(cli_args, config)
            walls.append(wall)
            ledgers.add(ledger)
            print(f"{label}: run {i + 1}: {wall:.2f} s ({minutes / wall:,.0f}/s)", flush=True)
        if len(ledgers) != 1:
            raise SystemExit(f"{label}: the ledger differs between repeats: {ledgers}")
        rows.append((label, minutes, min(walls), statistics.median(walls), ledgers.pop()))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\n`candlewise backtest ... --no-retrain`, whole process, best of {args.repeat}:\n")
    print("| scenario | 1m candles | best s | median s | candles/s (best) | candles/s (median) |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, minutes, best, median, _ledger in rows:
        print(
            f"| {label} | {minutes:,} | {best:.2f} | {median:.2f} | {minutes / best:,.0f} | "
            f"{minutes / median:,.0f} |"
        )
    print(f"\nTarget {TARGET:,}/s as a whole process; peak RSS of any run {peak:.0f} MB.")


def side_by_side(other: Path, repeat: int, skip: set[str]) -> None:
    """A = this checkout's command, B = ``other``; A B A B ... on every scenario."""
    rows = []
    for key, label, cli_args, config in scenarios():
        if key in skip:
            continue
        walls: dict[str, list[float]] = {"A": [], "B": []}
        ledgers: set[str] = set()
        minutes = 0
        for i in range(repeat):
            for side, command in (("A", COMMAND), ("B", other)):
                wall, minutes, ledger = run_once(cli_args, config, command)
                walls[side].append(wall)
                ledgers.add(ledger)
                print(f"{label}: {side} run {i + 1}: {wall:.2f} s", flush=True)
        if len(ledgers) != 1:
            raise SystemExit(f"{label}: the two commands' ledgers differ: {ledgers}")
        a, b = (statistics.median(walls[s]) for s in "AB")
        rows.append((label, minutes, a, b))
    print(f"\nA = {COMMAND}\nB = {other}\nmedians of {repeat}, alternating A B:\n")
    print("| scenario | 1m candles | A median s | B median s | A/B time | A 1m/s | B 1m/s |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for label, minutes, a, b in rows:
        print(
            f"| {label} | {minutes:,} | {a:.2f} | {b:.2f} | {a / b:.3f} | {minutes / a:,.0f} | "
            f"{minutes / b:,.0f} |"
        )


if __name__ == "__main__":
    main()
