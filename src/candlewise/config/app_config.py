"""Typed, frozen configuration: the single source of defaults and validation.

``config.yaml`` mirrors these models key for key; every default below is the value the
deployment guide shows. Fractions are fractions (``daily_loss_limit: 0.05`` is 5 %), except
``max_drawdown_percent``, which the guide gives in percent; a percent given for a fraction is
rejected with the fraction it probably meant (``80`` -> ``did you mean 0.8?``). Numbers and
booleans are strict: YAML's own ``50``, ``0.8`` and ``true`` are accepted (and an integer where a
decimal is expected), a quoted ``"50"`` or ``"yes"`` is not. A section left empty (all its keys
commented out, so YAML reads null) means its defaults. Secrets never live here: see
``candlewise.config.secrets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from candlewise.core.symbols import symbol_problem
from candlewise.core.timeframes import TIMEFRAMES

WEIGHT_TOLERANCE = 1e-6


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
        allow_inf_nan=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_mean_defaults(cls, data: Any) -> Any:
        """``risk:`` with every key commented out is YAML null: use the section's defaults."""
        if not isinstance(data, dict):
            return data
        sections = {
            name
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        }
        return {k: v for k, v in data.items() if not (v is None and k in sections)}


@dataclass(frozen=True)
class _Bounds:
    low: float
    high: float
    low_inclusive: bool
    high_inclusive: bool

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def __str__(self) -> str:
        low = "<=" if self.low_inclusive else "<"
        high = "<=" if self.high_inclusive else "<"
        return f"{self.low:g} {low} x {high} {self.high:g}"


