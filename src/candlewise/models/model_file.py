"""Model files: one torch file per model version, verifiable and safe to load.

A file holds only tensors and plain Python values, so it is read with
``torch.load(weights_only=True)``: loading a file never runs code from it. Writes go to a
temporary file in the same folder, are fsynced and then ``os.replace``d over the target, so a
crash mid-write leaves the old model intact, never half a file.

A SHA-256 checksum over the canonical content (every tensor's name, dtype, shape and bytes,
plus the metadata as sorted-key JSON) is stored inside: bit rot, a truncated copy or a hand
edit is detected on load instead of silently trading on damaged weights. Any problem raises
:class:`ModelFileError` naming the file (callers treat the model as missing and the symbol stays
in LEARNING mode); a file for other features or another format version raises its subclass
:class:`IncompatibleModelError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from candlewise.core.errors import UserError
from candlewise.core.timestamps import now_text
from candlewise.models.network import TrainedModel
from candlewise.models.training_config import TrainingConfig, TrainingMetrics

FORMAT_NAME = "candlewise-direction-model"
FORMAT_VERSION = 1


class ModelFileError(UserError):
    """A model file that cannot be used: missing, corrupt, truncated, tampered or malformed."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(
            message, hint="retrain the model (an unusable model file is treated as missing)"
        )
        self.path = None if path is None else str(path)


def _error(
    path: Path | str, problem: str, cls: type[ModelFileError] = ModelFileError
) -> ModelFileError:
    return cls(f"model file {path}: {problem}", path=path)


class IncompatibleModelError(ModelFileError):
    """An intact model file built for another feature spec or another file format version."""


@dataclass(frozen=True)
class LoadedModel:
    """A model read back from disk, with the metadata it was saved with."""

    model: TrainedModel
    symbol: str
    timeframe: str
    version: int
    train_start_ms: int
    train_end_ms: int
    created_at: str
    """UTC, ``YYYY-MM-DD HH:MM:SS``."""
    checksum: str
    format_version: int
    path: str

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X)


