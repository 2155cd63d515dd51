"""Choosing and building a feed from config and command-line options.

Time windows: a simulated feed replayed (``--speed max`` at once, ``--speed 60`` one simulated
minute per wall second) covers ``[now - duration, now)`` so that a simulated day ends at the
present moment (the guide's ``datetime('now', '-6 hours')`` queries then find its last six
hours). Given ``start_ms`` (a phase 3 starts now), it covers ``[start, end_ms)`` from that minute,
open-ended without ``end_ms``, on a clock that reads ``start_ms``. In real time (``--speed 1``,
no ``start_ms``) the simulated exchange is live instead, on the wall clock:
``[now, now + duration)``, preceded by the minutes the store lacks since its newest candle (up
to a duration back), handled at once, so that a deployment continues its history without a gap
and never runs behind the wall clock.
A replay covers ``--from``/``--to`` or the last ``duration`` of stored data. Binance is live from
now for ``duration`` of wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.clock import Clock, ScaledClock, SimulatedClock
from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.candle_files import read_candle_file
from candlewise.market.feed_plan import FeedPlan
from candlewise.market.feeds import FrameReplayFeed, SimulatedFeed
from candlewise.market.validation import validate_frame
from candlewise.store import candle_store
from candlewise.store.error_log import BAD_MARKET_DATA, record_error

FEEDS = ("simulated", "replay", "binance")
_FILE_SYMBOL = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)-1m\.", re.IGNORECASE)


def floor_minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


def make_clock(start_ms: int, speed: float | None) -> Clock:
    return SimulatedClock(start_ms) if speed is None else ScaledClock(start_ms, speed)


def symbol_from_filename(path: Path) -> str | None:
    match = _FILE_SYMBOL.match(path.name)
    return f"{match.group(1).upper()}/{match.group(2).upper()}" if match else None


def _stored_symbols(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return candle_store.stored_symbols(conn)


def plan_feed(
    name: str,
    cfg: AppConfig,
    symbols: Sequence[str],
    *,
    engine: Engine | None,
    now_ms: int,
    duration_ms: int | None,
    speed: float | None,
    files: Sequence[Path] = (),
    start_ms: int | None = None,
    end_ms: int | None = None,
    record_regimes: bool = False,
) -> FeedPlan:
    if name not in FEEDS:
        raise UserError(f"unknown feed {name!r}", f"use one of: {', '.join(FEEDS)}")
    if name == "simulated" and speed == 1 and start_ms is None:
        return _live_simulated(cfg, symbols, engine, now_ms, duration_ms, record_regimes)
    if name == "simulated":
        end: int | None = floor_minute(now_ms)
        if start_ms is None:
            span = duration_ms if duration_ms is not None else 24 * 60 * MINUTE_MS
            start = floor_minute(now_ms - span)
        else:  # from start_ms on: until end_ms, or open-ended
            start, end = floor_minute(start_ms), end_ms
        if engine is not None:
            start = _after_stored(engine, symbols, start)
        end = None if end is None else max(start, end)
        # from a start: the clock reads that moment (a paced feed keeps time with the wall)
        clock = make_clock(start if start_ms is None else max(start, start_ms), speed)
        feed = SimulatedFeed(
            list(symbols), cfg.data.seed, start, clock, end, record_regimes=record_regimes
        )
        return FeedPlan(feed, clock, start, end)
    if name == "replay":
        frames = _replay_frames(cfg, symbols, engine, files, duration_ms, start_ms, end_ms)
        first = min(int(f["timestamp"].iloc[0]) for f in frames.values())
        last = max(int(f["timestamp"].iloc[-1]) for f in frames.values()) + MINUTE_MS
        clock = make_clock(first, speed)
        return FeedPlan(FrameReplayFeed(frames, list(symbols), clock), clock, first, last)
    from candlewise.market.live_feed import binance_plan  # imports ccxt/websockets lazily

    def bad_data(symbol: str | None, detail: str) -> None:
        """Bad exchange data is skipped by the feed and kept here: a feed data error, which the
        error rate (system errors) does not count but the reports show apart."""
        if engine is not None:
            with engine.begin() as conn:
                record_error(conn, BAD_MARKET_DATA, detail, symbol=symbol, component="binance")

    return binance_plan(cfg, symbols, engine, now_ms, duration_ms, on_bad_data=bad_data)


def _live_simulated(
    cfg: AppConfig,
    symbols: Sequence[str],
    engine: Engine | None,
    now_ms: int,
    duration_ms: int | None,
    record_regimes: bool,
) -> FeedPlan:
    """The simulated exchange in real time (see the module doc); ``duration_ms`` None: until
    stopped. Its clock reads the wall clock from ``now_ms`` on."""
    now = floor_minute(now_ms)
    start = now
    newest = _newest_stored(engine, symbols) if engine is not None else None
    if newest is not None:
        back = duration_ms if duration_ms is not None else 24 * 60 * MINUTE_MS
        start = min(now, max(now - back, newest + MINUTE_MS))
    end = None if duration_ms is None else now + floor_minute(duration_ms)
    clock = ScaledClock(now_ms, 1.0)
    feed = SimulatedFeed(list(symbols), cfg.data.seed, start, clock, end,
                         record_regimes=record_regimes)  # fmt: skip
    return FeedPlan(feed, clock, start, end)


def _newest_stored(engine: Engine, symbols: Sequence[str]) -> int | None:
    with engine.connect() as conn:
        last = [candle_store.last_open_time(conn, s, "1m") for s in symbols]
    return max((t for t in last if t is not None), default=None)


def _after_stored(engine: Engine, symbols: Sequence[str], start: int) -> int:
    """Start after the newest stored 1m candle: the seed's history continues from there."""
    newest = _newest_stored(engine, symbols)
    return max(start, newest + MINUTE_MS) if newest is not None else start


