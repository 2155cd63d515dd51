"""Where a retrain runs: inline (replay) or in one background worker process (live).

A replay must be deterministic and may block, so :class:`InlineRetrainer` runs ``retrain``
inside ``submit``. A live feed must never block on a training run (seconds to minutes), so
:class:`ProcessRetrainer` hands the job to a worker process and returns at once; the caller
picks finished retrains up with the non-blocking ``poll``. Both share one interface, so the
engine's code is the same either way, and both report a retrain that raised as a failed
:class:`RetrainOutcome` instead of propagating it.

The caller must have committed the candles a retrain needs before ``submit``: the worker reads
them from the store through its own connection (only candles closed by ``now_ms`` are used).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.features.spec import FEATURE_SPEC
from candlewise.learning.retrain_policy import RetrainJob
from candlewise.models.model_file import load_model
from candlewise.signals.live import ModelSlot
from candlewise.store.db import sqlite_path
from candlewise.store.model_registry import ModelRegistry
from candlewise.system.logging_setup import get_logger
from candlewise.training.challenger import RetrainResult, retrain
from candlewise.training.worker_process import error_text, worker_main

log = get_logger("retrain_worker")

#: The worker's niceness: when the cores are busy the event loop wins the CPU, not the retrain.
#: Seconds ``close`` waits for the worker at each step (stop, SIGTERM) before escalating.
CLOSE_GRACE_S = 2.0


@dataclass(frozen=True)
class RetrainOutcome:
    """One finished retrain: exactly one of ``result`` and ``error`` is set."""

    job: RetrainJob
    started_at_ms: int
    """Candle time the job was submitted at: the retrain saw candles closed by then."""
    result: RetrainResult | None
    """The retrain's result (accepted or rejected); ``challenger`` is set when accepted."""
    error: str | None
    """Why the retrain failed (it raised, or the worker died); the champion stays."""
    champion_version: int | None
    """Version of the model that was in service when the job was submitted."""
    duration_s: float
    """Wall time of the attempt, also for failures (the log's ``failed after`` figure)."""

    @property
    def accepted(self) -> bool:
        return self.result is not None and self.result.accepted

    @property
    def slot(self) -> ModelSlot | None:
        """The new champion to swap in, or None when the challenger was not accepted."""
        r = self.result
        if r is None or not r.accepted or r.challenger is None:
            return None
        return ModelSlot(r.challenger, r.new_version)


class Retrainer(Protocol):
    @property
    def busy(self) -> bool: ...
    def submit(self, job: RetrainJob, now_ms: int, champion: ModelSlot | None) -> None: ...
    def poll(self) -> list[RetrainOutcome]: ...
    def close(self) -> list[RetrainJob]: ...


class InlineRetrainer:
    """Runs each retrain inside ``submit``: blocking and deterministic, for replays and tests."""

    def __init__(self, store: Engine, registry: ModelRegistry, cfg: AppConfig) -> None:
        self.store, self.registry, self.cfg = store, registry, cfg
        self._done: deque[RetrainOutcome] = deque()

    @property
    def busy(self) -> bool:
        return False  # every retrain has finished by the time submit returns

    def submit(self, job: RetrainJob, now_ms: int, champion: ModelSlot | None) -> None:
        started = time.perf_counter()
        result, error = None, None
        try:
            result = retrain(
                self.store,
                self.registry,
                self.cfg,
                job.symbol,
                job.timeframe,
                now_ms,
                champion.model if champion else None,
            )
        except Exception as exc:  # a failed retrain keeps the champion; it must not stop the run
            error = error_text(exc)
        self._done.append(
            RetrainOutcome(
                job,
                now_ms,
                result,
                error,
                champion.version if champion else None,
                time.perf_counter() - started,
            )
        )

    def poll(self) -> list[RetrainOutcome]:
        out = list(self._done)
        self._done.clear()
        return out

    def close(self) -> list[RetrainJob]:
        return []

    def __enter__(self) -> InlineRetrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Task:
    seq: int
    job: RetrainJob
    now_ms: int
    champion: bytes | None
    """The champion TrainedModel, pickled by the parent (see ProcessRetrainer)."""
    champion_version: int | None


