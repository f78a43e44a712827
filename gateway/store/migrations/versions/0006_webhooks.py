"""Webhooks: a cursor per task webhook over the task's event log, and every delivery attempt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Stamp = sa.DateTime(timezone=True)  # as in 0001: the models map it to aware UTC
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_cursors",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("secret_env", sa.String(200), nullable=True),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", Stamp, nullable=True),
        sa.Column("next_attempt_at", Stamp, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", Stamp, nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_webhook_cursors_task_id_tasks"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_cursors"),
    )
    op.create_index("ix_webhook_cursors_task_id", "webhook_cursors", ["task_id"])
    op.create_index("ix_webhook_cursors_state_next_attempt_at", "webhook_cursors", ["state", "next_attempt_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(36), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", Stamp, nullable=False),
        sa.Column("next_attempt_at", Stamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhook_cursors.id"], name="fk_webhook_deliveries_webhook_id_webhook_cursors"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_task_id_id", "webhook_deliveries", ["task_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_task_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_cursors_state_next_attempt_at", table_name="webhook_cursors")
    op.drop_index("ix_webhook_cursors_task_id", table_name="webhook_cursors")
    op.drop_table("webhook_cursors")
