"""The feature contract between feature code and stored models.

A model is trained on a fixed list of feature columns computed over a fixed look-back. Both are
recorded in the model file as ``FeatureSpec.fingerprint``; a model whose fingerprint differs from
``FEATURE_SPEC.fingerprint`` was trained on other inputs and must not be used (its weights would
be applied to the wrong columns). Change ``version`` whenever a feature's *definition* changes
without its name changing (e.g. a new guard), so old models are rejected too.

The column definitions live in ``compute.py``; its module docstring lists them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class FeatureSpec:
    """Names (in column order), look-back ``window`` in candles, and definition ``version``."""

    names: tuple[str, ...]
    window: int
    """Candles needed for one complete row: row ``t`` uses candles ``t - window + 1 .. t``."""
    version: int

    def __post_init__(self) -> None:
        """Reject specs that could not describe a feature matrix (caught at import, not later)."""
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names must be non-empty and unique: {self.names!r}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of the sha256 of names, window and version (JSON, so unambiguous)."""
        payload = json.dumps(
            {"names": list(self.names), "window": self.window, "version": self.version},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


#: Column order of every feature matrix; see ``compute.py`` for each definition.
FEATURE_NAMES: Final[tuple[str, ...]] = (
    "ret_1",
    "ret_2",
    "ret_3",
    "ret_5",
    "ret_10",
    "ret_20",
    "vol_10",
    "vol_30",
    "range",
    "range_mean_10",
    "volume_z_30",
    "body",
    "rsi_14",
    "stoch_k_14",
    "close_sma_20",
    "sma_10_30",
    "tod_sin",
    "tod_cos",
    "dow_sin",
    "dow_cos",
    "sentiment_score",
    "sentiment_volume",
)

#: The current spec. ``window`` = 31: ``vol_30`` needs 30 one-candle returns, i.e. 31 closes.
FEATURE_SPEC: Final = FeatureSpec(names=FEATURE_NAMES, window=31, version=1)
