"""``candlewise backtest``: the whole system (models, modes, retraining, paper broker, risk) on a
replayed window, as fast as the CPU allows, into its own database.

Simulated runs are anchored to the seed's history (``HISTORY_ORIGIN_MS``): ``warmup_days`` of
history train the first models, then ``days`` are played. The window is therefore the same on
every run and so is the ledger (same seed, same trades). Nothing used before a moment is taken
from after it: models train on candles known at the window start, retrains on candles known at
their trigger.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from candlewise.clock import SimulatedClock
from candlewise.config import AppConfig
from candlewise.engine import TradingEngine
from candlewise.errors import UserError
from candlewise.features.spec import FEATURE_SPEC
from candlewise.ingest import ingest_frame
from candlewise.logging_setup import get_logger
from candlewise.market.aggregation import TimeframeAggregator
from candlewise.market.candle import Candle
from candlewise.market.candle_files import check_file_timeframe, read_candle_file
from candlewise.market.feed_factory import Feed, symbol_from_filename
from candlewise.market.feeds import FrameReplayFeed, SimulatedFeed, simulated_source
from candlewise.market.simulated import HISTORY_ORIGIN_MS, market_at
from candlewise.market.validation import validate_frame
from candlewise.models.registry import ModelRegistry
from candlewise.signals.calibration_file import load_calibration
from candlewise.signals.live import LivePredictor, ModelSlot
from candlewise.store import candle_store
from candlewise.store.error_log import record_error
from candlewise.timeframes import HIGHER_TIMEFRAMES, MINUTE_MS
from candlewise.trading.ledger import ledger_hash
from candlewise.trading.paper_broker import PaperBroker
from candlewise.training import calibrate_signals, train_symbol

DAY_MS = 86_400_000
log = get_logger("backtest")


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


@dataclass(frozen=True)
class BacktestReport:
    symbols: tuple[str, ...]
    start_ms: int
    end_ms: int
    candles: int
    trades: int
    wins: int
    pnl: float
    pnl_percent: float
    max_drawdown_percent: float
    sharpe: float | None
    transitions_per_hour: float
    trading_share: dict[str, float]
    retrains: dict[str, int]
    retrains_accepted: int
    errors: int
    rollback: str | None
    ledger: str
    open_positions: int = 0
    unrealized_pnl: float = 0.0
    final_equity: float = 0.0
    shadow_trades: int = 0
    untrained: tuple[str, ...] = field(default_factory=tuple)


Progress = Callable[[str, int, int], None]


def run_backtest(
    cfg: AppConfig,
    store: Engine,
    models_dir: str,
    req: BacktestRequest,
    progress: Progress | None = None,
) -> BacktestReport:
    symbols = list(req.symbols)
    if req.files:
        source = "replay"
        frames = _import_files(store, req.files, symbols)
        end = min(int(f["timestamp"].iloc[-1]) for f in frames.values()) + MINUTE_MS
        start = end - int(req.days * DAY_MS) // MINUTE_MS * MINUTE_MS
        window = {
            s: f[(f["timestamp"] >= start) & (f["timestamp"] < end)] for s, f in frames.items()
        }
        feed: Feed = FrameReplayFeed(window, symbols, SimulatedClock(start))
    else:
        start = HISTORY_ORIGIN_MS + int(req.warmup_days * DAY_MS) // MINUTE_MS * MINUTE_MS
        end = start + int(req.days * DAY_MS) // MINUTE_MS * MINUTE_MS
        source = simulated_source(req.seed)
        _simulate_history(store, symbols, req.seed, start, source, progress)
        feed = SimulatedFeed(symbols, req.seed, start, SimulatedClock(start), end)
    registry = ModelRegistry(store, models_dir, cfg.models.keep_versions)
    untrained = []
    for symbol in symbols:
        if progress:
            progress(f"training {symbol}", 0, 1)
        outcomes = train_symbol(
            store, registry, cfg, symbol, cfg.timeframes.names, known_at_ms=start
        )
        untrained += [o.problem or f"{o.symbol} {o.timeframe}" for o in outcomes if not o.ok]
        calibrate_signals(store, cfg, symbol, known_at_ms=start, models_dir=models_dir)
    predictor = _predictor(cfg, store, registry, models_dir, symbols, start)
    broker = PaperBroker(cfg.paper, cfg.risk, "paper")

    def on_error(symbol: str, kind: str, exc: Exception) -> None:
        with store.begin() as conn:
            record_error(conn, kind, str(exc), symbol=symbol, component="engine")

    pending: list[Candle] = []
    engine = TradingEngine(
        cfg,
        store,
        registry,
        predictor,
        broker,
        retraining=req.retrain,
        on_error=on_error,
        before_retrain=lambda: _flush(store, pending, source),
    )
    aggregators = {s: TimeframeAggregator(s) for s in symbols}
    equity = [broker.equity()]
    modes_trading = dict.fromkeys(symbols, 0)
    total = (end - start) // MINUTE_MS * len(symbols)
    for i, candle in enumerate(feed.candles()):
        closed = [candle, *aggregators[candle.symbol].add(candle)]
        if not req.files:  # replayed files are stored already
            pending.extend(closed)
        if len(pending) >= 5000:  # and before every retrain (the hook): retrains read them
            _flush(store, pending, source)
        engine.on_candles(closed)
        modes_trading[candle.symbol] += engine.modes.mode(candle.symbol) == "TRADING"
        if candle.symbol == symbols[-1]:
            equity.append(broker.equity())
        if progress and i % 2000 == 0:
            progress("replaying", i, total)
    _flush(store, pending, source)
    return _report(cfg, req, engine, equity, modes_trading, start, end, untrained)


def _import_files(
    store: Engine, files: Sequence[str], symbols: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Import each 1m file into the run's store (1m and 5m..1d); symbols from file names."""
    frames: dict[str, pd.DataFrame] = {}
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
        ingest_frame(store, raw, symbol, "1m", "replay")
        frames[symbol], _issues = validate_frame(raw, symbol, "1m")
    missing = [s for s in symbols if s not in frames]
    if missing:
        raise UserError(f"no file for {', '.join(missing)}", "pass one 1m file per symbol")
    return frames