def _replay_frames(
    cfg: AppConfig,
    symbols: Sequence[str],
    engine: Engine | None,
    files: Sequence[Path],
    duration_ms: int | None,
    start_ms: int | None,
    end_ms: int | None,
) -> dict[str, pd.DataFrame]:
    paths = list(files) or [Path(p) for p in cfg.data.replay_files]
    frames: dict[str, pd.DataFrame] = {}
    if paths:
        for path in paths:
            symbol = symbol_from_filename(path)
            if symbol is None:
                raise UserError(
                    f"cannot tell the symbol of {path.name}",
                    "name replay files like BTC_USDT-1m.csv.gz, or import them with "
                    "'candlewise data import FILE --symbol S --timeframe 1m' and replay the store",
                )
            if symbol in symbols:
                frame, _issues = validate_frame(read_candle_file(path), symbol, "1m")
                frames[symbol] = frame
    elif engine is not None:
        with engine.connect() as conn:
            for symbol in symbols:
                frame = candle_store.load_frame(conn, symbol, "1m")
                if not frame.empty:
                    frames[symbol] = frame
    missing = [s for s in symbols if s not in frames]
    if missing:
        from_store = not paths and engine is not None
        held = ", ".join(_stored_symbols(engine)) if from_store and engine else ""
        raise UserError(
            f"no 1m candles to replay for {', '.join(missing)}"
            + (f" (symbols stored: {held or 'none'})" if from_store else ""),
            "get some with 'candlewise data import FILE --symbol S --timeframe 1m', "
            "'candlewise data download --symbol S --timeframe 1m --days 30' "
            "or 'candlewise data simulate'",
        )
    last = max(int(f["timestamp"].iloc[-1]) for f in frames.values()) + MINUTE_MS
    hi = end_ms if end_ms is not None else last
    lo = start_ms if start_ms is not None else (hi - duration_ms if duration_ms else None)
    for symbol, frame in list(frames.items()):
        ts = frame["timestamp"]
        mask = ts < hi
        if lo is not None:
            mask &= ts >= lo
        frames[symbol] = frame[mask].reset_index(drop=True)
        if frames[symbol].empty:
            raise UserError(
                f"no {symbol} 1m candles in the requested window",
                "check --from/--to against 'candlewise data summary'",
            )
    return frames