def _plain(value: Any) -> Any:
    """Exactly the builtin types (``weights_only`` refuses numpy scalars or str subclasses such
    as ``torch.__version__``), tuples as lists so the JSON for the checksum round-trips."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | np.bool_):  # before int: bool is an int subclass
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def _checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    h = hashlib.sha256()
    head = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metadata": metadata}
    h.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _tensors(weights: dict[str, torch.Tensor], mean: Any, std: Any) -> dict[str, torch.Tensor]:
    out = {f"weights.{k}": v for k, v in weights.items()}
    out["norm.mean"] = mean
    out["norm.std"] = std
    return out


def save_model(
    path: str | Path,
    model: TrainedModel,
    *,
    symbol: str,
    timeframe: str,
    version: int,
    train_start_ms: int,
    train_end_ms: int,
    created_at: str | None = None,
) -> str:
    """Write ``model`` to ``path`` atomically; returns the SHA-256 checksum stored in it."""
    path = Path(path)
    weights = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict.items()}
    mean = torch.from_numpy(np.array(model.norm_mean, dtype=np.float64))
    std = torch.from_numpy(np.array(model.norm_std, dtype=np.float64))
    metadata = _plain(
        {
            "symbol": symbol,
            "timeframe": timeframe,
            "version": int(version),
            "train_start_ms": int(train_start_ms),
            "train_end_ms": int(train_end_ms),
            "created_at": created_at or now_text(),
            "feature_names": list(model.feature_names),
            "feature_fingerprint": model.feature_fingerprint,
            "temperature": float(model.temperature),
            "metrics": dataclasses.asdict(model.metrics),
            "config": dataclasses.asdict(model.config),
            "torch_version": str(torch.__version__),
        }
    )
    checksum = _checksum(_tensors(weights, mean, std), metadata)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "weights": weights,
        "norm_mean": mean,
        "norm_std": std,
        "metadata": metadata,
        "checksum": checksum,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return checksum


def load_model(path: str | Path, *, expected_fingerprint: str | None) -> LoadedModel:
    """Read and verify a model file; ``expected_fingerprint`` None skips the feature check.

    Raises :class:`IncompatibleModelError` for another format version or feature fingerprint,
    :class:`ModelFileError` for anything else wrong - never another exception type.
    """
    try:
        return _load(Path(path), expected_fingerprint)
    except ModelFileError:
        raise
    except Exception as exc:  # whatever a damaged file provokes, report it as one error type
        raise _error(path, f"malformed content ({type(exc).__name__}: {exc})") from exc


def _load(path: Path, expected_fingerprint: str | None) -> LoadedModel:
    payload = _read_payload(path)
    meta = payload["metadata"]
    fingerprint = meta["feature_fingerprint"]
    if expected_fingerprint is not None and fingerprint != expected_fingerprint:
        problem = (
            f"built for feature spec {fingerprint[:16]!r}, the current one is "
            f"{expected_fingerprint[:16]!r}"
        )
        raise _error(path, problem, IncompatibleModelError)
    return LoadedModel(
        model=_model(path, payload),
        symbol=str(meta["symbol"]),
        timeframe=str(meta["timeframe"]),
        version=int(meta["version"]),
        train_start_ms=int(meta["train_start_ms"]),
        train_end_ms=int(meta["train_end_ms"]),
        created_at=str(meta["created_at"]),
        checksum=str(payload["checksum"]),
        format_version=FORMAT_VERSION,
        path=str(path),
    )


def _read_payload(path: Path) -> dict[str, Any]:
    """The file's content, checked: our format and version, well-formed, checksum intact."""
    if not path.is_file():
        raise _error(path, "no such file")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _error(path, f"not a readable model file (corrupt or truncated?): {detail}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise _error(path, f"not a {FORMAT_NAME} file")
    found = payload.get("format_version")
    if found != FORMAT_VERSION:
        problem = f"file format version {found!r}, this program reads version {FORMAT_VERSION}"
        raise _error(path, problem, IncompatibleModelError)
    weights, meta = payload.get("weights"), payload.get("metadata")
    mean, std = payload.get("norm_mean"), payload.get("norm_std")
    if not (
        isinstance(weights, dict)
        and all(isinstance(v, torch.Tensor) for v in weights.values())
        and isinstance(meta, dict)
        and isinstance(mean, torch.Tensor)
        and isinstance(std, torch.Tensor)
    ):
        raise _error(path, "missing or malformed weights, normalisation or metadata")
    actual = _checksum(_tensors(weights, mean, std), meta)
    if actual != payload.get("checksum"):
        raise _error(
            path,
            f"checksum mismatch (stored {str(payload.get('checksum'))[:12]}..., content "
            f"{actual[:12]}...): the file is corrupt or was modified",
        )
    return payload


def _model(path: Path, payload: dict[str, Any]) -> TrainedModel:
    """The trained model the checked payload describes, its values checked too."""
    meta, weights = payload["metadata"], payload["weights"]
    config_data = dict(meta["config"])
    config_data["hidden"] = tuple(config_data["hidden"])
    metrics_data = dict(meta["metrics"])
    metrics_data["warnings"] = tuple(metrics_data.get("warnings", ()))
    n_features = len(meta["feature_names"])
    mean_np, std_np = payload["norm_mean"].numpy().copy(), payload["norm_std"].numpy().copy()
    if mean_np.shape != (n_features,) or std_np.shape != (n_features,):
        raise _error(path, "normalisation does not match the feature count")
    temperature = float(meta["temperature"])
    finite = np.isfinite(mean_np).all() and np.isfinite(std_np).all()
    if not (finite and (std_np > 0).all() and 0 < temperature < float("inf")):
        raise _error(path, "invalid normalisation or temperature values")
    try:
        metrics = TrainingMetrics(**metrics_data)
        config = TrainingConfig(**config_data)
    except (TypeError, ValueError) as exc:
        raise _error(path, f"metrics or training config not understood: {exc}") from exc
    try:
        return TrainedModel(
            state_dict=dict(weights),
            norm_mean=mean_np,
            norm_std=std_np,
            temperature=temperature,
            feature_names=tuple(meta["feature_names"]),
            feature_fingerprint=meta["feature_fingerprint"],
            metrics=metrics,
            config=config,
        )
    except (RuntimeError, TypeError, ValueError) as exc:
        detail = str(exc).strip().replace("\n", " ")
        raise _error(path, f"weights do not fit the stored network shape: {detail}") from exc
