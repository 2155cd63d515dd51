"""Retrain stall benchmark: how long does the event loop stop while a model retrains?

A loop stands in for the live event loop: per simulated 1m candle it runs the engine's
per-candle work for one model, ``LivePredictor.on_close`` + ``signals`` (loop ``predict``), or
that plus one store transaction writing the prediction and the signal as the engine does (loop
``predict+db``), and then ``retrainer.poll()``. The gap between consecutive iteration starts is
the stall an event would see. Cases, for each loop:

* no retrain running (the baseline);
* ProcessRetrainer, warm worker: ``JOBS`` retrains queued at once in the background worker;
* ProcessRetrainer, cold: the retrainer is created inside the loop (the spawn), one job;
* InlineRetrainer: the same ``JOBS`` retrains, run inside ``submit`` (spread over the loop).

Retrains use the default config (6,000 rows, up to 50 epochs, 1 torch thread), on the same
SQLite file the loop writes to. Target: the max stall with a retrain running stays in the
baseline's range (milliseconds), never the retrain's duration.

Section ``engine``: the real ``TradingEngine`` (2 symbols, timeframes 1m/5m/15m/1h, models
trained on 12 simulated days, default training config) driven one minute at a time as a live
feed would, paced at ``PACE_S`` of wall time a minute (a minute that falls behind is handled at
once, as queued candles would be): per minute the candles go into the outbox,
``on_candles`` runs for each symbol, then ``end_minute``; the driver writes the outbox every
``FLUSH_EVERY`` minutes (outside the timed part). Every ``RETRAIN_EVERY`` minutes an operator
asks for a retrain of one symbol's 1m model (alternating), ``ENGINE_JOBS`` in all. Automatic
triggers are off (so only those retrains run) and the signals are not calibrated (so no orders).
Reported per retrainer: the per-minute handling time (``on_candles`` + ``end_minute``), the
longest one while a retrain was in flight (asked for, queued, running or applied in that
minute), the worst lateness (a minute's handling finished this long after it was due) and the
retrains completed. Both retrainers start from a copy of the same store and models folder.

Run: .venv/bin/python bench/bench_retrain_stall.py [loop|engine]   (default: both sections)
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import Engine, text

from candlewise.backtest.history import simulate_history
from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.core.clock import SimulatedClock
from candlewise.core.timeframes import MINUTE_MS
from candlewise.engine.setup import build_predictor as _predictor
from candlewise.engine.setup import new_engine
from candlewise.engine.setup import warm_up as _warm_up
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.retrain_policy import RetrainJob, RetrainPolicy, RetrainReason
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.feeds import SimulatedFeed, simulated_source
from candlewise.market.ingest import ingest_frame
from candlewise.market.simulated import HISTORY_ORIGIN_MS, SimulatedMarket, market_at
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.store.signal_store import record_predictions, record_signals
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training.first_training import train_one, train_symbol
from candlewise.training.retrain_worker import InlineRetrainer, ProcessRetrainer, RetrainOutcome

SYMBOL = "BTC/USDT"
DAY0 = 1_735_689_600_000
MINUTE = 60_000
STORED_MINUTES = 8 * 1440  # > 6,000 rows + window: a full default-size retrain
JOBS = 6
BASELINE_S = 3.0


class Polls(Protocol):
    def poll(self) -> list[RetrainOutcome]: ...


@dataclass(frozen=True)
class Run:
    loop: str
    case: str
    gaps_us: np.ndarray
    outcomes: list[RetrainOutcome]
    wall_s: float
    note: str = ""


class EventLoop:
    """The per-candle work, fed with fresh simulated minutes (timestamps never repeat).

    Minutes are simulated in batches outside the timed part: making 20,000 candles at once is
    the bench's own cost (~35 ms, and the garbage-collector runs it provokes), not the loop's.
    """

    def __init__(
        self, store: Engine, market: SimulatedMarket, champion: ModelSlot, write: bool
    ) -> None:
        self.store, self.market, self.write = store, market, write
        self.predictor = LivePredictor({"1m": 1.0}, {(SYMBOL, "1m"): champion})
        self._candles: list[Candle] = []
        self._next = 0
        self.refill()
        self.predictor.warm_up(self._candles[: FEATURE_SPEC.window])
        self._next = FEATURE_SPEC.window

    def refill(self) -> None:
        self._candles = self.market.generate(20_000)[SYMBOL].candles()
        self._next = 0
        gc.collect()
        gc.freeze()  # the long-lived objects made so far are never scanned again

    def handle(self, candle: Candle) -> None:
        prediction = self.predictor.on_close(candle)
        signals = self.predictor.signals(SYMBOL, candle.close_time, ["1m"])
        if not self.write:
            return
        with self.store.begin() as conn:
            record_predictions(conn, [prediction] if prediction else [])
            record_signals(conn, signals, mode="learning")

    def run(
        self,
        retrainer: Polls | None,
        until: Callable[[int, float, list[RetrainOutcome]], bool],
        before: Callable[[int, float], None] | None = None,
    ) -> tuple[np.ndarray, list[RetrainOutcome], float]:
        """Loop until ``until(i, elapsed_s, outcomes)``; ``before(i, elapsed_s)`` runs first in
        each iteration (it is where jobs are submitted, so its cost counts as a stall)."""
        gaps: list[float] = []
        outcomes: list[RetrainOutcome] = []
        start = last = time.perf_counter()
        i = 0
        while not until(i, last - start, outcomes):
            if self._next == len(self._candles):  # untimed: shifts the clock past the refill
                t0 = time.perf_counter()
                self.refill()
                skipped = time.perf_counter() - t0
                start, last = start + skipped, last + skipped
            if before:
                before(i, last - start)
            self._next += 1
            self.handle(self._candles[self._next - 1])
            if retrainer is not None:
                outcomes += retrainer.poll()
            now = time.perf_counter()
            gaps.append((now - last) * 1e6)
            last, i = now, i + 1
        return np.array(gaps), outcomes, time.perf_counter() - start


def build(root: Path) -> tuple[Engine, ModelRegistry, AppConfig, SimulatedMarket, ModelSlot, int]:
    store = open_store(f"sqlite:///{root / 'trading.db'}")
    market = market_at([SYMBOL], 5, DAY0)
    frame = market.generate(STORED_MINUTES)[SYMBOL].to_frame().drop(columns="regime")
    ingest_frame(store, frame, SYMBOL, "1m", "sim", derive_higher=False)
    cfg = AppConfig()
    registry = ModelRegistry(store, root / "models", cfg.models.keep_versions)
    now = DAY0 + STORED_MINUTES * MINUTE
    train_one(store, registry, cfg, SYMBOL, "1m", known_at_ms=now - 1440 * MINUTE)
    loaded = registry.load_active(SYMBOL, "1m", FEATURE_SPEC.fingerprint)
    assert loaded is not None
    return store, registry, cfg, market, ModelSlot(loaded.model, loaded.version), now


def cases(
    loop: EventLoop, name: str, store: Engine, registry: ModelRegistry, cfg: AppConfig,
    champion: ModelSlot, now: int,
) -> tuple[list[Run], float]:  # fmt: skip
    """The four cases on one loop; returns the runs and the warm worker's start-up time."""
    job = RetrainJob(SYMBOL, "1m", RetrainReason.MANUAL, now)
    runs = []
    gaps, _, wall = loop.run(None, lambda i, t, o: t >= BASELINE_S)
    runs.append(Run(name, "no retrain", gaps, [], wall))

    warm = ProcessRetrainer(store, registry, cfg)
    assert warm.wait_ready(60)
    ready_s = warm.worker_ready_s or 0.0
    for _ in range(JOBS):
        warm.submit(job, now, champion)  # before the loop; the cold case times a submit
    gaps, outcomes, wall = loop.run(warm, lambda i, t, o: len(o) == JOBS)
    warm.close()
    runs.append(Run(name, "process, warm worker", gaps, outcomes, wall))

    cold: list[ProcessRetrainer] = []
    spawn_ms: list[float] = []

    def start_cold(i: int, t: float) -> None:
        if i == 100:
            t0 = time.perf_counter()
            cold.append(ProcessRetrainer(store, registry, cfg))
            cold[0].submit(job, now, champion)
            spawn_ms.append((time.perf_counter() - t0) * 1e3)

    class Late:  # the retrainer exists from iteration 100 on
        def poll(self) -> list[RetrainOutcome]:
            return cold[0].poll() if cold else []

    gaps, outcomes, wall = loop.run(Late(), lambda i, t, o: len(o) == 1, start_cold)
    cold[0].close()
    note = f"spawn+submit {spawn_ms[0]:.0f} ms"
    runs.append(Run(name, "process, cold (spawn in loop)", gaps, outcomes, wall, note))

    inline = InlineRetrainer(store, registry, cfg)
    spacing = runs[1].wall_s / JOBS
    submitted: list[int] = []

    def submit_inline(i: int, t: float) -> None:
        if len(submitted) < JOBS and t >= 0.1 + len(submitted) * spacing:
            submitted.append(i)
            inline.submit(job, now, champion)

    gaps, outcomes, wall = loop.run(
        inline, lambda i, t, o: len(o) == JOBS and t >= runs[1].wall_s, submit_inline
    )
    runs.append(Run(name, "inline", gaps, outcomes, wall))
    return runs, ready_s


