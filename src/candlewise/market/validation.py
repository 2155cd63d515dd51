"""Candle validation: bad candles are rejected or repaired and reported, never raised.

A feed or an import must keep going when the exchange (or a file) sends one bad candle, and the
operator must be able to see what happened: every rejection and repair yields a ``CandleIssue``
for the caller to write to the store's ``error_log``.

Decisions (checked in this order; the first failing check rejects the candle)

=========================== ========= ===========================================================
kind                        action    why
=========================== ========= ===========================================================
unknown_timeframe           rejected  cannot check alignment or aggregate it
implausible_timestamp       rejected  ``open_time`` outside [2009-01-03, 2100-01-01) UTC: a
                                      wrong unit (s, us, ns read as ms) or a corrupt cell
misaligned_timestamp        rejected  ``open_time`` not a multiple of the timeframe (or not an
                                      integer): no bucket it belongs to
nan_value                   rejected  NaN or ±inf in any of open/high/low/close/volume
non_positive_price          rejected  a price <= 0 is never a real trade
negative_volume             rejected  volume < 0 (zero is a genuine quiet candle and is kept)
high_below_low              rejected  no way to know which bound is wrong
duplicate                   rejected  same ``open_time`` as the last accepted candle; the first
                                      one wins, detail says identical or conflicting values
out_of_order                rejected  (stream) ``open_time`` before the last accepted candle
out_of_order                repaired  (frame) a file row out of place: the frame is sorted
open_close_outside_range    repaired  prices sane but open/close outside [low, high]: high/low
                                      widened to include them (the extremes were under-reported)
=========================== ========= ===========================================================

Order and duplicate checks come after the content checks, so a rejected candle never becomes the
"last accepted" one. Row path (``CandleValidator``) and frame path (``validate_frame``) agree: the
frame result equals feeding the stably time-sorted rows to a fresh validator, plus one
``out_of_order``/``repaired`` issue per kept row that the sort moved.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from candlewise.core.candle import Action, Candle, CandleIssue
from candlewise.core.timeframes import TIMEFRAME_MS

#: Rejection checks in precedence order (also the codes used by the frame path).
REJECT_KINDS: Final = (
    "implausible_timestamp",
    "misaligned_timestamp",
    "nan_value",
    "non_positive_price",
    "negative_volume",
    "high_below_low",
)
_FIELDS: Final = ("open", "high", "low", "close", "volume")
_COLUMNS: Final = ("timestamp", *_FIELDS)

#: Open times a stored candle may have: from Bitcoin's first block to 2100 (UTC, ms). Anything
#: outside is a unit mistake or a corrupt cell, and would poison every range and chart.
PLAUSIBLE_FROM_MS: Final = 1_230_940_800_000  # 2009-01-03
PLAUSIBLE_UNTIL_MS: Final = 4_102_444_800_000  # 2100-01-01


# -- details shared by both paths, so their issues compare equal ---------------------------------


def _is_finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def _content_problem(
    open_time: int, tf_ms: int, values: tuple[float, ...]
) -> tuple[str, str] | None:
    """(kind, detail) of the first failing content check, None when the candle is acceptable."""
    if not PLAUSIBLE_FROM_MS <= open_time < PLAUSIBLE_UNTIL_MS:
        return "implausible_timestamp", (
            f"open_time {open_time} ({_utc_text(open_time)}) is outside 2009-01-03..2100-01-01"
        )
    if open_time % tf_ms:
        return "misaligned_timestamp", f"open_time {open_time} is not a multiple of {tf_ms} ms"
    bad = [f"{n}={v!r}" for n, v in zip(_FIELDS, values, strict=True) if not _is_finite(v)]
    if bad:
        return "nan_value", "non-finite " + ", ".join(bad)
    _, h, lo, _, v = values
    bad = [f"{n}={x!r}" for n, x in zip(_FIELDS[:4], values[:4], strict=True) if x <= 0]
    if bad:
        return "non_positive_price", "non-positive " + ", ".join(bad)
    if v < 0:
        return "negative_volume", f"volume {v!r} < 0"
    if h < lo:
        return "high_below_low", f"high {h!r} < low {lo!r}"
    return None


def candle_problem(candle: Candle) -> tuple[str, str] | None:
    """(kind, detail) of the first content check ``candle`` fails, None when it is acceptable.

    The rejection rules of the table above without the order checks: what a feed applies to one
    candle from the exchange before emitting it (alignment, finite values, prices > 0, volume
    >= 0, high >= low).
    """
    tf_ms = TIMEFRAME_MS.get(candle.timeframe)
    if tf_ms is None:
        return "unknown_timeframe", f"timeframe {candle.timeframe!r} is unknown"
    t = candle.open_time
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        return "misaligned_timestamp", f"open_time {t!r} is not an integer"
    return _content_problem(int(t), tf_ms, _values(candle))


def _utc_text(open_time: int) -> str:
    """The date of an epoch-ms time, also for years numpy and datetime cannot represent."""
    days = open_time // 86_400_000
    try:
        return str(np.datetime64(days, "D")) + " UTC"
    except (OverflowError, ValueError):
        return f"day {days:,} of the epoch"


def _range_repair(o: float, h: float, lo: float, c: float) -> tuple[float, float, str | None]:
    """Widen [low, high] to include open and close; detail is None when nothing changed."""
    new_h, new_l = max(h, o, c), min(lo, o, c)
    if new_h == h and new_l == lo:
        return h, lo, None
    parts = [f"{n} {x!r} > high {h!r}" for n, x in (("open", o), ("close", c)) if x > h]
    parts += [f"{n} {x!r} < low {lo!r}" for n, x in (("open", o), ("close", c)) if x < lo]
    return new_h, new_l, f"{', '.join(parts)}; range widened to [{new_l!r}, {new_h!r}]"


def _duplicate_detail(open_time: int, kept: tuple[float, ...], got: tuple[float, ...]) -> str:
    diffs = [
        f"{n} kept {k!r} got {g!r}" for n, k, g in zip(_FIELDS, kept, got, strict=True) if k != g
    ]
    if not diffs:
        return f"open_time {open_time} already accepted; identical values"
    return f"open_time {open_time} already accepted; conflicting values, kept first: " + ", ".join(
        diffs
    )


def _as_float(value: object) -> float:
    """Python float for any real number (numpy scalars included), NaN for anything else."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return math.nan
    return math.nan


