"""The per-symbol signal calibrators, kept as ``models/<SYMBOL>_signal_calibration.json``.

Each event timeframe's Platt parameters come with the number of out-of-sample events they were
fitted on, and the file records the held-out ECE measured by the causal (expanding window)
procedure, so what the calibration is worth stays visible next to it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from candlewise.core.symbols import file_stem
from candlewise.models.calibration import PlattCalibrator


@dataclass(frozen=True)
class SignalCalibration:
    symbol: str
    calibrators: dict[str, PlattCalibrator]
    events: dict[str, int]
    heldout_ece: float | None
    heldout_events: int
    created_at: str


def calibration_path(models_dir: str | Path, symbol: str) -> Path:
    return Path(models_dir) / f"{file_stem(symbol)}_signal_calibration.json"


def save_calibration(models_dir: str | Path, calibration: SignalCalibration) -> Path:
    path = calibration_path(models_dir, calibration.symbol)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "symbol": calibration.symbol,
        "created_at": calibration.created_at,
        "heldout_ece": calibration.heldout_ece,
        "heldout_events": calibration.heldout_events,
        "timeframes": {
            tf: {**cal.to_dict(), "events": calibration.events[tf]}
            for tf, cal in calibration.calibrators.items()
        },
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path


def load_calibration(models_dir: str | Path, symbol: str) -> SignalCalibration | None:
    """The saved calibration, or None when absent or unreadable (signals stay uncalibrated)."""
    path = calibration_path(models_dir, symbol)
    try:
        data = json.loads(path.read_text())
        timeframes = data["timeframes"]
        return SignalCalibration(
            symbol=data["symbol"],
            calibrators={
                tf: PlattCalibrator.from_dict({"a": v["a"], "b": v["b"]})
                for tf, v in timeframes.items()
            },
            events={tf: int(v["events"]) for tf, v in timeframes.items()},
            heldout_ece=data["heldout_ece"],
            heldout_events=int(data["heldout_events"]),
            created_at=data["created_at"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
