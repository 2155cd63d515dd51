"""Reading candle files: CSV (optionally gzip) or Parquet with the header
``timestamp,open,high,low,close,volume`` (the layout of ``shared/data/candles/*.csv.gz``).

``timestamp`` is the candle's open time since the epoch (UTC) in s, ms, us or ns (told apart by
magnitude), or ISO-8601 text. A problem with the file as a whole is a ``UserError`` that names
the file and the fix; a bad cell is left for validation to reject with its row alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from candlewise.core.errors import UserError
from candlewise.core.timeframes import TIMEFRAME_MS, TIMEFRAMES

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def read_candle_file(path: str | Path) -> pd.DataFrame:
    """The file as a frame with ``COLUMNS``, in file order: timestamp in ms (int64 unless some
    cell is unusable), the rest float64 (NaN for a non-numeric cell). ``frame.attrs
    ["timestamp_unit"]`` says how the timestamps were read (e.g. "microseconds")."""
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
            # only an empty cell is missing: a cell such as "n/a" is reported as written
            frame = pd.read_csv(file, keep_default_na=False, na_values=[""])
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
    frame["timestamp"], unit = _timestamps_ms(frame["timestamp"])
    frame.attrs["timestamp_unit"] = unit
    for col in COLUMNS[1:]:
        # A non-numeric cell becomes NaN: validation then rejects that row alone and records it
        # in error_log, as it does for NaN, instead of refusing the whole file.
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class TimestampUnit:
    """An epoch unit: ms = value * mul / div (exact for whole multiples of div)."""

    name: str
    mul: int
    div: int
    below: float  # largest typical |value|: a date from 1973 to 5138 has 11..14 digits in ms


#: Told apart by magnitude: seconds stay below 10**11, ms below 10**14, us below 10**17.
UNITS: tuple[TimestampUnit, ...] = (
    TimestampUnit("seconds", 1000, 1, 1e11),
    TimestampUnit("milliseconds", 1, 1, 1e14),
    TimestampUnit("microseconds", 1, 1000, 1e17),
    TimestampUnit("nanoseconds", 1, 1_000_000, math.inf),
)


def timestamp_unit(values: np.ndarray) -> TimestampUnit:
    """The unit of epoch numbers, from the median magnitude of the finite ones.

    One unit per file: a row in another unit then lands outside the plausible range and is
    rejected on its own by validation, instead of being silently re-scaled.
    """
    finite = np.abs(values[np.isfinite(values)])
    median = float(np.median(finite)) if finite.size else 0.0
    return next(unit for unit in UNITS if median < unit.below)


def _timestamps_ms(column: pd.Series) -> tuple[pd.Series, str]:
    """Open times in ms (int64 when every cell is usable) and the unit they were read in.

    Numbers are epoch times in s, ms, us or ns (``timestamp_unit``); text is ISO-8601 or a
    number. A cell that is neither is kept as it was read, so validation rejects that row alone
    (naming its data row) and the rest of the file is imported.
    """
    if pd.api.types.is_datetime64_any_dtype(column):  # Parquet timestamps
        parsed = pd.to_datetime(column, utc=True)
        ms = parsed.dt.as_unit("ms").astype("int64").astype("float64").where(parsed.notna())
        return _as_frame_column(ms.to_numpy(), column), "datetime"
    if pd.api.types.is_integer_dtype(column):
        exact = column.to_numpy(dtype=np.int64)
        unit = timestamp_unit(exact.astype(np.float64))
        if unit.div == 1 or not (exact % unit.div).any():  # no float rounding
            return pd.Series(exact * unit.mul // unit.div, index=column.index), unit.name
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unit = timestamp_unit(numbers)
    with np.errstate(invalid="ignore", over="ignore"):
        ms = numbers * unit.mul / unit.div
    text = column.notna().to_numpy() & np.isnan(numbers)
    if text.any():  # format="ISO8601" parses every cell alike and never warns
        cells = column[text].astype(str)
        parsed = pd.to_datetime(cells, utc=True, errors="coerce", format="ISO8601")
        dates = parsed.dt.as_unit("ms").astype("int64").astype("float64").where(parsed.notna())
        ms[text] = dates.to_numpy()
    name = unit.name if np.isfinite(numbers).any() else "ISO-8601 text"
    return _as_frame_column(ms, column), name


def _as_frame_column(ms: np.ndarray, raw: pd.Series) -> pd.Series:
    """int64 when every value is a usable integer, else the values with each bad cell as read."""
    ok = np.isfinite(ms) & (np.abs(ms) < 2.0**62)
    if ok.all():
        whole = ms == np.floor(ms)
        if whole.all():
            return pd.Series(ms.astype(np.int64), index=raw.index)
        return pd.Series(ms, index=raw.index)  # fractions of a ms: validation rejects those rows
    values = pd.Series(ms, index=raw.index, dtype=object)
    values[~ok] = raw[~ok]
    return values


def infer_timeframe(frame: pd.DataFrame) -> str | None:
    """The timeframe whose length is the most common spacing of the file's timestamps."""
    if len(frame) < 3:
        return None
    times = pd.to_numeric(frame["timestamp"], errors="coerce").dropna()  # bad cells: no spacing
    steps = np.diff(np.sort(times.to_numpy()))
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
