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
    "duplicate_section": (
        "risk:\n  stop_loss: 0.03\nsymbols: [BTC/USDT]\nrisk:\n  daily_loss_limit: 0.04\n",
        ["risk: duplicate key 'risk' at lines 1 and 4", "merge them into one section"],
    ),
    "duplicate_nested_key": (
        "continuous_learning:\n  retraining:\n    patience: 5\n    max_epochs: 9\n"
        "    patience: 7\n",
        [
            "continuous_learning.retraining.patience: duplicate key 'patience' at lines 3 and 5",
            "delete all but one",
        ],
    ),
    "trading_threshold_percent": (
        "continuous_learning:\n  confidence:\n    trading_threshold: 80\n",
        [
            "continuous_learning.confidence.trading_threshold: 80",
            "not a percent",
            "did you mean 0.8?",
        ],
    ),
    "hysteresis_percent": (
        "continuous_learning:\n  confidence:\n    hysteresis: 5\n",
        ["continuous_learning.confidence.hysteresis: 5", "not a percent", "did you mean 0.05?"],
    ),
    "fee_rate_percent": (
        "paper:\n  fee_rate: 10\n",
        ["paper.fee_rate: 10", "not a percent", "10 % would be 0.1, which is out of range too"],
    ),
    "fee_rate_given_in_percent_units": (
        "paper:\n  fee_rate: 0.1\n",
        ["paper.fee_rate: 0.1", "(0 <= x < 0.05), not a percent", "did you mean 0.001?"],
    ),
    "weight_percent": (
        "timeframes:\n  intervals:\n    - interval: 1h\n      weight: 30\n"
        "    - interval: 4h\n      weight: 70\n",
        ["timeframes.intervals[0].weight: 30", "did you mean 0.3?", "did you mean 0.7?"],
    ),
    "max_epochs_quoted": (
        'continuous_learning:\n  retraining:\n    max_epochs: "50"\n',
        [
            "continuous_learning.retraining.max_epochs: '50'",
            "wrong type",
            "valid integer",
            "remove the quotes",
        ],
    ),
    "enabled_quoted": (
        'live_trading:\n  enabled: "yes"\n',
        ["live_trading.enabled: 'yes'", "wrong type", "valid boolean", "write true or false"],
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
    from candlewise.config.app_config import AppConfig
    from candlewise.config.loader import load_config

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


def test_duplicate_key_lines_are_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("risk:\n  stop_loss: 0.03\nsymbols: [BTC/USDT]\nrisk:\n  stop_loss: 0.04\n")
    assert run(["config", "check", "--config", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.splitlines()[1:] == [
        "  ✗ risk: duplicate key 'risk' at lines 1 and 4; YAML would silently keep only the "
        "last one: merge them into one section"
    ]


def test_show_masks_passwords(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "config.yaml").write_text(
        "database:\n  url: postgresql://cw:db-pass-4242@db:5432/cw\n"
        "exchange:\n  rest_url: https://user:proxy-pass-77@proxy.example/api\n"
    )
    assert run(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "db-pass-4242" not in out and "proxy-pass-77" not in out
    assert "url: postgresql://cw:***@db:5432/cw" in out
    assert "rest_url: https://user:***@proxy.example/api" in out

    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", "postgresql://env:env-pass-99@h/x")
    assert run(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "env-pass-99" not in out
    assert "url: postgresql://env:***@h/x" in out


def test_show_masks_env_secrets_pasted_into_the_config(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / ".env").write_text("BINANCE_API_KEY=PLANTED-KEY-5c4b3a\n")
    (workdir / "config.yaml").write_text(
        "exchange:\n  rest_url: https://proxy.example/api?key=PLANTED-KEY-5c4b3a\n"
    )
    assert run(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "PLANTED-KEY-5c4b3a" not in out
    assert "rest_url: https://proxy.example/api?key=***" in out


def test_show_of_an_invalid_config_lists_the_same_problems_as_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("risk:\n  stop_loss: 5\npaper:\n  fee_rate: 10\n")
    assert run(["config", "check", "--config", str(path)]) == 2
    checked = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ✗ ")]
    assert run(["config", "show", "--config", str(path)]) == 2
    out = capsys.readouterr()
    shown = [ln for ln in out.err.splitlines() if ln.startswith("  ✗ ")]
    assert len(checked) == 2
    assert shown == checked
    assert "Traceback" not in out.out + out.err
    assert "starting_balance" not in out.out  # nothing of the config is printed
