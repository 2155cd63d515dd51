"""Closing the accounts no process trades: what ``--rollback`` does when no deployment runs.

A deployment stopped with Ctrl+C / SIGTERM (or one whose process died) leaves its account in
its ``engine_runs`` checkpoint, open positions included, for the next start to continue. A
rollback must leave no open position in the store, so it closes those accounts itself: the
checkpoint's broker flattens them (``PaperBroker.flatten_all``: the engine's rollback rule,
slippage and fees included) at the last stored price of each symbol, each close is written as
the engine writes it (``Outbox.close_trade``: the ``positions`` update and its
``trade_outcomes`` row), and the run is finished, all in one transaction. Positions open in the
store that no checkpoint holds are closed the same way by a broker holding just them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, update

from candlewise.config.app_config import AppConfig
from candlewise.store import candle_store, deployment_store
from candlewise.store.outbox import Outbox
from candlewise.store.run_store import (
    DEPLOYMENT_KIND,
    FINISHED,
    RunRecord,
    running_deployments,
    save_checkpoint,
)
from candlewise.store.snapshots import dump_snapshot, load_snapshot
from candlewise.store.tables import deployments
from candlewise.store.trade_store import open_positions
from candlewise.system.logging_setup import get_logger
from candlewise.system.processes import process_alive
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade, closed_line

log = get_logger("deployment")
REASON = "rollback requested by the operator (no deployment running)"


@dataclass(frozen=True)
class StoredClose:
    accounts: int
    """Stopped deployments' accounts finished."""
    trades: list[ClosedTrade]


def close_stored_accounts(cfg: AppConfig, store: Engine, reason: str = REASON) -> StoredClose:
    """Flatten every account whose process is gone; the deployments it came from are then
    recorded as rolled back. A run whose process still runs is left to it."""
    with store.begin() as conn:
        runs = [
            r for r in running_deployments(conn) if r.kind == DEPLOYMENT_KIND and _idle(conn, r)
        ]
        trades: list[ClosedTrade] = []
        for run in runs:
            trades += _close_run(conn, run, reason)
        orphans = open_positions(conn)  # open in the store, held by no checkpoint
        if orphans and not any(process_alive(r.pid) for r in running_deployments(conn)):
            broker = _broker(cfg)
            for position in orphans:
                broker.book.open(position)
                broker.last_prices.setdefault(position.symbol, position.entry_price)
            since = max(p.entry_time_ms for p in orphans)
            trades += _flatten(conn, broker, {p.symbol for p in orphans}, since, reason)
    return StoredClose(len(runs), trades)


def _idle(conn: Connection, run: RunRecord) -> bool:
    """No process trades it: its process is gone, or its deployment recorded its end (after
    its last checkpoint) and the process is only exiting."""
    if not run.snapshot:
        return False
    if not process_alive(run.pid):
        return True
    record = deployment_store.of_run(conn, run.id)
    return record is not None and record.status != deployment_store.RUNNING


def _close_run(conn: Connection, run: RunRecord, reason: str) -> list[ClosedTrade]:
    assert run.snapshot is not None
    snapshot = load_snapshot(run.snapshot)
    state = snapshot["engine"]
    broker: PaperBroker = state["broker"]
    cursor = run.cursor_ms or 0
    symbols = {p.symbol for p in broker.book}
    trades = _flatten(conn, broker, symbols, cursor, reason) if symbols else []
    broker.halt(reason)
    if state["stats"].rollback is None:
        state["stats"].rollback = reason
    end = max([cursor, *(t.exit_time_ms for t in trades)])
    blob = dump_snapshot(snapshot)
    save_checkpoint(conn, run.id, end, blob, FINISHED, pid=run.pid)
    conn.execute(
        update(deployments)
        .where(deployments.c.run_id == run.id, deployments.c.status == deployment_store.STOPPED)
        .values(status=deployment_store.ROLLED_BACK)
    )
    return trades


def _flatten(
    conn: Connection, broker: PaperBroker, symbols: Iterable[str], at_ms: int, reason: str
) -> list[ClosedTrade]:
    """At each symbol's newest stored 1m close (the account's last price when the store has
    none newer), at the time of the newest of those closes."""
    prices: dict[str, float] = {}
    since = at_ms
    for symbol in symbols:
        last = candle_store.last_close(conn, symbol)
        if last is not None and last[0] >= since:
            prices[symbol] = last[1]
            at_ms = max(at_ms, last[0])
    trades = broker.flatten_all(prices, at_ms, reason=reason)
    outbox = Outbox()
    for trade in trades:
        outbox.close_trade(trade)
        log.info("%s", closed_line(trade))
    outbox.flush(conn)
    return trades


def _broker(cfg: AppConfig) -> PaperBroker:
    mode = "live-spot" if cfg.live_trading.mode == "live" else "paper"
    return PaperBroker(cfg.paper, cfg.risk, mode)
