"""Every ``AppConfig`` field has a verdict for the block path, and ``eligibility`` follows it."""

from __future__ import annotations

from pydantic import BaseModel

from candlewise.config.app_config import AppConfig
from candlewise.engine.replay.block_support import (
    CONFIG_SUPPORT,
    Support,
    config_value,
    refused_setting,
)


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Written again here (not ``config_paths``): a bug there must not hide a new field."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _leaves(annotation, f"{prefix}{name}.")
        else:
            found.add(prefix + name)
    return found


def test_every_config_field_is_classified_and_every_classified_field_exists() -> None:
    fields = _leaves(AppConfig)
    unclassified = sorted(fields - set(CONFIG_SUPPORT))
    assert not unclassified, f"classify these in engine/replay/block_support.py: {unclassified}"
    gone = sorted(set(CONFIG_SUPPORT) - fields)
    assert not gone, f"no longer AppConfig fields: {gone}"
    assert len(fields) == 75 and len(fields) == len(CONFIG_SUPPORT)
    assert all(isinstance(v, Support) for v in CONFIG_SUPPORT.values())


def test_the_rules_the_walk_applies_are_classified_walked() -> None:
    walked = {p for p, s in CONFIG_SUPPORT.items() if s is Support.WALKED}
    assert {
        "continuous_learning.confidence.trading_threshold",
        "continuous_learning.confidence.hysteresis",
        "paper.fee_rate",
        "paper.slippage",
        "risk.stop_loss",
        "risk.daily_loss_limit",
        "timeframes.intervals",
    } <= walked
    assert CONFIG_SUPPORT["risk.min_edge_over_costs"] is Support.REFUSED


def test_a_refused_field_refuses_the_run_only_off_its_default() -> None:
    assert refused_setting(AppConfig()) is None
    on = AppConfig.model_validate({"risk": {"min_edge_over_costs": 0.5}})
    assert refused_setting(on) == "risk.min_edge_over_costs is on"
    walked = AppConfig.model_validate({"risk": {"stop_loss": 0.01}, "paper": {"fee_rate": 0.0}})
    assert refused_setting(walked) is None
    assert config_value(walked, "risk.stop_loss") == 0.01
