"""Engine benchmark: replay throughput, decision latency and memory of ``candlewise backtest``.

Every scenario runs in its own fresh Python process (``--worker``), set up exactly as the CLI
sets itself up (``AppContext``: config file, INFO file logging, a new SQLite database file, the
models folder beside it) and calling the same ``run_backtest``. Nothing in ``src/`` is changed:
the process only wraps ``TradingEngine.on_candles`` (event path) and ``BlockReplay.run`` (block
path, the default for ``--no-retrain``) to time them and to see, from ``engine.stats``, whether
a call opened an order or ran a retrain.

Phases of one run, timed separately (wall clock, ``perf_counter``):
  * history: simulating ``--warmup-days`` of 1m history per symbol into the store;
  * training: training the first models and calibrators (``train_symbol``/``calibrate_signals``),
    then loading them and warming the predictor's windows up from the store;
  * replay: from the first ``on_candles``/``BlockReplay.run`` call to the return of
    ``run_backtest``: the feed (simulated market), aggregation to the higher timeframes, the
    engine (exits, predictions, signals, modes, orders, drawdown, retrains), every row written
    to SQLite at the checkpoints, and the report.
Throughput = 1m candles replayed / replay seconds. "whole run" divides the same candles by the
worker's whole time (its first line to the end of the backtest: imports, history, training and
replay; interpreter start-up, ~20 ms, is not included).

Decision latency: wall time of each ``on_candles`` call (``perf_counter_ns``), for the calls that
opened an order (``stats.orders`` grew: candle close -> order placed and recorded) and for all
calls; calls that ran a retrain are listed apart (with retraining on they are seconds long).
Only the event path (live trading's path; ``--event-path`` scenario) has per-candle calls.

Memory: ``ru_maxrss`` of the process (its peak over every phase), ``VmRSS`` at the start of the
replay and sampled every ``--rss-every`` calls, and the peak during the replay alone (``VmHWM``
after resetting it through ``/proc/self/clear_refs`` when the replay starts; Linux only).

Config: the repository's defaults (``config.py``) except ``trading_threshold 0.60`` /
``hysteresis 0.05`` (with the default 0.80 the simulated market gives almost no trades), zero
fees and slippage and the four symbols. Without costs both paper books keep trading all year:
with the default 0.3 % round trip the simulated strategy loses its costs, the real book rolls
back after about two weeks and the shadow book falls below the 5 USDT minimum order after about
12 days, after which a minute has no trade to compute or store and replays faster than the
figures here. Relative paths (logs/) land in the scratch folder. ``--profile`` prints a cProfile
of the replay phase only (one process, no table).

Windows: the 4-symbol month is also the memory run (block path: block ends sample VmRSS, one a
replayed day). The one-year run shows the whole-process rate once start-up (imports, history,
first training: ~5 s) is amortised.

Run: .venv/bin/python bench/bench_engine.py [--days-1 30] [--days-year 365] [--days-event 2]
     [--days-retrain 0.5] [--days-4 30] [--warmup-days 60] [--seed 1] [--skip year,retrain,4]
     .venv/bin/python bench/bench_engine.py --profile --symbols BTC/USDT --days 0.25
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

STARTED = time.perf_counter()  # whole-process clock of a worker (interpreter start ~ this)

ALL_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
CONFIG_YAML = """\
# bench/bench_engine.py: defaults except the confidence band, so that orders happen, and no
# trading costs, so that both books keep trading all year (the heaviest workload a minute)
continuous_learning:
  confidence:
    trading_threshold: 0.60
    hysteresis: 0.05
paper:
  fee_rate: 0.0
  slippage: 0.0
