"""Getting candles into the store, from any source, with the same checks.

Batch (files, downloads, simulation): validate the frame, record every rejected or repaired row
in ``error_log``, store the 1m rows, and derive 5m..1d from *all* stored 1m rows of the affected
range (so a file that starts mid-hour completes a bucket begun by an earlier import).

Streaming (feeds): ``CandleRecorder`` validates each 1m candle, aggregates it, logs the closes
in the guide's format and writes in small transactions, so an interruption loses at most the
candles of the last fraction of a second, and a restart skips what is already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from candlewise.core.candle import Candle, CandleIssue
from candlewise.core.errors import UserError
from candlewise.core.timeframes import HIGHER_TIMEFRAMES, TIMEFRAME_MS, bucket_start
from candlewise.market.aggregation import TimeframeAggregator, aggregate_frame
from candlewise.market.validation import CandleValidator, validate_frame
from candlewise.store import candle_store
from candlewise.store.error_log import record_candle_issues
from candlewise.system.logging_setup import get_logger

log = get_logger("ingest")


def _family(source: str) -> str:
    """simulated:<seed> is its own history per seed; every other source is the real market."""
    return source if source.startswith("simulated") else "real"


def check_source(conn: Connection, symbol: str, source: str) -> None:
    """Refuse to append candles of another history to a symbol's stored series.

    Simulated prices continuing a real series (or another seed's) would silently poison every
    model trained and every figure computed on that symbol.
    """
    stored = candle_store.latest_source(conn, symbol)
    if stored is None or _family(stored) == _family(source):
        return
    raise UserError(
        f"{symbol} already holds {_describe(stored)} candles; adding {_describe(source)} "
        "candles would mix two price histories",
        "use another database for this (e.g. --db sqlite:///data/simulated.db) or another symbol",
    )


def _describe(source: str) -> str:
    return (
        f"simulated (seed {source.split(':', 1)[1]})"
        if ":" in source
        else ("simulated" if source.startswith("simulated") else f"real ({source})")
    )


@dataclass(frozen=True)
class IngestReport:
    symbol: str
    timeframe: str
    rows_read: int
    stored: int
    rejected: int
    repaired: int
    derived: dict[str, int] = field(default_factory=dict)
    issues: tuple[CandleIssue, ...] = ()


def ingest_frame(
    engine: Engine,
    frame: pd.DataFrame,
    symbol: str,
    timeframe: str,
    source: str,
    *,
    derive_higher: bool = True,
) -> IngestReport:
    """Validate and store a frame of one symbol/timeframe; derive higher timeframes from 1m."""
    clean, issues = validate_frame(frame, symbol, timeframe)
    derived: dict[str, int] = {}
    if clean.empty and len(frame):
        raise UserError(
            f"all {len(frame):,} rows were rejected ({_main_problem(issues)}); nothing was stored",
            _timestamp_hint(frame)
            or "check the file against the header "
            "timestamp,open,high,low,close,volume with open times in ms",
        )
    with engine.begin() as conn:
        check_source(conn, symbol, source)
        record_candle_issues(conn, issues, component=f"ingest:{source}")
        stored = candle_store.insert_frame(conn, clean, symbol, timeframe, source)
        if timeframe == "1m" and derive_higher and not clean.empty:
            derived = _derive_higher(conn, clean, symbol, source)
    rejected = sum(1 for i in issues if i.action == "rejected")
    return IngestReport(
        symbol,
        timeframe,
        len(frame),
        stored,
        rejected,
        len(issues) - rejected,
        derived,
        tuple(issues),
    )


def _main_problem(issues: Sequence[CandleIssue]) -> str:
    kinds: dict[str, int] = {}
    for issue in issues:
        kinds[issue.kind] = kinds.get(issue.kind, 0) + 1
    return ", ".join(f"{k}: {n:,}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])


def _timestamp_hint(frame: pd.DataFrame) -> str | None:
    ts = pd.to_numeric(frame["timestamp"], errors="coerce").dropna()
    if len(ts) and ((ts % 60_000) == 59_999).mean() > 0.9:
        return (
            "the timestamps end in :59.999, i.e. they are candle close times; candlewise "
            "expects open times (subtract 59999 ms)"
        )
    return None


def _derive_higher(
    conn: Connection, clean: pd.DataFrame, symbol: str, source: str
) -> dict[str, int]:
    """Rebuild 5m..1d over the days the new minutes touch, from every stored minute there."""
    first = int(clean["timestamp"].iloc[0])
    last = int(clean["timestamp"].iloc[-1])
    lo = bucket_start(first, "1d")
    hi = bucket_start(last, "1d") + 2 * TIMEFRAME_MS["1d"]
    minutes = candle_store.load_frame(conn, symbol, "1m", lo, hi)
    earlier = candle_store.load_frame(conn, symbol, "1m", end_ms=lo, limit=1)
    derived: dict[str, int] = {}
    for tf in HIGHER_TIMEFRAMES:
        bars = aggregate_frame(minutes, tf, history_before=not earlier.empty)
        touched = bars[bars["timestamp"] + TIMEFRAME_MS[tf] > bucket_start(first, tf)]
        derived[tf] = candle_store.upsert_frame(conn, touched, symbol, tf, source)
    return derived


OnClose = Callable[[Candle], None]


class CandleRecorder:
    """Streams 1m candles into the store: validate, aggregate, log, write in small batches."""

    def __init__(
        self,
        engine: Engine,
        symbols: Sequence[str],
        source: str,
        *,
        flush_every_s: float = 0.5,
        flush_rows: int = 5_000,
        on_close: OnClose | None = None,
        regimes: Callable[[], list[tuple[str, int, str]]] | None = None,
    ) -> None:
        self._engine = engine
        self._source = source
        self._validator = CandleValidator()
        self._aggregators = {s: TimeframeAggregator(s) for s in symbols}
        self._rows: list[Candle] = []
        self._issues: list[CandleIssue] = []
        self._flush_every_s = flush_every_s
        self._flush_rows = flush_rows
        self._last_flush = time.monotonic()
        self._on_close = on_close
        self._stored_until: dict[str, int] = {}
        self._regimes = regimes
        self.accepted = 0
        self.rejected = 0
        self.already_stored = 0
        self.closes: dict[str, int] = {}

    def resume_from_store(self) -> dict[str, int]:
        """Prime validation and aggregation with what is stored; returns last 1m open per symbol.

        Candles at or before the last stored one are then skipped quietly (counted in
        ``already_stored``): replaying what the store holds is no news and no error.
        """
        last: dict[str, int] = {}
        with self._engine.connect() as conn:
            for symbol, aggregator in self._aggregators.items():
                check_source(conn, symbol, self._source)
                t = candle_store.last_open_time(conn, symbol, "1m")
                if t is None:
                    continue
                last[symbol] = t
                day = bucket_start(t, "1d")
                aggregator.prime(candle_store.iter_candles(conn, symbol, "1m", day, t + 1))
                frame = candle_store.load_frame(conn, symbol, "1m", t, t + 1)
                o, h, lw, c, v = frame.iloc[0, 1:].tolist()
                self._validator.remember(Candle(symbol, "1m", t, o, h, lw, c, v))
        self._stored_until = dict(last)
        return last

    def add(self, candle: Candle) -> list[Candle]:
        """Handle one 1m candle; returns every candle that closed with it (1m first)."""
        aggregator = self._aggregators.get(candle.symbol)
        if aggregator is None:
            raise ValueError(f"not recording {candle.symbol}; recording {list(self._aggregators)}")
        if candle.open_time <= self._stored_until.get(candle.symbol, -1):
            self.already_stored += 1
            return []
        accepted, issues = self._validator.check(candle)
        if issues:
            self._issues.extend(issues)
            for issue in issues:
                log.warning(
                    "[%s @ %s] Candle %s (%s): %s",
                    issue.symbol,
                    issue.timeframe,
                    issue.action,
                    issue.kind,
                    issue.detail,
                )
        if accepted is None:
            self.rejected += 1
            self._maybe_flush()
            return []
        self.accepted += 1
        closed = [accepted, *aggregator.add(accepted)]
        self._rows.extend(closed)
        for bar in closed:
            self.closes[bar.timeframe] = self.closes.get(bar.timeframe, 0) + 1
            log.log(
                20 if bar.timeframe != "1m" else 10,
                "[%s @ %s] Candle closed: O=%.2f C=%.2f",
                bar.symbol,
                bar.timeframe,
                bar.open,
                bar.close,
            )
            if self._on_close:
                self._on_close(bar)
        self._maybe_flush()
        return closed

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if len(self._rows) >= self._flush_rows or now - self._last_flush >= self._flush_every_s:
            self.flush()

    def flush(self) -> None:
        """Write what is pending in one transaction (also call it on shutdown)."""
        regimes = self._regimes() if self._regimes else []
        if self._rows or self._issues or regimes:
            with self._engine.begin() as conn:
                candle_store.insert_candles(conn, self._rows, self._source)
                record_candle_issues(conn, self._issues, component=f"feed:{self._source}")
                for symbol in {r[0] for r in regimes}:
                    mine = [r for r in regimes if r[0] == symbol]
                    candle_store.insert_regimes(
                        conn, symbol, np.array([r[1] for r in mine]), [r[2] for r in mine]
                    )
            self._rows.clear()
            self._issues.clear()
        self._last_flush = time.monotonic()
