"""Consistent backups of a live database and the models folder, and restoring them.

SQLite is copied with its online backup API, page by page under the database's own locking, so a
copy taken while the engine writes (WAL mode) is a consistent snapshot, which a plain ``cp`` of
``trading.db`` without its ``-wal`` file is not. Each backup is a folder
``backups/<YYYYmmdd_HHMMSS>/`` with ``trading.db``, ``models/`` and ``manifest.json``
(sizes and SHA-256 of every file), so a restore can verify what it brings back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from candlewise.core.errors import UserError

MANIFEST = "manifest.json"
DB_NAME = "trading.db"


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    db_bytes: int
    model_files: int
    integrity: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _online_copy(source: Path, target: Path) -> str:
    """Copy ``source`` into ``target`` with the backup API; returns the copy's integrity check."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy is a single self-contained file
        return str(dst.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        dst.close()
        src.close()


SAFETY_SUFFIX = "_pre-restore"


def backup(
    db_path: Path,
    models_dir: Path,
    backups_dir: Path,
    now: datetime | None = None,
    *,
    label: str = "",
) -> BackupResult:
    if not db_path.exists():
        raise UserError(f"database not found: {db_path}", "nothing to back up yet")
    stamp = (now or datetime.now(tz=UTC)).strftime("%Y%m%d_%H%M%S") + label
    folder = backups_dir / stamp
    suffix = 1
    while folder.exists():
        folder = backups_dir / f"{stamp}_{suffix}"
        suffix += 1
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True)
    integrity = _online_copy(db_path, partial / DB_NAME)
    if integrity != "ok":
        shutil.rmtree(partial)
        raise UserError(
            f"the copy of {db_path} fails SQLite's integrity check ({integrity}); no backup kept",
            f"inspect it with: sqlite3 {db_path} 'PRAGMA integrity_check;'",
        )
    files: dict[str, dict[str, object]] = {}
    model_count = 0
    if models_dir.is_dir():
        shutil.copytree(models_dir, partial / "models")
        model_count = sum(1 for p in (partial / "models").rglob("*") if p.is_file())
    for path in sorted(p for p in partial.rglob("*") if p.is_file()):
        rel = path.relative_to(partial).as_posix()
        files[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {
        "created_at": stamp,
        "source_db": str(db_path.resolve()),
        "models_dir": str(models_dir.resolve()),
        "integrity_check": integrity,
        "files": files,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
    partial.rename(folder)  # a crash mid-backup never leaves a folder that looks complete
    return BackupResult(folder, (folder / DB_NAME).stat().st_size, model_count, integrity)


def list_backups(backups_dir: Path, *, include_safety: bool = True) -> list[Path]:
    """Complete backups, oldest first; safety copies made by ``restore`` only if asked."""
    if not backups_dir.is_dir():
        return []
    return sorted(
        p
        for p in backups_dir.iterdir()
        if (p / MANIFEST).is_file() and (include_safety or SAFETY_SUFFIX not in p.name)
    )


def resolve(name: str | Path, backups_dir: Path) -> Path:
    """A backup folder from a path or a bare name such as ``20260102_120000``."""
    path = Path(name)
    if not (path / MANIFEST).is_file() and (backups_dir / path.name / MANIFEST).is_file():
        return backups_dir / path.name
    return path


def verify(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    for rel, meta in manifest["files"].items():
        path = folder / rel
        if not path.is_file() or _sha256(path) != meta["sha256"]:
            raise UserError(
                f"backup {folder} is damaged: {rel} is missing or does not match its checksum",
                "choose another backup with 'candlewise restore --list'",
            )


def restore(
    folder: Path, db_path: Path, models_dir: Path, backups_dir: Path
) -> BackupResult | None:
    """Bring back ``folder``; the current database and models are backed up first.

    The database is written through the backup API into the existing file, so readers holding it
    open see either the old or the new content, never a torn file.
    """
    if not (folder / MANIFEST).is_file():
        raise UserError(
            f"not a backup folder: {folder}", "list them with 'candlewise restore --list'"
        )
    verify(folder)
    safety = (
        backup(db_path, models_dir, backups_dir, label=SAFETY_SUFFIX) if db_path.exists() else None
    )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    dst = sqlite3.connect(db_path, timeout=30)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    if (folder / "models").is_dir():
        staging = models_dir.with_name(models_dir.name + ".restoring")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder / "models", staging)
        if models_dir.exists():
            shutil.rmtree(models_dir)
        staging.rename(models_dir)
    return safety
