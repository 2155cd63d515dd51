"""Checkpoints written by a forked child process, so that SQLite's work runs beside the replay's.

A block replay spends as long inserting its rows (candles, predictions, signals, trades: ~5 a
minute, ~2 us each) as computing them, and a thread cannot help (the replay holds the GIL while
SQLite waits for it). So a replay hands each checkpoint (the outbox's rows and the engine's
snapshot) to this writer, which runs the very same transaction, ``Outbox.flush`` and
``save_checkpoint``, in its own process, in order, while the replay goes on. The pipe bounds
how far the replay can run ahead (the replay waits when the writer is a checkpoint behind).

Durability is unchanged: every checkpoint is still one transaction holding its rows and the
snapshot they lead to. If the replay dies (``kill -9``), a message it had not finished sending
is never committed (the writer reads whole messages only) and the writer exits at the pipe's
end; the run resumes from the last committed checkpoint. A resuming process must not read the
run while an old writer may still commit: the writer holds an exclusive ``flock`` on
``<database>.writer.lock`` for its life, and ``wait_for_writers`` takes it before the run is
read. Hence SQLite files only (``usable``); other stores are written in-process.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import threading
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from candlewise.store.db import create_db_engine, sqlite_path
from candlewise.store.outbox import Outbox
from candlewise.store.run_store import save_checkpoint

#: Checkpoints the writer holds in memory ahead of its transaction (about a second each).
QUEUED = 8
#: WAL pages between automatic checkpoints in the writer (SQLite's default: 1000).
WAL_CHECKPOINT_PAGES = 10_000
#: Writers that reported their last commit and are exiting (kept so they are reaped).
_exiting: list[BaseProcess] = []


class CheckpointWriteError(RuntimeError):
    """The writer process failed; the run resumes from its last committed checkpoint."""


def lock_path(store: Engine) -> Path | None:
    path = sqlite_path(store.url.render_as_string(hide_password=False))
    return None if path is None else path.with_name(path.name + ".writer.lock")


def usable(store: Engine) -> bool:
    """A SQLite file (the lock file lives beside it)."""
    return lock_path(store) is not None


def wait_for_writers(store: Engine) -> None:
    """Block until no writer process of an earlier run of this database is still committing."""
    path = lock_path(store)
    if path is None:
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        fcntl.flock(f, fcntl.LOCK_UN)


class CheckpointWriter:
    """The replay's side: ``submit`` checkpoints in order, ``close`` waits until all are in."""

    def __init__(self, store: Engine) -> None:
        path = lock_path(store)
        if path is None:
            raise ValueError("the checkpoint writer needs a SQLite file database")
        # Forked: the child has every module it needs already (a fresh interpreter spent ~0.6 s
        # of CPU importing them, beside the run's training), and never touches the parent's
        # torch, console or database connections (it opens its own). Joined by a socket pair.
        ours, theirs = socket.socketpair()
        url = store.url.render_as_string(hide_password=False)
        self._process = multiprocessing.get_context("fork").Process(
            target=_forked, args=(theirs, ours, str(path), url), name="checkpoint-writer"
        )
        self._process.start()
        theirs.close()
        self._pipe = Pipe(ours.detach())
        self._closed = False

    def submit(
        self, outbox: Outbox, run_id: int, cursor_ms: int, snapshot: bytes, status: str
    ) -> None:
        """Queue one checkpoint (the outbox is emptied: its rows now belong to the writer)."""
        self._raise_failure()
        payload = (outbox.take(), run_id, cursor_ms, snapshot, status, os.getpid())
        try:
            self._pipe.send_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._raise_failure(wait=True)
            raise CheckpointWriteError("the checkpoint writer process is gone") from None

    def close(self) -> None:
        """Wait until every submitted checkpoint is committed; raise if one failed."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pipe.send_bytes(b"")
            reply = self._pipe.recv()
        except (OSError, EOFError):
            reply = ("error", "the checkpoint writer process ended unexpectedly")
        finally:
            self._pipe.close()
        # All is committed once it said so; its exit is not waited for (the lock it holds until
        # then keeps a resume of this database waiting, not this run).
        _exiting.append(self._process)
        _exiting[:] = [p for p in _exiting if p.is_alive()]
        if reply[0] != "done":
            raise CheckpointWriteError(f"writing a checkpoint failed: {reply[1]}")

    def _raise_failure(self, wait: bool = False) -> None:
        if self._pipe.poll(5.0 if wait else 0):
            reply = self._pipe.recv()
            self._closed = True
            raise CheckpointWriteError(f"writing a checkpoint failed: {reply[1]}")


def serve(pipe: Pipe, lock: str, url: str) -> None:
    """The writer process: one transaction per message, in order, until an empty message.

    A reader thread takes messages off the socket as they come (up to ``QUEUED`` ahead), so
    the replay never waits for a transaction, only for a full queue.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the replay's to handle

    messages: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED)

    def read() -> None:
        while True:
            try:
                data = pipe.recv_bytes()
            except (EOFError, OSError):  # the replay died: what it did not finish is lost
                messages.put(None)
                return
            messages.put(data)
            if not data:
                return

    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        threading.Thread(target=read, name="checkpoint-reader", daemon=True).start()
        store = create_db_engine(url)
        # A year's replay writes ~250 MB: the default WAL checkpoint every 4 MB paid ~60 fsyncs
        # (0.6 s, a tenth of this process). Every 40 MB: same safety (WAL, synchronous=NORMAL),
        # a larger WAL file between checkpoints.
        event.listen(store, "connect", _larger_wal_checkpoints)
        outbox = Outbox()
        try:
            while (data := messages.get()) is not None:
                if not data:
                    pipe.send(("done", ""))
                    return
                rows, run_id, cursor_ms, snapshot, status, pid = pickle.loads(data)
                outbox.give(rows)
                with store.begin() as conn:
                    outbox.flush(conn)
                    save_checkpoint(conn, run_id, cursor_ms, snapshot, status, pid=pid)
        except Exception as exc:  # reported to the replay, which stops
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            store.dispose()


def _larger_wal_checkpoints(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")


def _forked(theirs: socket.socket, ours: socket.socket, lock: str, url: str) -> None:
    ours.close()  # else the parent's death would not end this pipe
    serve(Pipe(theirs.detach()), lock, url)
