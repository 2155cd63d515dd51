"""Reading candle files: the shared data's layout, Parquet, ISO timestamps, and clear errors."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from candlewise.core.errors import UserError
from candlewise.market.candle_files import check_file_timeframe, infer_timeframe, read_candle_file
from candlewise.market.validation import validate_frame
from tests.conftest import SHARED, needs_shared

CSV = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{1_735_689_600_000 + i * 60_000},{100 + i},{101 + i},{99 + i},{100.5 + i},{10 + i}\n"
    for i in range(5)
)


def test_reads_gzip_csv_and_parquet_identically(tmp_path: Path) -> None:
    gz = tmp_path / "BTC_USDT-1m.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(CSV)
    frame = read_candle_file(gz)
    pq = tmp_path / "BTC_USDT-1m.parquet"
    frame.to_parquet(pq)
    pd.testing.assert_frame_equal(read_candle_file(pq), frame)
    assert frame["timestamp"].dtype == "int64" and frame["close"].tolist()[0] == 100.5
    assert infer_timeframe(frame) == "1m"


def test_iso_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2025-01-01T00:05:00Z,1,2,0.5,1.5,3\n")
    assert read_candle_file(path)["timestamp"].tolist() == [1_735_689_900_000]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("time,open,high,low,close,volume\n1,1,1,1,1,1\n", "missing column(s) timestamp"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=r"bad\.csv") as info:
        read_candle_file(path)
    assert fragment in str(info.value)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        read_candle_file(tmp_path / "none.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(UserError, match="unsupported file type"):
        read_candle_file(tmp_path / "x.xlsx")


def test_timeframe_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "five.csv"
    path.write_text(CSV.replace("60_000", "x"))
    frame = read_candle_file(path)
    frame["timestamp"] = 1_735_689_600_000 + 300_000 * pd.RangeIndex(len(frame))
    with pytest.raises(UserError, match="holds 5m candles but --timeframe is 1m"):
        check_file_timeframe(frame, "1m", path)


@needs_shared
def test_reads_the_shared_real_data() -> None:
    assert SHARED is not None
    frame = read_candle_file(SHARED / "data" / "candles" / "BTC_USDT-1h.csv.gz")
    assert len(frame) == 49164
    assert infer_timeframe(frame) == "1h"
    assert frame["timestamp"].is_monotonic_increasing


T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
UNIT_SCALE = {"seconds": (1, 1000), "milliseconds": (1, 1), "microseconds": (1000, 1),
              "nanoseconds": (1_000_000, 1)}  # fmt: skip


def write(path: Path, frame: pd.DataFrame) -> Path:
    """``frame`` as CSV, CSV.GZ or Parquet, by the file's suffix (mixed columns: Parquet text)."""
    if path.suffix == ".parquet":
        for col in frame.select_dtypes(include="object").columns:
            frame[col] = [None if pd.isna(v) else str(v) for v in frame[col]]
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)  # pandas gzips a .gz name
    return path


def candles(times: list) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {"timestamp": times, "open": [10.0] * n, "high": 11.0, "low": 9.0, "close": 10.5,
         "volume": 5.0}
    )  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
@pytest.mark.parametrize("unit", list(UNIT_SCALE))
def test_every_epoch_unit_is_read_as_milliseconds(tmp_path: Path, suffix: str, unit: str) -> None:
    mul, div = UNIT_SCALE[unit]
    times = [(T0 + i * 60_000) * mul // div for i in range(5)]
    frame = read_candle_file(write(tmp_path / f"x{suffix}", candles(times)))
    assert frame["timestamp"].tolist() == [T0 + i * 60_000 for i in range(5)]
    assert frame.attrs["timestamp_unit"] == unit


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parquet_datetime_column(tmp_path: Path, tz: str | None) -> None:
    times = pd.Series(pd.date_range("2025-01-01", periods=4, freq="1min", tz=tz))
    frame = read_candle_file(write(tmp_path / "x.parquet", candles(list(times))))
    assert frame["timestamp"].tolist() == [T0 + i * 60_000 for i in range(4)]
    times[1] = pd.NaT  # a missing time rejects its row alone
    frame = read_candle_file(write(tmp_path / "y.parquet", candles(times)))
    clean, issues = validate_frame(frame, "BTC/USDT", "1m")
    assert clean["timestamp"].tolist() == [T0, T0 + 120_000, T0 + 180_000]
    assert [(i.kind, i.row) for i in issues] == [("misaligned_timestamp", 2)]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
@pytest.mark.parametrize(
    ("cell", "column", "kind"),
    [
        ("abc", "timestamp", "misaligned_timestamp"),
        (None, "timestamp", "misaligned_timestamp"),  # empty cell
        ("2025-13-45", "timestamp", "misaligned_timestamp"),  # not a date
        ("60000000000000000", "timestamp", "implausible_timestamp"),  # year 1.9 million
        ("oops", "close", "nan_value"),
        (None, "open", "nan_value"),
    ],
)
def test_a_bad_cell_rejects_its_row_alone_with_its_number(
    tmp_path: Path, suffix: str, cell: str | None, column: str, kind: str
) -> None:
    """One bad cell of any kind in row 3: rows 1, 2, 4, 5 are kept, row 3 is named, no warning."""
    table = candles([str(T0 + i * 60_000) for i in range(5)]).astype(object)
    table.loc[2, column] = cell
    path = write(tmp_path / f"x{suffix}", table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas warning reaches the user
        frame = read_candle_file(path)
        clean, issues = validate_frame(frame, "BTC/USDT", "1m")
    assert clean["timestamp"].tolist() == [T0 + i * 60_000 for i in (0, 1, 3, 4)]
    assert [(i.kind, i.action, i.row) for i in issues] == [(kind, "rejected", 3)]
    if column == "timestamp" and cell not in (None, "60000000000000000"):
        assert repr(cell) in issues[0].detail


def test_iso_text_mixed_with_numbers_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2025-01-01T00:00:00Z,1,2,0.5,1.5,3\n"
        f"{T0 + 60_000},1,2,0.5,1.5,3\n2025-01-01 01:02:00+01:00,1,2,0.5,1.5,3\n"
    )
    frame = read_candle_file(path)
    assert np.array_equal(frame["timestamp"], [T0, T0 + 60_000, T0 + 120_000])
