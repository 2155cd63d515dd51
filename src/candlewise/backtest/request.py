"""What a backtest plays: the request, its window, and the candles it replays.

Simulated runs are anchored to the seed's history (``HISTORY_ORIGIN_MS``): ``warmup_days`` of
history train the first models, then ``days`` are played, so the window (and the ledger) is the
same on every run. Replay runs play real 1m candles from files or from another database (what
``candlewise data import``/``download`` stored); ``start_ms``/``end_ms`` (``--from``/``--to``)
set the window explicitly. Everything is read and checked before the run's database is touched,
so a mistake leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.candle_files import check_file_timeframe, read_candle_file
from candlewise.market.feed_factory import symbol_from_filename
from candlewise.market.simulated import HISTORY_ORIGIN_MS
from candlewise.market.validation import validate_frame
from candlewise.store import candle_store
from candlewise.store.db import create_db_engine, safe_url, sqlite_path, table_names
from candlewise.store.tables import candles

DAY_MS = 86_400_000


#: The simulated market needs this much history before the window to train the first models.
MIN_WARMUP_MS = DAY_MS


#: ... and at most this much (as ``--warmup-days``): a mistyped year must not simulate a century.
MAX_WARMUP_MS = 3650 * DAY_MS


@dataclass(frozen=True)
class BacktestRequest:
    symbols: tuple[str, ...]
    days: float
    seed: int
    warmup_days: float = 60.0
    retrain: bool = True
    files: tuple[str, ...] = ()
    """Replay these 1m candle files (real data) instead of the simulated market: the window is
    their last ``days``, everything before it is history the first models train on."""
    start_ms: int | None = None
    """Window start (UTC ms, a whole minute), instead of the data's end minus ``days`` (replay)
    or ``warmup_days`` after ``HISTORY_ORIGIN_MS`` (simulated)."""
    end_ms: int | None = None
    """Window end (exclusive); with ``start_ms`` it makes ``days`` irrelevant."""
    replay_url: str | None = None
    """Replay the real 1m candles stored in this database (not the run's own) when no ``files``
    are given."""

    @property
    def replaying(self) -> bool:
        return bool(self.files) or self.replay_url is not None


@dataclass(frozen=True)
class Prepared:
    """A new run's candles and window, read and checked before the run's database is touched
    (so that a mistake leaves no database behind)."""

    window: tuple[int, int]
    frames: dict[str, pd.DataFrame]
    """Validated 1m candles before the window end, per symbol (replay; empty for simulated)."""
    imports: dict[str, pd.DataFrame]
    """What to ingest into the run's database: the file rows (their problems get recorded
    there as on import) or the stored candles."""


def url_identity(url: str) -> str:
    path = sqlite_path(url)
    return f"sqlite:///{path.resolve()}" if path is not None else safe_url(url)


def prepare(req: BacktestRequest) -> Prepared:
    """Read what a new run of ``req`` replays and check its window (``UserError`` when the
    window does not fit the data or the simulated history), without any run database."""
    symbols = list(req.symbols)
    if req.files:
        frames, imports, labels = _read_files(req.files, symbols)
        coverage = {s: _span(f) for s, f in frames.items()}
    elif req.replay_url is not None:
        source = _open_source(req.replay_url)
        try:
            coverage, labels = _stored_coverage(source, req.replay_url, symbols)
            window = _window(req, coverage, labels)
            frames = _stored_frames(source, symbols, window[1])
        finally:
            source.dispose()
        return Prepared(window, frames, frames)
    else:
        return Prepared(_window(req, None, {}), {}, {})
    window = _window(req, coverage, labels)
    end = window[1]
    frames = {s: f[f["timestamp"] < end].reset_index(drop=True) for s, f in frames.items()}
    # rows whose time is unreadable stay: ingesting them records them as rejected, as on import
    imports = {
        s: r[~(pd.to_numeric(r["timestamp"], errors="coerce") >= end)] for s, r in imports.items()
    }
    return Prepared(window, frames, imports)


def _minute(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _option_time(ms: int) -> str:
    """``ms`` as one would type it after --from/--to."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d" if ms % DAY_MS == 0 else "%Y-%m-%dT%H:%M")