def _simulate_history(
    store: Engine,
    symbols: Sequence[str],
    seed: int,
    start: int,
    source: str,
    progress: Progress | None,
) -> None:
    """The seed's history before the window (idempotent: the same rows on every run)."""
    market = market_at(symbols, seed, HISTORY_ORIGIN_MS)
    total = (start - HISTORY_ORIGIN_MS) // MINUTE_MS
    while (done := (market.next_open_time - HISTORY_ORIGIN_MS) // MINUTE_MS) < total:
        block = market.generate(min(30 * 1440, total - done))
        for symbol in symbols:
            frame = block[symbol].to_frame().drop(columns="regime")
            ingest_frame(store, frame, symbol, "1m", source)
        if progress:
            progress("simulating history", done, total)


def _predictor(
    cfg: AppConfig,
    store: Engine,
    registry: ModelRegistry,
    models_dir: str,
    symbols: Sequence[str],
    start: int,
) -> LivePredictor:
    models = {}
    calibrators = {}
    for symbol in symbols:
        for tf in cfg.timeframes.names:
            loaded = registry.load_active(symbol, tf, FEATURE_SPEC.fingerprint)
            if loaded is not None:
                models[(symbol, tf)] = ModelSlot(loaded.model, loaded.version)
        calibration = load_calibration(models_dir, symbol)
        if calibration is not None:
            calibrators.update({(symbol, tf): c for tf, c in calibration.calibrators.items()})
    predictor = LivePredictor(
        cfg.timeframes.weights, models, calibrators, log=lambda line: log.info("%s", line)
    )
    with store.connect() as conn:
        for symbol in symbols:
            for tf in ("1m", *HIGHER_TIMEFRAMES):
                frame = candle_store.load_frame(
                    conn, symbol, tf, limit=FEATURE_SPEC.window, known_at_ms=start
                )
                predictor.warm_up(
                    [
                        Candle(symbol, tf, int(r[0]), *map(float, r[1:]))
                        for r in frame.itertuples(index=False)
                    ]
                )
    return predictor


def _flush(store: Engine, pending: list[Candle], source: str) -> None:
    if pending:
        with store.begin() as conn:
            candle_store.insert_candles(conn, pending, source)
        pending.clear()


def _report(
    cfg: AppConfig,
    req: BacktestRequest,
    engine: TradingEngine,
    equity: list[float],
    trading_minutes: dict[str, int],
    start: int,
    end: int,
    untrained: list[str],
) -> BacktestReport:
    trades = engine.closed_trades
    curve = np.array(equity)
    peak = np.maximum.accumulate(curve)
    max_dd = float(((peak - curve) / peak).max() * 100) if curve.size else 0.0
    daily = curve[::1440] if curve.size > 2880 else curve[::60]
    per_year = 365 if curve.size > 2880 else 365 * 24
    returns = np.diff(daily) / daily[:-1] if daily.size > 2 else np.array([])
    sharpe = (
        float(returns.mean() / returns.std() * math.sqrt(per_year))
        if returns.size > 1 and returns.std() > 0
        else None
    )
    minutes = (end - start) // MINUTE_MS
    pnl = sum(t.pnl_absolute for t in trades)
    return BacktestReport(
        symbols=req.symbols,
        start_ms=start,
        end_ms=end,
        candles=engine.stats.candles,
        trades=len(trades),
        wins=sum(t.outcome == "WIN" for t in trades),
        pnl=pnl,
        pnl_percent=100 * (engine.broker.equity() / cfg.paper.starting_balance - 1),
        max_drawdown_percent=max_dd,
        sharpe=sharpe,
        transitions_per_hour=max(engine.stats.transitions_by_symbol.values(), default=0)
        / max(minutes / 60, 1e-9),
        trading_share={s: n / max(minutes, 1) for s, n in trading_minutes.items()},
        retrains=dict(engine.stats.retrains),
        retrains_accepted=engine.stats.retrains_accepted,
        errors=engine.stats.errors,
        rollback=engine.stats.rollback,
        ledger=ledger_hash(trades),
        open_positions=len(engine.broker.book),
        unrealized_pnl=engine.broker.equity() - cfg.paper.starting_balance - pnl,
        final_equity=engine.broker.equity(),
        shadow_trades=engine.shadow_trades,
        untrained=tuple(untrained),
    )
