"""Model registry: versions on disk and in the table, activation, rollback, pruning, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from candlewise.core.errors import UserError
from candlewise.features.spec import FEATURE_SPEC
from candlewise.models.trainer import TrainingConfig, train_model
from candlewise.store.model_registry import ModelRegistry

T0 = 1_735_689_600_000


def tiny_model(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, len(FEATURE_SPEC.names)))
    y = (X[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    return train_model(X, y, TrainingConfig(max_epochs=5, seed=seed),
                       feature_names=FEATURE_SPEC.names,
                       feature_fingerprint=FEATURE_SPEC.fingerprint)  # fmt: skip


@pytest.fixture
def registry(sqlite_engine: Engine, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(sqlite_engine, tmp_path / "models", keep_versions=2)


def test_versions_activation_rollback_and_pruning(registry: ModelRegistry) -> None:
    models = [tiny_model(s) for s in range(4)]
    for m in models:
        registry.register("BTC/USDT", "1h", m, train_start_ms=T0, train_end_ms=T0 + 3_600_000)
    records = registry.list("BTC/USDT", "1h")
    assert [r.version for r in records] == [1, 2, 3, 4]
    assert [r.active for r in records] == [False, False, False, True]
    kept = sorted(p.name for p in registry.version_path("BTC/USDT", "1h", 1).parent.iterdir())
    assert kept == ["v0003.pt", "v0004.pt"]  # keep_versions=2, the active one among them
    active = registry.load_active("BTC/USDT", "1h", FEATURE_SPEC.fingerprint)
    assert active is not None and active.version == 4
    X = np.random.default_rng(9).normal(size=(5, len(FEATURE_SPEC.names)))
    np.testing.assert_array_equal(active.model.predict_proba(X), models[3].predict_proba(X))

    assert registry.rollback("BTC/USDT", "1h") == (4, 3)
    again = registry.load_active("BTC/USDT", "1h", FEATURE_SPEC.fingerprint)
    assert again is not None and again.version == 3
    np.testing.assert_array_equal(again.model.predict_proba(X), models[2].predict_proba(X))
    with pytest.raises(UserError, match="no older version"):
        registry.rollback("BTC/USDT", "1h")  # v1 and v2 were pruned


def test_corrupt_or_incompatible_active_file_is_treated_as_missing(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.register("ETH/USDT", "4h", tiny_model(1), train_start_ms=T0, train_end_ms=T0)
    path = registry.active_path("ETH/USDT", "4h")
    assert path == tmp_path / "models" / "ETH_USDT_4h.pt"
    assert registry.load_active("ETH/USDT", "4h", "another-feature-spec") is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    assert registry.load_active("ETH/USDT", "4h", FEATURE_SPEC.fingerprint) is None
    assert registry.load_active("SOL/USDT", "4h", FEATURE_SPEC.fingerprint) is None  # missing


def test_rollback_without_a_model_says_how_to_train(registry: ModelRegistry) -> None:
    with pytest.raises(UserError) as info:
        registry.rollback("BNB/USDT", "1d")
    assert "candlewise train --symbol BNB/USDT --interval 1d" in (info.value.hint or "")
