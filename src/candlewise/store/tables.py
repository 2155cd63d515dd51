"""Table definitions (SQLAlchemy Core). Names and columns follow the deployment guide's SQL.

Timestamps are ``TIMESTAMP_TEXT`` (see ``timestamps``); candle open times are also kept as
integer milliseconds because that is what feeds, aggregation and uniqueness are defined on.
Schema changes go through an Alembic migration in ``migrations/versions`` (a test compares the
migrated schema with this file).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

TIMESTAMP_TEXT = String(19)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

candles = Table(
    "candles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("open_time", BigInteger, nullable=False),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("volume", Float, nullable=False),
    Column("source", String(16), nullable=False),
    UniqueConstraint("symbol", "timeframe", "open_time"),
)

simulated_regimes = Table(
    "simulated_regimes",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("regime", String(16), nullable=False),
    comment="Ground truth of the simulated market, for evaluation only: never a model input.",
)

positions = Table(
    "positions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("side", String(5), nullable=False),
    Column("status", String(8), nullable=False),
    Column("mode", String(5), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("entry_price", Float, nullable=False),
    Column("entry_time", TIMESTAMP_TEXT, nullable=False),
    Column("stop_price", Float),
    Column("horizon_time", TIMESTAMP_TEXT),
    Column("exit_price", Float),
    Column("exit_time", TIMESTAMP_TEXT),
    Column("exit_reason", String(16)),
    Column("fees", Float, nullable=False, default=0.0),
    Column("pnl", Float),
    Column("confidence", Float),
    Index(None, "status", "symbol"),
)


def _outcome_columns() -> list[Column]:  # type: ignore[type-arg]
    """The scored-trade columns shared by real trades and LEARNING-mode shadow trades."""
    return [
        Column("symbol", String(32), nullable=False),
        Column("timeframe", String(4), nullable=False),
        Column("predicted_direction", String(4), nullable=False),
        Column("confidence", Float, nullable=False),
        Column("entry_time", TIMESTAMP_TEXT, nullable=False),
        Column("exit_time", TIMESTAMP_TEXT, nullable=False),
        Column("entry_price", Float, nullable=False),
        Column("exit_price", Float, nullable=False),
        Column("quantity", Float, nullable=False),
        Column("pnl_absolute", Float, nullable=False),
        Column("pnl_percent", Float, nullable=False),
        Column("fees", Float, nullable=False),
        Column("outcome", String(4), nullable=False),
        Column("exit_reason", String(16)),
    ]


trade_outcomes = Table(
    "trade_outcomes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("position_id", Integer, ForeignKey("positions.id")),
    *_outcome_columns(),
    Index(None, "symbol", "exit_time"),
)

retraining_history = Table(
    "retraining_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("triggered_at", TIMESTAMP_TEXT, nullable=False),
    Column("trigger_reason", String(32), nullable=False),
    Column("completed_at", TIMESTAMP_TEXT),
    Column("duration_s", Float),
    Column("success", Boolean),
    Column("validation_confidence", Float),
    Column("val_accuracy", Float),
    Column("old_version", Integer),
    Column("new_version", Integer),
    Column("rejected_reason", Text),
    Index(None, "triggered_at"),
)

confidence_history = Table(
    "confidence_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("confidence_score", Float, nullable=False),
    Column("direction", String(4), nullable=False),
    Column("mode", String(8)),
    Index(None, "symbol", "timestamp"),
)

learning_states = Table(
    "learning_states",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("mode", String(8), nullable=False),
    Column("previous_mode", String(8)),
    Column("confidence", Float),
    Column("reason", Text),
)

error_log = Table(
    "error_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("error_type", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("symbol", String(32)),
    Column("component", String(32)),
    Index(None, "timestamp"),
)

model_registry = Table(
    "model_registry",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", TIMESTAMP_TEXT, nullable=False),
    Column("train_start", TIMESTAMP_TEXT, nullable=False),
    Column("train_end", TIMESTAMP_TEXT, nullable=False),
    Column("train_size", Integer, nullable=False),
    Column("val_size", Integer, nullable=False),
    Column("val_accuracy", Float, nullable=False),
    Column("val_confidence", Float, nullable=False),
    Column("ece", Float, nullable=False),
    Column("brier", Float, nullable=False),
    Column("majority_baseline", Float, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("stopped_reason", String(24), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("feature_fingerprint", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    UniqueConstraint("symbol", "timeframe", "version"),
)

timeframe_predictions = Table(
    "timeframe_predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("p_up", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("direction", String(4), nullable=False),
    Column("model_version", Integer),
    Index(None, "symbol", "timestamp"),
    comment="Latest calibrated prediction of each model (dashboard, multi-timeframe view).",
)

shadow_trades = Table(
    "shadow_trades",
    metadata,
    Column("id", Integer, primary_key=True),
    *_outcome_columns(),
    Index(None, "symbol", "exit_time"),
    comment="LEARNING-mode signals traded on paper only, scored like real trades.",
)

engine_runs = Table(
    "engine_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("started_at", TIMESTAMP_TEXT, nullable=False),
    Column("updated_at", TIMESTAMP_TEXT, nullable=False),
    Column("finished_at", TIMESTAMP_TEXT),
    Column("cursor_ms", BigInteger),
    Column("cursor_time", TIMESTAMP_TEXT),
    Column("pid", Integer),
    Column("snapshot", LargeBinary),
    comment="One row per engine run: its request and the checkpoint a restart resumes from.",
)

equity_history = Table(
    "equity_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("engine_runs.id")),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("equity", Float, nullable=False),
    Column("drawdown_percent", Float, nullable=False),
    Index(None, "run_id", "timestamp"),
    comment="Mark-to-market equity of the paper account, sampled every few candle minutes.",
)

retrain_requests = Table(
    "retrain_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("requested_at", TIMESTAMP_TEXT, nullable=False),
    Column("status", String(8), nullable=False),
    Column("run_id", Integer, ForeignKey("engine_runs.id")),
    Column("taken_at", TIMESTAMP_TEXT),
    Index(None, "status"),
    comment="Manual retrains asked for with 'candlewise retrain' while a deployment runs.",
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phase", Integer, nullable=False),
    Column("symbols", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("started_at", TIMESTAMP_TEXT, nullable=False),
    Column("ended_at", TIMESTAMP_TEXT),
    Column("run_id", Integer, ForeignKey("engine_runs.id")),
    Column("pid", Integer),
    Column("control", String(12)),
    Column("verdict", String(8)),
    Column("criteria_met", Integer),
    Column("criteria", Text),
    Column("report_path", Text),
    Column("approved_by", String(64)),
    Column("approved_at", TIMESTAMP_TEXT),
    Column("forced_reason", Text),
    Column("validation_override", Text),
    comment="Phased rollout: each deployment, its validation verdict and who approved what.",
)

health_checks = Table(
    "health_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id")),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("check_name", String(32), nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("passed", Boolean, nullable=False),
    Column("action", String(16), nullable=False),
    Column("detail", Text),
    Index(None, "timestamp"),
    comment="Every scheduled health check result (the guide's health check criteria table).",
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("timestamp", TIMESTAMP_TEXT, nullable=False),
    Column("level", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("symbol", String(32)),
    Column("message", Text, nullable=False),
    Column("channels", Text, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Index(None, "timestamp"),
    comment="Alerts raised, the channels they went to and whether delivery succeeded.",
)
