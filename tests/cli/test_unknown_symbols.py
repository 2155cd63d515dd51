"""Every option naming one symbol refuses an unknown one, listing the known symbols."""

from __future__ import annotations

from pathlib import Path

import pytest

from candlewise.cli.main import run

COMMANDS = [
    ["monitor", "--once"],
    ["monitor", "--report"],
    ["train"],
    ["train", "--interval", "1h"],
    ["retrain", "--interval", "1h"],
    ["models", "list"],
    ["models", "rollback", "--interval", "1h"],
    ["deploy", "--phase", "1", "--duration", "1m", "--feed", "simulated"],
]


@pytest.fixture
def store(workdir: Path) -> Path:
    """The default store, with candles of SOL/USDT (not in the built-in config's symbols)."""
    argv = ["data", "simulate", "--symbols", "SOL/USDT", "--days", "0.05"]
    assert run(argv) == 0
    return workdir


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unknown_symbol_is_named_with_the_known_ones(store: Path, capsys, command) -> None:
    capsys.readouterr()
    assert run([*command, "--symbol", "DOGE/XYZ"]) == 2
    err = capsys.readouterr().err
    assert "Error: unknown symbol DOGE/XYZ: it is not in the config's symbols " in err
    assert "Hint: known symbols: BTC/USDT, ETH/USDT, SOL/USDT." in err
    assert "Traceback" not in err


def test_a_stored_symbol_outside_the_config_is_known(store: Path, capsys) -> None:
    capsys.readouterr()
    assert run(["models", "list", "--symbol", "SOL/USDT"]) == 0
    assert run(["monitor", "--once", "--symbol", "SOL/USDT"]) == 0
    assert "unknown symbol" not in capsys.readouterr().err


def test_validate_paper_symbols_are_checked_too(store: Path, capsys) -> None:
    argv = ["validate-paper", "--symbols", "BTC/USDT,DOGE/XYZ", "--duration", "5m"]
    assert run([*argv, "--speed", "max"]) == 2
    err = capsys.readouterr().err
    assert "unknown symbol DOGE/XYZ" in err and "known symbols: BTC/USDT, ETH/USDT, SOL/USDT" in err
    assert not (store / "validation_results").exists()


def test_validate_paper_before_any_model_is_trained(store: Path, capsys) -> None:
    """It copied models/ into its sandbox and crashed when there was none yet."""
    argv = ["validate-paper", "--symbols", "SOL/USDT", "--duration", "5m", "--speed", "max"]
    assert run(argv) in (0, 1)
    captured = capsys.readouterr()
    assert "Verdict:" in captured.out and "Traceback" not in captured.err


@pytest.mark.parametrize(("argv", "listed"), [
    (["backtest", "--feed", "replay", "--db", "data/b.db"], "(symbols stored there: SOL/USDT)"),
    (["data", "stream", "--feed", "replay", "--duration", "1h"], "(symbols stored: SOL/USDT)"),
])  # fmt: skip
def test_replaying_an_unstored_symbol_lists_the_stored_ones(
    store: Path, capsys, argv: list[str], listed: str
) -> None:
    capsys.readouterr()
    assert run([*argv, "--symbols", "DOGE/XYZ"]) == 2
    err = capsys.readouterr().err
    assert "DOGE/XYZ" in err and listed in err
