"""One typed row per table: its fields are the table's columns, and the outbox (both replay
paths) stores the same rows as the single-row writers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, select

from candlewise.config.app_config import PaperConfig, RiskConfig
from candlewise.core.candle import Candle
from candlewise.signals.aggregate import Signal
from candlewise.store.db import open_store
from candlewise.store.outbox import COLUMNS, EquitySample, Outbox
from candlewise.store.tables import (
    equity_history,
    positions,
    shadow_trades,
    trade_outcomes,
)
from candlewise.store.trade_store import (
    PositionExit,
    PositionRow,
    ScoredTrade,
    TradeOutcome,
    record_close,
    record_open,
    record_shadow,
)
from candlewise.trading.paper_broker import PaperBroker
from candlewise.trading.positions import ClosedTrade, Position

T = 1_735_689_600_000


@pytest.mark.parametrize(
    ("record", "table"),
    [(ScoredTrade, shadow_trades), (TradeOutcome, trade_outcomes), (EquitySample, equity_history)],
)
def test_each_record_has_its_tables_columns_in_order(record: type, table: Table) -> None:
    assert record._fields == COLUMNS[table]


def test_position_records_name_position_columns() -> None:
    names = {c.name for c in positions.columns}
    assert set(PositionRow._fields) <= names and set(PositionExit._fields) <= names


def _trades() -> tuple[list[Position], list[ClosedTrade]]:
    broker = PaperBroker(PaperConfig(), RiskConfig())
    opened = [
        broker.on_signal(Signal("BTC/USDT", tf, T, d, 0.8, 0.8, 0.8, (tf,), True), 100.0).opened
        for tf, d in (("1m", "BUY"), ("5m", "SELL"))
    ]
    closed: list[ClosedTrade] = []
    for i in range(5):
        closed += broker.on_candle(
            Candle("BTC/USDT", "1m", T + i * 60_000, 100.0, 100.5, 99.5, 100.2 + i, 1.0)
        )
    assert all(opened) and len(closed) == 2
    return [p for p in opened if p is not None], closed


def _stored(engine: Engine) -> list[list[tuple]]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
            for t in (positions, trade_outcomes, shadow_trades)
        ]


def test_the_outbox_stores_what_the_single_row_writers_store(tmp_path: Path) -> None:
    opened, closed = _trades()
    direct = open_store(f"sqlite:///{tmp_path / 'direct.db'}")
    batched = open_store(f"sqlite:///{tmp_path / 'batched.db'}")
    try:
        with direct.begin() as conn:
            for p in opened:
                record_open(conn, p, "paper")
            for t in closed:
                record_close(conn, t)
                record_shadow(conn, t)
        outbox = Outbox()
        for p in opened:
            outbox.open_position(p, "paper")
        for t in closed:
            outbox.close_trade(t)
            outbox.shadow_trade(t)
        with batched.begin() as conn:
            outbox.flush(conn)
        assert _stored(batched) == _stored(direct)
        assert all(_stored(direct))
    finally:
        direct.dispose()
        batched.dispose()
