"""Block-predictor benchmark: 1m closes per second, one ``on_close`` at a time vs per block.

One simulated symbol, ``--closes`` 1m candles (after 30 warm-up candles), one trained 1m model
(3 epochs: the speed of inference does not depend on the training). Timed, wall clock:

* ``LivePredictor.on_close`` per candle (the replay path today: window copy, ``window_features``,
  ``predict_proba`` of one row, the ``TimeframePrediction`` and the aggregator update), after
  ``warm_up`` of the first 30 candles; the ``Candle`` objects are built beforehand;
* ``BlockSeries.advance`` over consecutive blocks of ``B`` closes (features, ``predict_proba``
  per 4,096-row chunk, carrying the 30-candle tail), from float64 columns (a ``CandleColumns``
  built per block from slices of the whole series, included in the time);
* the same with the block's columns built from ``Candle`` objects (``CandleColumns.from_candles``
  included in the time), for callers that hold candles rather than arrays.

Block timings are the best of ``--repeat`` runs (one run for 1-close blocks); the per-event
path runs once (it is the slow one). Every block run is checked against the per-event p_up
(max |diff| printed). ~25 s in all on 2 cores.

Run: .venv/bin/python bench/bench_block_predictor.py [--closes 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from candlewise.core.candle import Candle
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.simulated import market_at
from candlewise.models.trainer import TrainedModel, TrainingConfig, train_model
from candlewise.signals.block_predictor import CARRY, BlockSeries, CandleColumns
from candlewise.signals.live import LivePredictor, ModelSlot

DAY0 = 1_704_067_200_000
SYMBOL = "BTC/USDT"
BLOCKS = (1, 60, 1_440, 4_096, 0)  # 0: the whole replay as one block


def per_event(candles: list[Candle], model: TrainedModel) -> tuple[float, np.ndarray]:
    live = LivePredictor({"1m": 1.0}, {(SYMBOL, "1m"): ModelSlot(model, 1)})
    live.warm_up(candles[:CARRY])
    out = np.empty(len(candles) - CARRY)
    t0 = time.perf_counter()
    for i, candle in enumerate(candles[CARRY:]):
        prediction = live.on_close(candle)
        out[i] = prediction.p_up if prediction is not None else np.nan
    return time.perf_counter() - t0, out


def per_block(
    make: Callable[[int, int], CandleColumns], n: int, size: int, model: TrainedModel
) -> tuple[float, np.ndarray]:
    series = BlockSeries(make(0, CARRY))
    parts = []
    t0 = time.perf_counter()
    for start in range(CARRY, n, size):
        parts.append(series.advance(make(start, min(n, start + size)), model))
    return time.perf_counter() - t0, np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--closes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    frame = market_at([SYMBOL], 1, DAY0).generate(args.closes + CARRY)[SYMBOL].to_frame()
    X, y, _ = training_matrix(frame.iloc[:6_000], "1m")
    model = train_model(X, y, TrainingConfig(max_epochs=3), feature_names=FEATURE_SPEC.names,
                        feature_fingerprint=FEATURE_SPEC.fingerprint)  # fmt: skip
    names = ("timestamp", "open", "high", "low", "close", "volume")
    whole = CandleColumns(*(frame[name].to_numpy(dtype=np.float64) for name in names))
    candles = [Candle(SYMBOL, "1m", int(r[0]), *map(float, r[1:6]))
               for r in frame[list(names)].itertuples(index=False)]  # fmt: skip
    n = len(candles)

    def from_arrays(a: int, b: int) -> CandleColumns:
        return CandleColumns(*(column[a:b] for column in whole.arrays()))

    def from_objects(a: int, b: int) -> CandleColumns:
        return CandleColumns.from_candles(candles[a:b])

    closes = n - CARRY
    seconds, expected = per_event(candles, model)
    rows = [("LivePredictor.on_close, per close", "-", seconds, 0.0)]
    for source, make in (("columns", from_arrays), ("Candle objects", from_objects)):
        for size in BLOCKS if source == "columns" else (1_440, 0):
            size = size or closes
            repeat = 1 if size == 1 else args.repeat  # one close per block is as slow as per close
            runs = [per_block(make, n, size, model) for _ in range(repeat)]
            diff = max(float(np.max(np.abs(p - expected))) for _, p in runs)
            rows.append(
                (f"BlockSeries.advance, {source}", f"{size:,}", min(s for s, _ in runs), diff)
            )

    base = closes / rows[0][2]
    print(f"\ncandlewise block predictor: {closes:,} 1m closes, one symbol, one model\n")
    print(f"| {'path':<36} | {'block':>7} | {'closes/s':>11} | {'speed-up':>8} | "
          f"{'max |dp| vs live':>16} |")  # fmt: skip
    print(f"|{'-' * 38}|{'-' * 9}|{'-' * 13}|{'-' * 10}|{'-' * 18}|")
    for label, block, secs, diff in rows:
        rate = closes / secs
        print(f"| {label:<36} | {block:>7} | {rate:>11,.0f} | {rate / base:>7.1f}x | "
              f"{diff:>16.2e} |")  # fmt: skip


if __name__ == "__main__":
    main()