symbols: [BTC/USDT, ETH/USDT, SOL/USDT, BNB/USDT]
"""
TARGET_CPS = 50_000
TARGET_P99_MS = 2.0
TARGET_RSS_MB = 500


# --------------------------------------------------------------------------- worker process


def _proc_status(key: str) -> float:
    """A ``/proc/self/status`` memory field in MB (0 when unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (the peak RSS) of this process
        return True
    except OSError:
        return False


def worker(args: argparse.Namespace) -> dict:
    import cProfile
    import pstats
    from io import StringIO

    from candlewise.backtest.run import BacktestRequest, run_backtest
    from candlewise.cli.context import AppContext
    from candlewise.engine.replay.block_engine import BlockReplay
    from candlewise.engine.trading_engine import TradingEngine

    imported = time.perf_counter()
    rss_imported = _proc_status("VmRSS")
    workdir = Path(args.workdir)
    os.chdir(workdir)  # relative paths of the config (logs/, .env) land in the scratch folder
    db = workdir / "backtest.db"
    ctx = AppContext(workdir / "config.yaml", f"sqlite:///{db}")  # as `candlewise backtest`
    cfg = ctx.config
    ctx.start_logging()
    models_dir = str(db.with_suffix("")) + "_models"
    symbols = tuple(args.symbols.split(","))
    request = BacktestRequest(symbols, args.days, args.seed, args.warmup_days, args.retrain)

    marks: dict[str, float] = {"start": time.perf_counter()}
    latency = array("q")  # ns per on_candles call
    kind = array("b")  # bit 0: opened an order, bit 1: ran a retrain, bit 2: error counted
    rss = array("d")  # VmRSS MB every --rss-every calls
    state: dict = {"calls": 0, "hwm_reset": False, "rss_start": 0.0, "maxrss_before": 0.0}
    profiler = cProfile.Profile() if args.profile else None
    original = TradingEngine.on_candles

    def replay_starts() -> None:
        marks["replay"] = time.perf_counter()
        state["maxrss_before"] = _maxrss_mb()
        state["rss_start"] = _proc_status("VmRSS")
        state["hwm_reset"] = _reset_peak_rss()
        if profiler is not None:
            profiler.enable()

    def timed(self: TradingEngine, closed) -> None:  # type: ignore[no-untyped-def]
        if state["calls"] == 0:
            replay_starts()
        stats = self.stats
        orders, retrains, errors = stats.orders, sum(stats.retrains.values()), stats.errors
        t0 = time.perf_counter_ns()
        original(self, closed)
        latency.append(time.perf_counter_ns() - t0)
        kind.append(
            (stats.orders > orders)
            | (sum(stats.retrains.values()) > retrains) << 1
            | (stats.errors > errors) << 2
        )
        state["calls"] += 1
        if state["calls"] % args.rss_every == 0:
            rss.append(_proc_status("VmRSS"))

    def progress(stage: str, done: int, total: int) -> None:
        if stage.startswith("training") and "training" not in marks:
            marks["training"] = time.perf_counter()

    original_block = BlockReplay.run
    blocks = array("q")  # ns per block of the block path

    def timed_block(self: BlockReplay, closed_lists, source=None) -> int:  # type: ignore[no-untyped-def]
        if state["calls"] == 0:
            replay_starts()
        t0 = time.perf_counter_ns()
        end = original_block(self, closed_lists, source)
        blocks.append(time.perf_counter_ns() - t0)
        state["calls"] += len(closed_lists)
        rss.append(_proc_status("VmRSS"))
        return end

    TradingEngine.on_candles = timed  # type: ignore[method-assign]
    BlockReplay.run = timed_block  # type: ignore[method-assign]
    try:
        report = run_backtest(
            cfg, ctx.engine, models_dir, request, progress, block_replay=not args.event_path
        )
    finally:
        TradingEngine.on_candles = original  # type: ignore[method-assign]
        BlockReplay.run = original_block  # type: ignore[method-assign]
    marks["end"] = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        for order in ("cumulative", "tottime"):
            out = StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.profile_top)
            print(f"\n### cProfile of the replay phase, sorted by {order}\n")
            print(out.getvalue())
    minutes = (report.end_ms - report.start_ms) // 60_000
    return {
        "symbols": list(symbols),
        "days": args.days,
        "retrain": args.retrain,
        "candles_1m": minutes * len(symbols),
        "engine_candles": report.candles,
        "import_s": imported - STARTED,
        "history_s": marks.get("training", marks["start"]) - marks["start"],
        "training_s": marks.get("replay", marks["end"]) - marks.get("training", marks["start"]),
        "replay_s": marks["end"] - marks.get("replay", marks["end"]),
        "engine_s": (sum(latency) + sum(blocks)) / 1e9,
        "path": "event" if args.event_path else "block",
        "blocks": len(blocks),
        "latency_ns": list(latency),
        "kind": list(kind),
        "rss_mb": list(rss),
        "rss_every": 1440 * len(symbols) if blocks else args.rss_every,
        "rss_imported_mb": rss_imported,
        "rss_start_mb": state["rss_start"],
        "maxrss_before_replay_mb": state["maxrss_before"],
        "hwm_replay_mb": _proc_status("VmHWM") if state["hwm_reset"] else None,
        "maxrss_mb": _maxrss_mb(),
        "trades": report.trades,
        "orders": int(sum(k & 1 for k in kind)),
        "retrains": report.retrains,
        "retrains_accepted": report.retrains_accepted,
        "errors": report.errors,
        "rollback": report.rollback,
        "shadow_trades": getattr(report, "shadow_trades", None),
        "untrained": list(report.untrained),
        "trading_share": report.trading_share,
        "wall_s": time.perf_counter() - STARTED,
    }


