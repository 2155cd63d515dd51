"""Architecture benchmark: the project's one-row MLP against window models, walk-forward.

The issue asks for "a small PyTorch classifier (MLP over a window, or a small GRU/TCN: choose by
measured accuracy and speed)". This compares, on identical out-of-sample targets:

  (a) mlp-row   the project's model: ``train_model`` (MLP 32x32 over the current feature row)
  (b) mlp-win8  the same MLP (``DirectionNet``) over the last 8 feature rows, flattened
  (c) gru-16    GRU (hidden 32, 1 layer) over the last 16 feature rows, last state -> logit
  (d) tcn-16    3 causal conv layers (24 channels, kernel 3, dilations 1/2/4: receptive field
                15 rows, residual), over the last 16 feature rows, last step -> logit

on real BTC/USDT 1h and 1m candles and on the simulated 1m market. Walk-forward as in
``evaluation/walk_forward.py``: the first block starts after a third of the rows; before each
block a model is trained on the most recent ``MAX_SAMPLES`` labelled rows and predicts the block.
Every model predicts exactly the same rows (those whose 16-row window is complete), so accuracy
differences are paired.

No lookahead: feature row t uses candles <= t (``compute_features``), the window for prediction
t is feature rows t-k+1..t, its label is candle t+1's direction, and a block starting at row s
is predicted by a model trained on labelled rows < s only (whose labels are known at s's close).

(b)-(d) use their own training loop, a copy of ``trainer.py``'s protocol: chronological 80/20
split, normalisation fitted on the train rows only, AdamW (lr 3e-3, wd 1e-4, fused), batch 512
shuffled by a seeded generator, weights initialised under ``manual_seed(seed)``, per-epoch
temperature fit on the validation logits, stop at calibrated validation confidence >= 0.80,
else early stopping on the raw validation BCE (patience 10, best state kept), else 50 epochs;
the kept state is calibrated by temperature scaling on the validation rows. Torch threads: 1.

Reported per (dataset, model): out-of-sample accuracy with its standard error
sqrt(p(1-p)/n), the paired difference to (a) with the standard error of the mean paired
difference, the hindsight majority baseline, accuracy and count at confidence >= 0.6 / 0.7,
ECE (10 bins), mean training time per fit and mean epochs, and single-prediction latency
(one raw window -> normalise -> torch forward under ``inference_mode`` -> sigmoid(z / T),
p50/p99 over 2,000 calls, measured in the main process after all training). Standard errors
treat predictions as independent; neighbouring rows share most of their inputs, so the true
noise is somewhat larger. The main table is training seed 0; a second table repeats every
walk-forward with seeds 0..N-1 (``--seeds``) to show how much of a difference is seed noise.

Cost: 10 blocks x 3 datasets x 4 models x 3 seeds = 360 fits, ~4.7 min on 2 cores with
``--jobs 1`` (the default, so fit times are measured without a neighbour); ``--jobs 2`` runs
two walk-forwards at a time. The real series are cut to their last 20,000 (1h) / 30,000
(1m) candles.

Run: .venv/bin/python bench/bench_architecture.py [--blocks 10] [--seeds 3] [--jobs 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from candlewise.evaluation.scores import score
from candlewise.features.compute import compute_features
from candlewise.features.labels import next_direction
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.simulated import market_at
from candlewise.models.calibration import apply_temperature, binary_nll, fit_temperature
from candlewise.models.network import DirectionNet
from candlewise.models.trainer import TrainingConfig, train_model

DATA_DIR = Path("/work/shared/data/candles")
SIM_START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MAX_SAMPLES = 6_000
FIRST_SHARE = 1 / 3
K_MAX = 16  # every model predicts the rows whose K_MAX-row window is complete
LATENCY_CALLS = 2_000
CONFIG = TrainingConfig()
N_FEATURES = len(FEATURE_SPEC.names)


# --------------------------------------------------------------------------- models (b)-(d)


class WindowMLP(nn.Module):
    """The project's ``DirectionNet`` over ``k`` flattened feature rows."""

    def __init__(self, k: int, n_features: int) -> None:
        super().__init__()
        self.net = DirectionNet(k * n_features, hidden=CONFIG.hidden, dropout=CONFIG.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class GRUNet(nn.Module):
    """GRU over the window (oldest first); the last hidden state -> dropout -> one logit."""

    def __init__(self, n_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, num_layers=1, batch_first=True)
        self.drop = nn.Dropout(CONFIG.dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        return self.head(self.drop(h[-1])).squeeze(-1)


class TCN(nn.Module):
    """Dilated causal convolutions (left padding only), residual after the first layer."""

    def __init__(
        self,
        n_features: int,
        channels: int = 24,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        self.pads = [(kernel - 1) * d for d in dilations]
        self.convs = nn.ModuleList(
            nn.Conv1d(n_features if i == 0 else channels, channels, kernel, dilation=d)
            for i, d in enumerate(dilations)
        )
        self.drop = nn.Dropout(CONFIG.dropout)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # (batch, features, time)
        for i, (conv, pad) in enumerate(zip(self.convs, self.pads, strict=True)):
            out = F.relu(conv(F.pad(h, (pad, 0))))
            h = out if i == 0 else h + out
        return self.head(self.drop(h[:, :, -1])).squeeze(-1)


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    k: int
    build: Callable[[], nn.Module] | None  # None: the project's train_model


SPECS = (
    Spec("a", "(a) mlp-row (project)", 1, None),
    Spec("b", "(b) mlp-win8", 8, lambda: WindowMLP(8, N_FEATURES)),
    Spec("c", "(c) gru-16", 16, lambda: GRUNet(N_FEATURES)),
    Spec("d", "(d) tcn-16", 16, lambda: TCN(N_FEATURES)),
)
SPEC_BY_KEY = {s.key: s for s in SPECS}


# --------------------------------------------------------------------------- data


def load_real(name: str, rows: int) -> pd.DataFrame:
    frame = pd.read_csv(DATA_DIR / f"{name}.csv.gz")
    return frame.tail(rows).reset_index(drop=True)


def load_sim(days: int) -> pd.DataFrame:
    series = market_at(["BTC/USDT"], 42, SIM_START_MS).generate(days * 1440)["BTC/USDT"]
    return series.to_frame().drop(columns="regime")


def prepare(frame: pd.DataFrame, timeframe: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all feature rows with NaN warm-up, labels, the rows t whose K_MAX window is complete)."""
    X = compute_features(frame, timeframe)
    y = next_direction(frame["close"].to_numpy(dtype=np.float64))
    finite = np.isfinite(X).all(axis=1)
    counts = np.convolve(finite.astype(np.int64), np.ones(K_MAX, dtype=np.int64))[: len(finite)]
    ok = (counts == K_MAX) & np.isfinite(y)
    return X, y, np.flatnonzero(ok)


def windows(xn: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(len(rows), k, F) float32: window i is feature rows rows[i]-k+1 .. rows[i] (no future)."""
    return xn[rows[:, None] + np.arange(-k + 1, 1)[None, :]].astype(np.float32)


# --------------------------------------------------------------------------- training (b)-(d)


def _val_stats(net: nn.Module, xv: torch.Tensor, yv: np.ndarray) -> tuple[float, float, float]:
    net.eval()
    with torch.inference_mode():
        z = net(xv).to(torch.float64).numpy()
    temperature = fit_temperature(z, yv)
    p = apply_temperature(z, temperature)
    return binary_nll(z, yv), float(np.mean(np.maximum(p, 1.0 - p))), temperature


def fit_window_model(
    build: Callable[[], nn.Module], w: np.ndarray, y: np.ndarray, seed: int
) -> tuple[nn.Module, float, int]:
    """trainer.py's protocol on windows ``w`` (n, k, F), already normalised: (net, T, epochs)."""
    n = len(y)
    n_val = max(1, round(n * CONFIG.val_fraction))
    n_train = n - n_val
    xt, yt = torch.from_numpy(w[:n_train]), torch.from_numpy(y[:n_train].astype(np.float32))
    xv, yv = torch.from_numpy(w[n_train:]), y[n_train:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=CONFIG.learning_rate, weight_decay=CONFIG.weight_decay, fused=True
        )
        loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
        generator = torch.Generator().manual_seed(seed)

        def snapshot() -> dict[str, torch.Tensor]:
            return {k: v.detach().clone() for k, v in net.state_dict().items()}

        best_loss, best_epoch, best_state = math.inf, 0, snapshot()
        epoch = 0
        for epoch in range(1, CONFIG.max_epochs + 1):
            net.train()
            order = torch.randperm(n_train, generator=generator)
            for start in range(0, n_train, CONFIG.batch_size):
                idx = order[start : start + CONFIG.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(net(xt[idx]), yt[idx])
                (loss / idx.numel()).backward()
                optimiser.step()
            val_loss, conf, _ = _val_stats(net, xv, yv)
            if val_loss < best_loss:
                best_loss, best_epoch, best_state = val_loss, epoch, snapshot()
            if conf >= CONFIG.target_confidence:
                best_state = snapshot()
                break
            if epoch - best_epoch >= CONFIG.patience:
                break
    net.load_state_dict(best_state)
    _, _, temperature = _val_stats(net, xv, yv)
    return net.eval(), temperature, epoch


# --------------------------------------------------------------------------- walk-forward


@dataclass
class RunResult:
    dataset: str
    key: str
    seed: int
    p_up: np.ndarray
    y: np.ndarray
    fit_s: list[float]
    epochs: list[int]
    # the last block's model, for the latency measurement in the main process
    state: dict[str, torch.Tensor]
    mean: np.ndarray
    std: np.ndarray
    temperature: float
    sample_windows: np.ndarray  # raw (un-normalised) test windows


def run(
    dataset: str,
    key: str,
    seed: int,
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    blocks: int,
) -> RunResult:
    torch.set_num_threads(CONFIG.threads)
    config = dataclasses.replace(CONFIG, seed=seed)
    spec = SPEC_BY_KEY[key]
    n = len(rows)
    first = max(200, int(n * FIRST_SHARE))
    size = math.ceil((n - first) / blocks)
    preds, fit_s, epochs = [], [], []
    for start in range(first, n, size):
        stop = min(start + size, n)
        train_rows, test_rows = rows[max(0, start - MAX_SAMPLES) : start], rows[start:stop]
        t0 = time.perf_counter()
        if spec.build is None:
            model = train_model(
                X[train_rows],
                y[train_rows],
                config,
                feature_names=FEATURE_SPEC.names,
                feature_fingerprint=FEATURE_SPEC.fingerprint,
            )
            fit_s.append(time.perf_counter() - t0)
            epochs.append(model.metrics.epochs_run)
            preds.append(model.predict_proba(X[test_rows]))
            state, mean, std, temperature = (
                model.state_dict,
                model.norm_mean,
                model.norm_std,
                model.temperature,
            )
        else:
            n_train = len(train_rows) - max(1, round(len(train_rows) * CONFIG.val_fraction))
            fit_part = X[train_rows[:n_train]]  # normalisation from the train part only
            mean = fit_part.mean(axis=0)
            std = fit_part.std(axis=0)
            std = np.where(std > 1e-12, std, 1.0)
            xn = (X - mean) / std
            net, temperature, n_epochs = fit_window_model(
                spec.build, windows(xn, train_rows, spec.k), y[train_rows], seed
            )
            fit_s.append(time.perf_counter() - t0)
            epochs.append(n_epochs)
            with torch.inference_mode():
                z = net(torch.from_numpy(windows(xn, test_rows, spec.k))).to(torch.float64)
            preds.append(apply_temperature(z.numpy(), temperature))
            state = {k: v.clone() for k, v in net.state_dict().items()}
    sample = X[rows[first:][:LATENCY_CALLS, None] + np.arange(-spec.k + 1, 1)[None, :]]
    return RunResult(
        dataset,
        key,
        seed,
        np.concatenate(preds),
        y[rows[first:]],
        fit_s,
        epochs,
        state,
        mean,
        std,
        temperature,
        sample,
    )


# --------------------------------------------------------------------------- latency


def latency_us(r: RunResult) -> tuple[float, float]:
    """p50/p99 of one prediction from a raw window, torch forward under inference_mode."""
    spec = SPEC_BY_KEY[r.key]
    if spec.build is None:
        with torch.device("meta"):
            net: nn.Module = DirectionNet(N_FEATURES, CONFIG.hidden, CONFIG.dropout)
    else:
        with torch.device("meta"):
            net = spec.build()
    net.load_state_dict(r.state, assign=True)
    net.eval()
    mean = torch.from_numpy(r.mean)
    inv_std = torch.from_numpy(1.0 / r.std)
    temperature = r.temperature
    flat = spec.build is None

    def predict(window: np.ndarray) -> float:
        with torch.inference_mode():
            x = ((torch.from_numpy(window) - mean) * inv_std).to(torch.float32)
            x = x[-1][None, :] if flat else x[None]
            return float(torch.sigmoid(net(x) / temperature))

    sample = r.sample_windows
    for i in range(100):
        predict(sample[i % len(sample)])
    times = np.empty(LATENCY_CALLS)
    for i in range(LATENCY_CALLS):
        window = sample[i % len(sample)]
        t0 = time.perf_counter_ns()
        predict(window)
        times[i] = (time.perf_counter_ns() - t0) / 1000
    p50, p99 = np.percentile(times, [50, 99])
    return float(p50), float(p99)


def numpy_latency_us(r: RunResult) -> tuple[float, float]:
    """The project's live path for (a): ``TrainedModel.predict_proba`` on one row (numpy)."""
    from candlewise.models.trainer import TrainedModel

    model = TrainedModel(
        state_dict=r.state,
        norm_mean=r.mean,
        norm_std=r.std,
        temperature=r.temperature,
        feature_names=FEATURE_SPEC.names,
        feature_fingerprint=FEATURE_SPEC.fingerprint,
        metrics=None,  # type: ignore[arg-type]  # not needed to predict
        config=CONFIG,
    )
    rows = r.sample_windows[:, -1, :]
    for i in range(100):
        model.predict_proba(rows[i % len(rows)])
    times = np.empty(LATENCY_CALLS)
    for i in range(LATENCY_CALLS):
        row = rows[i % len(rows)]
        t0 = time.perf_counter_ns()
        model.predict_proba(row)
        times[i] = (time.perf_counter_ns() - t0) / 1000
    p50, p99 = np.percentile(times, [50, 99])
    return float(p50), float(p99)


# --------------------------------------------------------------------------- main


def correct_of(r: RunResult) -> np.ndarray:
    return ((r.p_up >= 0.5) == (r.y == 1.0)).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10, help="walk-forward blocks per dataset")
    parser.add_argument("--rows-1h", type=int, default=20_000)
    parser.add_argument("--rows-1m", type=int, default=30_000)
    parser.add_argument("--sim-days", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (table: 0)")
    parser.add_argument("--jobs", type=int, default=1, help="training processes (1 thread each)")
    parser.add_argument("--models", default="abcd", help="subset of a, b, c, d")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(CONFIG.threads)

    datasets = {
        "BTC/USDT 1h (real)": (load_real("BTC_USDT-1h", args.rows_1h), "1h"),
        "BTC/USDT 1m (real)": (load_real("BTC_USDT-1m", args.rows_1m), "1m"),
        "BTC/USDT 1m (sim)": (load_sim(args.sim_days), "1m"),
    }
    prepared = {name: prepare(frame, tf) for name, (frame, tf) in datasets.items()}
    keys = [k for k in "abcd" if k in args.models]
    seeds = list(range(args.seeds))
    order = {"c": 0, "d": 1, "b": 2, "a": 3}  # slowest first, so parallel workers end together
    tasks = sorted(
        ((name, key, seed) for name in prepared for key in keys for seed in seeds),
        key=lambda t: order[t[1]],
    )
    results: dict[tuple[str, str, int], RunResult] = {}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {t: pool.submit(run, *t, *prepared[t[0]], args.blocks) for t in tasks}
            results = {t: f.result() for t, f in futures.items()}
    else:
        results = {t: run(*t, *prepared[t[0]], args.blocks) for t in tasks}
    train_s = time.perf_counter() - started

    print(
        f"\n## Architecture walk-forward: {args.blocks} blocks/dataset, <= {MAX_SAMPLES:,} "
        f"training rows per fit, first block after {FIRST_SHARE:.0%} of the rows; seed 0; "
        f"{args.jobs} training process(es), torch threads {CONFIG.threads}\n"
    )
    print(
        "| dataset | model | n | acc ± SE | Δacc vs (a) ± SE (paired) | majority | "
        "acc @≥0.6 (n) | acc @≥0.7 (n) | ECE | fit s (epochs) | latency p50/p99 µs |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    numpy_lat: dict[str, tuple[float, float]] = {}
    for name in prepared:
        ref = results.get((name, "a", 0))
        if ref is not None:
            numpy_lat[name] = numpy_latency_us(ref)
        for key in keys:
            r = results[(name, key, 0)]
            s = score(r.p_up, r.y)
            n = s.predictions
            se = math.sqrt(s.accuracy * (1 - s.accuracy) / n)
            if ref is None or key == "a":
                delta = "-"
            else:
                d = correct_of(r) - correct_of(ref)
                delta = f"{100 * d.mean():+.2f} ± {100 * d.std(ddof=1) / math.sqrt(n):.2f}"
            by = {t.threshold: t for t in s.by_confidence}

            def at(t: float, by: dict = by) -> str:
                ts = by[t]
                return "- (0)" if ts.accuracy is None else f"{100 * ts.accuracy:.1f} ({ts.count})"

            p50, p99 = latency_us(r)
            print(
                f"| {name} | {SPEC_BY_KEY[key].label} | {n} | "
                f"{100 * s.accuracy:.2f} ± {100 * se:.2f} | {delta} | "
                f"{100 * s.majority_baseline:.2f} | {at(0.6)} | {at(0.7)} | {s.ece:.4f} | "
                f"{np.mean(r.fit_s):.2f} ({np.mean(r.epochs):.1f}) | {p50:.0f} / {p99:.0f} |"
            )
    print(
        "\nacc, majority and thresholds in %; SE = sqrt(p(1-p)/n); paired SE = "
        "std(correct_m - correct_a) / sqrt(n); majority = the outcomes' majority class in "
        "hindsight.\nfit s = mean wall time per fit (normalise, window, train, calibrate); "
        "latency = one raw window -> normalise -> torch forward (inference_mode) -> sigmoid(z/T)."
    )
    for name, (p50, p99) in numpy_lat.items():
        print(
            f"(a) via the project's numpy predict_proba, {name}: p50 {p50:.0f} / p99 {p99:.0f} µs"
        )

    if len(seeds) > 1:
        print(
            f"\n## Seed sensitivity: accuracy % per training seed ({', '.join(map(str, seeds))})\n"
        )
        print("| dataset | model | acc per seed | mean acc | mean Δ vs (a) | ECE per seed |")
        print("|---|---|--:|--:|--:|--:|")
        for name in prepared:
            ref_acc = (
                [correct_of(results[(name, "a", sd)]).mean() for sd in seeds]
                if ("a" in keys)
                else None
            )
            for key in keys:
                runs = [results[(name, key, sd)] for sd in seeds]
                accs = [correct_of(r).mean() for r in runs]
                eces = [score(r.p_up, r.y).ece for r in runs]
                delta = (
                    "-"
                    if ref_acc is None or key == "a"
                    else f"{100 * (np.mean(accs) - np.mean(ref_acc)):+.2f}"
                )
                print(
                    f"| {name} | {SPEC_BY_KEY[key].label} | "
                    f"{' / '.join(f'{100 * a:.2f}' for a in accs)} | {100 * np.mean(accs):.2f} | "
                    f"{delta} | {' / '.join(f'{e:.4f}' for e in eces)} |"
                )
    total = time.perf_counter() - started
    print(
        f"\ndata + training + prediction {train_s:.0f} s, total {total:.0f} s "
        f"({len(tasks)} walk-forward runs, {sum(len(r.fit_s) for r in results.values())} fits)"
    )


if __name__ == "__main__":
    main()