def _span(frame: pd.DataFrame) -> tuple[int, int]:
    """First open time and last close time of a 1m frame."""
    return int(frame["timestamp"].iloc[0]), int(frame["timestamp"].iloc[-1]) + MINUTE_MS


def _window(
    req: BacktestRequest,
    coverage: Mapping[str, tuple[int, int]] | None,
    labels: Mapping[str, str],
) -> tuple[int, int]:
    """[start, end) in whole minutes: ``--from``/``--to``/``--days``, else the data's last
    ``days`` (replay, ``coverage`` = each symbol's candles) or the seed's window (simulated)."""
    start, end = _bounds(req, coverage)
    if start >= end:
        raise UserError(
            f"--from {_minute(start)} is not before --to {_minute(end)}",
            "the window is [--from, --to) in UTC: pick a --to after --from",
        )
    if coverage is not None:
        _check_inside_candles(req, start, end, coverage, labels)
    else:
        _check_inside_history(req, start, end)
    return start, end


def _bounds(
    req: BacktestRequest, coverage: Mapping[str, tuple[int, int]] | None
) -> tuple[int, int]:
    length = int(req.days * DAY_MS) // MINUTE_MS * MINUTE_MS
    if req.start_ms is not None and req.end_ms is not None:
        return req.start_ms, req.end_ms
    if req.start_ms is not None:
        return req.start_ms, req.start_ms + length
    if req.end_ms is not None:
        return req.end_ms - length, req.end_ms
    if coverage is not None:
        end = min(stop for _first, stop in coverage.values())
        return end - length, end
    start = HISTORY_ORIGIN_MS + int(req.warmup_days * DAY_MS) // MINUTE_MS * MINUTE_MS
    return start, start + length


def _check_inside_candles(
    req: BacktestRequest,
    start: int,
    end: int,
    coverage: Mapping[str, tuple[int, int]],
    labels: Mapping[str, str],
) -> None:
    """A replayed window needs candles before it (the first models train on them) and to its end."""
    explicit = req.start_ms is not None or req.end_ms is not None
    for symbol, (first, stop) in coverage.items():
        if first < start and end <= stop:
            continue
        raise UserError(
            f"the window {_minute(start)} → {_minute(end)} UTC does not fit the candles of "
            f"{labels[symbol]}, which cover {_minute(first)} → {_minute(stop)} UTC",
            "pick --from/--to inside, --from after the first candle (the first models "
            "train on the candles before the window)"
            if explicit
            else "pass fewer --days, or --from/--to inside",
        )


def _check_inside_history(req: BacktestRequest, start: int, end: int) -> None:
    """A simulated window starts a day to ``MAX_WARMUP_MS`` after the seed's history origin."""
    if start - HISTORY_ORIGIN_MS < MIN_WARMUP_MS:
        earliest = HISTORY_ORIGIN_MS + MIN_WARMUP_MS
        if req.start_ms is not None:
            hint = f"pick --from {_option_time(earliest)} or later"
        elif req.end_ms is not None:
            hint = f"pick --to {_option_time(earliest + end - start)} or later, or fewer --days"
        else:
            hint = "pass more --warmup-days"
        raise UserError(
            f"the window would start at {_minute(start)} UTC, but the simulated market's "
            f"history starts at {_minute(HISTORY_ORIGIN_MS)} UTC and the first models need at "
            "least a day of it to train on",
            hint,
        )
    if start - HISTORY_ORIGIN_MS > MAX_WARMUP_MS:
        raise UserError(
            f"the window would start at {_minute(start)} UTC, more than "
            f"{MAX_WARMUP_MS // DAY_MS} days of simulated history after its start "
            f"({_minute(HISTORY_ORIGIN_MS)} UTC)",
            f"pick a --from before {_option_time(HISTORY_ORIGIN_MS + MAX_WARMUP_MS)}",
        )


