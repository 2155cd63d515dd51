"""Trainer behaviour: learns signal, stays honest on noise, deterministic, chronological."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from candlewise.models.calibration import expected_calibration_error
from candlewise.models.network import DirectionNet, NumpyForward
from candlewise.models.trainer import (
    EpochReport,
    TrainedModel,
    TrainingConfig,
    train_model,
)

F = 8
NAMES = tuple(f"f{i}" for i in range(F))


def make_data(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F))
    y = X[:, 0] + 0.5 * rng.normal(size=n) > 0 if kind == "signal" else rng.random(n) < 0.5
    return X, y.astype(np.float64)


def train(X: np.ndarray, y: np.ndarray, config: TrainingConfig | None = None, **kw) -> TrainedModel:
    return train_model(X, y, config, feature_names=NAMES, feature_fingerprint="test-fp", **kw)


@pytest.fixture(scope="module")
def signal_run() -> tuple[TrainedModel, list[str], list[EpochReport]]:
    X, y = make_data("signal", 6_000, seed=1)
    lines: list[str] = []
    reports: list[EpochReport] = []
    model = train(X, y, log=lines.append, on_epoch=reports.append)
    return model, lines, reports


@pytest.fixture(scope="module")
def noise_model() -> TrainedModel:
    X, y = make_data("noise", 6_000, seed=2)
    return train(X, y)


def test_learns_a_real_signal_and_is_calibrated(signal_run) -> None:
    model, _, _ = signal_run
    m = model.metrics
    assert m.val_accuracy > m.majority_baseline + 0.25
    assert m.val_accuracy > 0.78
    assert m.ece < 0.05
    # calibration must hold on data neither the weights nor the temperature saw
    Xt, yt = make_data("signal", 20_000, seed=99)
    p = model.predict_proba(Xt)
    assert np.mean((p >= 0.5) == (yt == 1)) > 0.78
    assert expected_calibration_error(p, yt) < 0.05
    confident = np.maximum(p, 1 - p) >= 0.8
    assert confident.sum() > 1_000
    assert np.mean((p[confident] >= 0.5) == (yt[confident] == 1)) >= 0.8 - 0.02


def test_noise_gives_no_confidence(noise_model: TrainedModel) -> None:
    m = noise_model.metrics
    assert abs(m.val_accuracy - 0.5) < 0.04
    assert m.val_confidence <= 0.56
    assert m.stopped_reason == "early_stopping"
    Xt, _ = make_data("noise", 20_000, seed=98)
    conf = np.maximum(noise_model.predict_proba(Xt), 1 - noise_model.predict_proba(Xt))
    assert conf.mean() <= 0.56
    assert (conf >= 0.8).sum() == 0  # would never trade


def test_calibration_not_early_stopping_keeps_an_overfitting_net_honest() -> None:
    """A bigger net trained 30 epochs on noise overfits (train loss falls), but every epoch's
    calibrated validation confidence stays near 0.5."""
    X, y = make_data("noise", 3_000, seed=3)
    config = TrainingConfig(
        hidden=(64, 64), dropout=0.0, max_epochs=30, patience=1_000, target_confidence=1.0
    )
    reports: list[EpochReport] = []
    model = train(X, y, config, on_epoch=reports.append)
    assert len(reports) == 30 and model.metrics.stopped_reason == "max_epochs"
    assert reports[-1].train_loss < 0.65  # memorising noise (0.693 = knowing nothing)
    assert max(r.val_confidence for r in reports) <= 0.56
    assert reports[-1].temperature > 2.0  # the calibration flattens the over-confident logits


def test_log_lines_have_the_guide_format(signal_run) -> None:
    model, lines, reports = signal_run
    m = model.metrics
    assert lines[0] == f"Training data: {m.train_size} train, {m.val_size} val"
    assert lines[0] == "Training data: 4800 train, 1200 val"
    epoch_re = re.compile(
        r"^Epoch (\d+)/50: Loss=\d+\.\d{4}, Val Acc=\d{1,3}\.\d{2}%, Val Conf=\d{1,3}\.\d{2}%$"
    )
    epoch_lines = [line for line in lines if line.startswith("Epoch")]
    assert len(epoch_lines) == m.epochs_run == len(reports)
    for i, (line, report) in enumerate(zip(epoch_lines, reports, strict=True), start=1):
        match = epoch_re.match(line)
        assert match and int(match.group(1)) == i == report.epoch
        assert f"Val Conf={100 * report.val_confidence:.2f}%" in line
    assert m.stopped_reason == "target_confidence"
    assert re.fullmatch(r"✓ Target confidence reached: \d+\.\d{2}%", lines[-1])
    assert lines[-1] == f"✓ Target confidence reached: {100 * m.val_confidence:.2f}%"
    assert m.val_confidence >= 0.80
    assert m.best_epoch == m.epochs_run  # the state that reached the target is kept


def test_stop_reasons() -> None:
    X, y = make_data("noise", 1_000, seed=4)
    m = train(X, y, TrainingConfig(patience=3, target_confidence=0.99)).metrics
    assert m.stopped_reason == "early_stopping"
    assert m.epochs_run == m.best_epoch + 3 < 50

    X, y = make_data("signal", 1_000, seed=5)
    m = train(X, y, TrainingConfig(max_epochs=3, target_confidence=0.99)).metrics
    assert (m.stopped_reason, m.epochs_run) == ("max_epochs", 3)


def test_deterministic_bitwise_and_leaves_global_rng_alone() -> None:
    X, y = make_data("signal", 1_500, seed=6)
    config = TrainingConfig(max_epochs=6, target_confidence=1.0)
    rng_state = torch.get_rng_state()
    a, b = train(X, y, config), train(X, y, config)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.temperature == b.temperature
    assert dataclasses.replace(a.metrics, duration_s=0) == dataclasses.replace(
        b.metrics, duration_s=0
    )
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    c = train(X, y, dataclasses.replace(config, seed=1))
    assert not torch.equal(a.state_dict["layers.0.weight"], c.state_dict["layers.0.weight"])


def test_split_is_chronological_and_normalisation_uses_train_rows_only() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(1_000, F))
    X[800:, 1] += 50.0  # the last 20 % live elsewhere in feature 1 ...
    y = (X[:, 0] > 0).astype(np.float64)
    y[800:] = 1.0  # ... and are all "up"
    lines: list[str] = []
    model = train(X, y, TrainingConfig(max_epochs=2), log=lines.append)
    m = model.metrics
    assert lines[0] == "Training data: 800 train, 200 val"
    assert (m.train_size, m.val_size) == (800, 200)
    assert m.majority_baseline == 1.0  # only the last 200 rows are all one class
    np.testing.assert_allclose(model.norm_mean, X[:800].mean(axis=0))
    np.testing.assert_allclose(model.norm_std, X[:800].std(axis=0))
    assert any("single-class" in w for w in m.warnings)


def test_single_class_labels_are_allowed_and_reported() -> None:
    X, _ = make_data("noise", 400, seed=8)
    lines: list[str] = []
    model = train(X, np.ones(400), TrainingConfig(max_epochs=3), log=lines.append)
    assert model.metrics.warnings and "single-class" in model.metrics.warnings[0]
    assert any(line.startswith("⚠ Warning: single-class") for line in lines)
    assert model.metrics.majority_baseline == 1.0
    assert np.isfinite(model.predict_proba(X)).all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, y: (X[:199], y[:199]), "at least 200 labelled rows.*got 199"),
        (lambda X, y: (np.where(np.eye(*X.shape, k=3) > 0, np.nan, X), y), "NaN or inf"),
        (lambda X, y: (np.where(np.eye(*X.shape) > 0, np.inf, X), y), "NaN or inf.*'f0'"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 5, 2.0, y)), "only 0.0 and 1.0"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 5, np.nan, y)), "only 0.0 and 1.0"),
        (lambda X, y: (X, y[:-1]), "one label per row"),
        (lambda X, y: (X[:, :-1], y), "7 features but 8 names"),
        (lambda X, y: (X[:, 0], y), "2-D"),
    ],
)
def test_bad_input_is_a_clear_value_error(mutate, message) -> None:
    X, y = make_data("signal", 300, seed=9)
    bad_x, bad_y = mutate(X, y)
    with pytest.raises(ValueError, match=message):
        train(bad_x, bad_y)


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        TrainingConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="patience"):
        TrainingConfig(patience=0)


def test_predict_proba_shapes_checks_and_torch_equivalence(signal_run) -> None:
    model, _, _ = signal_run
    X, _ = make_data("signal", 500, seed=10)
    p = model.predict_proba(X)
    assert p.dtype == np.float64 and p.shape == (500,)
    assert model.predict_proba(X[3]).shape == (1,)
    assert model.predict_proba(X[3])[0] == pytest.approx(p[3], abs=1e-15)
    with torch.inference_mode():
        xn = torch.from_numpy(((X - model.norm_mean) / model.norm_std).astype(np.float32))
        z = model.network()(xn).double().numpy()
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z / model.temperature)), atol=1e-5)
    with pytest.raises(ValueError, match="8 features"):
        model.predict_proba(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(np.full(F, np.nan))


def test_numpy_forward_matches_torch_for_any_architecture() -> None:
    torch.manual_seed(0)
    net = DirectionNet(5, hidden=(7, 3, 4), dropout=0.2).eval()
    x = np.random.default_rng(0).normal(size=(50, 5))
    with torch.inference_mode():
        expected = net(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(NumpyForward(net)(x), expected, atol=1e-5)
