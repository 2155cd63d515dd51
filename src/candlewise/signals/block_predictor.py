"""Predictions for a whole block of candle closes of one (symbol, timeframe) at once.

Why: replaying history one close at a time (``LivePredictor.on_close``) pays the numpy and
Python overhead of ``feature_rows`` and ``predict_proba`` for every candle (~90 us measured), while
the work per row is tiny. Here the features of all new closes come from ``feature_rows`` over the
concatenated columns (``compute_features``' code and 4,096-row chunks) and are scored by
``predict_proba`` 256 rows at a time (one BLAS thread, see ``_BLAS_ONE_THREAD``): ~1 us a close
(``bench/bench_block_predictor.py``). For single closes ``on_close`` stays the faster path.

Same answer as the live path: row ``t`` of ``feature_rows`` reads only candles ``t - 30 .. t``, so
``p_up`` equals what ``warm_up(history)`` + ``on_close`` for each new candle returns, bit for
bit, however the candles are split into blocks (the forward pass scores a row the same way
whatever rows come with it, ``network.ROW_MULTIPLE``; ``tests/signals/test_block_predictor.py``).
Rows whose window is not full (fewer than
``FEATURE_SPEC.window`` candles known, counting their own) get NaN, where ``on_close`` gives
None; ``predict_proba`` never returns NaN, so NaN means "no prediction". Like ``on_close``, a
full window holding NaN input raises ValueError (from ``predict_proba``).

Between blocks only the last ``window - 1`` candles are needed: ``carry_tail`` (and
``BlockSeries``, which keeps it for you) copies them, so memory does not grow with the number
of blocks and a tail never pins a large block's arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise

import numpy as np

from candlewise.core.candle import Candle
from candlewise.features.compute import CHUNK, feature_rows
from candlewise.features.spec import FEATURE_SPEC
from candlewise.models.trainer import TrainedModel

#: Candles carried from one block to the next: all that any new row's window can reach back.
CARRY = FEATURE_SPEC.window - 1
#: OpenBLAS runs a matmul on one thread while rows x inputs x outputs <= 65536 x 4. Above, it
#: uses every core, and on 2 cores with one kept busy by another process (a retrain, a test run)
#: its threads wait for each other: 4,096-row calls made ``predict_block`` ~3x slower there
#: (1.14 s vs 0.39 s per 100k rows, medians) and no faster on a quiet machine (97 vs 98 ms).
_BLAS_ONE_THREAD = 262_144


@dataclass(frozen=True, slots=True)
class CandleColumns:
    """Candles of one (symbol, timeframe), oldest first, as contiguous float64 columns.

    The layout ``feature_rows`` reads (and ``LivePredictor`` builds per close); ``timestamp`` is the
    open time in ms. Inputs are converted (no copy when already float64 and contiguous).
    """

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        sizes = set()
        for f in fields(self):
            column = np.ascontiguousarray(getattr(self, f.name), dtype=np.float64)
            if column.ndim != 1:
                raise ValueError(f"column {f.name} must be 1-D, got shape {column.shape}")
            sizes.add(column.size)
            object.__setattr__(self, f.name, column)
        if len(sizes) > 1:
            raise ValueError(f"columns differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return self.close.size

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The six columns in ``feature_rows``'s argument order."""
        return (self.timestamp, self.open, self.high, self.low, self.close, self.volume)

    @classmethod
    def empty(cls) -> CandleColumns:
        return cls(*(np.empty(0) for _ in range(6)))

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> CandleColumns:
        """Columns of ``Candle`` objects, with the values ``LivePredictor`` uses."""
        rows = [(float(c.open_time), c.open, c.high, c.low, c.close, c.volume) for c in candles]
        table = np.array(rows, dtype=np.float64).reshape(len(rows), 6).T
        return cls(*table)


def predict_block(
    history: CandleColumns, block: CandleColumns, model: TrainedModel | None
) -> np.ndarray:
    """P(up) (float64, shape ``(len(block),)``) at each close of ``block``; NaN = no prediction.

    ``history`` holds the candles known before the block (only its last ``CARRY`` are read;
    fewer at the start of the data). ``model`` None (no usable model) gives all NaN, as
    ``on_close`` gives None; split a block where the model changes (e.g. after a retrain).
    """
    n = len(block)
    p_up = np.full(n, np.nan)
    known = min(len(history), CARRY)
    first = CARRY - known  # first block row whose window is full
    if model is None or first >= n:
        return p_up
    start_h = len(history) - known
    columns = [
        np.concatenate((h[start_h:], b))
        for h, b in zip(history.arrays(), block.arrays(), strict=True)
    ]
    step = _rows_per_call(model)
    for start in range(first, n, CHUNK):  # chunked: (rows x 31) temporaries stay in cache
        end = min(n, start + CHUNK)
        # block row j is column row known + j; its window starts CARRY rows earlier
        rows = slice(known + start - CARRY, known + end)
        x = feature_rows(*(c[rows] for c in columns), end - start)
        for i in range(0, end - start, step):
            p_up[start + i : start + i + step] = model.predict_proba(x[i : i + step])
    return p_up


def _rows_per_call(model: TrainedModel) -> int:
    """Most rows per ``predict_proba`` call that keep every layer's matmul on one BLAS thread
    (256 for the default 32x32 network)."""
    widths = (model.n_features, *model.config.hidden, 1)
    return max(1, _BLAS_ONE_THREAD // max(a * b for a, b in pairwise(widths)))


def carry_tail(history: CandleColumns, block: CandleColumns) -> CandleColumns:
    """The last ``CARRY`` candles of ``history`` followed by ``block`` (all when fewer), copied:
    the ``history`` for the next block, never holding a reference to ``block``'s arrays."""
    keep_b = min(len(block), CARRY)
    keep_h = min(len(history), CARRY - keep_b)
    start_h, start_b = len(history) - keep_h, len(block) - keep_b
    return CandleColumns(
        *(
            np.concatenate((h[start_h:], b[start_b:]))  # a new array, even if one part is empty
            for h, b in zip(history.arrays(), block.arrays(), strict=True)
        )
    )


class BlockSeries:
    """One (symbol, timeframe)'s rolling tail: feed it consecutive blocks, get their P(up).

    The block-path counterpart of one ``LivePredictor`` buffer; holds ``CARRY`` candles at most.
    """

    __slots__ = ("tail",)

    def __init__(self, history: CandleColumns | None = None) -> None:
        empty = CandleColumns.empty()
        self.tail = carry_tail(empty, history) if history is not None else empty

    def advance(self, block: CandleColumns, model: TrainedModel | None) -> np.ndarray:
        """``predict_block`` on the tail and ``block``, then carry ``block`` into the tail."""
        p_up = predict_block(self.tail, block, model)
        self.tail = carry_tail(self.tail, block)
        return p_up
