"""The per-(symbol, timeframe) classifier: a small MLP over one feature row, one logit out,
and :class:`TrainedModel`, the trained network with its normalisation and calibration.

The features already encode history (returns, volatility, indicators over a window), so the
network only has to map the *current* row to P(next candle closes up) = sigmoid(logit). It is
kept deliberately small: a few thousand rows of financial data carry little signal, a large
network would only memorise noise, and a model must train in well under a second on 2 cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from candlewise.models.calibration import apply_temperature
from candlewise.models.training_config import TrainingConfig, TrainingMetrics


class DirectionNet(nn.Module):
    """``n_features -> hidden[0] -> ... -> 1`` with ReLU and dropout after each hidden layer.

    ``forward`` returns raw logits of shape ``(n,)``; calibration (temperature) is applied
    outside the network so that the same weights can be re-calibrated without retraining.
    """

    def __init__(
        self, n_features: int, hidden: Sequence[int] = (32, 32), dropout: float = 0.1
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden layer sizes must be >= 1, got {tuple(hidden)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_features = n_features
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        layers: list[nn.Module] = []
        width = n_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)

    @classmethod
    def with_weights(
        cls,
        n_features: int,
        weights: dict[str, torch.Tensor],
        hidden: Sequence[int] = (32, 32),
        dropout: float = 0.1,
    ) -> DirectionNet:
        """An eval-mode network holding (float32 clones of) ``weights``.

        The layers are created on the "meta" device first, so no random initialisation runs:
        the caller's global RNG is not consumed and no work is wasted. Raises RuntimeError
        when the weights do not fit the architecture (missing keys, other shapes).
        """
        with torch.device("meta"):
            net = cls(n_features, hidden=hidden, dropout=dropout)
        cloned = {k: v.detach().to(torch.float32).clone() for k, v in weights.items()}
        net.load_state_dict(cloned, strict=True, assign=True)
        return net.eval()

    def linear_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(W.T, b)`` of each linear layer as float64 numpy arrays, in order.

        Used by :class:`NumpyForward`, the single-row inference path.
        """
        out = []
        for module in self.layers:
            if isinstance(module, nn.Linear):
                w = module.weight.detach().to(torch.float64).numpy().T.copy()
                b = module.bias.detach().to(torch.float64).numpy().copy()
                out.append((w, b))
        return out


#: Every matrix product runs on a multiple of this many rows (zero rows pad the last ones).
#: OpenBLAS computes the rows beyond a multiple of its kernel's unroll (4 on Haswell, up to 16 on
#: AVX-512 cores), and a single row (a matrix-vector product), with other code whose sums round
#: differently in the last bit: a row's P(up) then depended on how many rows were scored with
#: it, i.e. on where a replay's read-ahead block began, which a resumed run moves.
ROW_MULTIPLE = 16


class NumpyForward:
    """The eval-mode forward pass of a :class:`DirectionNet` in float64 numpy.

    Why: a single-row ``torch`` call costs tens of microseconds of dispatch overhead per layer,
    while the live path predicts one row per candle close for many (symbol, timeframe) pairs.
    numpy on these tiny matrices is several times faster (see ``bench/bench_training.py``), and
    float64 keeps it within ~1e-6 of the float32 torch forward (checked in the tests).
    Dropout is the identity in eval mode, so only the linear layers and ReLUs are needed.
    Each row's logit is bit-identical whatever rows it is computed with (``ROW_MULTIPLE``).
    """

    __slots__ = ("_layers",)

    def __init__(self, net: DirectionNet) -> None:
        self._layers = net.linear_weights()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits of shape ``(n,)`` for ``x`` of shape ``(n, F)`` (already normalised)."""
        n = x.shape[0]
        pad = -n % ROW_MULTIPLE
        h = np.concatenate((x, np.zeros((pad, x.shape[1])))) if pad else x
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = h @ w
            h += b
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h[:n, 0]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained, calibrated model: everything needed to predict and to save it.

    P(up) = sigmoid(net((x - norm_mean) / norm_std) / temperature). Treat it as read-only:
    ``predict_proba`` uses a copy of the weights taken at construction.
    """

    state_dict: dict[str, torch.Tensor]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    temperature: float
    feature_names: tuple[str, ...]
    feature_fingerprint: str
    metrics: TrainingMetrics
    config: TrainingConfig
    _forward: NumpyForward = field(init=False, repr=False)
    _inv_std: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_forward", NumpyForward(self.network()))
        object.__setattr__(self, "_inv_std", 1.0 / self.norm_std)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def network(self) -> DirectionNet:
        """A fresh eval-mode torch module with the weights (for inspection or batch scoring)."""
        hidden, dropout = self.config.hidden, self.config.dropout
        return DirectionNet.with_weights(self.n_features, self.state_dict, hidden, dropout)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(up) (float64, shape ``(n,)``) for rows ``X`` of shape (n, F) or (F,).

        Runs the numpy forward (no autograd, no torch dispatch): ~10 us for one row.
        Raises ValueError on a wrong feature count or NaN/inf (never returns a NaN probability).
        """
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or inf")
        z = self._forward((x - self.norm_mean) * self._inv_std)
        return apply_temperature(z, self.temperature)
