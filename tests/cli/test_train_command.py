"""Training from the command line, as the guide runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from candlewise.cli.main import run

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

REPO = Path(__file__).resolve().parents[2]
EPOCH_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] Epoch \d+/50: Loss=\d\.\d{4}, Val Acc=\d+\.\d\d%, "
                        r"Val Conf=\d+\.\d\d%$")  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with 240 simulated days of BTC/USDT and all six models trained by the guide's
    command (``python src/multi_currency_system.py --train --symbol BTC/USDT``)."""
    root = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "CANDLEWISE_DATABASE_URL": f"sqlite:///{root / 'trading.db'}"}
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", "BTC/USDT", "--days", "240"],
                   cwd=root, env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(REPO / "src" / "multi_currency_system.py"), "--train",
         "--symbol", "BTC/USDT"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (root / "stdout.txt").write_text(proc.stdout)
    return root


def test_guide_command_trains_six_models_with_epoch_lines(trained: Path) -> None:
    assert sorted(p.name for p in (trained / "models").glob("*.pt")) == sorted(
        f"BTC_USDT_{tf}.pt" for tf in ("1m", "5m", "15m", "1h", "4h", "1d")
    )
    log = (trained / "logs" / "production_deployment.log").read_text().splitlines()
    assert any(EPOCH_LINE.match(line) for line in log)
    assert any(re.search(r"\[BTC/USDT_4h\] Training data: \d+ train, \d+ val$", ln) for ln in log)
    out = (trained / "stdout.txt").read_text()
    assert out.count(" saved to models/BTC_USDT_") == 6 and "val acc" in out


def test_one_interval_and_models_list(trained: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", f"sqlite:///{trained / 'trading.db'}")
    assert run(["train", "--symbol", "BTC/USDT", "--interval", "4h"]) == 0
    assert run(["models", "list", "--symbol", "BTC/USDT"]) == 0
    out = capsys.readouterr().out
    assert "v2" in out and out.count("BTC/USDT") >= 7
    assert run(["models", "rollback", "--symbol", "BTC/USDT", "--interval", "4h"]) == 0
    assert "rolled back from v2 to v1" in capsys.readouterr().out


def test_too_little_data_says_how_much_and_how_to_get_it(workdir: Path, capsys) -> None:
    assert run(["data", "simulate", "--symbols", "ETH/USDT", "--days", "2"]) == 0
    assert run(["train", "--symbol", "ETH/USDT"]) == 2
    err = capsys.readouterr().err
    assert "✗ ETH/USDT 1d: 1 candles stored, at least 231 needed (about 231 days)" in err
    assert "candlewise data simulate --symbols ETH/USDT --days 232" in err
    assert (workdir / "models" / "ETH_USDT_1m.pt").exists()  # what could be trained was


def test_script_needs_train_flag() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "src" / "multi_currency_system.py"), "--symbol", "BTC/USDT"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "pass --train" in proc.stderr


def test_full_training_saves_a_signal_calibration_fitted_out_of_sample(trained: Path) -> None:
    from candlewise.signals.calibration_file import load_calibration

    calibration = load_calibration(trained / "models", "BTC/USDT")
    assert calibration is not None
    assert set(calibration.calibrators) >= {"1m", "5m", "15m", "1h"}
    assert all(n >= 200 for n in calibration.events.values())
    assert calibration.heldout_events > 1000
    assert calibration.heldout_ece is not None and calibration.heldout_ece < 0.08
    assert "signal calibration:" in (trained / "stdout.txt").read_text()


NEW_SYMBOL_CONFIG = """symbols: [BTC/USDT, SOL/USDT]
timeframes:
  intervals:
    - {interval: 15m, weight: 0.5}
    - {interval: 1h, weight: 0.5}
data:
  feed: FEED
"""


def test_a_symbol_just_added_is_simulated_first_then_trained(workdir: Path) -> None:
    """The guide's phase 3 step: add a symbol to ``symbols``, train it (was: 0 candles)."""
    (workdir / "config.yaml").write_text(NEW_SYMBOL_CONFIG.replace("FEED", "simulated"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "src" / "multi_currency_system.py"), "--train",
         "--symbol", "SOL/USDT"],
        cwd=workdir, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # enough for the longest configured timeframe: 231 1h candles = 9.6 days, +1
    assert "No SOL/USDT candles stored yet: simulating 11 days of its history first" in proc.stdout
    assert "✓ SOL/USDT: 15,840 simulated 1m candles (seed 42)" in proc.stdout
    assert sorted(p.name for p in (workdir / "models").glob("*.pt")) == [
        "SOL_USDT_15m.pt", "SOL_USDT_1h.pt"]  # fmt: skip


@pytest.mark.parametrize(("feed", "command"), [
    ("binance", "candlewise data download --symbol SOL/USDT --timeframe 1m --days 11"),
    ("replay", "candlewise data import FILE --symbol SOL/USDT --timeframe 1m"),
])  # fmt: skip
def test_with_a_real_feed_the_exact_command_is_named(
    workdir: Path, capsys, feed: str, command: str
) -> None:
    (workdir / "config.yaml").write_text(NEW_SYMBOL_CONFIG.replace("FEED", feed))
    assert run(["train", "--symbol", "SOL/USDT"]) == 2
    err = capsys.readouterr().err
    assert f"no SOL/USDT candles stored yet (data.feed is {feed})" in err
    assert f"with: {command}; then train again" in err
    assert not (workdir / "models").exists()
