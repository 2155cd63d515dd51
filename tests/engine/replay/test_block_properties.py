"""Property: for any configuration of the fields the block path supports (``block_support``:
``WALKED``) and any short window of the simulated market, the block replay and the event path
store the same rows, write the same log lines and end with the same ledger.

The three fixed scenarios of ``test_block_equality`` cover the rare events; this draws the
thresholds, costs, sizes and limits at random, so a rule one path applies and the other does not
shows up on some draw. Bounded for CI: few examples, hours of market, one tiny training set,
derandomized (the same draws on every run, no example database)."""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from candlewise.engine.replay.block_support import CONFIG_SUPPORT, Support
from tests.engine.replay.test_block_equality import _compare

pytestmark = pytest.mark.slow

_runs = count()


def _between(low: float, high: float) -> st.SearchStrategy[float]:
    """A float as a person would write it in config.yaml (5 decimals)."""
    return st.floats(low, high).map(lambda x: round(x, 5))


@st.composite
def _configs(draw: st.DrawFn) -> dict:
    """A config.yaml (as JSON, which YAML reads) over the walked fields, in sensible ranges."""
    threshold = draw(_between(0.505, 0.58))
    hysteresis = round((threshold - 0.5) * draw(st.floats(0.0, 0.9)), 5)  # exit above 0.5
    one_minute = draw(st.sampled_from([1.0, 0.7, 0.5, 0.3]))
    intervals = [{"interval": "1m", "weight": one_minute}]
    if one_minute < 1.0:  # 15m has too little history to train: a weight without predictions
        second = draw(st.sampled_from(["5m", "15m"]))
        intervals.append({"interval": second, "weight": round(1.0 - one_minute, 6)})
    return {
        "symbols": draw(st.sampled_from([["BTC/USDT"], ["BTC/USDT", "ETH/USDT"]])),
        "models": {"max_samples": 400},  # ``AROUND``: only keeps the training small
        "live_trading": {"enabled": draw(st.booleans())},
        "continuous_learning": {
            "confidence": {
                "trading_threshold": threshold,
                "hysteresis": hysteresis,
            }
        },
        "risk": {
            "max_drawdown_percent": draw(_between(1.0, 20.0)),
            "daily_loss_limit": draw(_between(0.003, 0.1)),
            "max_position_size_percent": draw(_between(0.02, 0.6)),
            "stop_loss": draw(_between(0.0005, 0.03)),
            "max_total_exposure": draw(_between(0.2, 1.0)),
        },
        "paper": {
            "starting_balance": draw(st.sampled_from([1_000.0, 10_000.0, 250_000.0])),
            "fee_rate": draw(_between(0.0, 0.004)),
            "slippage": draw(_between(0.0, 0.002)),
        },
        "timeframes": {"intervals": intervals},
    }


def _leaves(config: dict, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in config.items():
        if isinstance(value, dict):
            found |= _leaves(value, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


@settings(max_examples=5, derandomize=True, database=None)
@given(config=_configs())
def test_the_drawn_fields_are_the_walked_ones(config: dict) -> None:
    drawn = _leaves(config)
    walked = {p for p, s in CONFIG_SUPPORT.items() if s is Support.WALKED}
    assert drawn - {"models.max_samples"} <= walked
    assert walked - drawn == {"live_trading.mode"}  # a backtest's broker is paper either way


@pytest.mark.timeout(900)
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failing draw is printed as is
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    config=_configs(),
    seed=st.integers(0, 10_000),
    hours=st.sampled_from(["0.1", "0.2", "0.3"]),  # days: 2.4 to 7.2 hours
)
def test_any_supported_config_gives_the_same_run_both_ways(
    tmp_path: Path, monkeypatch, capsys, config: dict, seed: int, hours: str
) -> None:
    folder = tmp_path / f"draw{next(_runs)}"
    folder.mkdir()
    _, rows = _compare(
        folder, json.dumps(config), hours, monkeypatch, capsys, seed=str(seed), warmup="1"
    )
    assert rows["confidence_history"], "a window without signals compares nothing"
