"""Training one (symbol, timeframe) model: chronological split, early stopping, calibration.

Why each rule:

* **Chronological split** (first ``1 - val_fraction`` of the rows train, the rest validate,
  never shuffled across time): with overlapping windows of history in the features,
  neighbouring rows are near-duplicates, so a random split would leak the future into training
  and report accuracy that disappears live. Minibatches *inside* the train part are shuffled.
* **Normalisation fitted on the train part only**, for the same reason.
* **Calibrated confidence**: each epoch a temperature is fitted on the validation logits and the
  reported confidence is the mean max(p, 1 - p) after it. An uncalibrated network could reach
  "80 % confidence" on pure noise just by overfitting; after temperature scaling confidence only
  rises when the validation data supports it.
* **Stopping**: as soon as validation confidence >= ``target_confidence`` (that epoch's state is
  kept, the one whose confidence was measured), else early stopping with ``patience`` on the
  validation loss (raw BCE of the logits; the best state is kept), else ``max_epochs``.
* **Determinism**: weights are initialised and dropout drawn under ``torch.manual_seed(seed)``
  inside ``torch.random.fork_rng`` (the caller's global RNG is left untouched), minibatches come
  from a seeded ``torch.Generator`` and the thread count is set explicitly (a different number
  of threads may change float summation order). Same X, y, config -> bitwise-identical weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from candlewise.models.calibration import (
    apply_temperature,
    binary_nll,
    brier_score,
    expected_calibration_error,
    fit_temperature,
)
from candlewise.models.fused_adamw import FusedAdamW
from candlewise.models.network import DirectionNet, TrainedModel
from candlewise.models.training_config import (
    EpochReport,
    StopReason,
    TrainingConfig,
    TrainingMetrics,
)

# The training types live in training_config (TrainedModel in network); the trainer is their
# entry point, so it re-exports them.
__all__ = [
    "MIN_ROWS",
    "EpochReport",
    "TrainedModel",
    "TrainingConfig",
    "TrainingMetrics",
    "build_network",
    "train_model",
]

#: A model needs at least this many labelled rows (train + validation).
MIN_ROWS = 200


def build_network(n_features: int, config: TrainingConfig) -> DirectionNet:
    return DirectionNet(n_features, hidden=config.hidden, dropout=config.dropout)


def _check_inputs(X: np.ndarray, y: np.ndarray, feature_names: tuple[str, ...]) -> None:
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, features), got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row: X {X.shape}, y {y.shape}")
    if X.shape[0] < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} labelled rows to train, got {X.shape[0]}")
    if X.shape[1] != len(feature_names):
        raise ValueError(f"X has {X.shape[1]} features but {len(feature_names)} names given")
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"X contains NaN or inf in {int(bad.sum())} cells "
            f"(first at row {rows[0]}, feature {feature_names[cols[0]]!r})"
        )
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("y must contain only 0.0 and 1.0 (no NaN, no other values)")


def _evaluate(
    net: DirectionNet, xv: torch.Tensor, yv: np.ndarray
) -> tuple[float, float, float, float, np.ndarray]:
    """(raw val loss, accuracy, calibrated confidence, temperature, logits) of ``net``."""
    net.eval()
    with torch.inference_mode():
        z = net(xv).to(torch.float64).numpy()
    temperature = fit_temperature(z, yv)
    p = apply_temperature(z, temperature)
    accuracy = float(np.mean((z >= 0) == (yv == 1.0)))
    conf = float(np.mean(np.maximum(p, 1.0 - p)))
    return binary_nll(z, yv), accuracy, conf, temperature, z


@dataclass(frozen=True)
class _Split:
    """The chronological split, normalised with the train part's statistics."""

    mean: np.ndarray
    std: np.ndarray
    xt: torch.Tensor
    yt: torch.Tensor
    xv: torch.Tensor
    yv: np.ndarray
    warnings: tuple[str, ...]


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    config: TrainingConfig | None = None,
    *,
    feature_names: tuple[str, ...],
    feature_fingerprint: str,
    log: Callable[[str], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainedModel:
    """Train, early-stop and calibrate a :class:`DirectionNet` on ``X`` (n, F) and ``y`` (n,).

    Rows must be in time order (oldest first); ``y[i]`` is 1.0 when the candle after row i
    closed up. Logs ``Training data: N train, M val``, one ``Epoch e/E: ...`` line per epoch and
    ``✓ Target confidence reached: c%`` when the target stops training.
    Raises ValueError on fewer than 200 rows, NaN/inf, a shape mismatch or labels not in {0, 1}.
    """
    config = config or TrainingConfig()
    emit = log or (lambda _line: None)
    started = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    feature_names = tuple(feature_names)
    _check_inputs(X, y, feature_names)
    split = _split(X, y, config, emit)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            state, summary = _fit(
                split.xt, split.yt, split.xv, split.yv, config, emit, on_epoch, started
            )
        # the kept state's final calibration, with the same threads as during the epochs
        net = DirectionNet.with_weights(X.shape[1], state, config.hidden, config.dropout)
        evaluation = _evaluate(net, split.xv, split.yv)
    finally:
        torch.set_num_threads(previous_threads)
    return TrainedModel(
        state_dict=state,
        norm_mean=split.mean,
        norm_std=split.std,
        temperature=evaluation[3],
        feature_names=feature_names,
        feature_fingerprint=feature_fingerprint,
        metrics=_final_metrics(split, evaluation, summary, started),
        config=config,
    )


def _split(
    X: np.ndarray, y: np.ndarray, config: TrainingConfig, emit: Callable[[str], None]
) -> _Split:
    """Train on the oldest rows, validate on the newest; warn about single-class labels."""
    n = X.shape[0]
    n_val = max(1, round(n * config.val_fraction))
    n_train = n - n_val
    if n_train < 2:
        raise ValueError(f"val_fraction {config.val_fraction} leaves {n_train} training rows")
    emit(f"Training data: {n_train} train, {n_val} val")
    warnings: list[str] = []
    classes = np.unique(y)
    if classes.size == 1:
        warnings.append(f"single-class labels: every row is {classes[0]:.0f}")
    elif np.unique(y[:n_train]).size == 1 or np.unique(y[n_train:]).size == 1:
        warnings.append("single-class labels in the train or the validation part")
    for w in warnings:
        emit(f"⚠ Warning: {w}; the model can only learn the base rate")

    mean = X[:n_train].mean(axis=0)
    std = X[:n_train].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # constant features: centre only, never divide by 0
    xn = (X - mean) / std
    return _Split(
        mean=mean,
        std=std,
        xt=torch.from_numpy(xn[:n_train].astype(np.float32)),
        yt=torch.from_numpy(y[:n_train].astype(np.float32)),
        xv=torch.from_numpy(xn[n_train:].astype(np.float32)),
        yv=y[n_train:],
        warnings=tuple(warnings),
    )


def _final_metrics(
    split: _Split,
    evaluation: tuple[float, float, float, float, np.ndarray],
    summary: dict,
    started: float,
) -> TrainingMetrics:
    """The kept state's validation metrics after its final calibration."""
    val_loss, accuracy, conf, temperature, z = evaluation
    yv = split.yv
    p = apply_temperature(z, temperature)
    return TrainingMetrics(
        train_size=split.xt.shape[0],
        val_size=yv.shape[0],
        epochs_run=summary["epochs_run"],
        best_epoch=summary["best_epoch"],
        val_loss=val_loss,
        val_accuracy=accuracy,
        val_confidence=conf,
        ece=expected_calibration_error(p, yv),
        brier=brier_score(p, yv),
        majority_baseline=float(max(yv.mean(), 1.0 - yv.mean())),
        stopped_reason=summary["reason"],
        duration_s=time.perf_counter() - started,
        warnings=split.warnings,
    )


def _fit(
    xt: torch.Tensor,
    yt: torch.Tensor,
    xv: torch.Tensor,
    yv: np.ndarray,
    config: TrainingConfig,
    emit: Callable[[str], None],
    on_epoch: Callable[[EpochReport], None] | None,
    started: float,
) -> tuple[dict[str, torch.Tensor], dict]:
    """The epoch loop; returns the kept state and {epochs_run, best_epoch, reason}."""
    net = build_network(xt.shape[1], config)
    # fused: one kernel for all parameters instead of a Python loop (~20 % faster per epoch)
    optimiser = FusedAdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in net.state_dict().items()}

    best_loss, best_epoch, best_state = math.inf, 0, snapshot()
    reason: StopReason = "max_epochs"
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        train_loss = _train_epoch(net, optimiser, xt, yt, config.batch_size, generator)
        val_loss, accuracy, conf, temperature, _ = _evaluate(net, xv, yv)
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, snapshot()
        emit(
            f"Epoch {epoch}/{config.max_epochs}: Loss={train_loss:.4f}, "
            f"Val Acc={100 * accuracy:.2f}%, Val Conf={100 * conf:.2f}%"
        )
        if on_epoch is not None:
            on_epoch(
                EpochReport(
                    epoch=epoch,
                    max_epochs=config.max_epochs,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    val_accuracy=accuracy,
                    val_confidence=conf,
                    temperature=temperature,
                    best_epoch=best_epoch,
                    elapsed_s=time.perf_counter() - started,
                )
            )
        if conf >= config.target_confidence:
            emit(f"✓ Target confidence reached: {100 * conf:.2f}%")
            reason, best_epoch, best_state = "target_confidence", epoch, snapshot()
            break
        if epoch - best_epoch >= config.patience:
            reason = "early_stopping"
            break
    return best_state, {"epochs_run": epoch, "best_epoch": best_epoch, "reason": reason}


_LOSS = nn.BCEWithLogitsLoss(reduction="sum")


def _train_epoch(
    net: DirectionNet,
    optimiser: FusedAdamW,
    xt: torch.Tensor,
    yt: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over the train rows in a seeded shuffled order; the mean train loss."""
    net.train()
    n_train = xt.shape[0]
    total = 0.0
    order = torch.randperm(n_train, generator=generator)
    for start in range(0, n_train, batch_size):
        idx = order[start : start + batch_size]
        optimiser.zero_grad()
        loss = _LOSS(net(xt[idx]), yt[idx])
        (loss / idx.numel()).backward()
        optimiser.step()
        total += loss.item()
    return total / n_train
