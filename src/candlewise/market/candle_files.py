"""Reading candle files: CSV (optionally gzip) or Parquet with the header
``timestamp,open,high,low,close,volume`` (the layout of ``shared/data/candles/*.csv.gz``).

``timestamp`` is the candle's open time, in ms since the epoch (UTC) or as ISO-8601 text.
Every problem with a file is a ``UserError`` that names the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from candlewise.errors import UserError
from candlewise.timeframes import TIMEFRAME_MS, TIMEFRAMES

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def read_candle_file(path: str | Path) -> pd.DataFrame:
    """The file as a frame with ``COLUMNS`` (timestamp int64 ms, the rest float64), file order."""
    file = Path(path)
    if not file.is_file():
        raise UserError(
            f"file not found: {file}", "check the path (relative to the current folder)"
        )
    name = file.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(file)
        elif name.endswith((".csv", ".csv.gz", ".txt", ".txt.gz")):
            frame = pd.read_csv(file)
        else:
            raise UserError(
                f"unsupported file type: {file.name}",
                f"use one of {', '.join(_SUFFIXES)} with the header {','.join(COLUMNS)}",
            )
    except UserError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise UserError(
            f"cannot read {file}: {exc}", "is it a CSV or Parquet candle file?"
        ) from None
    return _normalise(frame, file)


def _normalise(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{file.name}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns)})",
            f"the header must be {','.join(COLUMNS)}",
        )
    frame = frame[list(COLUMNS)].copy()
    frame["timestamp"] = _timestamps_ms(frame["timestamp"], file)
    for col in COLUMNS[1:]:
        # A non-numeric cell becomes NaN: validation then rejects that row alone and records it
        # in error_log, as it does for NaN, instead of refusing the whole file.
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def _timestamps_ms(column: pd.Series, file: Path) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        if column.isna().any():
            raise UserError(
                f"{file.name}: empty timestamp in data row {int(column.isna().argmax()) + 1}"
            )
        values = column.astype("int64")
        if len(values) and values.abs().max() < 10**11:
            raise UserError(
                f"{file.name}: timestamps look like seconds, not milliseconds "
                f"(e.g. {int(values.iloc[0])})",
                "multiply them by 1000 or use ISO-8601 text",
            )
        return values
    parsed = pd.to_datetime(column, utc=True, errors="coerce")
    if parsed.isna().any():
        row = int(parsed.isna().to_numpy().argmax())
        raise UserError(
            f"{file.name}: unreadable timestamp {column.iloc[row]!r} (data row {row + 1})",
            "use milliseconds since the epoch or ISO-8601 such as 2025-05-20T00:00:00Z",
        )
    return pd.Series(parsed.dt.as_unit("ms").astype("int64"), index=column.index)


def infer_timeframe(frame: pd.DataFrame) -> str | None:
    """The timeframe whose length is the most common spacing of the file's timestamps."""
    if len(frame) < 3:
        return None
    steps = np.diff(np.sort(frame["timestamp"].to_numpy()))
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[counts.argmax()])
    return next((tf for tf in TIMEFRAMES if TIMEFRAME_MS[tf] == step), None)


def check_file_timeframe(frame: pd.DataFrame, timeframe: str, file: Path | str) -> None:
    """Refuse a file whose spacing contradicts ``--timeframe`` (a common copy-paste mistake)."""
    seen = infer_timeframe(frame)
    if seen is not None and seen != timeframe:
        raise UserError(
            f"{Path(file).name} holds {seen} candles but --timeframe is {timeframe}",
            f"pass --timeframe {seen}",
        )
