"""Signal benchmark: decision latency from a candle close, and walk-forward evaluation speed.

* latency of one aggregated 6-model prediction from a candle close: at a UTC midnight all six
  timeframes close at once; the time from the six ``on_close`` calls (features from the last 31
  candles + inference each) to the aggregated signals, per such moment, p50/p99 over 2,000
  midnights' worth of events (and the same for an ordinary minute: one model + aggregation);
* walk-forward evaluation throughput (candles/s) of ``candlewise evaluate`` on the real
  BTC/USDT 1m file in ../shared/data (skipped when absent), all six timeframes.
Target (issue 3): p99 <= 1 ms for the six-model case.

Run: .venv/bin/python bench/bench_signal.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from candlewise.core.candle import Candle
from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.aggregation import aggregate_frame
from candlewise.market.simulated import market_at
from candlewise.models.trainer import TrainingConfig, train_model
from candlewise.signals.live import LivePredictor, ModelSlot

DAY0 = 1_704_067_200_000
WEIGHTS = {"1m": 0.05, "5m": 0.10, "15m": 0.15, "1h": 0.30, "4h": 0.25, "1d": 0.15}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"


def trained_predictor() -> tuple[LivePredictor, dict[str, list[Candle]]]:
    minutes = market_at(["BTC/USDT"], 1, DAY0).generate(400 * 1440)["BTC/USDT"].to_frame()
    minutes = minutes.drop(columns="regime")
    models, windows = {}, {}
    for tf in TIMEFRAMES:
        frame = minutes if tf == "1m" else aggregate_frame(minutes, tf)
        X, y, _ = training_matrix(frame, tf, max_samples=6000)
        model = train_model(X, y, TrainingConfig(max_epochs=3), feature_names=FEATURE_SPEC.names,
                            feature_fingerprint=FEATURE_SPEC.fingerprint)  # fmt: skip
        models[("BTC/USDT", tf)] = ModelSlot(model, 1)
        tail = frame.iloc[-200:]
        windows[tf] = [Candle("BTC/USDT", tf, int(r[0]), *map(float, r[1:]))
                       for r in tail.itertuples(index=False)]  # fmt: skip
    predictor = LivePredictor(WEIGHTS, models)
    for tf in TIMEFRAMES:
        predictor.warm_up(windows[tf][:-170])
    return predictor, windows


def latency(predictor: LivePredictor, windows: dict[str, list[Candle]], tfs: tuple[str, ...],
            n: int) -> np.ndarray:  # fmt: skip
    out = np.empty(n)
    for i in range(n):
        batch = [windows[tf][30 + i % 170] for tf in tfs]
        # re-stamp so every batch closes at one moment, as at a midnight (values stay real)
        moment = DAY0 + (i + 1) * TIMEFRAME_MS["1d"]
        batch = [Candle(c.symbol, c.timeframe, moment - TIMEFRAME_MS[c.timeframe], c.open, c.high,
                        c.low, c.close, c.volume) for c in batch]  # fmt: skip
        t0 = time.perf_counter_ns()
        for candle in batch:
            predictor.on_close(candle)
        predictor.signals("BTC/USDT", moment, tfs)
        out[i] = (time.perf_counter_ns() - t0) / 1000
    return out


def main() -> None:
    predictor, windows = trained_predictor()
    rows = []
    for label, tfs in (("6 models close (midnight)", TIMEFRAMES), ("1 model closes (1m)", ("1m",))):
        us = latency(predictor, windows, tfs, 2000)[100:]  # first calls warm caches
        rows.append((label, np.percentile(us, 50), np.percentile(us, 99)))
    print("\ncandlewise signal benchmark (features + inference + aggregation per candle close)\n")
    print(f"| {'case':<28} | {'p50 (us)':>9} | {'p99 (us)':>9} | {'target':>9} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
    for label, p50, p99 in rows:
        print(f"| {label:<28} | {p50:9.0f} | {p99:9.0f} | {'p99<=1000':>9} |")

    path = SHARED / "BTC_USDT-1m.csv.gz"
    if not path.exists():
        print("\n(../shared/data absent: evaluation throughput skipped)")
        return
    from candlewise.cli.evaluate_cmd import load_timeframes
    from candlewise.evaluation.walk_forward import (
        WalkForwardConfig,
        aggregate_walk_forward,
        walk_forward_timeframe,
    )

    frames = load_timeframes([path], "BTC/USDT")
    t0 = time.perf_counter()
    results = {tf: walk_forward_timeframe(f, tf, WalkForwardConfig()) for tf, f in frames.items()}
    aggregate_walk_forward(results, WEIGHTS, WalkForwardConfig())
    secs = time.perf_counter() - t0
    candles = sum(len(f) for f in frames.values())
    retrains = sum(r.retrains for r in results.values())
    minutes = len(frames["1m"])
    print(
        f"\nwalk-forward evaluation, real BTC/USDT 1m ({minutes:,} 1m candles, {candles:,} "
        f"candles over 6 timeframes, {retrains} retrains): {secs:.1f} s, "
        f"{candles / secs:,.0f} candles/s ({minutes / secs:,.0f} 1m candles/s)"
    )


if __name__ == "__main__":
    main()