# --------------------------------------------------------------------------- orchestration


def run_scenario(
    name: str,
    symbols: tuple[str, ...],
    days: float,
    retrain: bool,
    args: argparse.Namespace,
    event_path: bool = False,
) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="cw_bench_engine_"))
    (workdir / "config.yaml").write_text(CONFIG_YAML)
    out = workdir / "result.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--workdir",
        str(workdir),
        "--out",
        str(out),
        "--symbols",
        ",".join(symbols),
        "--days",
        str(days),
        "--seed",
        str(args.seed),
        "--warmup-days",
        str(args.warmup_days),
        "--rss-every",
        str(args.rss_every),
    ]
    if retrain:
        cmd.append("--retrain")
    if event_path:
        cmd.append("--event-path")
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {name}: {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - t0
    result["name"] = name
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"[{time.perf_counter() - STARTED:6.0f} s] {name}: done in {result['process_s']:.0f} s",
        flush=True,
    )
    return result


def _pct(values: list[int], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64) / 1e6, q)) if values else 0.0


def _lat(values: list[int]) -> str:
    if not values:
        return "n/a (0 calls)"
    p50, p99, top = _pct(values, 50), _pct(values, 99), max(values) / 1e6
    return f"{p50:.2f} / {p99:.2f} / {top:.1f} (n={len(values)})"


