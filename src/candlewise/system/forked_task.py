"""A piece of start-up work run in a forked child while this process does something else.

A backtest's start-up is a chain of single-core steps (imports, simulated history, training,
signal calibration) on a machine with a second core idle. Steps that only read and write the
store can run in a child forked from this process: it starts in milliseconds with every module
already imported, and it never touches the parent's console or database connections (the
store's pool is disposed in the child, which opens its own).

The child's log records are sent back and re-emitted by ``wait``, in the child's order, so the
log stays one story. ``wait`` returns False when the work did not finish in the child (an
exception, a crash, no ``fork`` on this platform): the caller then does it itself, so a real
error surfaces as it would have without the child. Ctrl+C is the parent's to handle: the child
ignores it, and ``end`` stops a child whose result is no longer wanted.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sqlalchemy import Engine

from candlewise.system.logging_setup import LOGGER_NAME


class ForkedTask:
    def __init__(self, work: Callable[[], Any], store: Engine) -> None:
        self.work = work
        self.store = store
        self.result: Any = None
        """What ``work`` returned in the child (pickled back), once ``wait`` said True."""
        self._process: BaseProcess | None = None
        self._pipe: Connection | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> ForkedTask:
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            ours, theirs = context.Pipe(duplex=False)
            self._process = context.Process(target=self._child, args=(theirs, ours), daemon=True)
            self._process.start()
            theirs.close()
            self._pipe = ours
        return self

    def wait(self) -> bool:
        """Block until the child is done; True when the work was done there."""
        if self._pipe is None:
            return False
        try:
            done, records, self.result = self._pipe.recv()
        except (EOFError, OSError):  # it died without a word
            done, records = False, []
        self.end()
        for record in records:
            logging.getLogger(record.name).handle(record)
        return bool(done)

    def end(self) -> None:
        """Stop waiting: end the child if it still runs."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            if self._process.is_alive():
                # SIGKILL: its work is unwanted, and a SQLite transaction cut short is rolled
                # back; SIGTERM could land before the child drops the parent's handler
                self._process.kill()
            self._process.join()
            self._process = None

    def _child(self, pipe: Connection, parents: Connection) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's graceful-stop handler
        parents.close()
        self.store.dispose(close=False)  # the parent's pooled connections stay the parent's
        collect = _Collect()
        logging.getLogger(LOGGER_NAME).handlers = [collect]  # not the parent's files, console
        try:
            result = self.work()
        except BaseException:  # the parent redoes the work and meets the real error
            pipe.send((False, [], None))
        else:
            pipe.send((True, collect.records, result))
        pipe.close()


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
