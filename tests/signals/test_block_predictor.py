"""The block path gives the live path's predictions, in any block split, with bounded memory."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
import pytest

from candlewise.core.candle import Candle
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.aggregation import aggregate_frame
from candlewise.market.simulated import market_at
from candlewise.models.trainer import TrainedModel, TrainingConfig, train_model
from candlewise.signals.block_predictor import (
    CARRY,
    BlockSeries,
    CandleColumns,
    carry_tail,
    predict_block,
)
from candlewise.signals.live import LivePredictor, ModelSlot

DAY0 = 1_735_689_600_000
SYMBOL = "BTC/USDT"
TOLERANCE = 0.0  # bit for bit: a row is scored the same way whatever rows come with it


@dataclass(frozen=True)
class Setup:
    candles: dict[str, list[Candle]]
    models: dict[str, TrainedModel]
    other_1m: TrainedModel  # another 1m model, as after a retrain


@pytest.fixture(scope="module")
def setup() -> Setup:
    minutes = market_at([SYMBOL], 3, DAY0).generate(5_000)[SYMBOL].to_frame().drop(columns="regime")
    frames = {"1m": minutes, "5m": aggregate_frame(minutes, "5m")}
    config = TrainingConfig(max_epochs=3)

    def train(tf: str, cfg: TrainingConfig) -> TrainedModel:
        X, y, _ = training_matrix(frames[tf].iloc[: int(len(frames[tf]) * 0.6)], tf)
        return train_model(X, y, cfg, feature_names=FEATURE_SPEC.names,
                           feature_fingerprint=FEATURE_SPEC.fingerprint)  # fmt: skip

    candles = {
        tf: [Candle(SYMBOL, tf, int(r[0]), *map(float, r[1:])) for r in f.itertuples(index=False)]
        for tf, f in frames.items()
    }
    models = {tf: train(tf, config) for tf in frames}
    return Setup(candles, models, train("1m", replace(config, seed=1)))


def live_path(candles: list[Candle], k: int, models: list[TrainedModel | None]) -> np.ndarray:
    """P(up) per candle after the first ``k`` (NaN for None), one ``on_close`` at a time;
    ``models[i]`` is the model in place when candle ``k + i`` closes."""
    live = LivePredictor({candles[0].timeframe: 1.0}, {})
    live.warm_up(candles[:k])
    out = np.full(len(candles) - k, np.nan)
    for i, (candle, model) in enumerate(zip(candles[k:], models, strict=True)):
        live.set_model(SYMBOL, candle.timeframe, None if model is None else ModelSlot(model))
        prediction = live.on_close(candle)
        if prediction is not None:
            out[i] = prediction.p_up
    return out


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert np.array_equal(np.isnan(a), np.isnan(b))  # the same rows have a prediction
    return float(np.nanmax(np.abs(a - b)))


@pytest.mark.parametrize(("tf", "k"), [("1m", 0), ("1m", 17), ("1m", 400), ("5m", 0), ("5m", 30)])
def test_one_block_equals_warm_up_then_on_close(setup: Setup, tf: str, k: int) -> None:
    candles, model = setup.candles[tf], setup.models[tf]
    expected = live_path(candles, k, [model] * (len(candles) - k))
    got = predict_block(
        CandleColumns.from_candles(candles[:k]), CandleColumns.from_candles(candles[k:]), model
    )
    assert got.shape == expected.shape and got.dtype == np.float64
    assert np.isnan(got).sum() == max(0, CARRY - k)  # warm-up rows only
    assert max_diff(got, expected) <= TOLERANCE


def test_sub_blocks_equal_one_block_and_follow_model_swaps(setup: Setup) -> None:
    candles, model_a, model_b = setup.candles["1m"], setup.models["1m"], setup.other_1m
    sizes = [1, 7, 29, 30, 31, 2, 250, 3, 4_100]
    edges = np.cumsum([0, *sizes, len(candles) - sum(sizes)])
    blocks = [CandleColumns.from_candles(candles[a:b]) for a, b in pairwise(edges)]

    series = BlockSeries()
    split = np.concatenate([series.advance(block, model_a) for block in blocks])
    whole = predict_block(CandleColumns.empty(), CandleColumns.from_candles(candles), model_a)
    assert max_diff(split, whole) <= TOLERANCE

    # a retrain swaps the model in at block 6; it is out (file unusable) during block 7
    per_block = [model_a] * 6 + [model_b, None, model_b, model_b]
    series = BlockSeries()
    got = np.concatenate([series.advance(b, m) for b, m in zip(blocks, per_block, strict=True)])
    per_candle = [m for m, n in zip(per_block, np.diff(edges), strict=True) for _ in range(n)]
    expected = live_path(candles, 0, per_candle)
    assert np.isnan(got[edges[7] : edges[8]]).all()
    assert np.isfinite(got[edges[8] :]).all()  # the window kept filling while the model was out
    assert max_diff(got, expected) <= TOLERANCE


def test_rows_without_a_full_window_have_no_prediction(setup: Setup) -> None:
    candles, model = setup.candles["1m"], setup.models["1m"]
    p = predict_block(CandleColumns.empty(), CandleColumns.from_candles(candles[:40]), model)
    assert np.isnan(p[:30]).all() and np.isfinite(p[30:]).all()
    history = CandleColumns.from_candles(candles[:12])
    p = predict_block(history, CandleColumns.from_candles(candles[12:40]), model)
    assert np.isnan(p[:18]).all() and np.isfinite(p[18:]).all()
    p = predict_block(CandleColumns.empty(), CandleColumns.from_candles(candles[:30]), model)
    assert p.shape == (30,) and np.isnan(p).all()
    assert predict_block(history, CandleColumns.empty(), model).shape == (0,)


def test_no_model_no_prediction(setup: Setup) -> None:
    candles = setup.candles["1m"]
    p = predict_block(
        CandleColumns.from_candles(candles[:100]),
        CandleColumns.from_candles(candles[100:200]),
        None,
    )
    assert p.shape == (100,) and np.isnan(p).all()


def test_carried_tail_is_bounded_and_owns_its_memory(setup: Setup) -> None:
    candles = setup.candles["1m"]
    whole = CandleColumns.from_candles(candles[:1_000])
    series = BlockSeries(CandleColumns.from_candles(candles[:3]))
    assert len(series.tail) == 3
    for start in range(3, 1_000, 9):
        series.advance(CandleColumns(*(a[start : start + 9] for a in whole.arrays())), None)
        assert len(series.tail) == min(CARRY, start + 9)
        assert all(a.base is None for a in series.tail.arrays())  # no view pinning a block
    for tail_col, col in zip(series.tail.arrays(), whole.arrays(), strict=True):
        np.testing.assert_array_equal(tail_col, col[-CARRY:])
    short = carry_tail(
        CandleColumns.from_candles(candles[:5]), CandleColumns.from_candles(candles[5:8])
    )
    np.testing.assert_array_equal(short.close, [c.close for c in candles[:8]])
    long = carry_tail(CandleColumns.from_candles(candles[:5]), whole)
    np.testing.assert_array_equal(long.timestamp, whole.timestamp[-CARRY:])


def test_columns_are_validated() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        CandleColumns(*(np.zeros(3) for _ in range(5)), np.zeros(2))
    with pytest.raises(ValueError, match="1-D"):
        CandleColumns(*(np.zeros((2, 2)) for _ in range(6)))
    assert len(CandleColumns.from_candles([])) == 0
