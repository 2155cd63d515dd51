"""The block replay is the same run as the one-event-at-a-time path: every stored row, every
log line and the ledger are equal, also through stops, the daily loss limit and the drawdown
rollback (the events the block path hands to the engine's own code)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from candlewise.cli.main import run
from tests.conftest import SHARED, needs_shared

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

#: Every table a replay writes, in the order that makes rows comparable (ids included: the
#: block path must append rows in the same order as the event path).
TABLES = {
    "candles": "symbol, timeframe, open_time",
    "positions": "id",
    "trade_outcomes": "id",
    "shadow_trades": "id",
    "timeframe_predictions": "id",
    "confidence_history": "id",
    "learning_states": "id",
    "equity_history": "id",
    "error_log": "id",
    "alerts": "id",
}
BOTH_MODES = (
    "symbols: [BTC/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.55\n    hysteresis: 0.03\n"
)
#: Two symbols sharing one account, tight stops and limits: stop-loss exits, a daily loss
#: block, the drawdown alert and the rollback all happen within two days.
TIGHT_RISK = (
    "symbols: [BTC/USDT, ETH/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.52\n    hysteresis: 0.01\n"
    "risk:\n  max_drawdown_percent: 2.5\n  daily_loss_limit: 0.015\n  stop_loss: 0.001\n"
    "  max_position_size_percent: 0.3\n"
)


def _backtest(
    folder: Path, config: str, days: str, monkeypatch, capsys, *extra: str,
    seed: str = "5", warmup: str = "12",
) -> str:  # fmt: skip
    folder.mkdir()
    monkeypatch.chdir(folder)
    (folder / "config.yaml").write_text(config)
    argv = ["backtest", "--days", days, "--seed", seed, "--warmup-days", warmup, "--no-retrain",
            "--db", "run.db", *extra]  # fmt: skip
    assert run(argv) == 0
    return capsys.readouterr().out


_LOG = "production_deployment.log"


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = sqlite3.connect(db)
    try:
        out = {
            t: con.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()
        }
    finally:
        con.close()
    out["candles"] = [row[1:] for row in out["candles"]]  # the id is insertion order only
    return out


def _engine_lines(folder: Path) -> list[str]:
    """The log lines of the replay (from its path line on), without their wall-clock stamps."""
    lines = (folder / "logs" / "production_deployment.log").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "Replay path:" in line)
    return [line[11:] for line in lines[start + 1 :]]


def _ledger(out: str) -> str:
    found = re.search(r"^Ledger: ([0-9a-f]{64})$", out, re.M)
    assert found, out
    return found.group(1)


def _compare(
    tmp_path: Path, config: str, days: str, monkeypatch, capsys, **run: str
) -> tuple[str, dict]:
    """Run the backtest both ways (``run``: ``seed``, ``warmup``); assert the same ledger,
    rows and log lines; return the block run's output and rows."""
    block_out = _backtest(tmp_path / "block", config, days, monkeypatch, capsys, **run)
    event_out = _backtest(
        tmp_path / "event", config, days, monkeypatch, capsys, "--event-path", **run
    )
    assert "Replay path: block" in (tmp_path / "block" / "logs" / _LOG).read_text()
    assert _ledger(block_out) == _ledger(event_out)
    block, event = _rows(tmp_path / "block" / "run.db"), _rows(tmp_path / "event" / "run.db")
    for table in TABLES:
        assert len(block[table]) == len(event[table]), table
        assert block[table] == event[table], table  # bit for bit, ids and order included
    block_log, event_log = _engine_lines(tmp_path / "block"), _engine_lines(tmp_path / "event")
    assert block_log == event_log
    return block_out, block


@pytest.mark.timeout(300)
def test_both_modes_give_the_event_paths_rows_log_and_ledger(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    _, rows = _compare(tmp_path, BOTH_MODES, "1", monkeypatch, capsys)
    log = (tmp_path / "block" / "logs" / "production_deployment.log").read_text()
    assert "Replay path: block" in log and "Replay path: event" not in log
    event_log = (tmp_path / "event" / "logs" / "production_deployment.log").read_text()
    assert "Replay path: event" in event_log
    # the comparison covered both modes: real trades, shadow trades and transitions
    assert len(rows["trade_outcomes"]) > 20 and len(rows["shadow_trades"]) > 200
    assert {r[3] for r in rows["learning_states"]} == {"TRADING", "LEARNING"}
    assert len(rows["confidence_history"]) > 1440  # a signal every minute and more
    assert "TRADING MODE:" in log and "Paper trade executed" in log and "Trade closed" in log


@pytest.mark.timeout(300)
def test_stops_daily_loss_and_rollback_match_too(tmp_path: Path, monkeypatch, capsys) -> None:
    out, rows = _compare(tmp_path, TIGHT_RISK, "2", monkeypatch, capsys)
    assert "Rollback: " in out
    reasons = {r[-1] for r in rows["trade_outcomes"]} | {r[-1] for r in rows["shadow_trades"]}
    assert {"stop_loss", "horizon", "rollback"} <= reasons
    symbols = {r[2] for r in rows["trade_outcomes"]}  # (id, position_id, symbol, ...)
    assert symbols == {"BTC/USDT", "ETH/USDT"}
    log = (tmp_path / "block" / "logs" / "production_deployment.log").read_text()
    assert "approaching 2.5% limit" in log and "Automatic rollback" in log
    assert "Daily loss limit reached" in log


@needs_shared
@pytest.mark.timeout(300)
def test_real_candles_replay_the_same_both_ways(tmp_path: Path, monkeypatch, capsys) -> None:
    real = str(SHARED / "data" / "candles" / "BTC_USDT-1m.csv.gz")  # type: ignore[operator]
    outs = {}
    for name, extra in (("block", []), ("event", ["--event-path"])):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        (folder / "config.yaml").write_text(BOTH_MODES)
        argv = ["backtest", "--feed", "replay", "--data", real, "--days", "3", "--no-retrain",
                "--db", "run.db", *extra]  # fmt: skip
        assert run(argv) == 0
        outs[name] = capsys.readouterr().out
    assert _ledger(outs["block"]) == _ledger(outs["event"])
    block, event = _rows(tmp_path / "block" / "run.db"), _rows(tmp_path / "event" / "run.db")
    assert block == event
    assert len(block["shadow_trades"]) + len(block["trade_outcomes"]) > 1000
    assert _engine_lines(tmp_path / "block") == _engine_lines(tmp_path / "event")
