"""Pre-deployment checks against a real SQLite store with simulated candles and trained models."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from candlewise.config.app_config import (
    AppConfig,
    DataConfig,
    ExchangeConfig,
    LiveTradingConfig,
    PathsConfig,
    TimeframesConfig,
)
from candlewise.config.loader import ConfigError, load_config
from candlewise.config.secrets import Secrets
from candlewise.deployment.checks import (
    check_configuration,
    check_database,
    check_history,
    check_models,
    check_paper_validation,
    check_provider,
    config_error_check,
    render_checks,
    run_checks,
)
from candlewise.deployment.validation import validate
from candlewise.store.db import create_db_engine, open_store
from candlewise.store.migrate import head_revision
from candlewise.training.first_training import candles_needed
from tests.deployment.conftest import World
from tests.market.binance_servers import BinanceRestServer, make_series

NOW = int(time.time() * 1000)
RULE = "=" * 80
SIX = TimeframesConfig()  # the default six timeframes


def changed(cfg: AppConfig, **changes: object) -> AppConfig:
    return cfg.model_copy(update=changes)


def count_btc(store: Engine) -> int:
    with store.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM candles WHERE symbol = 'BTC/USDT'")).one()[0]


# --- all five -----------------------------------------------------------------------------------


def test_all_five_pass_with_the_guides_lines(world: World) -> None:
    results = run_checks(world.cfg, world.store, "BTC/USDT", now_ms=NOW)
    total = count_btc(world.store)
    assert total > 1440  # 1m plus the derived 5m..1d
    assert [r.line for r in results] == [
        "✓ Database integrity: OK",
        "✓ All models exist (2 timeframes)",
        f"✓ Historical data: {total:,} candles",
        "✓ Configuration valid",
        "✓ Data provider initialized",
    ]
    assert all(r.ok and r.problem is None and r.fix is None for r in results)
    lines = render_checks(results)
    assert lines[0] == "Running pre-deployment checks..."
    assert lines[-3:] == [RULE, "Pre-deployment checks: 5/5 passed", RULE]


def test_models_without_signal_calibration_pass_with_a_note(world: World) -> None:
    result = check_models(world.cfg, world.store, "BTC/USDT")
    assert result.ok
    assert result.note is not None and "no signal calibration for BTC/USDT" in result.note
    assert "'python src/multi_currency_system.py --train --symbol BTC/USDT'" in result.note


def test_failures_are_counted_and_explained(world: World) -> None:
    results = run_checks(world.cfg, world.store, "ETH/USDT", now_ms=NOW, feed="replay")
    assert [r.ok for r in results] == [True, False, False, True, False]
    lines = render_checks(results)
    assert lines[-2] == "Pre-deployment checks: 2/5 passed"
    assert "✗ Models missing: 2 of 2 timeframes (1m, 5m)" in lines
    assert (
        "    Fix: train them with 'python src/multi_currency_system.py --train --symbol "
        "ETH/USDT', or deploy with --train-missing"
    ) in lines


# --- 1. database ------------------------------------------------------------------------------


def test_database_ok_on_sqlite_and_postgresql(any_engine: Engine) -> None:
    assert check_database(any_engine).line == "✓ Database integrity: OK"


def test_database_without_schema(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    result = check_database(engine)
    assert (result.ok, result.line) == (False, "✗ Database integrity: FAILED")
    assert result.problem is not None and result.problem.endswith(
        "has no schema (no migration applied)"
    )
    assert result.fix == "create it with 'candlewise db upgrade'"


def test_database_behind_or_ahead_of_the_code(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    old = check_database(engine)
    assert old.problem == f"schema at revision 0006, this candlewise needs {head_revision()}"
    assert old.fix == (
        "migrate it with 'candlewise db upgrade' (back it up first with 'candlewise backup')"
    )
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    new = check_database(engine)
    assert not new.ok and new.problem is not None and "9999 is newer than" in new.problem
    engine.dispose()


def test_corrupt_sqlite_file_fails_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    open_store(f"sqlite:///{path}").dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO notes (body) VALUES (?)", [(str(i) * 10,) for i in range(2000)])
    db.execute("CREATE INDEX notes_body ON notes (body)")
    db.commit()
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'notes_body'").fetchone()[0]
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as fh:  # scribble over the index page's cell pointers
        fh.seek((root - 1) * page + 8)
        fh.write(b"\xff" * 40)
    engine = create_db_engine(f"sqlite:///{path}")
    result = check_database(engine)
    engine.dispose()
    assert result.line == "✗ Database integrity: FAILED"
    assert result.problem is not None and result.problem.startswith("PRAGMA quick_check: On tree")
    assert result.problem.endswith(" more)")
    assert result.fix is not None and result.fix.startswith("restore the newest backup with")
    assert f"sqlite3 {path} 'PRAGMA integrity_check;'" in result.fix


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text " * 200)
    engine = create_db_engine(f"sqlite:///{path}")
    result = check_database(engine)
    engine.dispose()
    assert not result.ok
    assert result.problem is not None and "file is not a database" in result.problem


# --- 2. models --------------------------------------------------------------------------------


def test_six_configured_timeframes_name_the_missing_ones(world: World) -> None:
    cfg = changed(world.cfg, timeframes=SIX)
    result = check_models(cfg, world.store, "BTC/USDT")
    assert result.line == "✗ Models missing: 4 of 6 timeframes (15m, 1h, 4h, 1d)"
    assert result.problem == "BTC/USDT 15m, 1h, 4h, 1d: missing or unusable"
    assert result.fix == (
        "train them with 'python src/multi_currency_system.py --train --symbol BTC/USDT', "
        "or deploy with --train-missing"
    )


def test_one_unusable_model_gets_the_interval_command(world: World, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(world.cfg.paths.models_dir, models)
    (models / "BTC_USDT_5m.pt").write_bytes(b"not a model")
    cfg = changed(world.cfg, paths=PathsConfig(models_dir=str(models)))
    result = check_models(cfg, world.store, "BTC/USDT")
    assert result.line == "✗ Models missing: 1 of 2 timeframes (5m)"
    assert result.fix == (
        "train them with 'python src/multi_currency_system.py --train --symbol BTC/USDT "
        "--interval 5m', or deploy with --train-missing"
    )


def test_several_symbols(world: World) -> None:
    result = check_models(world.cfg, world.store, ["BTC/USDT", "ETH/USDT"])
    assert result.line == "✗ Models missing: 2 of 4 (1 symbols)"
    assert result.problem == "ETH/USDT 1m, 5m: missing or unusable"


# --- 3. historical data -----------------------------------------------------------------------


def test_history_counts_every_timeframe_with_thousands_separator(world: World) -> None:
    total = count_btc(world.store)
    assert check_history(world.cfg, world.store, "BTC/USDT").line == (
        f"✓ Historical data: {total:,} candles"
    )


def test_too_little_1m_history(world: World, tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'short.db'}")
    with world.store.connect() as src, engine.begin() as dst:
        rows = (
            src.execute(
                text(
                    "SELECT * FROM candles WHERE symbol = 'BTC/USDT' ORDER BY timeframe, open_time"
                )
            )
            .mappings()
            .all()
        )
        keep = [dict(r) for r in rows if r["timeframe"] != "1m"]
        keep += [dict(r) for r in rows if r["timeframe"] == "1m"][: candles_needed() - 1]
        dst.execute(text("INSERT INTO candles (symbol, timeframe, open_time, timestamp, open, "
                         "high, low, close, volume, source) VALUES (:symbol, :timeframe, "
                         ":open_time, :timestamp, :open, :high, :low, :close, :volume, :source)"),
                    keep)  # fmt: skip
    result = check_history(world.cfg, engine, "BTC/USDT")
    engine.dispose()
    need = candles_needed()
    assert result.line == (f"✗ Historical data: {len(keep):,} candles, not enough 1m history")
    assert result.problem == f"BTC/USDT: {need - 1:,} 1m candles stored, at least {need:,} needed"
    assert result.fix == (
        "get them with 'candlewise data simulate --symbols BTC/USDT --days 30' "
        "(or 'candlewise data download --symbol BTC/USDT --timeframe 1m --days 30')"
    )


def test_history_fix_prefers_download_for_the_binance_feed(world: World) -> None:
    cfg = changed(world.cfg, data=DataConfig(feed="binance"))
    result = check_history(cfg, world.store, "ETH/USDT")
    assert result.line == "✗ Historical data: 0 candles, not enough 1m history"
    assert result.fix is not None and result.fix.startswith(
        "get them with 'candlewise data download --symbol ETH/USDT --timeframe 1m --days 30'"
    )


# --- 4. configuration -------------------------------------------------------------------------


def test_symbol_must_be_configured_and_well_formed(world: World) -> None:
    missing = check_configuration(world.cfg, "SOL/USDT")
    assert missing.line == "✗ Configuration invalid"
    assert missing.problem == "SOL/USDT is not in symbols (BTC/USDT, ETH/USDT)"
    assert missing.fix == "add '- SOL/USDT' under symbols: in config.yaml"
    bad = check_configuration(world.cfg, "btc-usdt")
    assert (
        bad.problem == "malformed symbol 'btc-usdt': use BASE/QUOTE with a slash, e.g. 'BTC/USDT'"
    )


def test_live_mode_needs_the_exchange_keys(world: World) -> None:
    cfg = changed(world.cfg, live_trading=LiveTradingConfig(mode="live"))
    result = check_configuration(cfg, "BTC/USDT", Secrets({"BINANCE_API_KEY": "k" * 20}))
    assert result.problem == "live_trading.mode is live but BINANCE_API_SECRET not set"
    keys = Secrets({"BINANCE_API_KEY": "k" * 20, "BINANCE_API_SECRET": "s" * 20})
    assert check_configuration(cfg, "BTC/USDT", keys).ok


def test_a_config_that_does_not_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("deployment:\n  validation:\n    win_rate: 50\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    result = config_error_check(info.value)
    assert result.line == "✗ Configuration invalid"
    assert result.problem == (
        f"{path}: deployment.validation.win_rate: 50 — win_rate is a fraction (0 <= x <= 1), "
        "not a percent; did you mean 0.5?"
    )
    assert result.fix == "edit config.yaml and check it with 'candlewise config check'"


# --- 5. data provider -------------------------------------------------------------------------


def test_replay_of_a_symbol_with_nothing_stored(world: World) -> None:
    result = check_provider(world.cfg, world.store, "ETH/USDT", now_ms=NOW, feed="replay")
    assert result.line == "✗ Data provider not initialized (replay feed)"
    assert result.problem == "no 1m candles to replay for ETH/USDT (symbols stored: BTC/USDT)"
    assert result.fix is not None and "candlewise data simulate" in result.fix


def test_replay_of_the_stored_simulated_history_is_fine(world: World) -> None:
    assert check_provider(world.cfg, world.store, "BTC/USDT", now_ms=NOW, feed="replay").ok


def test_binance_against_a_local_exchange(world: World, tmp_path: Path) -> None:
    series = make_series(["BTC/USDT"], NOW - NOW % 60_000 - 10 * 60_000, 10)
    with BinanceRestServer(series, lambda: NOW) as rest:
        cfg = changed(world.cfg, exchange=ExchangeConfig(rest_url=rest.url))
        empty = open_store(f"sqlite:///{tmp_path / 'live.db'}")
        assert check_provider(cfg, empty, "BTC/USDT", now_ms=NOW, feed="binance").ok
        unknown = check_provider(cfg, empty, "ETH/USDT", now_ms=NOW, feed="binance")
        assert not unknown.ok and unknown.problem is not None and "ETH/USDT" in unknown.problem
        # the simulated BTC/USDT history cannot be continued by real candles
        mixed = check_provider(cfg, world.store, "BTC/USDT", now_ms=NOW, feed="binance")
        empty.dispose()
    assert mixed.line == "✗ Data provider not initialized (binance feed)"
    assert mixed.problem == (
        "BTC/USDT already holds simulated (seed 42) candles; adding real (binance) candles "
        "would mix two price histories"
    )


# --- paper-trading validation -----------------------------------------------------------------


class _Metrics:
    win_rate = 0.56
    max_drawdown_percent = 8.0
    error_rate = 0.01
    pnl = 100.0
    transitions_per_hour = 0.5


WINDOW_48H = {"window": {"start": "2026-01-01 00:00:00", "end": "2026-01-03 00:00:00"}}


def test_paper_validation_files(tmp_path: Path) -> None:
    folder = tmp_path / "validation_results"
    none = check_paper_validation(folder)
    assert (none.ok, none.line) == (
        False,
        f"⚠️  Paper trading validation: none found in {folder.as_posix()}/",
    )
    assert none.fix == "run 'python run_paper_trading_validation.py --duration 48'"
    folder.mkdir()
    thresholds = AppConfig().deployment.validation
    approved = folder / "validation_20260101_120000.json"
    approved.write_text(json.dumps({**validate(_Metrics(), thresholds).as_dict(), **WINDOW_48H}))
    (folder / "notes.json").write_text("{not json")
    ok = check_paper_validation(folder)
    assert ok.ok
    assert ok.line == f"✓ Paper trading validation: APPROVED ({approved.as_posix()}, 5/5 criteria)"
    _Metrics.pnl = -1.0
    _Metrics.error_rate = 0.2
    rejected = folder / "validation_20260102_120000.json"
    rejected.write_text(json.dumps({**validate(_Metrics(), thresholds).as_dict(), **WINDOW_48H}))
    later = approved.stat().st_mtime + 10
    os.utime(rejected, (later, later))
    os.utime(folder / "notes.json", (later + 10, later + 10))
    newest = check_paper_validation(folder)
    assert not newest.ok
    assert newest.line == (
        f"⚠️  Paper trading validation: REJECTED ({rejected.as_posix()}, 3/5 criteria)"
    )


def test_an_approved_validation_shorter_than_the_guides_48_hours_does_not_count(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "validation_results"
    folder.mkdir()
    good = validate(_Passing(), AppConfig().deployment.validation).as_dict()
    short = folder / "validation_20260101_120000.json"
    window = {"start": "2026-01-01 00:00:00", "end": "2026-01-02 00:00:00"}
    short.write_text(json.dumps({**good, "window": window}))
    result = check_paper_validation(folder)
    assert not result.ok
    assert result.line == (
        f"⚠️  Paper trading validation: APPROVED on 24 hours only ({short.as_posix()}, 5/5 criteria)"
    )
    assert result.problem == (
        "the guide asks for a 48-hour validation; the newest one covers 24 hours"
    )
    assert result.fix == "run 'python run_paper_trading_validation.py --duration 48'"
    short.write_text(json.dumps(good))  # a result that does not say what it covers
    assert "APPROVED on an unknown window only" in check_paper_validation(folder).line
    short.write_text(json.dumps({**good, **WINDOW_48H}))
    assert check_paper_validation(folder).ok


class _Passing(_Metrics):
    pnl = 100.0
    error_rate = 0.01
