"""Model files: exact round trip, atomic writes, and every kind of damage -> ModelFileError."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from candlewise.core.errors import UserError
from candlewise.models import model_file
from candlewise.models.model_file import (
    FORMAT_VERSION,
    IncompatibleModelError,
    LoadedModel,
    ModelFileError,
    load_model,
    save_model,
)
from candlewise.models.trainer import TrainedModel, TrainingConfig, train_model

F = 6
NAMES = tuple(f"feat_{i}" for i in range(F))
FP = "fp-" + "a" * 40
META = {
    "symbol": "BTC/USDT",
    "timeframe": "4h",
    "version": 3,
    "train_start_ms": 1_700_000_000_000,
    "train_end_ms": 1_710_000_000_000,
}


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, F))
    y = (X[:, 0] - X[:, 2] + rng.normal(size=600) > 0).astype(np.float64)
    config = TrainingConfig(max_epochs=4, target_confidence=1.0, hidden=(16, 8))
    return train_model(X, y, config, feature_names=NAMES, feature_fingerprint=FP)


@pytest.fixture
def saved(tmp_path: Path, model: TrainedModel) -> tuple[Path, str]:
    path = tmp_path / "BTC_USDT_4h.pt"
    return path, save_model(path, model, **META)


def rewrite(path: Path, change) -> None:
    """Load the raw payload, let ``change`` edit it, save it back (checksum left as it was)."""
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_round_trip_is_exact(saved, model: TrainedModel) -> None:
    path, checksum = saved
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    loaded = load_model(path, expected_fingerprint=FP)
    assert isinstance(loaded, LoadedModel)
    m = loaded.model
    X = np.random.default_rng(1).normal(size=(200, F))
    assert np.array_equal(m.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict_proba(X[0]), model.predict_proba(X[0]))
    assert all(torch.equal(m.state_dict[k], v) for k, v in model.state_dict.items())
    assert np.array_equal(m.norm_mean, model.norm_mean)
    assert np.array_equal(m.norm_std, model.norm_std)
    assert m.temperature == model.temperature
    assert m.metrics == model.metrics
    assert m.config == model.config
    assert (m.feature_names, m.feature_fingerprint) == (NAMES, FP)
    got = {k: getattr(loaded, k) for k in META}
    assert got == META
    assert (loaded.checksum, loaded.format_version, loaded.path) == (
        checksum,
        FORMAT_VERSION,
        str(path),
    )
    assert len(loaded.created_at) == 19  # "YYYY-MM-DD HH:MM:SS" UTC
    assert load_model(path, expected_fingerprint=None).checksum == checksum


def test_save_is_atomic_and_overwrites(tmp_path: Path, model: TrainedModel) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(b"old")
    first = save_model(path, model, **META, created_at="2024-01-01 00:00:00")
    again = save_model(path, model, **META, created_at="2024-01-01 00:00:00")
    assert first == again  # canonical content -> same checksum
    assert os.listdir(tmp_path) == ["m.pt"]  # no temp file left behind
    other = save_model(path, model, **{**META, "version": 4}, created_at="2024-01-01 00:00:00")
    assert other != first
    assert load_model(path, expected_fingerprint=FP).version == 4


def assert_file_error(path: Path, match: str, cls=ModelFileError) -> ModelFileError:
    with pytest.raises(ModelFileError) as info:
        load_model(path, expected_fingerprint=FP)
    assert type(info.value) is cls
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert match in str(info.value)
    return info.value


def test_truncated_file(saved) -> None:
    path, _ = saved
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 10, 0):
        path.write_bytes(data[:keep])
        assert_file_error(path, "not a readable model file")


def test_random_bytes_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(np.random.default_rng(2).bytes(5_000))
    assert_file_error(path, "not a readable model file")
    assert_file_error(tmp_path / "missing.pt", "no such file")


def test_tampered_weight_fails_the_checksum(saved) -> None:
    path, _ = saved

    def nudge(payload: dict) -> None:
        payload["weights"]["layers.0.weight"][0, 0] += 1e-4

    rewrite(path, nudge)
    assert_file_error(path, "checksum mismatch")


def test_tampered_metadata_fails_the_checksum(saved) -> None:
    path, _ = saved
    rewrite(path, lambda p: p["metadata"].__setitem__("temperature", 0.5))
    assert_file_error(path, "checksum mismatch")


def test_other_feature_fingerprint_is_incompatible(tmp_path: Path, model: TrainedModel) -> None:
    path = tmp_path / "old_features.pt"
    save_model(path, dataclasses.replace(model, feature_fingerprint="fp-old"), **META)
    err = assert_file_error(path, "feature spec 'fp-old'", IncompatibleModelError)
    assert FP[:16] in str(err)
    assert load_model(path, expected_fingerprint=None).model.feature_fingerprint == "fp-old"


def test_other_format_version_is_incompatible(saved) -> None:
    path, _ = saved
    rewrite(path, lambda p: p.__setitem__("format_version", FORMAT_VERSION + 1))
    assert_file_error(path, "file format version 2", IncompatibleModelError)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"weights": {}}, "not a candlewise-direction-model file"),
        ([1, 2, 3], "not a candlewise-direction-model file"),
        (torch.zeros(3), "not a candlewise-direction-model file"),
        (
            {"format": "candlewise-direction-model", "format_version": FORMAT_VERSION},
            "missing or malformed",
        ),
    ],
)
def test_foreign_torch_files(tmp_path: Path, payload, match: str) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(payload, path)
    assert_file_error(path, match)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_pickled_code_is_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "obj": Evil()}, path)
    assert_file_error(path, "not a readable model file")


def _shrink(p: dict) -> None:
    p["weights"]["layers.0.weight"] = torch.zeros(3, F)


def _drop_bias(p: dict) -> None:
    del p["weights"]["layers.0.bias"]


def _future_config(p: dict) -> None:
    p["metadata"]["config"]["new_knob"] = 1


def _bad_temperature(p: dict) -> None:
    p["metadata"]["temperature"] = -1.0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_shrink, "weights do not fit"),
        (_drop_bias, "weights do not fit"),
        (_future_config, "training config not understood"),
        (_bad_temperature, "invalid normalisation or temperature"),
    ],
)
def test_self_consistent_but_wrong_content(saved, change, match: str) -> None:
    """Even with the checksum recomputed, the content must fit this program's model."""
    path, _ = saved

    def edit(payload: dict) -> None:
        change(payload)
        tensors = model_file._tensors(payload["weights"], payload["norm_mean"], payload["norm_std"])
        payload["checksum"] = model_file._checksum(tensors, payload["metadata"])

    rewrite(path, edit)
    assert_file_error(path, match)


def test_error_is_a_user_error_with_a_hint(tmp_path: Path) -> None:
    err = assert_file_error(tmp_path / "nope.pt", "no such file")
    assert isinstance(err, UserError) and err.hint
