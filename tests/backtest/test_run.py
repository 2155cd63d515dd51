"""``candlewise backtest``: the whole loop runs, writes the guide's tables, and is deterministic."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine

from candlewise.cli.main import run
from tests.conftest import SHARED, needs_shared

LOW_THRESHOLD = (
    "symbols: [BTC/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.60\n    hysteresis: 0.05\n"
)


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_same_seed_gives_the_same_ledger_and_the_guide_tables_fill(workdir: Path, capsys) -> None:
    (workdir / "low.yaml").write_text(LOW_THRESHOLD)
    ledgers = []
    for db in ("data/a.db", "sqlite:///data/b.db"):  # a path or a URL: the same
        argv = ["backtest", "--config", "low.yaml", "--days", "0.5", "--seed", "3",
                "--warmup-days", "12", "--no-retrain", "--db", db]  # fmt: skip
        assert run(argv) == 0
        out = capsys.readouterr().out
        ledgers.append(re.search(r"^Ledger: ([0-9a-f]{64})$", out, re.M).group(1))  # type: ignore[union-attr]
        trades = int(re.search(r"Trades: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert ledgers[0] == ledgers[1]
    assert trades > 0
    assert (workdir / "data" / "b.db").is_file()
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


def test_db_takes_a_sqlite_url_for_the_same_file(workdir: Path, capsys) -> None:
    """``--db sqlite:///data/x.db`` is the file data/x.db (it was refused, shown mangled)."""
    (workdir / "data").mkdir()
    (workdir / "data" / "x.db").write_text("keep me")
    assert run(["backtest", "--db", "sqlite:///data/x.db"]) == 2
    assert "file is not a database" in capsys.readouterr().err
    assert (workdir / "data" / "x.db").read_text() == "keep me"
    assert not (workdir / "sqlite:").exists()  # as a Path the URL became sqlite:/data/x.db


def test_a_database_url_of_another_kind_is_refused_as_written(workdir: Path, capsys) -> None:
    assert run(["backtest", "--db", "postgresql://u:secret@db.example/x"]) == 2
    err = capsys.readouterr().err
    assert "--db postgresql://u:***@db.example/x is not a SQLite database file" in err
    assert "--db sqlite:///runs/btc.db" in err and "secret" not in err
    assert list(workdir.iterdir()) == []


@pytest.mark.timeout(300)
@pytest.mark.slow
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
@pytest.mark.slow
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
    assert "no stored candles to replay: data/trading.db does not exist" in capsys.readouterr().err
    assert not (workdir / "data" / "none.db").exists()
    argv = ["backtest", "--feed", "replay", "--data", "typo.csv", "--db", "data/typo.db"]
    assert run(argv) == 2
    assert "file not found: typo.csv" in capsys.readouterr().err
    assert not (workdir / "data" / "typo.db").exists()


def test_a_window_starting_mid_day_still_closes_that_days_higher_candles(
    sqlite_engine: Engine,
) -> None:
    from candlewise.engine.setup import primed_aggregators as _aggregators
    from candlewise.market.ingest import ingest_frame
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


def _ledger(out: str) -> str:
    return re.search(r"^Ledger: ([0-9a-f]{64})$", out, re.M).group(1)  # type: ignore[union-attr]


def _import(file: str, symbol: str, config: str) -> list[str]:
    return ["data", "import", file, "--symbol", symbol, "--timeframe", "1m", "--config", config]


def _eth_file(workdir: Path, days: float) -> str:
    """A file of 1m ETH/USDT candles from 2025-01-01 (as an exchange export would be)."""
    from candlewise.market.simulated import market_at

    frame = market_at(["ETH/USDT"], 5, 1_735_689_600_000).generate(int(days * 1440))["ETH/USDT"]
    frame.to_frame().drop(columns="regime").to_csv(workdir / "ETH_USDT-1m.csv", index=False)
    return "ETH_USDT-1m.csv"


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_from_to_on_the_simulated_feed_is_the_window_of_warmup_days(workdir: Path, capsys) -> None:
    (workdir / "low.yaml").write_text(LOW_THRESHOLD)
    common = ["backtest", "--config", "low.yaml", "--seed", "3", "--no-retrain"]
    argv = [*common, "--from", "2024-01-13", "--to", "2024-01-13 06:00", "--days", "9",
            "--warmup-days", "30", "--db", "data/ft.db"]  # fmt: skip  # both ignored
    assert run(argv) == 0
    by_dates = capsys.readouterr().out
    argv = [*common, "--warmup-days", "12", "--days", "0.25", "--db", "data/wd.db"]
    assert run(argv) == 0
    by_days = capsys.readouterr().out
    window = "Backtest (simulated market, seed 3): BTC/USDT, 2024-01-13 00:00 → 2024-01-13 06:00"
    assert window in by_dates and window in by_days
    assert int(re.search(r"Trades: (\d+)", by_dates).group(1)) > 0  # type: ignore[union-attr]
    assert _ledger(by_dates) == _ledger(by_days)


