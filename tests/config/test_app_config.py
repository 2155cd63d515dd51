"""``load_config``: duplicate keys, percent-for-fraction hints, empty sections, strict types.

Also ``--symbols`` (``split_symbols``), whose default is ``config.symbols``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.config.app_config import AppConfig
from candlewise.config.loader import ConfigError, load_config


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def loaded(tmp_path: Path, text: str) -> AppConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path)


# --- 1. duplicate keys ------------------------------------------------------------------------


def test_duplicate_top_level_section_names_both_lines(tmp_path: Path) -> None:
    text = "risk:\n  stop_loss: 0.03\nsymbols: [BTC/USDT]\nrisk:\n  daily_loss_limit: 0.04\n"
    assert problems_of(tmp_path, text) == [
        "risk: duplicate key 'risk' at lines 1 and 4; YAML would silently keep only the last "
        "one: merge them into one section"
    ]


def test_duplicate_nested_and_list_item_keys_are_all_reported(tmp_path: Path) -> None:
    text = (
        "continuous_learning:\n"  # 1
        "  confidence:\n"  # 2
        "    hysteresis: 0.05\n"  # 3
        "    hysteresis: 0.06\n"  # 4
        "timeframes:\n"  # 5
        "  intervals:\n"  # 6
        "    - interval: 1h\n"  # 7
        "      weight: 0.5\n"  # 8
        "    - interval: 4h\n"  # 9
        "      weight: 0.5\n"  # 10
        "      weight: 0.4\n"  # 11
        "      weight: 0.3\n"  # 12
    )
    assert problems_of(tmp_path, text) == [
        "continuous_learning.confidence.hysteresis: duplicate key 'hysteresis' at lines 3 and 4; "
        "YAML would silently keep only the last one: delete all but one",
        "timeframes.intervals[1].weight: duplicate key 'weight' at lines 10, 11 and 12; "
        "YAML would silently keep only the last one: delete all but one",
    ]


def test_same_key_in_different_sections_or_list_items_is_fine(tmp_path: Path) -> None:
    text = (
        "data:\n  seed: 1\nmodels:\n  seed: 2\n"
        "timeframes:\n  intervals:\n    - {interval: 1h, weight: 0.5}\n"
        "    - {interval: 4h, weight: 0.5}\n"
    )
    cfg = loaded(tmp_path, text)
    assert (cfg.data.seed, cfg.models.seed) == (1, 2)
    assert cfg.timeframes.weights == {"1h": 0.5, "4h": 0.5}


def test_yaml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path, "risk:\n  daily_loss_limit: 0.05\n max_drawdown_percent: [15\n"
    )
    assert problem.startswith("YAML syntax error at line 3, column 2: ")


def test_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    text = (
        "paper: &p\n  fee_rate: 0.002\n  slippage: 0.001\n"
        "continuous_learning:\n  confidence: {trading_threshold: 0.9, hysteresis: 0.05}\n"
        "  retraining:\n    <<: {patience: 3, max_epochs: 9}\n    patience: 4\n"
    )
    cfg = loaded(tmp_path, text)
    assert cfg.paper.fee_rate == 0.002
    assert (
        cfg.continuous_learning.retraining.patience,
        cfg.continuous_learning.retraining.max_epochs,
    ) == (4, 9)


# --- 2. a percent where a fraction is expected ------------------------------------------------

PERCENT_HINTS = [
    (
        "continuous_learning:\n  confidence:\n    trading_threshold: 80\n",
        "continuous_learning.confidence.trading_threshold: 80",
        "0.8",
    ),
    (
        "continuous_learning:\n  confidence:\n    hysteresis: 5\n",
        "continuous_learning.confidence.hysteresis: 5",
        "0.05",
    ),
    (
        "continuous_learning:\n  retraining:\n    target_confidence: 90\n",
        "continuous_learning.retraining.target_confidence: 90",
        "0.9",
    ),
    (
        "continuous_learning:\n  retraining:\n    drift_threshold: 70\n",
        "continuous_learning.retraining.drift_threshold: 70",
        "0.7",
    ),
    ("paper:\n  fee_rate: 1\n", "paper.fee_rate: 1", "0.01"),
    ("paper:\n  slippage: 2\n", "paper.slippage: 2", "0.02"),
    ("risk:\n  max_total_exposure: 80\n", "risk.max_total_exposure: 80", "0.8"),
    ("risk:\n  daily_loss_limit: 5\n", "risk.daily_loss_limit: 5", "0.05"),
    ("risk:\n  max_position_size_percent: 10\n", "risk.max_position_size_percent: 10", "0.1"),
    ("risk:\n  stop_loss: 2\n", "risk.stop_loss: 2", "0.02"),
    (
        "timeframes:\n  intervals:\n    - {interval: 1h, weight: 30}\n"
        "    - {interval: 4h, weight: 0.7}\n",
        "timeframes.intervals[0].weight: 30",
        "0.3",
    ),
]


@pytest.mark.parametrize(("text", "start", "fraction"), PERCENT_HINTS)
def test_every_fraction_field_suggests_the_fraction(
    tmp_path: Path, text: str, start: str, fraction: str
) -> None:
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(f"{start} — ")
    assert problem.endswith(f", not a percent; did you mean {fraction}?")


def test_fraction_hint_exact_text(tmp_path: Path) -> None:
    assert problems_of(
        tmp_path, "continuous_learning:\n  confidence:\n    trading_threshold: 80\n"
    ) == [
        "continuous_learning.confidence.trading_threshold: 80 — trading_threshold is a fraction "
        "(0.5 < x < 1), not a percent; did you mean 0.8?"
    ]


def test_no_hint_suggests_a_value_that_is_invalid_too(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "paper:\n  fee_rate: 10\n") == [
        "paper.fee_rate: 10 — fee_rate is a fraction (0 <= x < 0.05), not a percent; "
        "10 % would be 0.1, which is out of range too"
    ]
    assert problems_of(
        tmp_path, "continuous_learning:\n  confidence:\n    trading_threshold: 0.3\n"
    ) == [
        "continuous_learning.confidence.trading_threshold: 0.3 — trading_threshold must be a "
        "fraction (0.5 < x < 1)"
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("continuous_learning:\n  confidence:\n    trading_threshold: 0.5\n", "(0.5 < x < 1)"),
        ("continuous_learning:\n  confidence:\n    trading_threshold: 1.0\n", "(0.5 < x < 1)"),
        ("continuous_learning:\n  confidence:\n    hysteresis: -0.01\n", "(0 <= x < 1)"),
        ("continuous_learning:\n  retraining:\n    target_confidence: 0.5\n", "(0.5 < x < 1)"),
        ("continuous_learning:\n  retraining:\n    drift_threshold: 0\n", "(0 < x <= 1)"),
        ("paper:\n  fee_rate: 0.05\n", "(0 <= x < 0.05)"),
        ("paper:\n  slippage: -0.001\n", "(0 <= x < 0.05)"),
        ("risk:\n  max_total_exposure: 0\n", "(0 < x <= 1)"),
        ("risk:\n  stop_loss: 0\n", "(0 < x < 1)"),
        ("timeframes:\n  intervals:\n    - {interval: 1h, weight: -0.5}\n", "(0 <= x <= 1)"),
        ("timeframes:\n  intervals:\n    - {interval: 1h, weight: 101}\n", "(0 <= x <= 1)"),
    ],
)
def test_fraction_bounds_are_kept(tmp_path: Path, text: str, fragment: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        "continuous_learning:\n  retraining:\n    drift_threshold: 1\n",
        "risk:\n  max_total_exposure: 1\n",
        "paper:\n  fee_rate: 0\n  slippage: 0\n",
        "continuous_learning:\n  confidence:\n    trading_threshold: 0.95\n    hysteresis: 0\n",
    ],
)
def test_fraction_bounds_inclusive_ends_are_valid(tmp_path: Path, text: str) -> None:
    loaded(tmp_path, text)


def test_drawdown_given_as_a_fraction_keeps_its_hint(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "risk:\n  max_drawdown_percent: 0.15\n") == [
        "risk.max_drawdown_percent: 0.15 — max_drawdown_percent is in percent; 0.15 means "
        "0.15 %. Did you mean 15?"
    ]


def test_nan_and_infinity_are_rejected(tmp_path: Path) -> None:
    assert problems_of(
        tmp_path, "risk:\n  stop_loss: .nan\npaper:\n  starting_balance: .inf\n"
    ) == [
        "risk.stop_loss: nan — input should be a finite number",
        "paper.starting_balance: inf — input should be a finite number",
    ]


# --- 3. empty sections and files mean the defaults --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# everything commented out\n# risk:\n#   stop_loss: 0.02\n",
        "risk:\n  # max_drawdown_percent: 15.0\n  # stop_loss: 0.02\n",
        "risk:\ncontinuous_learning:\n  confidence:\n  retraining:\npaper: null\n",
        "continuous_learning:\n",
    ],
)
def test_empty_file_or_section_means_defaults(tmp_path: Path, text: str) -> None:
    assert loaded(tmp_path, text) == AppConfig()


def test_empty_section_via_the_cli_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("risk:\n  # stop_loss: 0.02\nlogging:\n")
    assert run(["config", "check", "--config", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "✓ Configuration valid"


def test_empty_section_with_database_url_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", "sqlite:///other.db")
    assert loaded(tmp_path, "database:\n").database.url == "sqlite:///other.db"


def test_malformed_database_section_with_url_override_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", "sqlite:///other.db")
    assert problems_of(tmp_path, "database: 5\n") == [
        "database: expected a section (indented keys below it), got 5"
    ]


def test_empty_scalar_or_list_is_an_error_naming_the_default(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "risk:\n  stop_loss:\nsymbols:\n") == [
        "risk.stop_loss: no value given (empty or null); write a value, or delete the key to "
        "use the default (0.02)",
        "symbols: no value given (empty or null); write a value, or delete the key to use the "
        "default (['BTC/USDT', 'ETH/USDT'])",
    ]


# --- 4. strict types --------------------------------------------------------------------------


def test_quoted_number_and_boolean_are_wrong_types(tmp_path: Path) -> None:
    text = (
        'live_trading:\n  enabled: "yes"\n'
        'continuous_learning:\n  retraining:\n    max_epochs: "50"\n'
        "risk:\n  max_drawdown_percent: '15'\n"
    )
    assert problems_of(tmp_path, text) == [
        "live_trading.enabled: 'yes' — wrong type: input should be a valid boolean; "
        "write true or false, without quotes",
        "continuous_learning.retraining.max_epochs: '50' — wrong type: input should be a valid "
        "integer; remove the quotes: write 50, not '50'",
        "risk.max_drawdown_percent: '15' — wrong type: input should be a valid number; "
        "remove the quotes: write 15, not '15'",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("continuous_learning:\n  retraining:\n    max_epochs: 50.0\n", "valid integer"),
        ("continuous_learning:\n  retraining:\n    max_epochs: true\n", "valid integer"),
        ("live_trading:\n  enabled: 1\n", "valid boolean"),
        ("data:\n  seed: '42'\n", "valid integer"),
        ("paper:\n  starting_balance: true\n", "valid number"),
    ],
)
def test_other_lax_conversions_are_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    (problem,) = problems_of(tmp_path, text)
    assert "wrong type" in problem and fragment in problem


def test_native_yaml_types_still_work(tmp_path: Path) -> None:
    text = (
        "live_trading:\n  enabled: no\n"  # YAML 1.1 boolean, unquoted
        "continuous_learning:\n  enabled: false\n  retraining:\n    max_epochs: 80\n"
        "    min_interval_hours: 2\n"  # an int where a float is expected
        "risk:\n  max_drawdown_percent: 15\n  max_total_exposure: 1\n"
        "paper:\n  starting_balance: 5000\n  fee_rate: 0\n"
    )
    cfg = loaded(tmp_path, text)
    assert cfg.live_trading.enabled is False
    assert cfg.continuous_learning.enabled is False
    assert cfg.continuous_learning.retraining.max_epochs == 80
    assert cfg.continuous_learning.retraining.min_interval_hours == 2.0
    assert cfg.risk.max_drawdown_percent == 15.0
    assert isinstance(cfg.risk.max_drawdown_percent, float)
    assert cfg.paper.starting_balance == 5000.0


# --- 5. --symbols -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "error", "hint"),
    [
        (
            "BTC/USDT,BTC/USDT",
            "Error: symbol listed twice in --symbols: BTC/USDT",
            "Hint: list each symbol once",
        ),
        (
            "ETH/USDT, BTC/USDT ,ETH/USDT",
            "Error: symbol listed twice in --symbols: ETH/USDT",
            "Hint: list each symbol once",
        ),
        (",,,", "Error: no symbols in --symbols ',,,'", "Hint: give comma-separated symbols"),
        ("", "Error: no symbols in --symbols ''", "Hint: give comma-separated symbols"),
        ("btc-usdt", "Error: malformed symbol 'btc-usdt'", "Hint: "),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "stream"])
def test_bad_symbols_option_is_a_user_error(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    symbols: str,
    error: str,
    hint: str,
) -> None:
    assert run(["data", command, "--symbols", symbols]) == 2
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[0] == error
    assert lines[1].startswith(hint)
    assert "Traceback" not in out.out + out.err
    assert not (workdir / "data").exists()  # failed before touching the store


def test_split_symbols_default_and_order() -> None:
    from candlewise.cli.options import split_symbols

    assert split_symbols(None, ("BTC/USDT", "ETH/USDT")) == ["BTC/USDT", "ETH/USDT"]
    assert split_symbols(" ETH/USDT ,BTC/USDT,", ("SOL/USDT",)) == ["ETH/USDT", "BTC/USDT"]
