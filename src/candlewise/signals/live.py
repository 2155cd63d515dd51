"""From candle closes to signals, one event at a time: the live (and replay) prediction path.

For every (symbol, timeframe) it keeps the last ``window`` closed candles; when a candle closes
the model of that timeframe predicts its next candle from them, and after every timeframe that
closed at that moment has predicted, ``signals`` combines the fresh predictions into one signal
per closed timeframe. A timeframe without a usable model simply has no prediction: its weight
goes to the others (and a symbol with none stays without signal, i.e. in LEARNING mode).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from candlewise.core.candle import Candle
from candlewise.core.timeframes import TIMEFRAME_MS
from candlewise.features.compute import window_features
from candlewise.features.spec import FEATURE_SPEC
from candlewise.models.calibration import PlattCalibrator
from candlewise.models.trainer import TrainedModel
from candlewise.signals.aggregate import Signal, SignalAggregator, TimeframePrediction
from candlewise.signals.block_predictor import CandleColumns, predict_block

Log = Callable[[str], None]


@dataclass(frozen=True)
class ModelSlot:
    model: TrainedModel
    version: int | None = None


class LivePredictor:
    def __init__(
        self,
        weights: Mapping[str, float],
        models: Mapping[tuple[str, str], ModelSlot],
        calibrators: Mapping[tuple[str, str], PlattCalibrator] | None = None,
        log: Log | None = None,
    ) -> None:
        self._models = dict(models)
        self._weights = dict(weights)
        self._aggregator = SignalAggregator(weights, calibrators)
        self._window = FEATURE_SPEC.window
        self._buffers: dict[tuple[str, str], deque[tuple[float, ...]]] = {}
        self._log = log
        # Replay read-ahead (``prime``): the next closes per key, and their P(up) computed in
        # one vectorised call by the model they were computed with.
        self._ahead: dict[tuple[str, str], deque[Candle]] = {}
        self._ahead_p: dict[tuple[str, str], tuple[TrainedModel, deque[float]]] = {}

    @property
    def weights(self) -> Mapping[str, float]:
        """The configured weight of each timeframe (read-only)."""
        return MappingProxyType(self._weights)

    @property
    def aggregator(self) -> SignalAggregator:
        """The mix of the latest predictions (and its calibrators) the signals come from."""
        return self._aggregator

    def set_model(self, symbol: str, timeframe: str, slot: ModelSlot | None) -> None:
        """Swap a model in (after a retrain) or out (file unusable)."""
        if slot is None:
            self._models.pop((symbol, timeframe), None)
        else:
            self._models[(symbol, timeframe)] = slot

    def model_slot(self, symbol: str, timeframe: str) -> ModelSlot | None:
        return self._models.get((symbol, timeframe))

    def warm_up(self, candles: Sequence[Candle]) -> None:
        """Fill the windows from stored candles (oldest first) without predicting."""
        for candle in candles:
            self._buffer(candle).append(_row(candle))

    def prime(self, symbol: str, timeframe: str, upcoming: Sequence[Candle]) -> None:
        """Replay only: the next closes of one (symbol, timeframe), known ahead of time.

        ``on_close`` then takes their predictions from one vectorised ``predict_block`` call
        instead of computing them one by one (same values, ~1 µs instead of ~90 µs a close);
        each still uses only its own window, and a model swapped in between (a retrain)
        recomputes the rest with the new model. Candles that arrive otherwise fall back to the
        one-by-one path.
        """
        key = (symbol, timeframe)
        self._ahead[key] = deque(upcoming)
        self._ahead_p.pop(key, None)

    def on_close(self, candle: Candle) -> TimeframePrediction | None:
        """Record a closed candle; return its timeframe model's prediction, if it can make one."""
        key = (candle.symbol, candle.timeframe)
        buffer = self._buffer(candle)
        slot = self._models.get(key)
        primed = self._from_block(key, candle, buffer, slot)
        buffer.append(_row(candle))
        if slot is None or len(buffer) < self._window:
            return None
        if primed is not None:
            p_up = primed
        else:
            # .copy(): each column contiguous, as the feature code reads them
            columns = np.array(buffer, dtype=np.float64).T.copy()
            p_up = float(slot.model.predict_proba(window_features(*columns))[0])
        prediction = TimeframePrediction(
            candle.symbol, candle.timeframe, candle.close_time, p_up, slot.version
        )
        self._aggregator.update(prediction)
        return prediction

    def signals(self, symbol: str, now_ms: int, closed: Sequence[str]) -> list[Signal]:
        """One signal per configured timeframe that closed at ``now_ms`` (call after every
        ``on_close``). A timeframe with weight 0 (or not configured) gets no signal, hence no
        order: the operator switched it off."""
        out = []
        for timeframe in closed:
            if self._weights.get(timeframe, 0.0) <= 0.0:
                continue
            signal = self._aggregator.signal(symbol, timeframe, now_ms)
            if signal is not None:
                out.append(signal)
        if out and self._log:
            self._log(f"[{symbol}] {len(out[0].timeframes_used)} timeframe predictions aggregated")
        return out

    def predict_closes(
        self, symbol: str, timeframe: str, block: CandleColumns
    ) -> tuple[np.ndarray, int | None]:
        """Replay: P(up) at each close of ``block`` (NaN: none) and the model version, with the
        window advanced past the block: what ``on_close`` gives for each close, bit for bit.

        The latest predictions are left alone: the caller mixes the block's predictions with
        the ones from before it (``SignalAggregator.raw_p_up_columns``), then records the last
        one (``record_last``).
        """
        key = (symbol, timeframe)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = deque(maxlen=self._window)
        slot = self._models.get(key)
        if slot is None:
            p_up = np.full(len(block), np.nan)
        else:
            p_up = predict_block(_history(buffer), block, slot.model)
        window = self._window
        buffer.extend(zip(*(c[-window:].tolist() for c in block.arrays()), strict=True))
        return p_up, slot.version if slot is not None else None

    def record_last(
        self,
        symbol: str,
        timeframe: str,
        open_ms: np.ndarray,
        p_up: Sequence[float],
        version: int | None,
    ) -> tuple[int, TimeframePrediction] | None:
        """After ``predict_closes``: the aggregator keeps the block's last prediction, as the
        ``on_close`` calls would have left it; returns its row and itself (None: none made)."""
        for i in range(len(p_up) - 1, -1, -1):
            p = p_up[i]
            if p == p:  # not NaN
                made_at = int(open_ms[i]) + TIMEFRAME_MS[timeframe]  # the candle's close time
                prediction = TimeframePrediction(symbol, timeframe, made_at, p, version)
                self._aggregator.update(prediction)
                return i, prediction
        return None

    def _from_block(
        self,
        key: tuple[str, str],
        candle: Candle,
        buffer: deque[tuple[float, ...]],
        slot: ModelSlot | None,
    ) -> float | None:
        """The primed prediction of ``candle`` (called before it joins ``buffer``), if any."""
        ahead = self._ahead.get(key)
        if not ahead:
            return None
        if ahead[0].open_time != candle.open_time:  # not the candle primed: drop the read-ahead
            del self._ahead[key]
            self._ahead_p.pop(key, None)
            return None
        ahead.popleft()
        if slot is None:
            self._ahead_p.pop(key, None)
            return None
        cached = self._ahead_p.get(key)
        if cached is None or cached[0] is not slot.model:
            block = CandleColumns.from_candles([candle, *ahead])
            p_up = predict_block(_history(buffer), block, slot.model)
            cached = self._ahead_p[key] = (slot.model, deque(p_up.tolist()))
        value = cached[1].popleft()
        return None if math.isnan(value) else value

    def closes(self, symbol: str, timeframe: str) -> list[float]:
        """The closes of the prediction window (oldest first): what an edge estimate may use."""
        return [row[4] for row in self._buffers.get((symbol, timeframe), ())]

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly: windows, latest predictions, versions
        (the models themselves are files in the registry) and the signal calibrators (their
        file is refitted by start-ups, e.g. phase 1's ``--train-missing``: a resumed run must
        go on with the ones it was using)."""
        return {
            "buffers": {k: list(b) for k, b in self._buffers.items()},
            "latest": self._aggregator.latest_state(),
            "versions": {k: s.version for k, s in self._models.items()},
            "calibrators": self._aggregator.calibrators(),
        }

    def restore(
        self, state: Mapping[str, Any], models: Mapping[tuple[str, str], ModelSlot]
    ) -> None:
        self._buffers = {
            k: deque(rows, maxlen=self._window) for k, rows in state["buffers"].items()
        }
        self._aggregator.restore_latest(state["latest"])
        if "calibrators" in state:  # a snapshot from before they were kept: the file's
            self._aggregator.restore_calibrators(state["calibrators"])
        self._models = dict(models)

    def _buffer(self, candle: Candle) -> deque[tuple[float, ...]]:
        key = (candle.symbol, candle.timeframe)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = deque(maxlen=self._window)
        return buffer


def _history(buffer: deque[tuple[float, ...]]) -> CandleColumns:
    """A window's rows as the columns ``predict_block`` reads before a block."""
    if not buffer:
        return CandleColumns.empty()
    return CandleColumns(*np.array(buffer, dtype=np.float64).T)


def _row(c: Candle) -> tuple[float, ...]:
    return (float(c.open_time), c.open, c.high, c.low, c.close, c.volume)