def _raw(candle: Candle) -> tuple[object, ...]:
    return (candle.open, candle.high, candle.low, candle.close, candle.volume)


def _values(candle: Candle) -> tuple[float, ...]:
    return tuple(
        _as_float(x) for x in (candle.open, candle.high, candle.low, candle.close, candle.volume)
    )


# -- row path ------------------------------------------------------------------------------------


class CandleValidator:
    """Validates a stream of candles; remembers the last accepted candle per (symbol, timeframe)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Candle] = {}

    def remember(self, candle: Candle) -> None:
        """Prime with the last stored candle so a restarted feed detects duplicates and reorders."""
        self._last[(candle.symbol, candle.timeframe)] = candle

    def last_accepted(self, symbol: str, timeframe: str) -> Candle | None:
        return self._last.get((symbol, timeframe))

    def check(self, candle: Candle) -> tuple[Candle | None, list[CandleIssue]]:
        """Return (the candle, possibly repaired, or None if rejected; the issues found)."""
        symbol, tf, t = candle.symbol, candle.timeframe, candle.open_time

        integral = isinstance(t, numbers.Integral) and not isinstance(t, bool)
        if integral:
            t = int(t)

        def issue(kind: str, action: Action, detail: str) -> CandleIssue:
            return CandleIssue(symbol, tf, t if integral else None, kind, action, detail)

        tf_ms = TIMEFRAME_MS.get(tf)
        if tf_ms is None:
            return None, [issue("unknown_timeframe", "rejected", f"timeframe {tf!r} is unknown")]
        if not integral:
            detail = f"open_time {t!r} is not an integer"
            return None, [issue("misaligned_timestamp", "rejected", detail)]
        values = _values(candle)
        problem = _content_problem(t, tf_ms, values)
        if problem is not None:
            return None, [issue(problem[0], "rejected", problem[1])]
        o, h, lo, c, v = values
        new_h, new_l, repair = _range_repair(o, h, lo, c)
        plain = type(candle.open_time) is int and all(type(x) is float for x in _raw(candle))
        if repair is not None or not plain:
            # widen the range, and normalise numpy scalars/ints to the plain types Candle promises
            candle = replace(candle, open_time=t, open=o, high=new_h, low=new_l, close=c, volume=v)
        last = self._last.get((symbol, tf))
        if last is not None and t <= last.open_time:
            if t == last.open_time:
                detail = _duplicate_detail(t, _values(last), _values(candle))
                return None, [issue("duplicate", "rejected", detail)]
            detail = f"open_time {t} < last accepted {last.open_time}"
            return None, [issue("out_of_order", "rejected", detail)]
        self._last[(symbol, tf)] = candle
        if repair is None:
            return candle, []
        return candle, [issue("open_close_outside_range", "repaired", repair)]


# -- frame path ----------------------------------------------------------------------------------


def _timestamps(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 timestamps, mask of rows whose timestamp is an integer)."""
    if pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        ts = column.to_numpy(dtype=np.int64)
        return ts, np.ones(ts.size, dtype=bool)
    f = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(f) & (np.abs(f) < 2.0**62)
    ok[ok] = f[ok] == np.floor(f[ok])
    return np.where(ok, f, 0).astype(np.int64), ok


