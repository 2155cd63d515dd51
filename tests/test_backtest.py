"""``candlewise backtest``: the whole loop runs, writes the guide's tables, and is deterministic."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.cli.main import run

LOW_THRESHOLD = (
    "symbols: [BTC/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.60\n    hysteresis: 0.05\n"
)


@pytest.mark.timeout(300)
def test_same_seed_gives_the_same_ledger_and_the_guide_tables_fill(workdir: Path, capsys) -> None:
    (workdir / "low.yaml").write_text(LOW_THRESHOLD)
    ledgers = []
    for name in ("a", "b"):
        argv = ["backtest", "--config", "low.yaml", "--days", "0.5", "--seed", "3",
                "--warmup-days", "12", "--no-retrain", "--db", f"data/{name}.db"]  # fmt: skip
        assert run(argv) == 0
        out = capsys.readouterr().out
        ledgers.append(re.search(r"^Ledger: ([0-9a-f]{64})$", out, re.M).group(1))  # type: ignore[union-attr]
        trades = int(re.search(r"Trades: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert ledgers[0] == ledgers[1]
    assert trades > 0
    con = sqlite3.connect(workdir / "data" / "a.db")
    try:
        stored = con.execute("SELECT COUNT(*) FROM trade_outcomes").fetchone()[0]
        modes = con.execute("SELECT COUNT(*) FROM learning_states").fetchone()[0]
        signals = con.execute("SELECT COUNT(*) FROM confidence_history").fetchone()[0]
        open_left = con.execute(
            "SELECT COUNT(*) FROM positions WHERE status = 'open'").fetchone()[0]  # fmt: skip
        closed = con.execute("SELECT COUNT(*) FROM positions WHERE status = 'closed'").fetchone()[0]
    finally:
        con.close()
    assert stored == trades == closed  # every closed position has its outcome row
    assert modes > 0 and signals > 700 and open_left <= 5
    log = (workdir / "logs" / "production_deployment.log").read_text()
    for pattern in (r"\[BTC/USDT\] \d timeframe predictions aggregated",
                    r"\[BTC/USDT\] TRADING MODE: (BUY|SELL) @ \d+\.\d\d% \(paper\)",
                    r"✓ \[BTC/USDT @ \w+\] Transitioned to TRADING mode \(confidence: \d+\.\d\d%\)",
                    r"\[BTC/USDT @ 1h\] Candle closed: O=\d+\.\d\d C=\d+\.\d\d"):  # fmt: skip
        assert re.search(pattern, log), pattern


def test_a_file_that_is_not_a_database_is_never_overwritten(workdir: Path, capsys) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "x.db").write_text("keep me")
    assert run(["backtest", "--db", "data/x.db"]) == 2
    assert "file is not a database" in capsys.readouterr().err
    assert (workdir / "data" / "x.db").read_text() == "keep me"


@pytest.mark.timeout(300)
def test_learning_mode_places_no_orders_but_scores_shadow_trades(workdir: Path, capsys) -> None:
    (workdir / "btc.yaml").write_text("symbols: [BTC/USDT]\n")  # default threshold 0.80
    argv = ["backtest", "--config", "btc.yaml", "--days", "0.25", "--seed", "3",
            "--warmup-days", "12", "--no-retrain", "--db", "data/l.db"]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    shadows = int(re.search(r"Shadow trades \(LEARNING mode, no orders\): (\d+)", out).group(1))  # type: ignore[union-attr]
    con = sqlite3.connect(workdir / "data" / "l.db")
    try:
        orders = con.execute("SELECT COUNT(*) FROM positions").fetchone()[0]
        stored = con.execute("SELECT COUNT(*) FROM shadow_trades").fetchone()[0]
        outcomes = {r[0] for r in con.execute("SELECT outcome FROM shadow_trades")}
    finally:
        con.close()
    assert "Trades: 0 " in out and orders == 0
    assert stored == shadows > 50 and outcomes <= {"WIN", "LOSS"}


@pytest.mark.timeout(300)
def test_replay_of_a_candle_file_trains_only_on_what_precedes_the_window(
    workdir: Path, capsys
) -> None:
    from candlewise.market.simulated import market_at

    frame = market_at(["ETH/USDT"], 5, 1_735_689_600_000).generate(10 * 1440)["ETH/USDT"]
    frame.to_frame().drop(columns="regime").to_csv(workdir / "ETH_USDT-1m.csv", index=False)
    (workdir / "low.yaml").write_text(LOW_THRESHOLD.replace("BTC/USDT", "ETH/USDT"))
    argv = ["backtest", "--feed", "replay", "--data", "ETH_USDT-1m.csv", "--config", "low.yaml",
            "--days", "0.5", "--no-retrain", "--db", "data/r.db"]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert (
        "Backtest (replay of ETH_USDT-1m.csv): ETH/USDT, 2025-01-10 12:00 → 2025-01-11 00:00" in out
    )
    con = sqlite3.connect(workdir / "data" / "r.db")
    try:
        train_end = con.execute("SELECT MAX(train_end) FROM model_registry").fetchone()[0]
        signals = con.execute("SELECT COUNT(*) FROM confidence_history").fetchone()[0]
    finally:
        con.close()
    assert train_end < "2025-01-10 12:00:00"  # no model saw the replayed window
    assert signals >= 720
    assert run(["backtest", "--feed", "replay", "--db", "data/none.db"]) == 2
    assert "--feed replay needs the candles to replay" in capsys.readouterr().err
    argv = ["backtest", "--feed", "replay", "--data", "typo.csv", "--db", "data/typo.db"]
    assert run(argv) == 2
    assert "file not found: typo.csv" in capsys.readouterr().err
    assert not (workdir / "data" / "typo.db").exists()


def test_a_window_starting_mid_day_still_closes_that_days_higher_candles(
    sqlite_engine: Engine,
) -> None:
    from candlewise.backtest import _aggregators
    from candlewise.ingest import ingest_frame
    from candlewise.market.simulated import HISTORY_ORIGIN_MS, market_at

    day = market_at(["BTC/USDT"], 5, HISTORY_ORIGIN_MS).generate(1440)["BTC/USDT"]
    frame = day.to_frame().drop(columns="regime")
    noon = HISTORY_ORIGIN_MS + 720 * 60_000
    ingest_frame(sqlite_engine, frame.iloc[:720], "BTC/USDT", "1m", "simulated:5")
    aggregator = _aggregators(sqlite_engine, ["BTC/USDT"], noon)["BTC/USDT"]
    closed = [bar for c in day.candles()[720:] for bar in aggregator.add(c)]
    daily = [bar for bar in closed if bar.timeframe == "1d"]
    assert len(daily) == 1 and daily[0].open_time == HISTORY_ORIGIN_MS
    assert daily[0].open == frame["open"].iloc[0] and daily[0].close == frame["close"].iloc[-1]
    assert daily[0].high == frame["high"].max() and daily[0].volume == pytest.approx(
        frame["volume"].sum()
    )
