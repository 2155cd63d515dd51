"""Features and labels for the per-timeframe next-candle direction models.

``compute_features`` (training, whole history) and ``latest_features`` (live, one row) share one
implementation; ``FEATURE_SPEC.fingerprint`` ties stored models to the feature definitions.
"""

from candlewise.features.compute import compute_features, latest_features
from candlewise.features.labels import next_direction, training_matrix
from candlewise.features.spec import FEATURE_SPEC, FeatureSpec

__all__ = [
    "FEATURE_SPEC",
    "FeatureSpec",
    "compute_features",
    "latest_features",
    "next_direction",
    "training_matrix",
]
