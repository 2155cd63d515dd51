"""The retrain worker process's side: its loop, its signal handling, its registry.

Spawned by :class:`candlewise.training.retrain_worker.ProcessRetrainer`; one task in, one result
out. It ignores Ctrl-C (the parent's to handle), defers SIGTERM while a model version is written,
and exits by itself when its parent dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from candlewise.config.app_config import AppConfig
from candlewise.store.model_registry import ModelRegistry
from candlewise.system.memory import freeze_start_up_objects
from candlewise.training.challenger import retrain

#: The worker's niceness: on a busy machine the event loop wins the core.
WORKER_NICE = 10


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _ShieldedRegistry(ModelRegistry):
    """Defers SIGTERM while a version is written, so ``close`` never leaves the active model
    file and the registry's ``active`` flag disagreeing.

    A Python handler, not a signal mask: the mask is per thread, and torch's threads (which do
    not block it) would take the signal and die with it. Python runs handlers in the main
    thread, between bytecodes, i.e. within milliseconds during training."""

    writing = False
    term_pending = False

    def register(self, *args: Any, **kwargs: Any) -> int:
        _ShieldedRegistry.writing = True
        try:
            return super().register(*args, **kwargs)
        finally:
            _ShieldedRegistry.writing = False
            if _ShieldedRegistry.term_pending:
                _die_by_sigterm()

    @staticmethod
    def on_sigterm(signum: int, frame: object) -> None:
        if _ShieldedRegistry.writing:
            _ShieldedRegistry.term_pending = True
        else:
            _die_by_sigterm()


def _die_by_sigterm() -> None:
    """Exit as SIGTERM's default action would (exit code -15 in the parent)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_with_parent() -> None:
    """SIGTERM ourselves when the parent dies without ``close`` (killed, crashed): an orphan
    would otherwise train on until its retrain ends."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main(
    tasks: Connection,
    results: Connection,
    url: str,
    models_dir: str,
    keep_versions: int,
    cfg: AppConfig,
) -> None:
    """The worker's loop: one task in, one result out, until told to stop or the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _ShieldedRegistry.on_sigterm)
    _exit_with_parent()
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    registry, setup_error = _open_registry(url, models_dir, keep_versions, cfg)
    results.send(("ready", time.time()))
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):  # the parent is gone
            break
        if task is None:
            break
        t0 = time.perf_counter()
        result, error = (None, setup_error) if registry is None else _retrain(task, registry, cfg)
        try:
            results.send(("done", task.seq, result, error, time.perf_counter() - t0))
        except (BrokenPipeError, OSError):
            break
    if registry is not None:
        registry.engine.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the interpreter's teardown with torch loaded takes ~0.8 s, for nothing


def _open_registry(
    url: str, models_dir: str, keep_versions: int, cfg: AppConfig
) -> tuple[ModelRegistry | None, str | None]:
    """The worker's registry, or why it could not start: reported on every job rather than
    dying in a restart loop."""
    try:
        import torch

        from candlewise.store.db import open_store

        torch.set_num_threads(cfg.models.threads)
        store = open_store(url)
        registry = _ShieldedRegistry(store, Path(models_dir), keep_versions)
        freeze_start_up_objects()  # training's full collections would rescan torch's objects
    except Exception as exc:
        return None, f"retrain worker could not start: {error_text(exc)}"
    return registry, None


def _retrain(task: Any, registry: ModelRegistry, cfg: AppConfig) -> tuple[Any, str | None]:
    """(result, None), or (None, the error) when the retrain raised."""
    try:
        champion = pickle.loads(task.champion) if task.champion is not None else None
        result = retrain(
            registry.engine,
            registry,
            cfg,
            task.job.symbol,
            task.job.timeframe,
            task.now_ms,
            champion,
        )
        return dataclasses.replace(result, challenger=None), None  # the parent loads the file
    except Exception as exc:
        return None, error_text(exc)