def test_from_to_and_days_make_the_window() -> None:
    from candlewise.backtest.request import BacktestRequest, _window

    day, hour = 86_400_000, 3_600_000
    t0 = 1_704_067_200_000 + 20 * day  # 2024-01-21, 20 days after the simulated origin

    def window(**kw: object) -> tuple[int, int]:
        return _window(BacktestRequest(("BTC/USDT",), 0.5, 1, **kw), None, {})  # type: ignore[arg-type]

    assert window(start_ms=t0, end_ms=t0 + hour) == (t0, t0 + hour)  # --days ignored
    assert window(start_ms=t0) == (t0, t0 + 12 * hour)
    assert window(end_ms=t0) == (t0 - 12 * hour, t0)
    assert window(warmup_days=20.0) == (t0, t0 + 12 * hour)
    coverage = {"BTC/USDT": (t0 - 5 * day, t0 + day)}  # replay: the data's last --days
    assert _window(BacktestRequest(("BTC/USDT",), 0.5, 1), coverage, {}) == (
        t0 + 12 * hour,
        t0 + day,
    )


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_replay_of_stored_candles_is_the_replay_of_their_file(workdir: Path, capsys) -> None:
    from candlewise.backtest.run import BacktestRequest, Interrupted, run_backtest
    from candlewise.cli.context import AppContext

    name = _eth_file(workdir, 10)
    (workdir / "low.yaml").write_text(LOW_THRESHOLD.replace("BTC/USDT", "ETH/USDT"))
    assert run(_import(name, "ETH/USDT", "low.yaml")) == 0
    window = ["--from", "2025-01-09T18:00", "--to", "2025-01-10T00:00"]
    common = ["backtest", "--config", "low.yaml", "--feed", "replay", *window, "--no-retrain"]
    assert run([*common, "--db", "data/stored.db"]) == 0
    stored = capsys.readouterr().out
    assert run([*common, "--data", name, "--db", "data/file.db"]) == 0
    from_file = capsys.readouterr().out
    assert "Backtest (replay of the candles stored in data/trading.db): ETH/USDT, " in stored
    assert "ETH/USDT, 2025-01-09 18:00 → 2025-01-10 00:00 UTC" in stored
    assert int(re.search(r"Trades: (\d+)", stored).group(1)) > 0  # type: ignore[union-attr]
    assert _ledger(stored) == _ledger(from_file)
    con = sqlite3.connect(workdir / "data" / "stored.db")
    try:  # the history and the window were copied, nothing after it
        first, last, sources = con.execute(
            "SELECT MIN(timestamp), MAX(timestamp), GROUP_CONCAT(DISTINCT source) FROM candles "
            "WHERE timeframe = '1m'"
        ).fetchone()
    finally:
        con.close()
    assert (first, last, sources) == ("2025-01-01 00:00:00", "2025-01-09 23:59:00", "replay")

    # stopped after an hour of replay, then resumed (the window is read back from the run's
    # own copy): the ledger of the uninterrupted run
    ctx = AppContext(Path("low.yaml"), "sqlite:///data/resumed.db")
    request = BacktestRequest(
        ("ETH/USDT",), 7, 1, retrain=False, start_ms=1_736_445_600_000,  # 2025-01-09 18:00
        end_ms=1_736_467_200_000, replay_url="sqlite:///data/trading.db",
    )  # fmt: skip
    minutes = iter(range(10**6))
    with pytest.raises(Interrupted):  # the event path polls the stop every minute
        run_backtest(ctx.config, ctx.engine, "data/resumed_models", request,
                     stop=lambda: next(minutes) >= 60, block_replay=False)  # fmt: skip
    # ... and the block path takes over where it stopped
    (workdir / "data" / "trading.db").unlink()  # not needed any more
    report = run_backtest(ctx.config, ctx.engine, "data/resumed_models", request)
    assert report.ledger == _ledger(stored)
    ctx.engine.dispose()


