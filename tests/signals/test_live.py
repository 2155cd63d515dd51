"""The live prediction path equals the batch one, and aggregates as the guide logs it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from candlewise.features.compute import compute_features
from candlewise.features.labels import training_matrix
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.aggregation import TimeframeAggregator, aggregate_frame
from candlewise.market.simulated import market_at
from candlewise.models.calibration import PlattCalibrator
from candlewise.models.trainer import TrainingConfig, train_model
from candlewise.signals.block_predictor import CandleColumns
from candlewise.signals.live import LivePredictor, ModelSlot

DAY0 = 1_735_689_600_000
TFS = ("1m", "5m", "15m", "1h")


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    minutes = market_at(["BTC/USDT"], 3, DAY0).generate(20 * 1440)["BTC/USDT"].to_frame()
    minutes = minutes.drop(columns="regime")
    frames = {tf: minutes if tf == "1m" else aggregate_frame(minutes, tf) for tf in TFS}
    models = {}
    for tf, frame in frames.items():
        X, y, _ = training_matrix(frame.iloc[: int(len(frame) * 0.6)], tf)
        models[("BTC/USDT", tf)] = ModelSlot(
            train_model(X, y, TrainingConfig(max_epochs=5), feature_names=FEATURE_SPEC.names,
                        feature_fingerprint=FEATURE_SPEC.fingerprint), version=1)  # fmt: skip
    return minutes, frames, models


@pytest.mark.slow
def test_live_predictions_equal_batch_predictions(setup) -> None:  # type: ignore[no-untyped-def]
    _, frames, models = setup
    lines: list[str] = []
    live = LivePredictor({tf: 0.25 for tf in TFS}, models, log=lines.append)
    aggregator = TimeframeAggregator("BTC/USDT", TFS[1:])
    got: dict[str, list[tuple[int, float]]] = {tf: [] for tf in TFS}
    signals = 0
    for candle in market_at(["BTC/USDT"], 3, DAY0).generate(20 * 1440)["BTC/USDT"].candles():
        closed = [candle, *aggregator.add(candle)]
        for bar in closed:
            p = live.on_close(bar)
            if p is not None:
                got[bar.timeframe].append((bar.open_time, p.p_up))
        signals += len(live.signals("BTC/USDT", candle.close_time, [b.timeframe for b in closed]))
    for tf, frame in frames.items():
        features = compute_features(frame, tf)
        rows = np.isfinite(features).all(axis=1)
        expected = models[("BTC/USDT", tf)].model.predict_proba(features[rows])
        times = frame["timestamp"].to_numpy()[rows]
        assert [t for t, _ in got[tf]] == times.tolist()
        np.testing.assert_allclose([p for _, p in got[tf]], expected, rtol=0, atol=1e-12)
    assert signals > 28_000
    assert "[BTC/USDT] 4 timeframe predictions aggregated" in lines
    assert "[BTC/USDT] 1 timeframe predictions aggregated" in lines  # before higher tfs warm up


def test_missing_model_leaves_no_prediction_and_no_signal(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, models = setup
    live = LivePredictor({"1m": 1.0}, {})
    candles = market_at(["BTC/USDT"], 3, DAY0).generate(40)["BTC/USDT"].candles()
    assert all(live.on_close(c) is None for c in candles)
    assert live.signals("BTC/USDT", candles[-1].close_time, ["1m"]) == []
    live.set_model("BTC/USDT", "1m", models[("BTC/USDT", "1m")])
    assert live.on_close(market_at(["BTC/USDT"], 3, DAY0 + 40 * 60_000).generate(1)["BTC/USDT"]
                         .candles()[0]) is not None  # fmt: skip


def test_unconfigured_timeframes_get_no_signal(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, models = setup
    live = LivePredictor({"5m": 1.0, "1m": 0.0}, models)
    minutes = market_at(["BTC/USDT"], 3, DAY0).generate(400)["BTC/USDT"].candles()
    aggregator = TimeframeAggregator("BTC/USDT", ("5m",))
    events: set[str] = set()
    for candle in minutes:
        closed = [candle, *aggregator.add(candle)]
        for bar in closed:
            live.on_close(bar)
        events |= {s.timeframe for s in live.signals("BTC/USDT", candle.close_time,
                                                       [b.timeframe for b in closed])}  # fmt: skip
    assert events == {"5m"}  # 1m closes every minute but has weight 0: never a signal


def test_restore_signals_with_the_calibrators_of_the_snapshot(setup) -> None:  # type: ignore[no-untyped-def]
    """A resumed run goes on with the calibrators it was using: the file they come from may
    have been refitted since (phase 1's --train-missing refits it at every start)."""
    _, _, models = setup
    used = {("BTC/USDT", "1m"): PlattCalibrator(1.3, 0.02)}
    refitted = {("BTC/USDT", "1m"): PlattCalibrator(0.7, -0.05)}
    minutes = market_at(["BTC/USDT"], 3, DAY0).generate(60)["BTC/USDT"].candles()
    live = LivePredictor({"1m": 1.0}, models, used)
    for candle in minutes[:40]:
        live.on_close(candle)
    then = minutes[39].close_time
    raw = live.signals("BTC/USDT", then, ["1m"])[0].raw_p_up
    state = pickle.loads(pickle.dumps(live.state()))
    resumed = LivePredictor({"1m": 1.0}, models, refitted)  # built from the refitted file
    resumed.restore(state, models)
    for candle in minutes[40:]:
        expected, got = live.on_close(candle), resumed.on_close(candle)
        assert got == expected
        now = candle.close_time
        assert resumed.signals("BTC/USDT", now, ["1m"]) == live.signals("BTC/USDT", now, ["1m"])
    assert live.signals("BTC/USDT", now, ["1m"])[0].calibrated

    older = {k: v for k, v in state.items() if k != "calibrators"}  # a snapshot from before
    resumed = LivePredictor({"1m": 1.0}, models, refitted)
    resumed.restore(older, models)
    p_up = resumed.signals("BTC/USDT", then, ["1m"])[0].p_up
    assert (
        p_up
        == refitted[("BTC/USDT", "1m")].apply_one(raw)
        != used[("BTC/USDT", "1m")].apply_one(raw)
    )


def test_predict_closes_equals_on_close_for_any_blocks(setup) -> None:  # type: ignore[no-untyped-def]
    """The block replay's calls give ``on_close``'s predictions to the bit, and leave the same
    windows and the same latest prediction behind, however the closes are split."""
    _, _, models = setup
    candles = market_at(["BTC/USDT"], 3, DAY0).generate(300)["BTC/USDT"].candles()
    one_by_one = LivePredictor({"1m": 1.0}, models)
    expected = [one_by_one.on_close(c) for c in candles]
    blocks = LivePredictor({"1m": 1.0}, models)
    got: list[float] = []
    for a, b in [(0, 7), (7, 45), (45, 46), (46, 300)]:
        columns = CandleColumns.from_candles(candles[a:b])
        p_up, version = blocks.predict_closes("BTC/USDT", "1m", columns)
        open_ms = columns.timestamp.astype(np.int64)
        last = blocks.record_last("BTC/USDT", "1m", open_ms, p_up.tolist(), version)
        assert version == 1 and (last is None) == bool(np.isnan(p_up).all())
        got.extend(p_up.tolist())
    assert [p is None for p in expected] == np.isnan(got).tolist()
    assert [p.p_up for p in expected if p is not None] == [p for p in got if p == p]
    assert blocks.state() == one_by_one.state()
    nothing = LivePredictor({"1m": 1.0}, {})
    p_up, version = nothing.predict_closes("BTC/USDT", "1m", CandleColumns.from_candles(candles))
    assert version is None and np.isnan(p_up).all()
    assert nothing.record_last("BTC/USDT", "1m", np.zeros(300, np.int64), p_up, None) is None
    assert dict(blocks.weights) == {"1m": 1.0}
    latest = blocks.aggregator.latest("BTC/USDT", "1m")
    assert latest is not None and latest == one_by_one.aggregator.latest("BTC/USDT", "1m")