def _read_files(
    files: Sequence[str], symbols: Sequence[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, str]]:
    """Each 1m file, validated and as read, per symbol (from the file names), and its name."""
    frames: dict[str, pd.DataFrame] = {}
    raws: dict[str, pd.DataFrame] = {}
    labels: dict[str, str] = {}
    for name in files:
        path = Path(name)
        symbol = symbol_from_filename(path)
        if symbol is None or symbol not in symbols:
            raise UserError(
                f"cannot match {path.name} to one of {', '.join(symbols)}",
                "name replay files like BTC_USDT-1m.csv.gz and pass --symbols accordingly",
            )
        raw = read_candle_file(path)
        check_file_timeframe(raw, "1m", path)
        frames[symbol], _issues = validate_frame(raw, symbol, "1m")
        if frames[symbol].empty:
            raise UserError(
                f"{path.name} holds no valid 1m candles", "check the file (candlewise data import)"
            )
        raws[symbol], labels[symbol] = raw, path.name
    missing = [s for s in symbols if s not in frames]
    if missing:
        raise UserError(f"no file for {', '.join(missing)}", "pass one 1m file per symbol")
    return frames, raws, labels


def _open_source(url: str) -> Engine:
    """The database holding the candles to replay, opened without creating or migrating it."""
    shown = safe_url(url)
    hint = (
        "fill it with candlewise data import FILE --symbol S --timeframe 1m (or data "
        "download), or pass --data FILE"
    )
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise UserError(f"no stored candles to replay: {path} does not exist", hint)
    engine = create_db_engine(url, read_only=True)
    try:
        tables = table_names(engine)
    except SQLAlchemyError as exc:  # not a database, unreachable server, wrong password
        engine.dispose()
        orig = getattr(exc, "orig", None) or exc
        reason = str(orig).strip().splitlines()[0]
        raise UserError(
            f"cannot read the candles to replay from {shown}: {reason}",
            "check database.url in the config or CANDLEWISE_DATABASE_URL: replay reads the "
            "candles there (not in the run's --db)",
        ) from None
    if "candles" not in tables:
        engine.dispose()
        raise UserError(f"no stored candles to replay: {shown} holds no candles table", hint)
    return engine


def _stored_coverage(
    source: Engine, url: str, symbols: Sequence[str]
) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Each symbol's stored 1m span (first open, last close); refuses simulated candles."""
    shown = str(sqlite_path(url) or safe_url(url))
    c = candles.c
    coverage: dict[str, tuple[int, int]] = {}
    with source.connect() as conn:
        for symbol in symbols:
            kind = candle_store.latest_source(conn, symbol)
            if kind is None:
                held = ", ".join(candle_store.stored_symbols(conn)) or "none"
                raise UserError(
                    f"no 1m candles of {symbol} are stored in {shown} to replay "
                    f"(symbols stored there: {held})",
                    f"candlewise data import FILE --symbol {symbol} --timeframe 1m, or "
                    f"candlewise data download --symbol {symbol} --days 30 "
                    "(or pass --data FILE)",
                )
            if kind.startswith("simulated"):
                seed = kind.partition(":")[2]
                raise UserError(
                    f"the {symbol} candles stored in {shown} are simulated"
                    + (f" (seed {seed})" if seed else "")
                    + ", and a replay plays real candles",
                    "keep real candles in another database: set CANDLEWISE_DATABASE_URL="
                    "sqlite:///data/real.db (or database.url) for 'candlewise data import' or "
                    "'data download' and for this backtest; or run --feed simulated"
                    + (f" --seed {seed}" if seed else ""),
                )
            first, last = conn.execute(
                select(func.min(c.open_time), func.max(c.open_time)).where(
                    c.symbol == symbol, c.timeframe == "1m"
                )
            ).one()
            coverage[symbol] = int(first), int(last) + MINUTE_MS
    return coverage, {s: f"{s} stored in {shown}" for s in symbols}


def _stored_frames(source: Engine, symbols: Sequence[str], end: int) -> dict[str, pd.DataFrame]:
    """All stored 1m candles before ``end``: the window and the history before it."""
    with source.connect() as conn:
        return {s: candle_store.load_frame(conn, s, "1m", end_ms=end) for s in symbols}


def stored_window(
    store: Engine, symbols: Sequence[str], start: int, end: int
) -> dict[str, pd.DataFrame]:
    with store.connect() as conn:
        return {s: candle_store.load_frame(conn, s, "1m", start, end) for s in symbols}