def loop_section() -> None:
    runs: list[Run] = []
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store, registry, cfg, market, champion, now = build(Path(tmp))
        for name, write in (("predict", False), ("predict+db", True)):
            loop = EventLoop(store, market, champion, write)
            more, ready_s = cases(loop, name, store, registry, cfg, champion, now)
            runs += more
            ready.append(ready_s)
        store.dispose()

    print(
        f"\ncandlewise retrain stall benchmark: {JOBS} default-size retrains (6,000 rows, "
        "<= 50 epochs, 1 thread) while the loop runs; stall = gap between iteration starts\n"
    )
    cols = [
        ("loop", 10),
        ("case", 29),
        ("iters", 6),
        ("p50 us", 6),
        ("p99 us", 6),
        ("max ms", 6),
        ("retrains", 8),
        ("retrain s", 9),
        ("wall s", 6),
        ("note", 20),
    ]
    print(
        "| "
        + " | ".join(f"{n:<{w}}" if n in ("loop", "case", "note") else f"{n:>{w}}" for n, w in cols)
        + " |"
    )
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
    for r in runs:
        durations = [o.duration_s for o in r.outcomes]
        mean = f"{np.mean(durations):9.2f}" if durations else f"{'-':>9}"
        print(
            f"| {r.loop:<10} | {r.case:<29} | {len(r.gaps_us):6d} | "
            f"{np.percentile(r.gaps_us, 50):6.0f} | {np.percentile(r.gaps_us, 99):6.0f} | "
            f"{r.gaps_us.max() / 1e3:6.1f} | {len(r.outcomes):8d} | {mean} | {r.wall_s:6.2f} | "
            f"{r.note:<20} |"
        )
    verdicts = sorted({(o.accepted, o.error) for r in runs for o in r.outcomes})
    print(
        f"\nworker start-up, spawn to ready (imports torch, opens the store): "
        f"{', '.join(f'{s:.2f}' for s in ready)} s; outcomes (accepted, error): {verdicts}"
    )


