"""Figures of the report that no other part of the system defines: time share per mode and a
per-symbol Sharpe ratio from realised P&L (the engine's Sharpe is account-wide)."""

from __future__ import annotations

import math
from collections import Counter

from sqlalchemy import Connection, func, select

from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.deployment.metrics import HOUR_MS
from candlewise.monitoring.status import mode_at
from candlewise.store.tables import confidence_history, learning_states, trade_outcomes


def mode_share(conn: Connection, symbol: str, lo: str, hi: str) -> dict[str, float] | None:
    """Share of time in each mode between the symbol's first and last signal of the window,
    from its transitions (``learning_states``); None without a signal in the window."""
    c = confidence_history.c
    first, last = conn.execute(
        select(func.min(c.timestamp), func.max(c.timestamp)).where(
            c.symbol == symbol, c.timestamp > lo, c.timestamp <= hi
        )
    ).one()
    if first is None:
        return None
    mode, _ = mode_at(conn, symbol, first)
    s = learning_states.c
    changes = conn.execute(
        select(s.timestamp, s.mode)
        .where(s.symbol == symbol, s.timestamp > first, s.timestamp <= last)
        .order_by(s.timestamp, s.id)
    ).all()
    spent: Counter[str] = Counter()
    at = text_to_ms(first)
    for stamp, new_mode in changes:
        t = text_to_ms(stamp)
        spent[mode or "UNKNOWN"] += t - at
        at, mode = t, new_mode
    spent[mode or "UNKNOWN"] += text_to_ms(last) - at
    total = sum(spent.values())
    if total == 0:
        return {mode or "UNKNOWN": 1.0}
    return {k: round(v / total, 6) for k, v in sorted(spent.items()) if v}


def realised_sharpe(
    conn: Connection, symbol: str, start: int, end: int, equity: float
) -> float | None:
    """Annualised Sharpe of the symbol's realised P&L: hourly buckets (daily beyond three days)
    as returns on the equity before each bucket; None with fewer than 3 buckets, no trade or
    no variation (the account-wide figure is in the backtest summary)."""
    step, per_year = (24 * HOUR_MS, 365) if end - start > 3 * 24 * HOUR_MS else (HOUR_MS, 8760)
    buckets = int((end - start) // step)
    if buckets < 3 or equity <= 0:
        return None
    t = trade_outcomes.c
    rows = conn.execute(
        select(t.exit_time, t.pnl_absolute).where(
            t.symbol == symbol, t.exit_time > ms_to_text(end - buckets * step),
            t.exit_time <= ms_to_text(end),
        )
    ).all()  # fmt: skip
    if not rows:
        return None
    pnl = [0.0] * buckets
    first = end - buckets * step
    for stamp, value in rows:
        index = min(max((text_to_ms(stamp) - first - 1) // step, 0), buckets - 1)
        pnl[int(index)] += float(value)
    returns, level = [], equity
    for p in pnl:
        returns.append(p / level)
        level += p
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((x - mean) ** 2 for x in returns) / len(returns))
    return mean / std * math.sqrt(per_year) if std > 0 else None
