"""The signal calibration of a run's first models, computed in a forked child beside training.

A backtest's start-up trains each symbol's models (``train_symbol``) and fits its signal
calibrators on a walk-forward of their own (``calibrate_signals``). The two read the same
stored candles and nothing of each other, and each takes ~1.3-1.8 s a symbol on one core: the
walk-forwards of the lower timeframes (the costly ones) run in a ``ForkedTask`` while this
process trains and then walks the higher ones forward; it fits and saves, exactly as
``calibrate_signals`` would. Anything that goes wrong in the child is redone here, with the
real error; the child's log lines follow the training's.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.evaluation.walk_forward import TimeframeResult
from candlewise.system.forked_task import ForkedTask
from candlewise.training.first_training import fit_signal_calibration, walk_forward_signals

#: Timeframes (in config order) walked forward in the child: 1m..15m take ~1.15 s of the ~1.5 s;
#: the rest follow this process's training (~0.95 s + ~0.3 s), then both are fitted.
CHILD_TIMEFRAMES = 3


class CalibrationBeside:
    """``with CalibrationBeside(...):`` train; on exit every symbol's calibration is saved."""

    def __init__(
        self,
        store: Engine,
        cfg: AppConfig,
        symbols: Sequence[str],
        known_at_ms: int,
        models_dir: str,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.symbols = list(symbols)
        self.known_at_ms = known_at_ms
        self.models_dir = models_dir
        names = list(cfg.timeframes.names)
        self.in_child = names[:CHILD_TIMEFRAMES]
        self.task = ForkedTask(lambda: self.walk_forward(self.in_child), store)

    def __enter__(self) -> CalibrationBeside:
        self.task.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.task.end()
            return
        rest = [tf for tf in self.cfg.timeframes.names if tf not in self.in_child]
        here = self.walk_forward(rest)  # this process's share first, while the child finishes
        done = self.task.wait()
        found = self.task.result if done else self.walk_forward(self.in_child)
        results = {symbol: {**found[symbol], **here[symbol]} for symbol in self.symbols}
        for symbol in self.symbols:
            fit_signal_calibration(self.cfg, symbol, results[symbol], self.models_dir)

    def walk_forward(self, timeframes: Sequence[str]) -> dict[str, dict[str, TimeframeResult]]:
        return {
            symbol: walk_forward_signals(
                self.store, self.cfg, symbol, timeframes, known_at_ms=self.known_at_ms
            )
            for symbol in self.symbols
        }