# --- section "engine": the real TradingEngine, minute by minute ------------------------------

ENGINE_SYMBOLS = ("BTC/USDT", "ETH/USDT")
ENGINE_SEED = 2
ENGINE_WARMUP_DAYS = 12
ENGINE_START = HISTORY_ORIGIN_MS + ENGINE_WARMUP_DAYS * 1440 * MINUTE_MS
#: Default training config (6,000 rows, <= 50 epochs); 1d and 4h need more history than 12 days.
ENGINE_CFG = AppConfig(
    symbols=ENGINE_SYMBOLS,
    timeframes={
        "intervals": [
            {"interval": "1m", "weight": 0.1},
            {"interval": "5m", "weight": 0.2},
            {"interval": "15m", "weight": 0.3},
            {"interval": "1h", "weight": 0.4},
        ]
    },
)
#: Longer retrains (~2 s here): all 200 epochs run (patience and target are out of reach).
LONG_CFG = ENGINE_CFG.model_copy(
    update={
        "continuous_learning": ENGINE_CFG.continuous_learning.model_copy(
            update={
                "retraining": ENGINE_CFG.continuous_learning.retraining.model_copy(
                    update={"max_epochs": 200, "patience": 200, "target_confidence": 0.99}
                )
            }
        )
    }
)
#: (retrain label, config the retrains use): the first models are the same (default config).
RETRAIN_SIZES = (("default", ENGINE_CFG), ("200 epochs", LONG_CFG))
PACE_S = 0.02
"""Wall time per minute: 50 minutes a second, each handled in well under a millisecond."""
RETRAIN_EVERY = 250
ENGINE_JOBS = 8
FLUSH_EVERY = 50
"""The driver's own checkpoint: the outbox is written every this many minutes (1 s of wall)."""
#: Minutes simulated; a run ends once every retrain asked for has been applied.
ENGINE_MINUTES = RETRAIN_EVERY * (ENGINE_JOBS + 20)


