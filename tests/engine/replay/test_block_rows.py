"""The typed rows the block walk and the event path share: one record per table, in the
order of the columns the outbox inserts."""

from __future__ import annotations

from candlewise.signals.aggregate import TimeframePrediction
from candlewise.store.outbox import COLUMNS, EquitySample
from candlewise.store.signal_store import PredictionRow, SignalRow, prediction_row, prediction_rows
from candlewise.store.tables import confidence_history, equity_history, timeframe_predictions


def test_each_record_has_its_tables_columns_in_order() -> None:
    assert PredictionRow._fields == COLUMNS[timeframe_predictions]
    assert SignalRow._fields == COLUMNS[confidence_history]
    assert EquitySample._fields == COLUMNS[equity_history]


def test_one_prediction_and_a_block_of_them_give_the_same_records() -> None:
    made = [TimeframePrediction("BTC/USDT", "5m", 1_700_000_100_000, p, 3) for p in (0.3, 0.5, 0.9)]
    one_by_one = [prediction_row(p) for p in made]
    texts = [r.timestamp for r in one_by_one]
    at_once = prediction_rows("BTC/USDT", "5m", texts, [p.p_up for p in made], 3)
    assert at_once == one_by_one and all(type(r) is tuple for r in at_once)  # plain: cheap
    assert [(r.direction, r.confidence) for r in map(PredictionRow._make, at_once)] == [
        (p.direction, p.confidence) for p in made
    ]
