"""``deployment:`` in config.yaml: documented defaults, validated like every other section."""

from __future__ import annotations

from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.config.app_config import AppConfig
from candlewise.config.loader import ConfigError, load_config

#: The section with every default spelled out, as config.yaml may show it.
DEPLOYMENT_YAML = """\
deployment:
  phase1_duration: 24h      # phase 1 runs this long, then validates itself
  stagger: 30s              # pause between two symbols deployed in phase 3
  health_check_minutes: 60  # candle-time minutes between two health checks
  validation:               # phase 1 passes with min_criteria of these five
    win_rate: 0.50          # closed trades won, fraction: at least
    max_drawdown: 15.0      # PERCENT: at most
    error_rate: 0.05        # errors per handled candle: below
    profitability: 0.0      # P&L in USDT: above
    stability: 2.0          # mode transitions per hour: below
    min_criteria: 4
  health:                   # while running (drawdown: risk.max_drawdown_percent -> rollback)
    win_rate: 0.40          # judged from min_trades closed trades on
    min_trades: 20
    error_rate: 0.05        # over the last hour: below
    stability: 2.0          # transitions per hour over the last hour: below
    uptime: 0.95            # share of minutes handled: above
"""


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_defaults() -> None:
    d = AppConfig().deployment
    assert (d.phase1_duration, d.phase1_duration_ms) == ("24h", 86_400_000)
    assert (d.stagger, d.stagger_ms) == ("30s", 30_000)
    assert d.health_check_minutes == 60
    v = d.validation
    assert (v.win_rate, v.max_drawdown, v.error_rate, v.profitability, v.stability) == (
        0.50,
        15.0,
        0.05,
        0.0,
        2.0,
    )
    assert v.min_criteria == 4
    h = d.health
    assert (h.win_rate, h.min_trades, h.error_rate, h.stability, h.uptime) == (
        0.40,
        20,
        0.05,
        2.0,
        0.95,
    )


def test_the_spelled_out_section_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DEPLOYMENT_YAML)
    assert load_config(path) == AppConfig()
    path.write_text("deployment:\n")
    assert load_config(path) == AppConfig()


def test_config_check_explains_a_percent_given_for_a_fraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("deployment:\n  health:\n    uptime: 95\n")
    assert run(["config", "check", "--config", str(path)]) == 2
    out = capsys.readouterr().out
    assert (
        "  ✗ deployment.health.uptime: 95 — uptime is a fraction (0 <= x < 1), not a percent; "
        "did you mean 0.95?"
    ) in out
    path.write_text(DEPLOYMENT_YAML)
    assert run(["config", "check", "--config", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "✓ Configuration valid"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "deployment:\n  validation:\n    max_drawdown: 0.15\n",
            "deployment.validation.max_drawdown: 0.15 — max_drawdown is in percent; 0.15 means "
            "0.15 %. Did you mean 15?",
        ),
        (
            "deployment:\n  validation:\n    min_criteria: 6\n",
            "deployment.validation.min_criteria: 6 — input should be less than or equal to 5",
        ),
        (
            "deployment:\n  phase1_duration: 24\n",
            "deployment.phase1_duration: 24 — wrong type: input should be a valid string",
        ),
        (
            "deployment:\n  phase1_duration: 1 day\n",
            "deployment.phase1_duration: '1 day' — invalid duration '1 day': use a positive "
            "number and a unit, e.g. 24h, 90m, 2d, 30s",
        ),
        (
            "deployment:\n  healt:\n    uptime: 0.9\n",
            "deployment.healt: unknown key 'healt'; did you mean 'health'?",
        ),
        (
            "deployment:\n  health:\n    win_rate: 40\n",
            "deployment.health.win_rate: 40 — win_rate is a fraction (0 <= x <= 1), not a "
            "percent; did you mean 0.4?",
        ),
        (
            "deployment:\n  health_check_minutes: 0\n",
            "deployment.health_check_minutes: 0 — input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_values_are_explained(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(tmp_path, text) == [expected]


def test_stagger_may_be_zero(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("deployment:\n  stagger: 0s\n  phase1_duration: 90m\n")
    d = load_config(path).deployment
    assert (d.stagger_ms, d.phase1_duration_ms) == (0, 90 * 60_000)
    assert problems_of(tmp_path, "deployment:\n  phase1_duration: 0s\n") == [
        "deployment.phase1_duration: '0s' — invalid duration '0s': use a positive number and a "
        "unit, e.g. 24h, 90m, 2d, 30s"
    ]
