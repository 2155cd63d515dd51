"""Where models live: versioned files on disk plus one ``model_registry`` row per version.

``models/BTC_USDT_1h.pt`` is the active model (so the guide's ``ls models/*.pt`` lists what is
live); every version is also kept as ``models/versions/BTC_USDT_1h/v0003.pt`` (the newest
``keep_versions``, plus the active one, survive pruning) so a model can be rolled back. A model
file that is missing, corrupt or built for other features is reported and treated as missing:
the symbol then stays in LEARNING mode instead of crashing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select, update

from candlewise.core.errors import UserError
from candlewise.core.symbols import file_stem
from candlewise.core.timestamps import ms_to_text, now_text
from candlewise.models.model_file import LoadedModel, ModelFileError, load_model, save_model
from candlewise.models.trainer import TrainedModel
from candlewise.store.tables import model_registry
from candlewise.system.logging_setup import get_logger

log = get_logger("models")


@dataclass(frozen=True)
class ModelRecord:
    symbol: str
    timeframe: str
    version: int
    created_at: str
    val_accuracy: float
    val_confidence: float
    ece: float
    majority_baseline: float
    train_size: int
    val_size: int
    active: bool
    path: str


class ModelRegistry:
    def __init__(self, engine: Engine, models_dir: str | Path, keep_versions: int = 5) -> None:
        self.engine = engine
        self.models_dir = Path(models_dir)
        self.keep_versions = keep_versions

    def active_path(self, symbol: str, timeframe: str) -> Path:
        return self.models_dir / f"{file_stem(symbol)}_{timeframe}.pt"

    def version_path(self, symbol: str, timeframe: str, version: int) -> Path:
        folder = self.models_dir / "versions" / f"{file_stem(symbol)}_{timeframe}"
        return folder / f"v{version:04d}.pt"

    def next_version(self, symbol: str, timeframe: str) -> int:
        c = model_registry.c
        stmt = select(func.max(c.version)).where(c.symbol == symbol, c.timeframe == timeframe)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one() or 0) + 1

    def register(
        self,
        symbol: str,
        timeframe: str,
        model: TrainedModel,
        *,
        train_start_ms: int,
        train_end_ms: int,
        activate: bool = True,
    ) -> int:
        """Save ``model`` as the next version, record it, and (by default) make it active."""
        version = self.next_version(symbol, timeframe)
        path = self.version_path(symbol, timeframe, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        checksum = save_model(
            path,
            model,
            symbol=symbol,
            timeframe=timeframe,
            version=version,
            train_start_ms=train_start_ms,
            train_end_ms=train_end_ms,
        )
        m = model.metrics
        with self.engine.begin() as conn:
            conn.execute(
                insert(model_registry).values(
                    symbol=symbol,
                    timeframe=timeframe,
                    version=version,
                    created_at=now_text(),
                    train_start=ms_to_text(train_start_ms),
                    train_end=ms_to_text(train_end_ms),
                    train_size=m.train_size,
                    val_size=m.val_size,
                    val_accuracy=m.val_accuracy,
                    val_confidence=m.val_confidence,
                    ece=m.ece,
                    brier=m.brier,
                    majority_baseline=m.majority_baseline,
                    epochs=m.epochs_run,
                    stopped_reason=m.stopped_reason,
                    duration_s=m.duration_s,
                    feature_fingerprint=model.feature_fingerprint,
                    path=str(path),
                    checksum=checksum,
                    active=False,
                )
            )
        if activate:
            self.activate(symbol, timeframe, version)
        self._prune(symbol, timeframe)
        return version

    def activate(self, symbol: str, timeframe: str, version: int) -> None:
        """Copy the version file over the active file (atomically), then flag it in the registry."""
        source = self.version_path(symbol, timeframe, version)
        if not source.is_file():
            raise UserError(
                f"{symbol} {timeframe} v{version} has no model file ({source})",
                "list the versions that still exist with 'candlewise models list'",
            )
        target = self.active_path(symbol, timeframe)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".pt.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        c = model_registry.c
        where = (c.symbol == symbol) & (c.timeframe == timeframe)
        with self.engine.begin() as conn:
            conn.execute(update(model_registry).where(where).values(active=False))
            conn.execute(
                update(model_registry).where(where & (c.version == version)).values(active=True)
            )

    def rollback(self, symbol: str, timeframe: str) -> tuple[int, int]:
        """Activate the newest kept version older than the active one; returns (from, to)."""
        records = self.list(symbol, timeframe)
        active = next((r for r in records if r.active), None)
        if active is None:
            raise UserError(
                f"no active {symbol} {timeframe} model to roll back from",
                f"train one with 'candlewise train --symbol {symbol} --interval {timeframe}'",
            )
        older = [
            r.version
            for r in records
            if r.version < active.version
            and self.version_path(symbol, timeframe, r.version).is_file()
        ]
        if not older:
            raise UserError(
                f"{symbol} {timeframe} v{active.version} has no older version to roll back to"
            )
        target = max(older)
        self.activate(symbol, timeframe, target)
        log.info("[%s_%s] Rolled back from v%d to v%d", symbol, timeframe, active.version, target)
        return active.version, target

    def list(self, symbol: str | None = None, timeframe: str | None = None) -> list[ModelRecord]:
        c = model_registry.c
        stmt = select(model_registry).order_by(c.symbol, c.timeframe, c.version)
        if symbol:
            stmt = stmt.where(c.symbol == symbol)
        if timeframe:
            stmt = stmt.where(c.timeframe == timeframe)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            ModelRecord(
                symbol=r["symbol"],
                timeframe=r["timeframe"],
                version=r["version"],
                created_at=r["created_at"],
                val_accuracy=r["val_accuracy"],
                val_confidence=r["val_confidence"],
                ece=r["ece"],
                majority_baseline=r["majority_baseline"],
                train_size=r["train_size"],
                val_size=r["val_size"],
                active=bool(r["active"]),
                path=r["path"],
            )
            for r in rows
        ]

    def load_active(
        self, symbol: str, timeframe: str, expected_fingerprint: str | None
    ) -> LoadedModel | None:
        """The active model, or None (logged) when missing, corrupt or incompatible."""
        path = self.active_path(symbol, timeframe)
        if not path.is_file():
            return None
        try:
            return load_model(path, expected_fingerprint=expected_fingerprint)
        except ModelFileError as exc:
            log.error("[%s_%s] Model unusable, treated as missing: %s", symbol, timeframe, exc)
            return None

    def load_version(
        self, symbol: str, timeframe: str, version: int, expected_fingerprint: str | None
    ) -> LoadedModel | None:
        """A kept version (a resumed run reloads the versions it was using), or None (logged)."""
        path = self.version_path(symbol, timeframe, version)
        if not path.is_file():
            log.error("[%s_%s] v%d has no model file (%s)", symbol, timeframe, version, path)
            return None
        try:
            return load_model(path, expected_fingerprint=expected_fingerprint)
        except ModelFileError as exc:
            log.error("[%s_%s] v%d unusable: %s", symbol, timeframe, version, exc)
            return None

    def discard_newer(self, symbol: str, timeframe: str, version: int | None) -> list[int]:
        """Forget versions above ``version`` (all when None): a run resumed from a checkpoint
        taken before they were registered will register them again, under the same numbers."""
        c = model_registry.c
        where = (c.symbol == symbol) & (c.timeframe == timeframe)
        if version is not None:
            where &= c.version > version
        with self.engine.begin() as conn:
            dropped = [int(v) for v in conn.execute(select(c.version).where(where)).scalars()]
            conn.execute(delete(model_registry).where(where))
        for v in dropped:
            self.version_path(symbol, timeframe, v).unlink(missing_ok=True)
        if dropped and version is not None:
            self.activate(symbol, timeframe, version)
        return dropped

    def _prune(self, symbol: str, timeframe: str) -> None:
        """Delete version files beyond the newest ``keep_versions`` (never the active one)."""
        records = self.list(symbol, timeframe)
        keep = {r.version for r in records[-self.keep_versions :]}
        keep |= {r.version for r in records if r.active}
        for r in records:
            path = self.version_path(symbol, timeframe, r.version)
            if r.version not in keep and path.is_file():
                path.unlink()