@dataclass(frozen=True)
class EngineRun:
    case: str
    size: str
    handle_ms: np.ndarray
    """Per minute: ``on_candles`` (every symbol) + ``end_minute``."""
    in_flight: np.ndarray
    """Per minute: a retrain was asked for, queued, running or applied in it."""
    submitted: np.ndarray
    """Per minute: ``end_minute`` handed a retrain to the retrainer (inline: and ran it)."""
    applied: np.ndarray
    """Per minute: ``end_minute`` applied a finished retrain (swap, history row, checkpoint)."""
    late_ms: np.ndarray
    """Per minute: how long after it was due its handling (and the driver's flush) ended."""
    flush_ms: np.ndarray
    """The driver's own outbox writes (every ``FLUSH_EVERY`` minutes, not in ``handle_ms``)."""
    retrains: int
    accepted: int
    retrain_s: float
    wall_s: float
    note: str = ""


def build_engine_store(root: Path) -> None:
    """History and first models (every symbol and timeframe, v1) in ``root``."""
    store = open_store(f"sqlite:///{root / 'trading.db'}")
    registry = ModelRegistry(store, root / "models", ENGINE_CFG.models.keep_versions)
    source = simulated_source(ENGINE_SEED)
    simulate_history(store, ENGINE_SYMBOLS, ENGINE_SEED, ENGINE_START, source, None)
    for symbol in ENGINE_SYMBOLS:
        outcomes = train_symbol(
            store, registry, ENGINE_CFG, symbol, ENGINE_CFG.timeframes.names,
            known_at_ms=ENGINE_START,
        )  # fmt: skip
        assert all(o.ok for o in outcomes), [o.problem for o in outcomes]
    store.dispose()  # the last connection closed: the WAL is folded in, the file is complete


def window_minutes() -> list[list[Candle]]:
    """The window's 1m candles, one list (every symbol) per minute."""
    end = ENGINE_START + ENGINE_MINUTES * MINUTE_MS
    clock = SimulatedClock(ENGINE_START)
    feed = SimulatedFeed(ENGINE_SYMBOLS, ENGINE_SEED, ENGINE_START, clock, end)
    minutes: dict[int, list[Candle]] = {}
    for candle in feed.candles():
        minutes.setdefault(candle.close_time, []).append(candle)
    return list(minutes.values())


def engine_case(
    root: Path, case: str, size: str, cfg: AppConfig, minutes: list[list[Candle]]
) -> EngineRun:
    store = open_store(f"sqlite:///{root / 'trading.db'}")
    models_dir = root / "models"
    registry = ModelRegistry(store, models_dir, cfg.models.keep_versions)
    note = ""
    retrainer: InlineRetrainer | ProcessRetrainer
    if case == "process":
        retrainer = ProcessRetrainer(store, registry, cfg)
        assert retrainer.wait_ready(60)
        note = f"worker ready after {retrainer.worker_ready_s or 0.0:.1f} s (before the loop)"
    else:
        retrainer = InlineRetrainer(store, registry, cfg)
    predictor = _predictor(cfg, registry, str(models_dir), ENGINE_SYMBOLS)
    _warm_up(predictor, store, ENGINE_SYMBOLS, ENGINE_START)
    broker = PaperBroker(cfg.paper, cfg.risk, "paper")
    engine = new_engine(cfg, store, registry, predictor, broker, retrainer=retrainer)
    engine.policy = RetrainPolicy(cfg.continuous_learning.retraining, automatic=False)
    policy = engine.policy
    aggregators = {s: TimeframeAggregator(s, ("5m", "15m", "1h")) for s in ENGINE_SYMBOLS}
    source = simulated_source(ENGINE_SEED)
    handle, in_flight, submitted, applied, late, flushes = [], [], [], [], [], []
    asked = 0
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for m, group in enumerate(minutes):
        if asked == ENGINE_JOBS and not (policy.pending() or policy.running()):
            break
        due = start + m * PACE_S
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        ask = asked < ENGINE_JOBS and m % RETRAIN_EVERY == RETRAIN_EVERY // 2
        busy = ask or bool(policy.pending() or policy.running())
        now = group[0].close_time
        t0 = time.perf_counter()
        for candle in group:
            closed = [candle, *aggregators[candle.symbol].add(candle)]
            engine.outbox.candles(closed, source)
            engine.on_candles(closed)
        if ask:
            policy.request_manual(ENGINE_SYMBOLS[asked % len(ENGINE_SYMBOLS)], "1m", now)
            asked += 1
        jobs, started = len(policy) + len(policy.running()), sum(engine.stats.retrains.values())
        engine.end_minute(now)
        t1 = time.perf_counter()
        handle.append((t1 - t0) * 1e3)
        in_flight.append(busy)
        submitted.append(sum(engine.stats.retrains.values()) > started)
        applied.append(len(policy) + len(policy.running()) < jobs)
        if m % FLUSH_EVERY == FLUSH_EVERY - 1:
            engine.flush()
            flushes.append((time.perf_counter() - t1) * 1e3)
        late.append((time.perf_counter() - due) * 1e3)
    else:
        raise RuntimeError("the window ended before every retrain was applied")
    wall = time.perf_counter() - start
    gc.unfreeze()
    engine.flush()
    retrainer.close()
    with store.connect() as conn:
        rows = conn.execute(text("SELECT success, duration_s FROM retraining_history")).all()
    store.dispose()
    if len(rows) != asked:
        note += f"; {asked - len(rows)} merged into a queued retrain"
    return EngineRun(
        case,
        size,
        np.array(handle),
        np.array(in_flight),
        np.array(submitted),
        np.array(applied),
        np.array(late),
        np.array(flushes),
        len(rows),
        sum(bool(r[0]) for r in rows),
        float(np.mean([r[1] for r in rows])) if rows else float("nan"),
        wall,
        note,
    )


