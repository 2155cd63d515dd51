"""``candlewise config check``: one clear line per problem, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from candlewise.cli.main import run

REPO = Path(__file__).resolve().parents[2]

BAD_CONFIGS = {
    "wrong_type": (
        "risk:\n  max_drawdown_percent: lots\n",
        ["risk.max_drawdown_percent: 'lots'", "wrong type", "valid number"],
    ),
    "unknown_key": (
        "risk:\n  max_drawdwn_percent: 10\n",
        ["risk.max_drawdwn_percent", "unknown key", "did you mean 'max_drawdown_percent'?"],
    ),
    "unknown_top_level": (
        "simbols: [BTC/USDT]\n",
        ["simbols", "unknown key", "did you mean 'symbols'?"],
    ),
    "unknown_timeframe": (
        "timeframes:\n  intervals:\n    - interval: 2h\n      weight: 1.0\n",
        ["timeframes.intervals[0].interval", "unknown timeframe '2h'", "1m, 5m, 15m, 1h, 4h, 1d"],
    ),
    "malformed_symbol": (
        "symbols: [btc-usdt, BTC/USDT]\n",
        ["symbols", "malformed symbol 'btc-usdt'", "'BTC/USDT'"],
    ),
    "weights_not_one": (
        "timeframes:\n  intervals:\n    - interval: 1h\n      weight: 0.5\n"
        "    - interval: 4h\n      weight: 0.3\n",
        ["timeframes", "weights must sum to 1.0 but sum to 0.8", "1h=0.5 + 4h=0.3"],
    ),
    "percent_as_fraction": (
        "risk:\n  daily_loss_limit: 5\n",
        ["risk.daily_loss_limit: 5", "not a percent", "did you mean 0.05?"],
    ),
    "position_percent": (
        "risk:\n  max_position_size_percent: 10\n",
        ["risk.max_position_size_percent: 10", "did you mean 0.1?"],
    ),
    "hysteresis_above_threshold": (
        "continuous_learning:\n  confidence:\n    trading_threshold: 0.8\n    hysteresis: 0.85\n",
        ["continuous_learning.confidence", "hysteresis (0.85) must be smaller than"],
    ),
    "yaml_syntax": (
        "risk:\n  daily_loss_limit: 0.05\n max_drawdown_percent: [15\n",
        ["YAML syntax error at line 3, column 2"],
    ),
    "bad_mode": (
        "live_trading:\n  mode: real\n",
        ["live_trading.mode: 'real'", "'paper' or 'live'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_explained(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code = run(["config", "check", "--config", str(path)])
    out = capsys.readouterr()
    assert code == 2
    shown = out.out + out.err
    assert "Traceback" not in shown
    problem_lines = [ln for ln in shown.splitlines() if ln.strip().startswith("✗ ") and ":" in ln]
    assert len(problem_lines) >= 2, shown  # the header and at least one problem
    for fragment in expected:
        assert fragment in shown, f"{fragment!r} missing from:\n{shown}"


def test_every_problem_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("risk:\n  daily_loss_limit: 5\n  max_drawdwn_percent: 3\nsymbols: [BTCUSDT]\n")
    assert run(["config", "check", "--config", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.count("  ✗ ") == 3


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["config", "check", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().out


def test_repository_config_is_valid_and_equals_the_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from candlewise.config import AppConfig
    from candlewise.config_loader import load_config

    assert run(["config", "check", "--config", str(REPO / "config.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "✓ Configuration valid"
    assert load_config(REPO / "config.yaml") == AppConfig()


def test_secret_in_config_is_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("exchange:\n  api_secret: PLANTED-SECRET-9f8e7d\n")
    assert run(["config", "check", "--config", str(path)]) == 2
    out = capsys.readouterr().out
    assert "PLANTED-SECRET-9f8e7d" not in out
    assert "secrets belong in .env" in out


def test_console_script_exit_code_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("risk:\n  daily_loss_limit: 5\n")
    exe = Path(sys.executable).with_name("candlewise")
    proc = subprocess.run(
        [str(exe), "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "did you mean 0.05?" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
