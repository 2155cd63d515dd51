"""Typed, frozen configuration: the single source of defaults and validation.

``config.yaml`` mirrors these models key for key; every default below is the value the
deployment guide shows. Fractions are fractions (``daily_loss_limit: 0.05`` is 5 %), except
``max_drawdown_percent``, which the guide gives in percent. Secrets never live here: see
``candlewise.secrets``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from candlewise.symbols import symbol_problem
from candlewise.timeframes import TIMEFRAMES

WEIGHT_TOLERANCE = 1e-6


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, use_attribute_docstrings=True
    )


def _fraction(value: float, *, field: str, allow_zero: bool = False) -> float:
    """Reject percents given where a fraction is expected, suggesting the fraction."""
    if math.isnan(value):
        raise ValueError("must be a number, not NaN")
    low_ok = value >= 0 if allow_zero else value > 0
    if low_ok and value < 1:
        return value
    if 1 <= value <= 100:
        raise ValueError(
            f"{field} is a fraction between 0 and 1, not a percent; did you mean {value / 100:g}?"
        )
    bound = "0 <= x < 1" if allow_zero else "0 < x < 1"
    raise ValueError(f"{field} must be a fraction ({bound})")


class LiveTradingConfig(_Frozen):
    mode: Literal["paper", "live"] = "paper"
    """``paper`` simulates fills; ``live`` sends orders through ccxt (needs keys in .env)."""
    enabled: bool = True
    """False computes and records signals but places no orders at all, not even paper ones."""


class ConfidenceConfig(_Frozen):
    trading_threshold: float = Field(0.80, gt=0.5, lt=1.0)
    """Enter TRADING mode at or above this calibrated confidence."""
    hysteresis: float = Field(0.05, ge=0.0, lt=1.0)
    """Fall back to LEARNING below ``trading_threshold - hysteresis``; stops mode flapping."""

    @model_validator(mode="after")
    def _band_is_sane(self) -> ConfidenceConfig:
        if self.hysteresis >= self.trading_threshold:
            raise ValueError(
                f"hysteresis ({self.hysteresis:g}) must be smaller than trading_threshold "
                f"({self.trading_threshold:g}); typical values are 0.03-0.10"
            )
        if self.trading_threshold - self.hysteresis <= 0.5:
            raise ValueError(
                f"trading_threshold - hysteresis = {self.trading_threshold - self.hysteresis:g} "
                "is at or below 0.5 (a coin flip); lower the hysteresis"
            )
        return self


class RetrainingConfig(_Frozen):
    on_loss: bool = True
    """Retrain a model right after one of its trades closes at a loss (``loss_immediate``)."""
    max_epochs: int = Field(50, ge=1, le=10_000)
    """Upper bound on epochs per training run; early stopping usually ends sooner."""
    target_confidence: float = Field(0.80, gt=0.5, lt=1.0)
    """Stop training as soon as validation confidence reaches this value."""
    patience: int = Field(10, ge=1, le=10_000)
    """Epochs without validation improvement before early stopping; also the number of
    consecutive LEARNING-mode signals that trigger a ``low_confidence`` retrain."""
    min_interval_hours: float = Field(1.0, ge=0.0, le=24 * 30)
    """Cooldown between two retrains of the same model."""
    drift_threshold: float = Field(0.70, gt=0.0, le=1.0)
    """Drift score in [0, 1] at or above which a ``drift`` retrain is triggered."""


class ContinuousLearningConfig(_Frozen):
    enabled: bool = True
    """False freezes the models: no automatic retraining."""
    confidence: ConfidenceConfig = ConfidenceConfig()
    retraining: RetrainingConfig = RetrainingConfig()


class RiskConfig(_Frozen):
    max_drawdown_percent: float = Field(15.0, gt=0.0, le=100.0)
    """Percent (not a fraction) drawdown from the equity high-water mark that flattens
    everything and stops trading; a critical alert fires at 80 % of it."""
    daily_loss_limit: float = 0.05
    """Fraction of start-of-day equity; once lost, no new entries until the next UTC day."""
    max_position_size_percent: float = 0.10
    """Fraction of equity per position (the guide's name says percent; the value is a fraction)."""
    stop_loss: float = 0.02
    """Fraction of the entry price at which every position is stopped out."""
    max_total_exposure: float = 1.0
    """Fraction of equity that all open positions together may use."""

    @field_validator("daily_loss_limit")
    @classmethod
    def _daily(cls, v: float) -> float:
        return _fraction(v, field="daily_loss_limit")

    @field_validator("max_position_size_percent")
    @classmethod
    def _position(cls, v: float) -> float:
        return _fraction(v, field="max_position_size_percent")

    @field_validator("stop_loss")
    @classmethod
    def _stop(cls, v: float) -> float:
        return _fraction(v, field="stop_loss")

    @field_validator("max_drawdown_percent")
    @classmethod
    def _drawdown(cls, v: float) -> float:
        if 0 < v < 1:
            raise ValueError(
                f"max_drawdown_percent is in percent; {v:g} means {v:g} %. "
                f"Did you mean {v * 100:g}?"
            )
        return v

    @field_validator("max_total_exposure")
    @classmethod
    def _exposure(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError("max_total_exposure must be a fraction (0 < x <= 1)")
        return v


class IntervalConfig(_Frozen):
    interval: str
    """One of 1m, 5m, 15m, 1h, 4h, 1d."""
    weight: float = Field(ge=0.0, le=1.0)
    """Share of this timeframe's prediction in the aggregated signal."""

    @field_validator("interval")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in TIMEFRAMES:
            hint = {"1H": "1h", "60m": "1h", "1D": "1d", "24h": "1d", "240m": "4h"}.get(v)
            extra = f"; did you mean {hint!r}?" if hint else ""
            raise ValueError(
                f"unknown timeframe {v!r}; valid timeframes: {', '.join(TIMEFRAMES)}{extra}"
            )
        return v


_DEFAULT_INTERVALS = (
    IntervalConfig(interval="1m", weight=0.05),
    IntervalConfig(interval="5m", weight=0.10),
    IntervalConfig(interval="15m", weight=0.15),
    IntervalConfig(interval="1h", weight=0.30),
    IntervalConfig(interval="4h", weight=0.25),
    IntervalConfig(interval="1d", weight=0.15),
)


class TimeframesConfig(_Frozen):
    intervals: tuple[IntervalConfig, ...] = _DEFAULT_INTERVALS

    @model_validator(mode="after")
    def _weights(self) -> TimeframesConfig:
        if not self.intervals:
            raise ValueError("at least one interval is required")
        names = [i.interval for i in self.intervals]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"interval listed twice: {', '.join(dupes)}")
        total = sum(i.weight for i in self.intervals)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(
                f"weights must sum to 1.0 but sum to {total:.4g} "
                f"({' + '.join(f'{i.interval}={i.weight:g}' for i in self.intervals)})"
            )
        return self

    @property
    def weights(self) -> dict[str, float]:
        return {i.interval: i.weight for i in self.intervals}

    @property
    def names(self) -> tuple[str, ...]:
        """Configured timeframes in the fixed event order (1m first)."""
        return tuple(t for t in TIMEFRAMES if t in self.weights)


class DataConfig(_Frozen):
    feed: Literal["simulated", "replay", "binance"] = "simulated"
    """Where candles come from: built-in simulated exchange, stored/imported candles, or Binance."""
    seed: int = Field(42, ge=0)
    """Seed of the simulated market: the same seed gives the same candles."""
    replay_files: tuple[str, ...] = ()
    """CSV/Parquet files for the replay feed; empty means replay what the store holds."""


class ExchangeConfig(_Frozen):
    name: Literal["binance"] = "binance"
    rest_url: str | None = None
    """Override of the REST API base (e.g. a proxy); None uses ccxt's default."""
    ws_url: str = "wss://stream.binance.com:9443"
    """Base of Binance's websocket streams."""


class DatabaseConfig(_Frozen):
    url: str = "sqlite:///data/trading.db"
    """Any SQLAlchemy URL; ``CANDLEWISE_DATABASE_URL`` overrides it."""


class PaperConfig(_Frozen):
    starting_balance: float = Field(10_000.0, gt=0)
    """Quote-currency (USDT) equity the paper broker starts with."""
    fee_rate: float = Field(0.001, ge=0.0, lt=0.05)
    """Fee per side as a fraction of notional (Binance spot taker: 0.1 %)."""
    slippage: float = Field(0.0005, ge=0.0, lt=0.05)
    """Adverse price move applied to every market fill, as a fraction."""


class PathsConfig(_Frozen):
    models_dir: str = "models"
    logs_dir: str = "logs"
    reports_dir: str = "production_reports"
    backups_dir: str = "backups"
    validation_dir: str = "validation_results"


class LoggingConfig(_Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: int = Field(10_000_000, ge=10_000)
    """Size at which a log file rotates."""
    backup_count: int = Field(5, ge=0, le=100)
    """Rotated files kept per log."""


class AlertsConfig(_Frozen):
    channels: tuple[Literal["log", "webhook", "slack", "discord", "telegram", "email"], ...] = (
        "log",
    )
    """Where alerts go; ``log`` is always on. Channel URLs and tokens come from .env."""
    min_interval_seconds: float = Field(300.0, ge=0.0)
    """The same alert is sent at most once per this interval."""


class AppConfig(_Frozen):
    live_trading: LiveTradingConfig = LiveTradingConfig()
    continuous_learning: ContinuousLearningConfig = ContinuousLearningConfig()
    risk: RiskConfig = RiskConfig()
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeframes: TimeframesConfig = TimeframesConfig()
    data: DataConfig = DataConfig()
    exchange: ExchangeConfig = ExchangeConfig()
    database: DatabaseConfig = DatabaseConfig()
    paper: PaperConfig = PaperConfig()
    paths: PathsConfig = PathsConfig()
    logging: LoggingConfig = LoggingConfig()
    alerts: AlertsConfig = AlertsConfig()

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one symbol is required, e.g. BTC/USDT")
        bad = [f"{s!r} ({symbol_problem(s)})" for s in v if symbol_problem(s)]
        if bad:
            raise ValueError(f"malformed symbol {'; '.join(bad)}")
        dupes = sorted({s for s in v if v.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol listed twice: {', '.join(dupes)}")
        return v
