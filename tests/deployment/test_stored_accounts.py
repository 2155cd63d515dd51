"""``--rollback``'s close of the accounts no process trades: every stopped account (and any
position no checkpoint holds) flattened by the paper broker's rule at the last stored price,
each close a trade; an account whose deployment still runs is left to it."""

from __future__ import annotations

import os
import pickle
import subprocess

import pytest
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.core.candle import Candle
from candlewise.deployment.stored_accounts import close_stored_accounts
from candlewise.engine.trading_engine import EngineStats
from candlewise.signals.aggregate import Signal
from candlewise.store import candle_store, deployment_store
from candlewise.store.outbox import Outbox
from candlewise.store.run_store import DEPLOYMENT_KIND, RUNNING, create_run, save_checkpoint
from candlewise.store.trade_store import last_position_id
from candlewise.trading.paper_broker import PaperBroker

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MIN = 60_000
CFG = AppConfig()
LAST = {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}
"""The newest stored 1m closes, an hour after the accounts' checkpoints."""


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _account(store: Engine, orders: list[tuple[str, str, str, float]], pid: int) -> int:
    """A deployment's account checkpointed with open positions, its deployment stopped."""
    broker = PaperBroker(CFG.paper, CFG.risk)
    outbox = Outbox()
    with store.begin() as conn:
        broker.book.continue_ids_after(last_position_id(conn))
        for symbol, tf, direction, price in orders:
            p = 0.8 if direction == "BUY" else 0.2
            signal = Signal(symbol, tf, T0, direction, 0.8, p, p, (tf,), True)
            opened = broker.on_signal(signal, price).opened
            assert opened is not None
            outbox.open_position(opened, "paper")
        symbols = sorted({o[0] for o in orders})
        run_id = create_run(conn, DEPLOYMENT_KIND, {"symbols": symbols})
        outbox.flush(conn)
        blob = pickle.dumps({"engine": {"broker": broker, "stats": EngineStats()}})
        save_checkpoint(conn, run_id, T0, blob, RUNNING, pid=pid)
        d_id = deployment_store.create_deployment(conn, 1, symbols, run_id)
        deployment_store.finish(conn, d_id, deployment_store.STOPPED)
    return run_id


def _store_last_prices(store: Engine) -> None:
    with store.begin() as conn:
        candle_store.insert_candles(
            conn,
            [Candle(s, "1m", T0 + 59 * MIN, c, c, c, c, 1.0) for s, c in LAST.items()],
            "simulated",
        )


def test_every_stopped_account_and_stray_position_is_closed(sqlite_engine: Engine) -> None:
    store = sqlite_engine
    first = _account(store, [("BTC/USDT", "1m", "BUY", 49_000.0)], _gone_pid())
    second = _account(
        store,
        [("BTC/USDT", "5m", "SELL", 51_000.0), ("ETH/USDT", "1h", "BUY", 2_900.0)],
        _gone_pid(),
    )
    with store.begin() as conn:  # a stray open row, in no checkpoint (e.g. an older version)
        conn.exec_driver_sql(
            "INSERT INTO positions (id, symbol, timeframe, side, status, mode, quantity, "
            "entry_price, entry_time, fees, confidence) VALUES (99, 'ETH/USDT', '5m', 'short', "
            "'open', 'paper', 0.5, 3100.0, '2025-01-01 00:00:00', 1.55, 0.7)"
        )
    _store_last_prices(store)
    before = {
        r[0]: r[1:]
        for r in store.connect().exec_driver_sql(
            "SELECT id, side, quantity, entry_price, fees FROM positions"
        )
    }
    assert sorted(before) == [1, 2, 3, 99]  # the second account numbered after the first

    closed = close_stored_accounts(CFG, store)

    assert closed.accounts == 2 and len(closed.trades) == 4
    with store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.id, p.symbol, p.status, p.exit_price, p.fees, p.pnl, p.exit_time, "
            "t.exit_reason, t.pnl_absolute FROM positions p "
            "JOIN trade_outcomes t ON t.position_id = p.id ORDER BY p.id"
        ).fetchall()
        runs = conn.exec_driver_sql("SELECT id, status FROM engine_runs ORDER BY id").fetchall()
        states = conn.exec_driver_sql("SELECT status FROM deployments").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 99]  # one trade each
    slip, fee = CFG.paper.slippage, CFG.paper.fee_rate
    for pid, symbol, status, exit_price, fees, pnl, exit_time, reason, outcome_pnl in rows:
        side, qty, entry, entry_fee = before[pid]
        sign = 1 if side == "long" else -1
        assert (status, reason, exit_time) == ("closed", "rollback", "2025-01-01 01:00:00")
        assert exit_price == pytest.approx(LAST[symbol] * (1 - sign * slip), rel=1e-12)
        assert fees == pytest.approx(entry_fee + qty * exit_price * fee, rel=1e-12)
        assert pnl == outcome_pnl == pytest.approx(sign * qty * (exit_price - entry) - fees)
    assert runs == [(first, "finished"), (second, "finished")]
    assert states == [("rolled_back",), ("rolled_back",)]


def test_an_account_whose_deployment_runs_is_left_to_it(sqlite_engine: Engine) -> None:
    store = sqlite_engine
    run_id = _account(store, [("BTC/USDT", "1m", "BUY", 49_000.0)], os.getpid())
    with store.begin() as conn:  # its deployment is running, in this (live) process
        conn.exec_driver_sql(f"UPDATE deployments SET status = 'running' WHERE run_id = {run_id}")
    _store_last_prices(store)

    closed = close_stored_accounts(CFG, store)

    assert closed.accounts == 0 and closed.trades == []
    with store.connect() as conn:
        assert conn.exec_driver_sql("SELECT status FROM positions").fetchall() == [("open",)]
        assert conn.exec_driver_sql("SELECT status FROM engine_runs").fetchall() == [("running",)]


def test_rollback_ends_an_account_kept_without_positions(
    workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stopped deployment holding no position still leaves an account the next start would
    continue: --rollback ends it too (the guide's block, the run finished, rolled back)."""
    from candlewise.cli.main import run
    from candlewise.store.db import open_store

    db = workdir / "data" / "trading.db"
    db.parent.mkdir()
    store = open_store(f"sqlite:///{db}")
    try:
        run_id = _account(store, [], _gone_pid())
    finally:
        store.dispose()
    assert run(["deploy", "--rollback", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "0 position(s) open in the store, 1 account(s) kept for the next start" in out
    assert "✓ Rollback complete. System stopped." in out
    store = open_store(f"sqlite:///{db}")
    try:
        with store.connect() as conn:
            runs = conn.exec_driver_sql("SELECT id, status FROM engine_runs").fetchall()
            states = conn.exec_driver_sql("SELECT status FROM deployments").fetchall()
    finally:
        store.dispose()
    assert runs == [(run_id, "finished")] and states == [("rolled_back",)]
    assert run(["deploy", "--rollback", "--db", str(db)]) == 0
    assert "No deployment is running: nothing to stop." in capsys.readouterr().out
