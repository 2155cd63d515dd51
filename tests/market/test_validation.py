"""Candle validation: each fault's kind and action, survivors of a mixed stream, frame == rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candlewise.core.candle import Candle
from candlewise.market.validation import (
    CandleIssue,
    CandleValidator,
    candle_problem,
    validate_frame,
)

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def c(minute: float, o=100.0, h=101.0, lo=99.0, cl=100.5, v=1.0, tf="1m", symbol="BTC/USDT"):
    """Candle at ``minute`` minutes after T0 (fractions make misaligned timestamps)."""
    return Candle(symbol, tf, T0 + int(minute * M), o, h, lo, cl, v)


def check_one(candle: Candle) -> tuple[Candle | None, list[CandleIssue]]:
    return CandleValidator().check(candle)


# -- one test per kind ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candle", "kind", "detail"),
    [
        (c(0, lo=0.0), "non_positive_price", "non-positive low=0.0"),
        (c(0, o=-5.0, lo=-6.0), "non_positive_price", "non-positive open=-5.0, low=-6.0"),
        (c(0, cl=math.nan), "nan_value", "non-finite close=nan"),
        (c(0, h=math.inf), "nan_value", "non-finite high=inf"),
        (c(0, v=math.nan), "nan_value", "non-finite volume=nan"),
        (c(0, h=99.0, lo=101.0), "high_below_low", "high 99.0 < low 101.0"),
        (c(0, v=-2.5), "negative_volume", "volume -2.5 < 0"),
        (c(0.5), "misaligned_timestamp", f"open_time {T0 + 30_000} is not a multiple of 60000"),
        (c(1, tf="5m"), "misaligned_timestamp", "is not a multiple of 300000 ms"),
        (c(0, tf="2m"), "unknown_timeframe", "timeframe '2m' is unknown"),
        (Candle("BTC/USDT", "1m", T0 * 1000, 1.0, 1.0, 1.0, 1.0, 1.0), "implausible_timestamp",
         f"open_time {T0 * 1000} (55969-09-28 UTC) is outside"),  # us read as ms
        (Candle("BTC/USDT", "1m", T0 // 1000 // 60 * 60, 1.0, 1.0, 1.0, 1.0, 1.0),
         "implausible_timestamp", "(1970-01-20 UTC) is outside 2009-01-03..2100-01-01"),  # s
    ],
)  # fmt: skip
def test_rejected_kinds(candle: Candle, kind: str, detail: str) -> None:
    kept, issues = check_one(candle)
    assert kept is None
    assert [(i.kind, i.action) for i in issues] == [(kind, "rejected")]
    assert detail in issues[0].detail
    assert (issues[0].symbol, issues[0].timeframe) == (candle.symbol, candle.timeframe)


def test_open_close_outside_range_is_repaired_by_widening() -> None:
    kept, issues = check_one(c(0, o=105.0, h=104.0, lo=99.0, cl=98.0))
    assert kept == c(0, o=105.0, h=105.0, lo=98.0, cl=98.0)
    assert [(i.kind, i.action) for i in issues] == [("open_close_outside_range", "repaired")]
    assert issues[0].detail == (
        "open 105.0 > high 104.0, close 98.0 < low 99.0; range widened to [98.0, 105.0]"
    )


def test_zero_volume_is_a_valid_candle() -> None:
    assert check_one(c(0, v=0.0)) == (c(0, v=0.0), [])


def test_out_of_order_is_rejected() -> None:
    validator = CandleValidator()
    validator.check(c(5))
    kept, issues = validator.check(c(3))
    assert kept is None
    assert [(i.kind, i.action, i.open_time) for i in issues] == [
        ("out_of_order", "rejected", T0 + 3 * M)
    ]
    assert issues[0].detail == f"open_time {T0 + 3 * M} < last accepted {T0 + 5 * M}"


def test_duplicate_is_rejected_and_says_identical_or_conflicting() -> None:
    validator = CandleValidator()
    validator.check(c(1))
    _, same = validator.check(c(1))
    kept, conflict = validator.check(c(1, cl=100.75))
    assert kept is None
    assert [(i.kind, i.action) for i in same + conflict] == [("duplicate", "rejected")] * 2
    assert same[0].detail.endswith("identical values")
    assert conflict[0].detail.endswith(
        "conflicting values, kept first: close kept 100.5 got 100.75"
    )
    assert validator.last_accepted("BTC/USDT", "1m") == c(1)


def test_state_is_per_symbol_and_timeframe_and_can_be_primed() -> None:
    validator = CandleValidator()
    validator.remember(c(10))  # e.g. the last candle in the store after a restart
    assert validator.check(c(10))[1][0].kind == "duplicate"
    assert validator.check(c(5, symbol="ETH/USDT")) == (c(5, symbol="ETH/USDT"), [])
    assert validator.check(c(5, tf="5m")) == (c(5, tf="5m"), [])


@pytest.mark.parametrize(
    ("candle", "kind"),
    [
        (c(0.5, cl=math.nan), "misaligned_timestamp"),
        (c(0, o=-1.0, v=math.nan), "nan_value"),
        (c(0, lo=-1.0, v=-1.0), "non_positive_price"),
        (c(0, h=98.0, v=-1.0), "negative_volume"),
    ],
)
def test_first_failing_check_names_the_rejection(candle: Candle, kind: str) -> None:
    assert [i.kind for i in check_one(candle)[1]] == [kind]


def test_a_repairable_duplicate_is_only_a_duplicate() -> None:
    validator = CandleValidator()
    first, _ = validator.check(c(0, o=102.0))
    again, issues = validator.check(c(0, o=102.0))
    assert first is not None and first.high == 102.0 and again is None
    assert [(i.kind, i.detail.endswith("identical values")) for i in issues] == [
        ("duplicate", True)
    ]


def test_mixed_stream_survivors() -> None:
    stream = [
        c(0),
        c(1, h=99.0, lo=101.0),  # rejected: high < low
        c(1),  # accepted: the rejected one did not count as "last accepted"
        c(1, cl=100.0),  # duplicate (conflicting)
        c(3, o=102.0),  # repaired
        c(2),  # out of order
        c(4, v=-1.0),  # negative volume
        c(4.5),  # misaligned
        c(5, cl=0.0),  # non-positive
        c(6, v=math.nan),  # NaN volume
        c(7),
    ]
    validator = CandleValidator()
    results = [validator.check(x) for x in stream]
    survivors = [k for k, _ in results if k is not None]
    assert [(k.open_time - T0) // M for k in survivors] == [0, 1, 3, 7]
    assert survivors[2].high == 102.0
    kinds = [(i.kind, i.action) for _, issues in results for i in issues]
    assert kinds == [
        ("high_below_low", "rejected"),
        ("duplicate", "rejected"),
        ("open_close_outside_range", "repaired"),
        ("out_of_order", "rejected"),
        ("negative_volume", "rejected"),
        ("misaligned_timestamp", "rejected"),
        ("non_positive_price", "rejected"),
        ("nan_value", "rejected"),
    ]


# -- frame path ----------------------------------------------------------------------------------


def frame(candles: list[Candle]) -> pd.DataFrame:
    rows = [(x.open_time, x.open, x.high, x.low, x.close, x.volume) for x in candles]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"timestamp": "int64"})


def row_path(df: pd.DataFrame, tf: str = "1m") -> tuple[pd.DataFrame, list[CandleIssue]]:
    """The reference for validate_frame: a fresh validator over the stably time-sorted rows."""
    validator = CandleValidator()
    kept: list[Candle] = []
    issues: list[CandleIssue] = []
    ordered = df.sort_values("timestamp", kind="stable")
    for row in ordered.itertuples(index=False):
        candle = Candle("BTC/USDT", tf, int(row.timestamp), *map(float, row[1:]))
        ok, found = validator.check(candle)
        issues += found
        if ok is not None:
            kept.append(ok)
    return frame(kept), issues


def test_frame_sorts_and_reports_rows_out_of_place() -> None:
    df = frame([c(0), c(1), c(3), c(2), c(4), c(2)])
    clean, issues = validate_frame(df, "BTC/USDT", "1m")
    assert ((clean["timestamp"] - T0) // M).tolist() == [0, 1, 2, 3, 4]
    assert [(i.kind, i.action, (i.open_time - T0) // M) for i in issues] == [
        ("out_of_order", "repaired", 2),
        ("duplicate", "rejected", 2),
    ]
    assert issues[0].detail == f"data row 4 came after open_time {T0 + 3 * M}; sorted"


def test_frame_rejects_unusable_timestamps_and_text() -> None:
    df = pd.DataFrame(
        {
            "timestamp": [float(T0), math.nan, T0 + 60_000.5, float(T0 + M)],
            "open": [100.0, 100.0, 100.0, "oops"],
            "high": 101.0,
            "low": 99.0,
            "close": 100.0,
            "volume": 1.0,
        }
    )
    clean, issues = validate_frame(df, "BTC/USDT", "1m")
    assert clean["timestamp"].tolist() == [T0]
    assert clean["timestamp"].dtype == np.int64
    assert [(i.kind, i.open_time) for i in issues] == [
        ("misaligned_timestamp", None),
        ("misaligned_timestamp", None),
        ("nan_value", T0 + M),
    ]
    assert issues[0].detail == "open_time nan is not an integer"


def test_frame_argument_errors_raise() -> None:
    with pytest.raises(ValueError, match="unknown timeframe"):
        validate_frame(frame([c(0)]), "BTC/USDT", "2m")
    with pytest.raises(ValueError, match="volume"):
        validate_frame(frame([c(0)]).drop(columns="volume"), "BTC/USDT", "1m")


any_float = st.floats(allow_nan=True, allow_infinity=True)
FAULTS = ["none"] * 8 + [
    "misaligned", "nan", "inf", "zero", "negative_price", "negative_volume", "nan_volume",
    "high_below_low", "open_above", "close_below",
]  # fmt: skip


def faulty_row(minute: int, faults: list[str], base: float, spread: float, v: float) -> tuple:
    """A sane row at ``minute``, then ``faults`` injected (two at once test check precedence)."""
    row = [T0 + minute * M, base, base + spread, base - spread, base + spread / 2, v]
    for fault in faults:
        inject(fault, row, spread)
    return tuple(row)


def inject(fault: str, row: list, spread: float) -> None:
    ts, o, h, lo, cl, v = range(6)  # column positions
    match fault:
        case "misaligned":
            row[ts] += 1_000
        case "nan":
            row[cl] = math.nan
        case "inf":
            row[h] = math.inf
        case "zero":
            row[lo] = 0.0
        case "negative_price":
            row[o] = -abs(row[o])
        case "negative_volume":
            row[v] = -abs(row[v]) - 1
        case "nan_volume":
            row[v] = math.nan
        case "high_below_low":
            row[h], row[lo] = row[lo], row[h] + 1
        case "open_above":
            row[o] = row[h] + spread
        case "close_below":
            row[cl] = row[lo] / 2


fault_rows = st.lists(
    st.builds(
        faulty_row,
        st.integers(0, 25),  # collisions make duplicates, random order makes disorder
        st.lists(st.sampled_from(FAULTS), max_size=2),
        st.floats(50, 150),
        st.sampled_from([0.0, 0.5, 3.0]),
        st.sampled_from([0.0, 1.0, 2.5]),  # few values: duplicates are often identical
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(rows=fault_rows, tf=st.sampled_from(["1m", "5m"]))
def test_frame_path_equals_row_path(rows, tf) -> None:
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"timestamp": "int64"})
    clean, issues = validate_frame(df, "BTC/USDT", tf)
    ref_clean, ref_issues = row_path(df, tf)
    pd.testing.assert_frame_equal(clean, ref_clean, check_dtype=False)
    moved = [i for i in issues if i.kind == "out_of_order"]
    assert all(i.action == "repaired" for i in moved)
    assert [i for i in issues if i.kind != "out_of_order"] == ref_issues
    assert clean["timestamp"].is_monotonic_increasing and clean["timestamp"].is_unique


@settings(max_examples=300, deadline=None)
@given(
    minute=st.integers(-(10**6), 10**6),
    offset=st.integers(-(10**5), 10**5),
    values=st.tuples(any_float, any_float, any_float, any_float, any_float),
)
def test_any_float_input_never_raises_and_output_is_sane(minute, offset, values) -> None:
    candle = Candle("BTC/USDT", "1m", T0 + minute * M + offset, *values)
    kept, issues = CandleValidator().check(candle)
    assert len(issues) <= 1
    if kept is None:
        assert issues and issues[0].action == "rejected"
    else:
        o, h, lo, cl, v = kept.open, kept.high, kept.low, kept.close, kept.volume
        assert all(math.isfinite(x) for x in (o, h, lo, cl, v))
        assert 0 < lo <= min(o, cl) and max(o, cl) <= h and v >= 0
    clean, frame_issues = validate_frame(frame([candle]), "BTC/USDT", "1m")
    assert len(clean) == (kept is not None) and frame_issues == issues


@pytest.mark.parametrize(
    "candle",
    [
        c(0),
        c(0.5),  # misaligned
        c(0, o=math.nan),
        c(0, lo=0.0),
        c(0, v=-1.0),
        c(0, h=98.0),  # high < low
        c(0, o=105.0),  # repaired, not rejected
        c(0, tf="7m"),
    ],
)
def test_candle_problem_is_the_validators_rejection(candle: Candle) -> None:
    """The live feed checks one candle with the same rules the store's validator applies."""
    accepted, issues = check_one(candle)
    problem = candle_problem(candle)
    if accepted is not None:
        assert problem is None
    else:
        assert problem == (issues[0].kind, issues[0].detail)
