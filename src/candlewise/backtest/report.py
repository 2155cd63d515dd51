"""The backtest summary, computed from what the run stored (honesty rule: every number shown
comes from stored events): trades and the ledger from ``trade_outcomes``, retrains from
``retraining_history``, transitions from ``learning_states``, errors from ``error_log``, the
Sharpe ratio from ``equity_history``; the account and the deepest mark-to-market drawdown from
the engine's final checkpoint."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, func, select

from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text, text_to_ms, texts_to_ms
from candlewise.engine.trading_engine import TradingEngine
from candlewise.store.tables import (
    equity_history,
    error_log,
    learning_states,
    retraining_history,
    shadow_trades,
    trade_outcomes,
)
from candlewise.trading.ledger import ledger_hash_of_keys, ledger_key
from candlewise.trading.positions import ClosedTrade

HOUR_MS = 60 * MINUTE_MS
LedgerKey = tuple[int, int, str, str, str, str]  # trading.ledger.ledger_key's


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
    skipped_costs: int = 0
    untrained: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Ledger:
    """The window's closed trades, kept as their ledger keys only: long runs stay small."""

    keys: list[LedgerKey]
    pnl: float
    wins: int


@dataclass(frozen=True)
class _Counts:
    """What the run's other tables count over the window."""

    retrains: dict[str, int]
    accepted: int
    transitions: dict[str, int]
    errors: int
    shadows: int


def build_report(
    conn: Connection,
    engine: TradingEngine,
    symbols: Sequence[str],
    run_id: int,
    start: int,
    end: int,
    starting_balance: float,
    untrained: Sequence[str],
) -> BacktestReport:
    window = (ms_to_text(start), ms_to_text(end))
    ledger = _ledger(conn, symbols, window)
    counts = _counts(conn, symbols, window)
    minutes = (end - start) // MINUTE_MS
    equity = engine.broker.equity()
    return BacktestReport(
        symbols=tuple(symbols),
        start_ms=start,
        end_ms=end,
        candles=engine.stats.candles,
        trades=len(ledger.keys),
        wins=ledger.wins,
        pnl=ledger.pnl,
        pnl_percent=100 * (equity / starting_balance - 1),
        max_drawdown_percent=engine.drawdown.max_drawdown_percent,
        sharpe=sharpe_ratio(conn, run_id),
        transitions_per_hour=max(counts.transitions.values(), default=0) / max(minutes / 60, 1e-9),
        trading_share={
            sym: engine.stats.trading_minutes.get(sym, 0) / max(minutes, 1) for sym in symbols
        },
        retrains=counts.retrains,
        retrains_accepted=counts.accepted,
        errors=counts.errors,
        rollback=engine.stats.rollback,
        ledger=ledger_hash_of_keys(ledger.keys),
        open_positions=len(engine.broker.book),
        unrealized_pnl=equity - starting_balance - ledger.pnl,
        final_equity=equity,
        shadow_trades=counts.shadows,
        skipped_costs=engine.stats.skipped_costs,
        untrained=tuple(untrained),
    )


def _ledger(conn: Connection, symbols: Sequence[str], window: tuple[str, str]) -> _Ledger:
    keys: list[LedgerKey] = []
    pnl: float = 0
    wins = 0
    for trade in stored_trades(conn, symbols, *window):
        pnl += trade.pnl_absolute
        wins += trade.outcome == "WIN"
        keys.append(ledger_key(trade))
    return _Ledger(keys, pnl, wins)


def _counts(conn: Connection, symbols: Sequence[str], window: tuple[str, str]) -> _Counts:
    r = retraining_history.c
    retrains = conn.execute(
        select(r.trigger_reason, func.count())
        .where(r.symbol.in_(symbols), r.triggered_at.between(*window))
        .group_by(r.trigger_reason)
    ).all()
    accepted = conn.execute(
        select(func.count()).where(
            r.symbol.in_(symbols), r.triggered_at.between(*window), r.success.is_(True)
        )
    ).scalar_one()
    s = learning_states.c
    transitions = conn.execute(
        select(s.symbol, func.count())
        .where(s.symbol.in_(symbols), s.timestamp.between(*window))
        .group_by(s.symbol)
    ).all()
    e = error_log.c
    errors = conn.execute(
        select(func.count()).where(e.component == "engine", e.timestamp.between(*window))
    ).scalar_one()
    sh = shadow_trades.c
    shadows = conn.execute(
        select(func.count()).where(sh.symbol.in_(symbols), sh.exit_time.between(*window))
    ).scalar_one()
    return _Counts(
        retrains={str(k): int(v) for k, v in retrains},
        accepted=int(accepted),
        transitions=dict(transitions),
        errors=int(errors),
        shadows=int(shadows),
    )


def stored_trades(
    conn: Connection, symbols: Sequence[str], first: str, last: str
) -> Iterator[ClosedTrade]:
    """The closed trades of the window as the ledger hashes them (streamed)."""
    t = trade_outcomes.c
    rows = conn.execute(
        select(trade_outcomes).where(t.symbol.in_(symbols), t.exit_time.between(first, last))
    ).mappings()
    return (
        ClosedTrade(
            position_id=row["position_id"],
            symbol=row["symbol"],
            timeframe=row["timeframe"],
            side="long" if row["predicted_direction"] == "BUY" else "short",
            predicted_direction=row["predicted_direction"],
            confidence=row["confidence"],
            entry_time_ms=text_to_ms(row["entry_time"]),
            exit_time_ms=text_to_ms(row["exit_time"]),
            entry_price=row["entry_price"],
            exit_price=row["exit_price"],
            quantity=row["quantity"],
            pnl_absolute=row["pnl_absolute"],
            pnl_percent=row["pnl_percent"],
            fees=row["fees"],
            outcome=row["outcome"],
            exit_reason=row["exit_reason"],
        )
        for row in rows
    )


def sharpe_ratio(conn: Connection, run_id: int) -> float | None:
    """Annualised, from daily equity returns (hourly ones for runs shorter than three days)."""
    q = equity_history.c
    rows = conn.execute(
        select(q.timestamp, q.equity).where(q.run_id == run_id).order_by(q.timestamp)
    ).all()
    if len(rows) < 3:
        return None
    times = texts_to_ms([r[0] for r in rows])
    values = np.array([r[1] for r in rows], dtype=np.float64)
    daily = times[-1] - times[0] > 3 * 24 * HOUR_MS
    step, per_year = (24 * HOUR_MS, 365) if daily else (HOUR_MS, 365 * 24)
    sampled = values[times % step == 0]
    if sampled.size < 3:
        return None
    returns = np.diff(sampled) / sampled[:-1]
    std = returns.std()
    return float(returns.mean() / std * math.sqrt(per_year)) if std > 0 else None
