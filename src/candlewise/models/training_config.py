"""The training types: hyper-parameters in, per-epoch reports and final metrics out.

Their own module so that both the trainer and :class:`~candlewise.models.network.TrainedModel`
(which carries its config and metrics) import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
