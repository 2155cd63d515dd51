"""What the block replay supports: every ``AppConfig`` field, classified, and the runtime checks.

Why a classification instead of a list of refusals: a refusal list is silent about a rule it
does not know, so a new setting that the block walk does not apply would make the two paths
differ without a word. Here every field of the config tree has a verdict, and
``tests/engine/replay/test_block_support.py`` fails when a field is added without one (or a
classified field disappears). ``eligibility`` refuses a run in which a ``REFUSED`` field is
not at its default, and the conditions that are not config (retraining, retrainer, brokers).
"""

from __future__ import annotations

from enum import StrEnum
from functools import reduce
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from candlewise.config.app_config import AppConfig
from candlewise.training.retrain_worker import InlineRetrainer

if TYPE_CHECKING:
    from candlewise.engine.trading_engine import TradingEngine


class Support(StrEnum):
    WALKED = "walked"
    """A rule of the minute loop that the block walk applies through the engine's objects."""
    AROUND = "around"
    """Read outside the minute loop (data, training, storage, alerts, reports): the same code
    serves both paths."""
    RETRAINING = "retraining"
    """Acts only through automatic retraining, which ``eligibility`` refuses at runtime."""
    REFUSED = "refused"
    """Not applied by the block walk: a run with a value other than the default is refused."""


_W, _A, _R, _X = Support.WALKED, Support.AROUND, Support.RETRAINING, Support.REFUSED

#: Every leaf of the ``AppConfig`` tree (dotted path) and what the block path does with it.
CONFIG_SUPPORT: dict[str, Support] = {
    "live_trading.mode": _W,  # the TRADING MODE line's flavour, positions.mode
    "live_trading.enabled": _W,
    "continuous_learning.enabled": _R,  # on without --no-retrain: engine.retraining is refused
    "continuous_learning.confidence.trading_threshold": _W,
    "continuous_learning.confidence.hysteresis": _W,
    "continuous_learning.retraining.on_loss": _R,
    "continuous_learning.retraining.max_epochs": _R,
    "continuous_learning.retraining.target_confidence": _R,
    "continuous_learning.retraining.patience": _R,  # the streak is counted, never acted on
    "continuous_learning.retraining.min_interval_hours": _R,
    "continuous_learning.retraining.drift_threshold": _R,
    "risk.max_drawdown_percent": _W,
    "risk.daily_loss_limit": _W,
    "risk.max_position_size_percent": _W,
    "risk.stop_loss": _W,
    "risk.max_total_exposure": _W,
    "risk.min_edge_over_costs": _X,  # the edge check reads the predictor's closes at each signal
    "symbols": _W,
    "timeframes.intervals": _W,  # the weights of the mix, which timeframes give signals
    "data.feed": _A,
    "data.seed": _A,
    "data.replay_files": _A,
    "exchange.name": _A,
    "exchange.rest_url": _A,
    "exchange.ws_url": _A,
    "database.url": _A,
    "paper.starting_balance": _W,  # the FastBooks take the brokers' state over
    "paper.fee_rate": _W,
    "paper.slippage": _W,
    "models.max_samples": _A,
    "models.keep_versions": _A,
    "models.threads": _A,
    "models.seed": _A,
    "paths.models_dir": _A,
    "paths.logs_dir": _A,
    "paths.reports_dir": _A,
    "paths.backups_dir": _A,
    "paths.validation_dir": _A,
    "logging.level": _A,
    "logging.max_bytes": _A,
    "logging.backup_count": _A,
    "alerts.channels": _A,  # alerts come from rare events, which the engine handles itself
    "alerts.min_interval_seconds": _A,
    "alerts.retry_attempts": _A,
    "alerts.retry_backoff_seconds": _A,
    "alerts.timeout_seconds": _A,
    "alerts.queue_size": _A,
    "alerts.telegram_api_url": _A,
    "alerts.smtp_host": _A,
    "alerts.smtp_port": _A,
    "alerts.smtp_user": _A,
    "alerts.smtp_starttls": _A,
    "alerts.smtp_from": _A,
    "alerts.smtp_to": _A,
    "deployment.phase1_duration": _A,
    "deployment.stagger": _A,
    "deployment.health_check_minutes": _A,
    "deployment.validation.win_rate": _A,
    "deployment.validation.max_drawdown": _A,
    "deployment.validation.error_rate": _A,
    "deployment.validation.profitability": _A,
    "deployment.validation.stability": _A,
    "deployment.validation.min_criteria": _A,
    "deployment.validation.min_trades": _A,
    "deployment.health.win_rate": _A,
    "deployment.health.min_trades": _A,
    "deployment.health.error_rate": _A,
    "deployment.health.stability": _A,
    "deployment.health.uptime": _A,
    "monitoring.refresh_seconds": _A,
    "monitoring.dashboard_refresh_seconds": _A,
    "monitoring.excessive_retrains_per_day": _A,
    "monitoring.prometheus.enabled": _A,
    "monitoring.prometheus.host": _A,
    "monitoring.prometheus.port": _A,
}


def config_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The dotted path of every leaf field (a field that is not itself a section)."""
    paths = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(config_paths(annotation, f"{prefix}{name}."))
        else:
            paths.append(prefix + name)
    return paths


def config_value(cfg: BaseModel, path: str) -> Any:
    return reduce(getattr, path.split("."), cfg)


def refused_setting(cfg: AppConfig) -> str | None:
    """The first ``REFUSED`` field that is not at its default, as a reason (None: none)."""
    defaults = AppConfig()
    for path, support in CONFIG_SUPPORT.items():
        if support is not Support.REFUSED:
            continue
        default = config_value(defaults, path)
        if config_value(cfg, path) != default:
            return f"{path} is on" if not default else f"{path} is not {default!r}"
    return None


def eligibility(engine: TradingEngine) -> str | None:
    """Why ``engine`` cannot run blocks (None: it can)."""
    if engine.retraining:
        return "automatic retraining is on"
    if not isinstance(engine.retrainer, InlineRetrainer) or engine.policy.pending():
        return "retrains are queued or run in a worker"
    refused = refused_setting(engine.cfg)
    if refused is not None:
        return refused
    for broker in (engine.broker, engine.shadow):
        if broker.mode != "paper" or not broker.reverse or broker.fill_hook is not None:
            return "the broker is not a plain paper broker"
    return None