class ProcessRetrainer:
    """Runs retrains one at a time in one background worker process; never blocks the caller.

    Design (why not ``ProcessPoolExecutor``): an explicit ``spawn`` Process with two pipes keeps
    every decision that matters here in our hands. ``close`` must end a retrain that is still
    running within seconds (the executor can only wait for it, or cancel jobs not yet started);
    a worker that dies (OOM kill, segfault) must fail exactly the job it was running while the
    queued ones run on a fresh worker (the executor breaks and fails *every* pending future);
    and Ctrl-C must reach the parent only (the worker ignores SIGINT; the parent's ``close``
    stops it). ``spawn``, not ``fork``: forking a process that has initialised torch's thread
    pools can deadlock the child.

    Jobs queue here, in the parent, and go to the worker one at a time, so a pipe never fills
    up (a full pipe would block ``submit``) and the in-flight job is always known.

    The worker opens its own store from the database URL and its own registry over the same
    models folder; an accepted challenger is registered there and the parent loads that file
    (a few ms, in ``poll``) instead of receiving weights through the pipe. The champion goes the
    other way as a pickled ``TrainedModel`` (about 20 kB): the verdict is then made against
    exactly the model in service, as inline, even one that has no registry version.

    The worker is spawned when the retrainer is created (importing torch and warming it up
    takes ~3.3 s on 2 cores, better spent at start-up than at the first retrain) and again, on
    the next job, after it died; ``start()`` itself blocks ~2 ms. It runs at ``WORKER_NICE`` so
    the event loop wins a contended core, and ends itself if the parent dies without ``close``.
    As with any ``spawn`` process, the program's main module must guard its entry point with
    ``if __name__ == "__main__":`` (the worker re-imports it).
    """

    def __init__(self, store: Engine, registry: ModelRegistry, cfg: AppConfig) -> None:
        url = store.url
        if url.get_backend_name() == "sqlite" and sqlite_path(str(url)) is None:
            raise ValueError("a worker process cannot share an in-memory SQLite database")
        self.cfg = cfg
        self._url = url.render_as_string(hide_password=False)
        self._models_dir = str(registry.models_dir)
        self._keep_versions = registry.keep_versions
        self._registry = registry
        self._ctx = get_context("spawn")
        self._proc: BaseProcess | None = None
        self._tasks: Connection | None = None
        self._results: Connection | None = None
        self._queue: deque[_Task] = deque()
        self._in_flight: _Task | None = None
        self._inbox: deque[tuple[Any, ...]] = deque()
        self._dispatched_at = 0.0
        self._spawned_at = 0.0
        self._seq = 0
        self._closed = False
        self.worker_starts = 0
        self.worker_ready_s: float | None = None
        """Seconds the last worker took from spawn to ready (imports, store opened), once known."""
        self._spawn()

    # --- public interface --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._in_flight is not None or bool(self._queue)

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def submit(self, job: RetrainJob, now_ms: int, champion: ModelSlot | None) -> None:
        """Queue ``job``; it starts at once when the worker is idle. Never waits for a retrain."""
        if self._closed:
            raise RuntimeError("ProcessRetrainer is closed")
        self._seq += 1
        model = pickle.dumps(champion.model) if champion else None
        version = champion.version if champion else None
        self._queue.append(_Task(self._seq, job, now_ms, model, version))
        self._dispatch()

    def poll(self) -> list[RetrainOutcome]:
        """Finished retrains (oldest first); never blocks. A dead worker fails its job."""
        out = []
        if self._proc is not None:
            alive = self._proc.is_alive()  # before draining: a result sent just before dying
            self._drain()  # is still read
            if self._inbox:
                out.append(self._finish(self._inbox.popleft()))
            elif not alive:
                if self._in_flight is None and self._queue:  # died starting up: fail one job,
                    self._in_flight = self._queue.popleft()  # so a broken set-up cannot loop
                if self._in_flight is not None:
                    code, model = self._proc.exitcode, self._in_flight.job.model
                    log.error("Retrain worker died (exit code %s) in %s", code, model)
                    out.append(self._fail(f"retrain worker died (exit code {code})"))
                self._reap()
        self._dispatch()
        return out

    def wait_ready(self, timeout: float) -> bool:
        """Block until the worker has imported everything and opened the store (tests, bench)."""
        deadline = time.monotonic() + timeout
        while self.worker_ready_s is None and self._results is not None:
            self._drain()
            left = deadline - time.monotonic()
            if self.worker_ready_s is not None or left <= 0:
                break
            self._results.poll(min(left, 0.1))
        return self.worker_ready_s is not None

    def close(self) -> list[RetrainJob]:
        """Stop the worker (a running retrain is abandoned); returns the jobs never finished.

        Idempotent, and safe to call from a KeyboardInterrupt handler: an idle worker is asked
        to stop, a busy one gets SIGTERM (it finishes a registry write in progress first), and
        one still alive after that is killed.
        """
        unfinished = [t.job for t in ([self._in_flight] if self._in_flight else [])]
        unfinished += [t.job for t in self._queue]
        self._closed = True
        self._queue.clear()
        busy, self._in_flight = self._in_flight is not None, None
        proc = self._proc
        if proc is None:
            return unfinished
        try:
            self._drain()
            idle = not busy and self.worker_ready_s is not None
            if idle and proc.is_alive() and self._tasks is not None:
                with contextlib.suppress(OSError):
                    self._tasks.send(None)
                proc.join(CLOSE_GRACE_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(CLOSE_GRACE_S)
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(CLOSE_GRACE_S)
            self._reap()
        return unfinished

    def __enter__(self) -> ProcessRetrainer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        tasks_out, tasks_in = self._ctx.Pipe(duplex=False)
        results_out, results_in = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=worker_main,
            args=(
                tasks_out,
                results_in,
                self._url,
                self._models_dir,
                self._keep_versions,
                self.cfg,
            ),
            name="candlewise-retrain",
            daemon=True,  # never outlives the parent's interpreter
        )
        self._spawned_at = time.time()  # wall clock: compared with the worker's
        with _sigint_ignored():  # inherited: the worker ignores Ctrl-C from its first line
            proc.start()
        tasks_out.close()  # the child's ends: closing ours lets each side see the other die
        results_in.close()
        self._proc, self._tasks, self._results = proc, tasks_in, results_out
        self.worker_starts += 1
        self.worker_ready_s = None
        log.info("Retrain worker started (pid %s)", proc.pid)

    def _reap(self) -> None:
        for conn in (self._tasks, self._results):
            if conn is not None:
                conn.close()
        if self._proc is not None:
            self._proc.join(0)
        self._proc = self._tasks = self._results = None
        self._inbox.clear()

    def _dispatch(self) -> None:
        """Send the next job if the worker is idle and ready (then it is blocked reading, so
        even a champion larger than the pipe's buffer is sent without waiting)."""
        if self._in_flight is not None or not self._queue or self._closed:
            return
        if self._proc is not None and not self._proc.is_alive():  # died while idle
            log.error("Retrain worker died while idle (exit code %s)", self._proc.exitcode)
            self._reap()
        if self._proc is None:
            self._spawn()
        self._drain()
        if self.worker_ready_s is None or self._tasks is None:
            return  # still starting: a later poll sends it
        task = self._queue.popleft()
        with contextlib.suppress(OSError):  # it died just now: the next poll fails the job
            self._tasks.send(task)
        self._in_flight, self._dispatched_at = task, time.perf_counter()

    def _drain(self) -> None:
        """Read every message waiting in the pipe, without blocking."""
        conn = self._results
        try:
            while conn is not None and conn.poll():
                message = conn.recv()
                if message[0] == "ready":
                    self.worker_ready_s = message[1] - self._spawned_at
                else:
                    self._inbox.append(message)
        except (EOFError, OSError):  # the worker is gone; poll notices through is_alive
            pass

    def _finish(self, message: tuple[Any, ...]) -> RetrainOutcome:
        _, seq, result, error, duration = message
        task = self._in_flight
        assert task is not None and task.seq == seq, "result for a job that is not in flight"
        self._in_flight = None
        if result is not None and result.accepted and result.new_version is not None:
            path = self._registry.version_path(result.symbol, result.timeframe, result.new_version)
            try:
                model = load_model(path, expected_fingerprint=FEATURE_SPEC.fingerprint).model
                result = dataclasses.replace(result, challenger=model)
            except Exception as exc:
                error = f"v{result.new_version} was registered but cannot be loaded: {exc}"
                result = None
        return RetrainOutcome(task.job, task.now_ms, result, error, task.champion_version, duration)

    def _fail(self, error: str) -> RetrainOutcome:
        task = self._in_flight
        assert task is not None
        self._in_flight = None
        took = time.perf_counter() - self._dispatched_at if self._dispatched_at else 0.0
        self._dispatched_at = 0.0
        return RetrainOutcome(task.job, task.now_ms, None, error, task.champion_version, took)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while the worker is spawned (main thread only: elsewhere it cannot be)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