def engine_section() -> None:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        t0 = time.perf_counter()
        build_engine_store(base)
        built_s = time.perf_counter() - t0
        minutes = window_minutes()
        for n, (size, cfg) in enumerate(RETRAIN_SIZES):
            for case in ("inline", "process"):
                root = Path(tmp) / f"{case}{n}"
                shutil.copytree(base, root)
                runs.append(engine_case(root, case, size, cfg, minutes))
    print(
        f"\ncandlewise retrain stall benchmark, engine: TradingEngine, {len(ENGINE_SYMBOLS)} "
        f"symbols x {len(ENGINE_CFG.timeframes.names)} timeframes, paced at {PACE_S * 1e3:.0f} ms "
        f"a minute; a 1m retrain (6,000 rows) asked for every {RETRAIN_EVERY} minutes "
        f"({ENGINE_JOBS} in all); set-up (history, first models) {built_s:.0f} s\n"
    )
    cols = [
        ("retrainer", 9),
        ("retrain", 10),
        ("minutes", 7),
        ("p50 ms", 6),
        ("p99 ms", 6),
        ("max ms, no retrain", 18),
        ("max ms, retrain in flight", 25),
        ("of which submit / training / apply", 34),
        ("max late ms", 11),
        ("flush max ms", 12),
        ("retrains (accepted)", 19),
        ("retrain s", 9),
        ("wall s", 6),
    ]
    print("| " + " | ".join(f"{n:<{w}}" if i == 0 else f"{n:>{w}}"
                            for i, (n, w) in enumerate(cols)) + " |")  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")

    def most(values: np.ndarray) -> float:
        return float(values.max()) if len(values) else float("nan")

    def text_max(values: np.ndarray) -> str:
        return f"{values.max():.1f}" if len(values) else "-"

    for r in runs:
        h = r.handle_ms
        training = r.in_flight & ~r.submitted & ~r.applied
        parts = " / ".join(text_max(h[k]) for k in (r.submitted, training, r.applied))
        print(
            f"| {r.case:<9} | {r.size:>10} | {len(h):7d} | {np.percentile(h, 50):6.2f} | "
            f"{np.percentile(h, 99):6.2f} | {most(h[~r.in_flight]):18.1f} | "
            f"{most(h[r.in_flight]):25.1f} | {parts:>34} | "
            f"{r.late_ms.max():11.1f} | {most(r.flush_ms):12.1f} | "
            f"{f'{r.retrains} ({r.accepted})':>19} | {r.retrain_s:9.2f} | {r.wall_s:6.1f} |"
        )
    for r in runs:
        if r.note:
            print(f"\n{r.case}, {r.size}: {r.note.lstrip('; ')}")


def main() -> None:
    sections = sys.argv[1:] or ["loop", "engine"]
    if "loop" in sections:
        loop_section()
    if "engine" in sections:
        engine_section()


if __name__ == "__main__":
    main()
