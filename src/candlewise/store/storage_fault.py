"""A store or folder that cannot be written (a full disk, a read-only folder or file system):
an operator's problem with a fix, never a traceback.

SQLite reports these as ``database or disk is full``, ``attempt to write a readonly database``,
``unable to open database file`` (a folder where the ``-wal``/``-shm`` files cannot be made) or
``disk I/O error``; files written beside the store (reports, models, logs) fail with ``ENOSPC``,
``EROFS``, ``EACCES``. ``watch`` turns the SQLite ones into a :class:`StorageFault` naming the
database file at the source (SQLAlchemy's ``handle_error`` event), so every command, the
monitor and the report included, says what is wrong and how to fix it; ``from_os_error`` does
the same for files.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from candlewise.core.errors import UserError

FULL = ("database or disk is full", "disk is full")
READ_ONLY = ("attempt to write a readonly database", "unable to open database file", "readonly")
IO = ("disk i/o error",)
_OS_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class StorageFault(UserError):
    """The store (or a file beside it) cannot be written; ``path`` is what failed."""

    def __init__(self, message: str, hint: str, path: Path) -> None:
        super().__init__(message, hint)
        self.path = path


def describe(path: Path, reason: str, *, database: bool = True) -> StorageFault | None:
    """The fault ``reason`` (a driver or OS message) means for ``path``, None when it is not
    a storage fault (a bug, a lock, a missing table: those keep their own handling)."""
    text = reason.lower()
    full = any(k in text for k in FULL) or "no space left" in text or "quota" in text
    read_only = any(k in text for k in READ_ONLY) or "read-only file system" in text
    denied = "permission denied" in text or "operation not permitted" in text
    if not (full or read_only or denied or any(k in text for k in IO)):
        return None
    where = path.resolve()
    folder = where.parent if where.suffix else where
    if full:
        return StorageFault(
            f"cannot write {where}: the disk is full ({reason})",
            f"free space on the disk holding {folder} (check with: df -h {folder}), "
            "then run the same command again; what was saved before is kept",
            where,
        )
    if read_only or denied or not _writable(folder):
        why = "; SQLite writes there, even to read (its -wal and -shm files)" if database else ""
        elsewhere = ", or point database.url in config.yaml at a writable folder"
        return StorageFault(
            f"cannot use {where}: {folder} is read-only ({reason}){why}",
            f"make {folder} and the files in it writable for this user (e.g. chmod -R u+w "
            f"{folder}, or remount it read-write){elsewhere if database else ''}; then run "
            "the same command again",
            where,
        )
    return StorageFault(
        f"cannot write {where}: the disk reported an I/O error ({reason})",
        f"check the disk holding {folder} (dmesg, df -h {folder}); then run the same command again",
        where,
    )


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def from_os_error(exc: OSError) -> StorageFault | None:
    """A file that could not be written (full disk, read-only folder), else None."""
    if exc.errno not in _OS_ERRNOS or exc.filename is None:
        return None
    return describe(Path(os.fsdecode(exc.filename)), exc.strerror or str(exc), database=False)


def watch(engine: Engine, path: Path) -> None:
    """Raise :class:`StorageFault` for the storage errors of the SQLite file ``path``."""

    @event.listens_for(engine, "handle_error")
    def _translate(context: ExceptionContext) -> StorageFault | None:
        original = context.original_exception
        return describe(path, str(original).strip().splitlines()[0] if str(original) else "")
