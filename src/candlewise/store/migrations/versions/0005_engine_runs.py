"""engine runs and equity history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("started_at", sa.String(length=19), nullable=False),
        sa.Column("updated_at", sa.String(length=19), nullable=False),
        sa.Column("finished_at", sa.String(length=19), nullable=True),
        sa.Column("cursor_ms", sa.BigInteger(), nullable=True),
        sa.Column("cursor_time", sa.String(length=19), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("snapshot", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_runs")),
        comment="One row per engine run: its request and the checkpoint a restart resumes from.",
    )
    op.create_table(
        "equity_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.String(length=19), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("drawdown_percent", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["engine_runs.id"],
            name=op.f("fk_equity_history_run_id_engine_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equity_history")),
        comment="Mark-to-market equity of the paper account, sampled every few candle minutes.",
    )
    with op.batch_alter_table("equity_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_equity_history_run_id_timestamp"), ["run_id", "timestamp"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("equity_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_equity_history_run_id_timestamp"))
    op.drop_table("equity_history")
    op.drop_table("engine_runs")
