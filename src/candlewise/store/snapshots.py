"""Checkpoint snapshots: the pickled state a run continues from (``engine_runs.snapshot``).

A pickle names each object's class by module path, so a checkpoint written before a module
moved would no longer load. Loading goes through ``MOVED_MODULES`` (old path -> new path) and
``MOVED_NAMES`` (a class that left its module), so that a backtest killed or a deployment
stopped by an older version resumes after the move. Add a row whenever a pickled class moves.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Final

#: Modules of the layout before the layered subpackages (issue 15), by their new path.
MOVED_MODULES: Final[dict[str, str]] = {
    "candlewise.market.candle": "candlewise.core.candle",
    "candlewise.clock": "candlewise.core.clock",
    "candlewise.timeframes": "candlewise.core.timeframes",
    "candlewise.symbols": "candlewise.core.symbols",
    "candlewise.store.timestamps": "candlewise.core.timestamps",
    "candlewise.errors": "candlewise.core.errors",
    "candlewise.config": "candlewise.config.app_config",
    "candlewise.config_loader": "candlewise.config.loader",
    "candlewise.secrets": "candlewise.config.secrets",
    "candlewise.forked_task": "candlewise.system.forked_task",
    "candlewise.memory": "candlewise.system.memory",
    "candlewise.processes": "candlewise.system.processes",
    "candlewise.shutdown": "candlewise.system.shutdown",
    "candlewise.logging_setup": "candlewise.system.logging_setup",
    "candlewise.engine": "candlewise.engine.trading_engine",
    "candlewise.engine_setup": "candlewise.engine.setup",
    "candlewise.runner": "candlewise.engine.runner",
    "candlewise.replay.block_aggregation": "candlewise.engine.replay.block_aggregation",
    "candlewise.replay.block_engine": "candlewise.engine.replay.block_engine",
    "candlewise.replay.block_signals": "candlewise.engine.replay.block_signals",
    "candlewise.replay.column_blocks": "candlewise.engine.replay.column_blocks",
    "candlewise.replay.fast_book": "candlewise.engine.replay.fast_book",
    "candlewise.backtest": "candlewise.backtest.run",
    "candlewise.backtest_request": "candlewise.backtest.request",
    "candlewise.backtest_report": "candlewise.backtest.report",
    "candlewise.backtest_history": "candlewise.backtest.history",
    "candlewise.training": "candlewise.training.first_training",
    "candlewise.retraining": "candlewise.training.challenger",
    "candlewise.retrain_worker": "candlewise.training.retrain_worker",
    "candlewise.retrain_worker_process": "candlewise.training.worker_process",
    "candlewise.calibration_worker": "candlewise.training.calibration_child",
    "candlewise.ingest": "candlewise.market.ingest",
    "candlewise.models.registry": "candlewise.store.model_registry",
    "candlewise.monitoring.prometheus": "candlewise.deployment.prometheus",
    "candlewise.market.provider": "candlewise.app.provider",
}
#: Classes that moved to another module on their own: (old module, name) -> new module.
MOVED_NAMES: Final[dict[tuple[str, str], str]] = {
    ("candlewise.market.validation", "CandleIssue"): "candlewise.core.candle",
    ("candlewise.market.feed_factory", "FeedPlan"): "candlewise.market.feed_plan",
    ("candlewise.models.trainer", "TrainingConfig"): "candlewise.models.training_config",
    ("candlewise.models.trainer", "TrainingMetrics"): "candlewise.models.training_config",
    ("candlewise.models.trainer", "EpochReport"): "candlewise.models.training_config",
}


class _RenamingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = MOVED_NAMES.get((module, name), MOVED_MODULES.get(module, module))
        return super().find_class(module, name)


def dump_snapshot(snapshot: Any) -> bytes:
    return pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)


def load_snapshot(blob: bytes) -> Any:
    """``blob`` unpickled, with the classes of moved modules found at their new paths."""
    return _RenamingUnpickler(io.BytesIO(blob)).load()
