"""The ledger hash: one short string that says whether two runs traded the same way.

Replaying the same candles with the same seed must give the same ledger, trade for trade; this
hash is how backtests, crash recovery and regression tests check it. It covers what a trade *is*
(symbol, timeframe, direction, entry and exit time and price, quantity, PnL), each number written
with fixed decimals (prices 8, quantity 10, PnL 8) so float noise far below those digits, from a
different summation order or CPU, does not change the hash while any real difference does.
Trades are hashed in a canonical order (by exit time, then entry time, symbol, timeframe,
direction), so the order in which a caller collected them does not matter either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from candlewise.trading.positions import ClosedTrade

#: Bumped whenever the fields or their formatting change, so old and new hashes never collide.
LEDGER_FORMAT = "candlewise-ledger-v1"
PRICE_DECIMALS = 8
QUANTITY_DECIMALS = 10
PNL_DECIMALS = 8


def _fixed(value: float, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals; ``-0.000`` is written as ``0.000``."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def trade_record(trade: ClosedTrade) -> str:
    """The canonical text of one trade: the fields the hash covers, fixed decimals."""
    return "|".join(
        (
            trade.symbol,
            trade.timeframe,
            trade.predicted_direction,
            str(trade.entry_time_ms),
            str(trade.exit_time_ms),
            _fixed(trade.entry_price, PRICE_DECIMALS),
            _fixed(trade.exit_price, PRICE_DECIMALS),
            _fixed(trade.quantity, QUANTITY_DECIMALS),
            _fixed(trade.pnl_absolute, PNL_DECIMALS),
        )
    )


def _order(trade: ClosedTrade) -> tuple[int, int, str, str, str, str]:
    return (
        trade.exit_time_ms,
        trade.entry_time_ms,
        trade.symbol,
        trade.timeframe,
        trade.predicted_direction,
        trade_record(trade),
    )


def ledger_hash(trades: Iterable[ClosedTrade]) -> str:
    """SHA-256 (hex) of the closed trades in canonical order; the empty ledger has a hash too."""
    return ledger_hash_of_keys(ledger_key(t) for t in trades)


def ledger_key(trade: ClosedTrade) -> tuple[int, int, str, str, str, str]:
    """The trade's place in the canonical order, its record last: all the hash needs of it
    (a report keeps these, not the trades)."""
    return _order(trade)


def ledger_hash_of_keys(keys: Iterable[tuple[int, int, str, str, str, str]]) -> str:
    digest = hashlib.sha256(LEDGER_FORMAT.encode())
    for key in sorted(keys):
        digest.update(b"\n" + key[-1].encode())
    return digest.hexdigest()