def _reject_codes(ts: np.ndarray, ts_ok: np.ndarray, vals: np.ndarray, tf_ms: int) -> np.ndarray:
    """Per row: index into REJECT_KINDS of the first failing check, -1 when acceptable."""
    _, h, lo, _, v = vals
    with np.errstate(invalid="ignore"):
        conditions = [
            ts_ok & ((ts < PLAUSIBLE_FROM_MS) | (ts >= PLAUSIBLE_UNTIL_MS)),
            ~ts_ok | (ts % tf_ms != 0),
            ~np.isfinite(vals).all(axis=0),
            (vals[:4] <= 0).any(axis=0),
            v < 0,
            h < lo,
        ]
    return np.select(conditions, list(range(len(REJECT_KINDS))), default=-1)


@dataclass(frozen=True)
class _FrameChecks:
    """Per-row outcome of the vectorised checks (arrays indexed by original row position)."""

    ts: np.ndarray
    ts_ok: np.ndarray
    codes: np.ndarray  # REJECT_KINDS index or -1
    moved: np.ndarray  # accepted row that sorting moves
    prev_max: np.ndarray  # latest accepted open_time before the row in the file
    repaired: np.ndarray  # range widened
    kept_of: np.ndarray  # for a duplicate: the row kept instead, else -1
    order: np.ndarray  # stable sort of all rows by timestamp
    keep: np.ndarray  # surviving rows in sorted order
    raw: np.ndarray  # (5, n) open, high, low, close, volume as read
    fixed: np.ndarray  # (5, n) with the repaired high/low