@needs_shared
@pytest.mark.timeout(300)
@pytest.mark.slow
def test_replay_of_stored_real_candles_is_the_replay_of_the_real_file(
    workdir: Path, capsys
) -> None:
    real = str(SHARED / "data" / "candles" / "BTC_USDT-1m.csv.gz")  # type: ignore[operator]
    (workdir / "low.yaml").write_text(LOW_THRESHOLD)
    assert run(_import(real, "BTC/USDT", "low.yaml")) == 0
    common = ["backtest", "--config", "low.yaml", "--feed", "replay", "--to", "2025-05-30 06:00",
              "--days", "0.25", "--no-retrain"]  # fmt: skip
    assert run([*common, "--db", "data/stored.db"]) == 0
    stored = capsys.readouterr().out
    assert run([*common, "--data", real, "--db", "data/file.db"]) == 0
    from_file = capsys.readouterr().out
    assert "BTC/USDT, 2025-05-30 00:00 → 2025-05-30 06:00 UTC" in stored
    assert _ledger(stored) == _ledger(from_file)


@pytest.mark.timeout(120)
def test_bad_windows_and_missing_candles_exit_2_and_leave_no_run_database(
    workdir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _eth_file(workdir, 2)  # 2025-01-01 00:00 → 2025-01-03 00:00
    (workdir / "eth.yaml").write_text("symbols: [ETH/USDT]\n")
    cases = [
        (["--from", "2024-01-01T12:00"], "the first models need at least a day"),
        (["--to", "2024-01-05", "--days", "4"], "pick --to 2024-01-06 or later, or fewer --days"),
        (["--from", "2024-05-02", "--to", "2024-05-01"], "is not before --to 2024-05-01"),
        (["--from", "yesterday"], "--from 'yesterday' is not a UTC date or minute"),
        (["--feed", "replay"], "no stored candles to replay: data/trading.db does not exist"),
        (["--feed", "replay", "--data", name, "--from", "2025-01-02T12:00"],
         "does not fit the candles of ETH_USDT-1m.csv, which cover 2025-01-01 00:00 → "
         "2025-01-03 00:00 UTC"),
        (["--feed", "replay", "--data", name, "--days", "2"], "pass fewer --days"),
    ]  # fmt: skip
    stored = [
        (["--feed", "replay", "--symbols", "ETH/USDT,SOL/USDT"],
         "no 1m candles of SOL/USDT are stored in data/trading.db"),
        (["--feed", "replay", "--from", "2024-12-31", "--to", "2025-01-02"],
         "does not fit the candles of ETH/USDT stored in data/trading.db"),
        (["--feed", "replay", "--db", "data/trading.db"], "is the database holding the candles"),
    ]  # fmt: skip

    def refused(args: list[str], message: str) -> None:
        assert run(["backtest", "--config", "eth.yaml", "--db", "data/bad.db", *args]) == 2, args
        assert message in capsys.readouterr().err, args
        assert not (workdir / "data" / "bad.db").exists(), args

    for args, message in cases:
        refused(args, message)
    assert run(_import(name, "ETH/USDT", "eth.yaml")) == 0
    for args, message in stored:
        refused(args, message)
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", "sqlite:///data/sim.db")
    assert run(["data", "simulate", "--days", "0.1", "--seed", "4", "--config", "eth.yaml"]) == 0
    refused(["--feed", "replay"], "ETH/USDT candles stored in data/sim.db are simulated (seed 4)")


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_cost_aware_entries_refuse_trades_that_cannot_pay_their_costs(
    workdir: Path, capsys
) -> None:
    (workdir / "cost.yaml").write_text(LOW_THRESHOLD + "risk:\n  min_edge_over_costs: 1.0\n")
    argv = ["backtest", "--config", "cost.yaml", "--days", "0.5", "--seed", "3",
            "--warmup-days", "12", "--no-retrain", "--db", "data/c.db"]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    skipped = int(re.search(r"Signals below costs \(not traded\): (\d+)", out).group(1))  # type: ignore[union-attr]
    assert "Trades: 0 " in out and "Shadow trades (LEARNING mode, no orders): 0" in out
    assert skipped > 700  # every signal of the half day: none expects to cover 0.3 %
