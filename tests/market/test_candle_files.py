"""Reading candle files: the shared data's layout, Parquet, ISO timestamps, and clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from candlewise.errors import UserError
from candlewise.market.candle_files import check_file_timeframe, infer_timeframe, read_candle_file
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
        ("timestamp,open,high,low,close,volume\n1735689600,1,1,1,1,1\n", "look like seconds"),
        ("timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "unreadable timestamp"),
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