def _check_frame(df: pd.DataFrame, tf_ms: int) -> _FrameChecks:
    ts, ts_ok = _timestamps(df["timestamp"])
    raw = np.vstack(
        [
            pd.to_numeric(df[f], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            for f in _FIELDS
        ]
    ).reshape(5, len(df))
    codes = _reject_codes(ts, ts_ok, raw, tf_ms)
    valid = codes < 0

    # Out of place: an accepted row earlier than some accepted row before it in the file.
    lowest = np.iinfo(np.int64).min
    running = np.maximum.accumulate(np.where(valid, ts, lowest))
    prev_max = np.concatenate(([lowest], running[:-1]))
    moved = valid & (ts < prev_max)

    o, h, lo, c, v = raw
    high = np.where(valid, np.fmax(np.fmax(h, o), c), h)
    low = np.where(valid, np.fmin(np.fmin(lo, o), c), lo)
    repaired = valid & ((high != h) | (low != lo))

    # Stable sort; rows without an integer timestamp go first (they are rejected anyway).
    order = np.lexsort((np.where(ts_ok, ts, 0), ts_ok))
    vs = order[valid[order]]  # accepted candidates in sorted order
    sorted_ts = ts[vs]
    dup = np.zeros(vs.size, dtype=bool)
    dup[1:] = sorted_ts[1:] == sorted_ts[:-1]
    run_first = np.maximum.accumulate(np.where(dup, 0, np.arange(vs.size)))
    kept_of = np.full(len(df), -1)
    kept_of[vs[dup]] = vs[run_first[dup]]
    fixed = np.vstack([o, high, low, c, v])
    return _FrameChecks(
        ts, ts_ok, codes, moved, prev_max, repaired, kept_of, order, vs[~dup], raw, fixed
    )


def validate_frame(
    df: pd.DataFrame, symbol: str, timeframe: str
) -> tuple[pd.DataFrame, list[CandleIssue]]:
    """Vectorised validation of a whole file (columns timestamp, open, high, low, close, volume).

    Returns the clean frame (sorted, unique timestamps, repaired ranges, index 0..n-1) and the
    issues, ordered by the rows' sorted position. Files are sorted stably rather than rejecting
    out-of-place rows, because sorting fixes a file; each moved row is reported as repaired.
    Raises ValueError only for a bad argument (unknown timeframe, missing column), never for data.
    """
    tf_ms = TIMEFRAME_MS.get(timeframe)
    if tf_ms is None:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    missing = [col for col in _COLUMNS if col not in df.columns]
    if missing:
        raise ValueError(f"candle frame lacks columns: {', '.join(missing)}")
    chk = _check_frame(df, tf_ms)
    clean = pd.DataFrame(
        {
            "timestamp": chk.ts[chk.keep],
            **{f: chk.fixed[i][chk.keep] for i, f in enumerate(_FIELDS)},
        }
    )
    return clean, _frame_issues(symbol, timeframe, tf_ms, chk, df["timestamp"])


def _plain(value: object) -> object:
    """numpy scalar -> Python scalar, so details read ``nan`` rather than ``np.float64(nan)``."""
    return value.item() if isinstance(value, np.generic) else value


def _frame_issues(
    symbol: str, timeframe: str, tf_ms: int, chk: _FrameChecks, raw_ts: pd.Series
) -> list[CandleIssue]:
    """Issues with the row path's detail strings; Python loops only over faulty rows."""
    flagged = (chk.codes >= 0) | chk.moved | chk.repaired | (chk.kept_of >= 0)
    issues: list[CandleIssue] = []
    for i in chk.order[flagged[chk.order]].tolist():
        t = int(chk.ts[i]) if chk.ts_ok[i] else None

        def add(
            kind: str, detail: str, action: Action = "repaired", t: int | None = t, row: int = i + 1
        ) -> None:
            issues.append(CandleIssue(symbol, timeframe, t, kind, action, detail, row=row))

        if t is None:
            detail = f"open_time {_plain(raw_ts.iloc[i])!r} is not an integer"
            add("misaligned_timestamp", detail, "rejected")
        elif chk.codes[i] >= 0:
            # the scalar check gives the row path's detail; both apply the same rules
            problem = _content_problem(t, tf_ms, tuple(chk.raw[:, i].tolist()))
            kind = REJECT_KINDS[chk.codes[i]]
            add(*(problem or (kind, "values fail the check")), action="rejected")
        elif chk.kept_of[i] >= 0:
            kept = tuple(chk.fixed[:, chk.kept_of[i]].tolist())
            got = tuple(chk.fixed[:, i].tolist())
            add("duplicate", _duplicate_detail(t, kept, got), "rejected")
        else:
            if chk.moved[i]:
                came_after = int(chk.prev_max[i])
                add("out_of_order", f"data row {i + 1} came after open_time {came_after}; sorted")
            if chk.repaired[i]:
                o, h, lo, c = chk.raw[:4, i].tolist()
                add("open_close_outside_range", _range_repair(o, h, lo, c)[2] or "")
    return issues
