"""The dashboard's queries against a real simulated phase 1, checked with independent SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from candlewise.dashboard import charts, data
from candlewise.store.db import open_store
from tests.dashboard.expected import db_path, latest_event, latest_mode, latest_trade, query
from tests.phase1_project import SYMBOL

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def engine(phase1_project: Path) -> Iterator[Engine]:
    eng = data.open_readonly(f"sqlite:///{db_path(phase1_project)}")
    yield eng
    eng.dispose()


def test_window_ends_at_latest_event(engine: Engine, phase1_project: Path) -> None:
    end = data.latest_event_time(engine)
    assert end is not None and data.to_text(end) == latest_event(phase1_project)
    assert data.window_start(end, "6h") == data.to_text(end - timedelta(hours=6))
    assert data.window_start(end, "all") is None
    assert data.symbols(engine, ("ETH/USDT", SYMBOL)) == [SYMBOL]


def test_mode_is_the_last_transition(engine: Engine, phase1_project: Path) -> None:
    [status] = data.mode_status(engine, [SYMBOL], None)
    assert status.mode == latest_mode(phase1_project, SYMBOL)
    last = query(phase1_project, "SELECT timestamp FROM learning_states ORDER BY id DESC LIMIT 1")
    assert status.since == last[0][0]
    conf, direction = query(
        phase1_project,
        "SELECT confidence_score, direction FROM confidence_history ORDER BY id DESC LIMIT 1",
    )[0]
    assert (status.confidence, status.direction) == (conf, direction)
    total = query(phase1_project, "SELECT COUNT(*) FROM learning_states")[0][0]
    assert status.transitions == total > 0


def test_latest_and_recent_trades(engine: Engine, phase1_project: Path) -> None:
    trade = data.latest_trade(engine, [SYMBOL])
    exit_time, direction, timeframe, pnl = latest_trade(phase1_project)
    assert trade is not None
    assert (trade.exit_time, trade.direction, trade.timeframe, trade.pnl) == (
        exit_time,
        direction,
        timeframe,
        pnl,
    )
    since = data.window_start(data.latest_event_time(engine), "6h")
    recent = data.recent_trades(engine, [SYMBOL], since, limit=1000)
    count = query(
        phase1_project, "SELECT COUNT(*) FROM trade_outcomes WHERE exit_time >= ?", (since,)
    )[0][0]
    assert len(recent) == count > 0
    assert recent["exit_time"].is_monotonic_decreasing
    assert len(data.recent_trades(engine, [SYMBOL], None, limit=5)) == 5
    assert data.latest_trade(engine, ["ETH/USDT"]) is None


def test_confidence_trend_and_mode_segments(engine: Engine, phase1_project: Path) -> None:
    end = data.latest_event_time(engine)
    since = data.window_start(end, "6h")
    trend = data.confidence_trend(engine, [SYMBOL], since)
    rows = query(
        phase1_project,
        "SELECT confidence_score FROM confidence_history WHERE timestamp >= ? ORDER BY id",
        (since,),
    )
    assert trend["confidence"].tolist() == [r[0] for r in rows]
    assert data.confidence_trend(engine, ["ETH/USDT"], since).empty
    segments = data.mode_segments(engine, [SYMBOL], since, end)
    assert (segments["start"] >= pd.Timestamp(datetime.strptime(since, data.FORMAT))).all()
    assert (segments["end"] >= segments["start"]).all()
    assert segments["mode"].iloc[-1] == latest_mode(phase1_project, SYMBOL)
    assert segments["end"].iloc[-1] == pd.Timestamp(end)


def test_retraining_confidence_before_and_after(engine: Engine, phase1_project: Path) -> None:
    rt = data.retraining(engine, [SYMBOL], None)
    rows = query(
        phase1_project,
        "SELECT r.success, r.validation_confidence, m.val_confidence, r.duration_s "
        "FROM retraining_history r LEFT JOIN model_registry m ON m.symbol = r.symbol "
        "AND m.timeframe = r.timeframe AND m.version = r.old_version ORDER BY r.id",
    )
    assert len(rt) == len(rows) > 0
    assert rt["outcome"].tolist() == ["accepted" if r[0] else "rejected" for r in rows]
    assert rt["confidence_after"].tolist() == [r[1] for r in rows]
    assert rt["confidence_before"].tolist() == [r[2] for r in rows]
    assert rt["duration_s"].tolist() == [r[3] for r in rows]


def test_timeframe_signals_are_the_latest_predictions(engine: Engine, phase1_project: Path) -> None:
    preds = data.timeframe_signals(engine, [SYMBOL], per_timeframe=3)
    latest = preds[preds["rank"] == 1].set_index("timeframe")
    rows = query(
        phase1_project,
        "SELECT timeframe, confidence, direction FROM "
        "timeframe_predictions WHERE id IN (SELECT MAX(id) FROM timeframe_predictions "
        "GROUP BY timeframe)",
    )
    assert {tf: (latest.loc[tf, "confidence"], latest.loc[tf, "direction"]) for tf, *_ in rows} == {
        tf: (c, d) for tf, c, d in rows
    }
    assert preds.groupby("timeframe").size().max() == 3


def test_equity_of_the_latest_run(engine: Engine, phase1_project: Path) -> None:
    eq = data.equity(engine, None)
    rows = query(
        phase1_project,
        "SELECT equity, drawdown_percent FROM equity_history WHERE "
        "run_id = (SELECT MAX(run_id) FROM equity_history) ORDER BY timestamp, id",
    )
    assert eq["equity"].tolist() == [r[0] for r in rows]
    assert eq["drawdown_percent"].tolist() == [r[1] for r in rows]


def test_charts_build(engine: Engine) -> None:
    end = data.latest_event_time(engine)
    since = data.window_start(end, "24h")
    specs = [
        charts.confidence_chart(
            data.confidence_trend(engine, [SYMBOL], since),
            data.mode_segments(engine, [SYMBOL], since, end),
            0.51,
            0.005,
        ),
        charts.equity_chart(data.equity(engine, since)),
        charts.retrain_timeline(data.retraining(engine, [SYMBOL], since)),
        charts.timeframe_heatmap(data.timeframe_signals(engine, [SYMBOL])),
    ]
    for spec in specs:
        assert spec.to_dict()


def test_missing_and_unmigrated_databases_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(data.StoreUnavailable) as missing:
        data.open_readonly(f"sqlite:///{tmp_path / 'nothing.db'}")
    assert "not found" in missing.value.message and "make demo" in missing.value.hint
    assert not (tmp_path / "nothing.db").exists()  # never created by a reader
    sqlite3.connect(tmp_path / "blank.db").close()
    with pytest.raises(data.StoreUnavailable) as blank:
        data.open_readonly(f"sqlite:///{tmp_path / 'blank.db'}")
    assert "db upgrade" in blank.value.hint
    open_store(f"sqlite:///{tmp_path / 'empty.db'}").dispose()
    empty = data.open_readonly(f"sqlite:///{tmp_path / 'empty.db'}")
    assert data.symbols(empty) == [] and data.latest_event_time(empty) is None
    assert data.equity(empty, None).empty and data.latest_deployment(empty) is None
    empty.dispose()


def test_reading_never_blocks_a_writer(phase1_project: Path, tmp_path: Path) -> None:
    """A deployment writes while the dashboard reads: WAL lets both go on, with no waiting."""
    copy = tmp_path / "trading.db"
    src = sqlite3.connect(f"file:{db_path(phase1_project)}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=WAL")
    dst.close()
    writer = sqlite3.connect(copy, timeout=0, isolation_level=None)  # a lock fails at once
    reader = data.open_readonly(f"sqlite:///{copy}")
    try:
        before = len(data.confidence_trend(reader, [SYMBOL], None))
        writer.execute("BEGIN IMMEDIATE")  # the writer holds the write lock ...
        writer.execute(
            "INSERT INTO confidence_history (symbol, timestamp, confidence_score, "
            "direction, mode) VALUES (?, '2099-01-01 00:00:00', 0.9, 'BUY', "
            "'TRADING')",
            (SYMBOL,),
        )
        started = datetime.now()
        assert len(data.confidence_trend(reader, [SYMBOL], None)) == before  # ... reads go on
        assert data.mode_status(reader, [SYMBOL], None)[0].mode
        assert datetime.now() - started < timedelta(seconds=2)
        with reader.connect() as conn:  # a reader in the middle of a read transaction ...
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("SELECT COUNT(*) FROM confidence_history").fetchall()
            writer.execute("COMMIT")  # ... does not stop the writer committing
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("DELETE FROM confidence_history WHERE timestamp = '2099-01-01 00:00:00'")
            writer.execute("COMMIT")
        assert len(data.confidence_trend(reader, [SYMBOL], None)) == before
    finally:
        reader.dispose()
        writer.close()