def _fraction(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> AfterValidator:
    """Bounds of a fraction field; a percent given instead gets the fraction it probably meant.

    Exactly one of ``gt``/``ge`` and one of ``lt``/``le``. The hint ``did you mean v/100?`` is
    given only when ``v/100`` is itself valid, so it never suggests a value that is rejected too.
    """
    high = lt if lt is not None else le
    low = gt if gt is not None else ge
    if low is None or high is None or None not in (gt, ge) or None not in (lt, le):
        raise TypeError("give exactly one lower (gt/ge) and one upper (lt/le) bound")
    bounds = _Bounds(low, high, low_inclusive=gt is None, high_inclusive=lt is None)

    def check(value: float, info: ValidationInfo) -> float:
        if value in bounds:
            return value
        name = info.field_name or "value"
        if 0 < value <= 100 and value / 100 in bounds:
            raise ValueError(
                f"{name} is a fraction ({bounds}), not a percent; did you mean {value / 100:g}?"
            )
        if 1 <= value <= 100:
            raise ValueError(
                f"{name} is a fraction ({bounds}), not a percent; {value:g} % would be "
                f"{value / 100:g}, which is out of range too"
            )
        raise ValueError(f"{name} must be a fraction ({bounds})")

    return AfterValidator(check)


class LiveTradingConfig(_Frozen):
    mode: Literal["paper", "live"] = "paper"
    """``paper`` simulates fills; ``live`` sends orders through ccxt (needs keys in .env)."""
    enabled: StrictBool = True
    """False computes and records signals but places no orders at all, not even paper ones."""


class ConfidenceConfig(_Frozen):
    trading_threshold: Annotated[StrictFloat, _fraction(gt=0.5, lt=1.0)] = 0.80
    """Enter TRADING mode at or above this calibrated confidence."""
    hysteresis: Annotated[StrictFloat, _fraction(ge=0.0, lt=1.0)] = 0.05
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
    on_loss: StrictBool = True
    """Retrain a model right after one of its trades closes at a loss (``loss_immediate``)."""
    max_epochs: StrictInt = Field(50, ge=1, le=10_000)
    """Upper bound on epochs per training run; early stopping usually ends sooner."""
    target_confidence: Annotated[StrictFloat, _fraction(gt=0.5, lt=1.0)] = 0.80
    """Stop training as soon as validation confidence reaches this value."""
    patience: StrictInt = Field(10, ge=1, le=10_000)
    """Epochs without validation improvement before early stopping; also the number of
    consecutive LEARNING-mode signals that trigger a ``low_confidence`` retrain."""
    min_interval_hours: StrictFloat = Field(1.0, ge=0.0, le=24 * 30)
    """Cooldown between two retrains of the same model."""
    drift_threshold: Annotated[StrictFloat, _fraction(gt=0.0, le=1.0)] = 0.70
    """Drift score in [0, 1] at or above which a ``drift`` retrain is triggered."""


class ContinuousLearningConfig(_Frozen):
    enabled: StrictBool = True
    """False freezes the models: no automatic retraining."""
    confidence: ConfidenceConfig = ConfidenceConfig()
    retraining: RetrainingConfig = RetrainingConfig()


class RiskConfig(_Frozen):
    max_drawdown_percent: StrictFloat = Field(15.0, gt=0.0, le=100.0)
    """Percent (not a fraction) drawdown from the equity high-water mark that flattens
    everything and stops trading; a critical alert fires at 80 % of it."""
    daily_loss_limit: Annotated[StrictFloat, _fraction(gt=0.0, lt=1.0)] = 0.05
    """Fraction of start-of-day equity; once lost, no new entries until the next UTC day."""
    max_position_size_percent: Annotated[StrictFloat, _fraction(gt=0.0, lt=1.0)] = 0.10
    """Fraction of equity per position (the guide's name says percent; the value is a fraction)."""
    stop_loss: Annotated[StrictFloat, _fraction(gt=0.0, lt=1.0)] = 0.02
    """Fraction of the entry price at which every position is stopped out."""
    max_total_exposure: Annotated[StrictFloat, _fraction(gt=0.0, le=1.0)] = 1.0
    """Fraction of equity that all open positions together may use."""
    min_edge_over_costs: StrictFloat = Field(0.0, ge=0.0, le=100.0)
    """An entry needs an expected gain of at least this many times its round-trip costs
    (2 x (fee_rate + slippage)); the expected gain is (2 x confidence - 1) x the timeframe's
    mean absolute candle move over the prediction window. 0 (default) turns the check off;
    1.0 refuses every trade that cannot pay its costs on average (see risk/edge.py)."""

    @field_validator("max_drawdown_percent")
    @classmethod
    def _drawdown(cls, v: float) -> float:
        if 0 < v < 1:
            raise ValueError(
                f"max_drawdown_percent is in percent; {v:g} means {v:g} %. "
                f"Did you mean {v * 100:g}?"
            )
        return v


class IntervalConfig(_Frozen):
    interval: str
    """One of 1m, 5m, 15m, 1h, 4h, 1d."""
    weight: Annotated[StrictFloat, _fraction(ge=0.0, le=1.0)]
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
    seed: StrictInt = Field(42, ge=0)
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
    starting_balance: StrictFloat = Field(10_000.0, gt=0)
    """Quote-currency (USDT) equity the paper broker starts with."""
    fee_rate: Annotated[StrictFloat, _fraction(ge=0.0, lt=0.05)] = 0.001
    """Fee per side as a fraction of notional (Binance spot taker: 0.1 %)."""
    slippage: Annotated[StrictFloat, _fraction(ge=0.0, lt=0.05)] = 0.0005
    """Adverse price move applied to every market fill, as a fraction."""


class PathsConfig(_Frozen):
    models_dir: str = "models"
    logs_dir: str = "logs"
    reports_dir: str = "production_reports"
    backups_dir: str = "backups"
    validation_dir: str = "validation_results"


class LoggingConfig(_Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: StrictInt = Field(10_000_000, ge=10_000)
    """Size at which a log file rotates."""
    backup_count: StrictInt = Field(5, ge=0, le=100)
    """Rotated files kept per log."""


class ModelsConfig(_Frozen):
    max_samples: StrictInt = Field(6000, ge=200, le=1_000_000)
    """Most recent labelled candles a model trains on (80 % train, 20 % validation)."""
    keep_versions: StrictInt = Field(5, ge=1, le=1000)
    """Model versions kept on disk per symbol and timeframe, for rollback."""
    threads: StrictInt = Field(1, ge=1, le=64)
    """Torch threads per training: on 2 cores, 2 threads are no faster and far slower under load."""
    seed: StrictInt = Field(0, ge=0)
    """Training seed: the same data and seed give the same model."""


class AlertsConfig(_Frozen):
    channels: tuple[Literal["log", "webhook", "slack", "discord", "telegram", "email"], ...] = (
        "log",
    )
    """Where alerts go; ``log`` is always on. Channel URLs and tokens come from .env."""
    min_interval_seconds: StrictFloat = Field(300.0, ge=0.0)
    """The same alert is sent at most once per this interval."""
    retry_attempts: StrictInt = Field(3, ge=1, le=10)
    """Delivery attempts per channel before an alert is recorded as undelivered."""
    retry_backoff_seconds: StrictFloat = Field(0.5, ge=0.0, le=60.0)
    """Wait before the first retry; doubled before each further one (0.5, 1, 2 s)."""
    timeout_seconds: StrictFloat = Field(5.0, gt=0.0, le=60.0)
    """Network timeout of one delivery attempt: a dead endpoint must not hold the queue long."""
    queue_size: StrictInt = Field(100, ge=1, le=100_000)
    """Alerts waiting for delivery; when full the oldest is dropped (and counted)."""
    telegram_api_url: str = "https://api.telegram.org"
    """Base of Telegram's bot API (a proxy or a test server may stand in)."""
    smtp_host: str = ""
    """SMTP server for the ``email`` channel; its password is SMTP_PASSWORD in .env."""
    smtp_port: StrictInt = Field(587, ge=1, le=65535)
    smtp_user: str = ""
    """Login name; empty means the server needs no login."""
    smtp_starttls: StrictBool = True
    """Upgrade the connection with STARTTLS before logging in (off only for a local relay)."""
    smtp_from: str = ""
    smtp_to: tuple[str, ...] = ()
    """Recipients of alert e-mails."""


class PhaseValidationConfig(_Frozen):
    """The five criteria a phase (or a paper-trading validation) is judged on at its end."""

    win_rate: Annotated[StrictFloat, _fraction(ge=0.0, le=1.0)] = 0.50
    """Fraction of closed trades won; the criterion passes at or above it."""
    max_drawdown: StrictFloat = Field(15.0, gt=0.0, le=100.0)
    """Percent (not a fraction) mark-to-market drawdown; passes at or below it."""
    error_rate: Annotated[StrictFloat, _fraction(gt=0.0, le=1.0)] = 0.05
    """Errors per handled candle event; passes below it."""
    profitability: StrictFloat = 0.0
    """Realised P&L in the quote currency (USDT); passes above it."""
    stability: StrictFloat = Field(2.0, gt=0.0, le=60.0)
    """Mode transitions per hour (busiest symbol); passes below it."""
    min_criteria: StrictInt = Field(4, ge=1, le=5)
    """Criteria (of 5) that must pass for the verdict APPROVED."""
    min_trades: StrictInt = Field(20, ge=0, le=1_000_000)
    """The win rate criterion fails below this many closed trades: a 100 % win rate over one
    trade is no evidence (the guide does not say; the health check uses the same 20)."""

    @field_validator("max_drawdown")
    @classmethod
    def _drawdown(cls, v: float) -> float:
        if 0 < v < 1:
            raise ValueError(
                f"max_drawdown is in percent; {v:g} means {v:g} %. Did you mean {v * 100:g}?"
            )
        return v


class HealthThresholdsConfig(_Frozen):
    """The scheduled health checks while a deployment runs. The drawdown check uses
    ``risk.max_drawdown_percent`` (reaching it rolls back); the others alert."""

    win_rate: Annotated[StrictFloat, _fraction(ge=0.0, le=1.0)] = 0.40
    """Fraction of the deployment's closed trades won; passes at or above it."""
    min_trades: StrictInt = Field(20, ge=1, le=1_000_000)
    """The win rate is judged only from this many closed trades on."""
    error_rate: Annotated[StrictFloat, _fraction(gt=0.0, le=1.0)] = 0.05
    """Errors per handled candle event over the last hour; passes below it."""
    stability: StrictFloat = Field(2.0, gt=0.0, le=60.0)
    """Mode transitions per hour over the last hour (busiest symbol); passes below it."""
    uptime: Annotated[StrictFloat, _fraction(ge=0.0, lt=1.0)] = 0.95
    """Share of the deployment's minutes whose candles were handled; passes above it."""


_ZERO_DURATIONS = frozenset({"0", "0s", "0m", "0h", "0d"})


def _duration_text(value: str, *, zero_ok: bool = False) -> str:
    from candlewise.core.clock import parse_duration_ms

    if zero_ok and value.strip().lower() in _ZERO_DURATIONS:
        return value
    parse_duration_ms(value)  # ValueError names the accepted forms
    return value


class DeploymentConfig(_Frozen):
    """The phased rollout: phase 1's length, phase 3's stagger, health checks, validation."""

    phase1_duration: str = "24h"
    """How long phase 1 runs before its validation, e.g. 24h, 90m, 2d."""
    stagger: str = "30s"
    """Pause between two symbols deployed in phase 3 (0s: none)."""
    health_check_minutes: StrictInt = Field(60, ge=1, le=24 * 60)
    """Minutes between two health checks (candle time)."""
    validation: PhaseValidationConfig = PhaseValidationConfig()
    health: HealthThresholdsConfig = HealthThresholdsConfig()

    @field_validator("phase1_duration")
    @classmethod
    def _phase1(cls, v: str) -> str:
        return _duration_text(v)

    @field_validator("stagger")
    @classmethod
    def _stagger(cls, v: str) -> str:
        return _duration_text(v, zero_ok=True)

    @property
    def phase1_duration_ms(self) -> int:
        from candlewise.core.clock import parse_duration_ms

        return parse_duration_ms(self.phase1_duration)

    @property
    def stagger_ms(self) -> int:
        from candlewise.core.clock import parse_duration_ms

        if self.stagger.strip().lower() in _ZERO_DURATIONS:
            return 0
        return parse_duration_ms(self.stagger)


class PrometheusConfig(_Frozen):
    """An optional /metrics endpoint inside the deploying process (prometheus_client)."""

    enabled: StrictBool = False
    host: str = "127.0.0.1"
    """Loopback by default: metrics reveal positions; expose them deliberately."""
    port: StrictInt = Field(9108, ge=1, le=65535)


class MonitoringConfig(_Frozen):
    """The terminal monitor, the reports and the web dashboard: readers of the store only."""

    refresh_seconds: StrictInt = Field(10, ge=1, le=3600)
    """monitor_production.py redraw interval (its --refresh overrides it)."""
    dashboard_refresh_seconds: StrictInt = Field(30, ge=5, le=3600)
    """Auto-refresh of the Streamlit dashboard."""
    excessive_retrains_per_day: float = Field(12.0, gt=0)
    """Reports flag a symbol retraining more often (the guide's "excessive retraining")."""
    prometheus: PrometheusConfig = PrometheusConfig()


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
    models: ModelsConfig = ModelsConfig()
    paths: PathsConfig = PathsConfig()
    logging: LoggingConfig = LoggingConfig()
    alerts: AlertsConfig = AlertsConfig()
    deployment: DeploymentConfig = DeploymentConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

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