def print_tables(results: list[dict], args: argparse.Namespace, total_s: float) -> None:
    import numpy as np

    import candlewise

    print(
        f"\n## candlewise engine benchmark (seed {args.seed}, warm-up {args.warmup_days:g} days, "
        f"1 process per row, code: {Path(candlewise.__file__).parent})\n"
    )
    print(
        "| scenario | 1m candles | history s | training s | replay s | **replay candles/s** | "
        "whole run candles/s | engine share | orders (trades) | retrains (accepted): time | "
        "ru_maxrss MB |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        r["name"] = f"{r['name']} ({'block' if r['blocks'] else 'event'} path)"
        cps = r["candles_1m"] / r["replay_s"] if r["replay_s"] else 0.0
        retr = sum(r["retrains"].values())
        retrain_s = sum(t for t, k in zip(r["latency_ns"], r["kind"], strict=True) if k & 2) / 1e9
        r["retrain_s"] = retrain_s
        print(
            f"| {r['name']} | {r['candles_1m']:,} | {r['history_s']:.1f} | {r['training_s']:.1f} | "
            f"{r['replay_s']:.1f} | **{cps:,.0f}** | {r['candles_1m'] / r['wall_s']:,.0f} | "
            f"{100 * r['engine_s'] / max(r['replay_s'], 1e-9):.0f}% | {r['orders']} "
            f"({r['trades']}) | {retr} ({r['retrains_accepted']}): {retrain_s:.1f} s | "
            f"{r['maxrss_mb']:.0f} |"
        )
    print(
        f"\ntarget: >= {TARGET_CPS:,} 1m candles/s for one symbol. engine share = time inside "
        "engine.on_candles / replay time (the rest: simulated feed, aggregation, candle flushes)."
        " whole run = 1m candles / (interpreter start .. exit of the worker). retrain time = "
        "wall time of the on_candles calls that ran retrains."
    )

    print("\n### Decision latency per engine.on_candles call, ms: p50 / p99 / max (n)\n")
    print("| scenario | calls that opened an order | all calls | calls without retrain |")
    print("|---|--:|--:|--:|")
    for r in results:
        lat, kind = r["latency_ns"], r["kind"]
        ordered = [t for t, k in zip(lat, kind, strict=True) if k & 1 and not k & 2]
        plain = [t for t, k in zip(lat, kind, strict=True) if not k & 2]
        print(f"| {r['name']} | {_lat(ordered)} | {_lat(lat)} | {_lat(plain)} |")
    print(
        f"\ntarget: p99 <= {TARGET_P99_MS} ms from candle close to order. 'opened an order' "
        "excludes calls that also ran a retrain (listed in 'all calls'). With few orders p99 is "
        "close to the max."
    )

    print("\n### Memory (RSS, MB)\n")
    print(
        "| scenario | replay days | VmRSS after imports | ru_maxrss before replay | "
        "VmRSS replay start | "
        "VmRSS at 25/50/75/100 % of replay | peak during replay (VmHWM) | ru_maxrss (process) | "
        "growth after the first quarter |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        samples = r["rss_mb"]
        if len(samples) >= 4:
            quarters = [samples[max(0, round(len(samples) * q) - 1)] for q in (0.25, 0.5, 0.75, 1)]
            q = " / ".join(f"{v:.0f}" for v in quarters)
            tail = np.asarray(samples[len(samples) // 4 :])
            growth = f"{tail[-1] - tail[0]:+.0f} MB"
            days_span = (len(tail) - 1) * r["rss_every"] / len(r["symbols"]) / 1440
            if days_span > 0:
                growth += f" over {days_span:.1f} d ({(tail[-1] - tail[0]) / days_span:+.1f}/d)"
        else:
            q, growth = "(too few samples)", "-"
        hwm = f"{r['hwm_replay_mb']:.0f}" if r["hwm_replay_mb"] else "n/a"
        print(
            f"| {r['name']} | {r['days']:g} | {r['rss_imported_mb']:.0f} | "
            f"{r['maxrss_before_replay_mb']:.0f} | "
            f"{r['rss_start_mb']:.0f} | {q} | {hwm} | {r['maxrss_mb']:.0f} | {growth} |"
        )
    print(f"\ntarget: <= {TARGET_RSS_MB} MB. VmRSS sampled every {args.rss_every} calls.")
    for r in results:
        if len(r["symbols"]) == 4 and r["days"] < 30 and r["replay_s"]:
            minutes = 30 * 1440 * 4 / (r["candles_1m"] / r["replay_s"]) / 60
            print(
                f"({r['name']} stands in for the 30-day 4-symbol run: at its replay rate 30 days "
                f"would take ~{minutes:.0f} min of replay.)"
            )

    notes = sorted({u for r in results for u in r["untrained"]})
    if notes:
        print(f"\nModels not trained (warm-up too short): {'; '.join(notes)}")
    for r in results:
        share = ", ".join(f"{s} {100 * v:.0f}%" for s, v in r["trading_share"].items())
        retr = ", ".join(f"{k} {v}" for k, v in sorted(r["retrains"].items())) or "none"
        line = (
            f"- {r['name']}: TRADING share {share}; retrains {retr}; errors {r['errors']}; "
            f"imports {r['import_s']:.1f} s; process {r['process_s']:.0f} s"
        )
        if r.get("shadow_trades") is not None:
            line += f"; shadow trades {r['shadow_trades']}"
        if r["retrain_s"]:
            rest = r["replay_s"] - r["retrain_s"]
            line += f"; replay without the retrain calls {r['candles_1m'] / rest:,.0f} candles/s"
        if r["rollback"]:
            line += f"; ROLLBACK: {r['rollback']}"
        print(line)
    print(
        f"\nconfig: repository defaults + trading_threshold 0.60, hysteresis 0.05, no costs. "
        f"Benchmark wall time {total_s:.0f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup-days", type=float, default=60, help="the CLI's default")
    parser.add_argument("--days-1", type=float, default=30, help="1 symbol, --no-retrain")
    parser.add_argument(
        "--days-event", type=float, default=2, help="1 symbol, --no-retrain, --event-path"
    )
    parser.add_argument(
        "--days-year", type=float, default=365, help="1 symbol, --no-retrain: whole process"
    )
    parser.add_argument(
        "--days-4", type=float, default=30, help="4 symbols, --no-retrain (also the RSS run)"
    )
    parser.add_argument("--days-retrain", type=float, default=0.5, help="1 symbol, retraining")
    parser.add_argument("--rss-every", type=int, default=500, help="on_candles calls")
    parser.add_argument(
        "--skip", default="", help="comma list of scenarios to skip: 1, year, event, retrain, 4"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    # profile mode (one process, prints the cProfile of the replay only)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--profile-out", help="also write the pstats file here")
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--symbols", default="BTC/USDT", help="worker/profile: comma list")
    parser.add_argument("--days", type=float, default=0.25, help="worker/profile: days to play")
    parser.add_argument("--retrain", action="store_true", help="worker/profile: retraining on")
    parser.add_argument(
        "--event-path", action="store_true", help="worker/profile: one event at a time"
    )
    args = parser.parse_args()

    if args.worker:
        result = worker(args)
        Path(args.out).write_text(json.dumps(result))
        return
    if args.profile:
        workdir = Path(tempfile.mkdtemp(prefix="cw_bench_engine_"))
        (workdir / "config.yaml").write_text(CONFIG_YAML)
        args.workdir = str(workdir)
        r = worker(args)
        print(
            f"profiled replay: {r['candles_1m']:,} 1m candles in {r['replay_s']:.1f} s "
            f"(under cProfile: {r['candles_1m'] / r['replay_s']:,.0f}/s); history "
            f"{r['history_s']:.1f} s, training {r['training_s']:.1f} s"
        )
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        return

    skip = set(filter(None, args.skip.split(",")))
    plan = [
        ("1", f"1 symbol, --no-retrain, {args.days_1:g} d", ALL_SYMBOLS[:1], args.days_1, False),
        (
            "year",
            f"1 symbol, --no-retrain, {args.days_year:g} d",
            ALL_SYMBOLS[:1],
            args.days_year,
            False,
        ),
        (
            "event",
            f"1 symbol, --no-retrain --event-path, {args.days_event:g} d",
            ALL_SYMBOLS[:1],
            args.days_event,
            False,
        ),
        (
            "retrain",
            f"1 symbol, retraining on, {args.days_retrain:g} d",
            ALL_SYMBOLS[:1],
            args.days_retrain,
            True,
        ),
        ("4", f"4 symbols, --no-retrain, {args.days_4:g} d", ALL_SYMBOLS, args.days_4, False),
    ]
    results = [
        run_scenario(name, symbols, days, retrain, args, event_path=key == "event")
        for key, name, symbols, days, retrain in plan
        if key not in skip
    ]
    print_tables(results, args, time.perf_counter() - STARTED)


if __name__ == "__main__":
    main()
