"""The signal calibration of a run's first models, computed in a forked process beside training.

A backtest's start-up trains each symbol's models (``train_symbol``) and fits its signal
calibrators on a walk-forward of their own (``calibrate_signals``). The two read the same
stored candles and nothing of each other, each takes ~1-2 s a symbol on one core, and the
second core is idle then: the calibrations run in a child forked from this process (torch is
imported already, so it starts in milliseconds) while this process trains.

The child's log records are sent back and re-emitted here after training, in the order the
child made them, so the log stays one ordered story (calibration lines after the training
lines). Anything unexpected in the child (an exception, a crash, no ``fork`` on this platform)
makes this process run the missing calibrations itself, so errors surface as they would
without the child. Ctrl+C is this process's to handle: the child ignores it and is ended.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from candlewise.config import AppConfig
from candlewise.logging_setup import LOGGER_NAME
from candlewise.training import calibrate_signals


class CalibrationBeside:
    """``with CalibrationBeside(...):`` train; on exit every symbol's calibration is saved."""

    def __init__(
        self,
        store: Engine,
        cfg: AppConfig,
        symbols: Sequence[str],
        known_at_ms: int,
        models_dir: str,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.symbols = list(symbols)
        self.known_at_ms = known_at_ms
        self.models_dir = models_dir
        self._process: Any = None
        self._pipe: Connection | None = None

    def __enter__(self) -> CalibrationBeside:
        if "fork" in multiprocessing.get_all_start_methods():
            ours, theirs = multiprocessing.get_context("fork").Pipe(duplex=False)
            process = multiprocessing.get_context("fork").Process(
                target=_child, args=(theirs, self), daemon=True
            )
            process.start()
            theirs.close()
            self._process, self._pipe = process, ours
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._end()
            return
        done: list[str] = []
        if self._pipe is not None:
            try:
                done, records = self._pipe.recv()
            except (EOFError, OSError):
                done, records = [], []
            self._end()
            for record in records:
                logging.getLogger(record.name).handle(record)
        for symbol in self.symbols:
            if symbol not in done:  # no child, or it failed: here, with the real error
                self.calibrate(symbol)

    def calibrate(self, symbol: str) -> None:
        calibrate_signals(
            self.store, self.cfg, symbol, known_at_ms=self.known_at_ms, models_dir=self.models_dir
        )

    def _end(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._process = None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg = record.getMessage()  # arguments formatted here: they may not pickle
        record.args = None
        if record.exc_info:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = None
        self.records.append(record)


def _child(pipe: Connection, job: CalibrationBeside) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job.store.dispose(close=False)  # the parent's pooled connections stay the parent's
    logger = logging.getLogger(LOGGER_NAME)
    collect = _Collect()
    logger.handlers = [collect]  # the parent's handlers (files, console) stay the parent's
    try:
        for symbol in job.symbols:
            job.calibrate(symbol)
    except BaseException:
        pipe.send(([], []))
    else:
        pipe.send((job.symbols, collect.records))
    pipe.close()
