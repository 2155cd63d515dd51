"""retrain requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 07:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=4), nullable=False),
        sa.Column("requested_at", sa.String(length=19), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.String(length=19), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["engine_runs.id"], name=op.f("fk_retrain_requests_run_id_engine_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_requests")),
        comment="Manual retrains asked for with 'candlewise retrain' while a deployment runs.",
    )
    with op.batch_alter_table("retrain_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrain_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("retrain_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_requests_status"))
    op.drop_table("retrain_requests")
