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
from typing import Literal

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

StopReason = Literal["target_confidence", "early_stopping", "max_epochs"]


@dataclass(frozen=True)
class TrainingConfig:
    """Training hyper-parameters; the defaults are the ones measured in bench_training.py."""

    max_epochs: int = 50
    """Upper bound on passes over the training rows."""
    patience: int = 10
    """Epochs without a lower validation loss before stopping (best state kept)."""
    target_confidence: float = 0.80
    """Stop as soon as the calibrated validation confidence reaches this (the trading bar)."""
    batch_size: int = 512
    """Minibatch size: 10 Adam steps per epoch on 4,800 rows. Measured (bench --design): the
    same test accuracy/ECE as 128/256/1024 within seed noise, and 50 epochs take 0.47 s vs
    0.61 s at 256 and 0.91 s at 128 - the 0.5 s budget. Full batch is faster (0.24 s) but
    needs more epochs and lost a little accuracy."""
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    """Decoupled (AdamW) weight decay: a mild brake on memorising noise."""
    hidden: tuple[int, ...] = (32, 32)
    dropout: float = 0.1
    val_fraction: float = 0.2
    """Share of the most recent rows held out for validation and calibration."""
    seed: int = 0
    threads: int = 1
    """torch intra-op threads during training, set explicitly (the float summation order, so
    the exact weights, may depend on it). 1, not 2, by measurement on 2 cores (bench): for
    matrices this small 2 threads are no faster on a quiet machine (0.456 vs 0.457 s for 50
    epochs), and 20-30x slower (9-15 s) when one other process keeps a core busy, because every
    parallel op then waits for a free core. One thread also lets two models train side by side."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        checks = [
            (min(self.max_epochs, self.patience, self.batch_size, self.threads) >= 1,
             "max_epochs, patience, batch_size and threads must be >= 1"),
            (0.5 <= self.target_confidence <= 1.0, "target_confidence must be in [0.5, 1]"),
            (self.learning_rate > 0 and self.weight_decay >= 0, "need lr > 0, weight_decay >= 0"),
            (len(self.hidden) >= 1 and min(self.hidden) >= 1, "hidden sizes must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (0.0 < self.val_fraction < 1.0, "val_fraction must be in (0, 1)"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (config: {self})")


@dataclass(frozen=True)
class EpochReport:
    """What one epoch measured; passed to ``on_epoch`` (progress bars, dashboards)."""

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_confidence: float
    temperature: float
    best_epoch: int
    elapsed_s: float


@dataclass(frozen=True)
class TrainingMetrics:
    """Validation metrics of the kept state, after its final calibration (fractions, not %)."""

    train_size: int
    val_size: int
    epochs_run: int
    best_epoch: int
    val_loss: float
    """Raw (uncalibrated) validation BCE of the kept state."""
    val_accuracy: float
    val_confidence: float
    """Mean calibrated confidence max(p, 1 - p) on the validation rows."""
    ece: float
    brier: float
    majority_baseline: float
    """Share of the majority class in validation: the accuracy to beat."""
    stopped_reason: str
    duration_s: float
    warnings: tuple[str, ...] = ()
    """Anything the caller should know (e.g. single-class labels)."""


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
    xt = torch.from_numpy(xn[:n_train].astype(np.float32))
    yt = torch.from_numpy(y[:n_train].astype(np.float32))
    xv = torch.from_numpy(xn[n_train:].astype(np.float32))
    yv = y[n_train:]

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            state, summary = _fit(xt, yt, xv, yv, config, emit, on_epoch, started)
        # the kept state's final calibration, with the same threads as during the epochs
        net = DirectionNet.with_weights(X.shape[1], state, config.hidden, config.dropout)
        val_loss, accuracy, conf, temperature, z = _evaluate(net, xv, yv)
    finally:
        torch.set_num_threads(previous_threads)
    p = apply_temperature(z, temperature)
    majority = float(max(yv.mean(), 1.0 - yv.mean()))
    metrics = TrainingMetrics(
        train_size=n_train,
        val_size=n_val,
        epochs_run=summary["epochs_run"],
        best_epoch=summary["best_epoch"],
        val_loss=val_loss,
        val_accuracy=accuracy,
        val_confidence=conf,
        ece=expected_calibration_error(p, yv),
        brier=brier_score(p, yv),
        majority_baseline=majority,
        stopped_reason=summary["reason"],
        duration_s=time.perf_counter() - started,
        warnings=tuple(warnings),
    )
    return TrainedModel(
        state_dict=state,
        norm_mean=mean,
        norm_std=std,
        temperature=temperature,
        feature_names=feature_names,
        feature_fingerprint=feature_fingerprint,
        metrics=metrics,
        config=config,
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
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    generator = torch.Generator().manual_seed(config.seed)
    n_train = xt.shape[0]

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in net.state_dict().items()}

    best_loss, best_epoch, best_state = math.inf, 0, snapshot()
    reason: StopReason = "max_epochs"
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        total = 0.0
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, config.batch_size):
            idx = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            (loss / idx.numel()).backward()
            optimiser.step()
            total += loss.item()
        train_loss = total / n_train

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
