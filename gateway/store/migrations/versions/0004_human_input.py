"""Human in the loop: the waiting status's requests, and a paused run's checkpoint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Stamp = sa.DateTime(timezone=True)  # as in 0001: the models map it to aware UTC


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("checkpoint", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "input_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("on_timeout", sa.String(16), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("expires_at", Stamp, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("answered_at", Stamp, nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_input_requests_task_id_tasks"),
        sa.PrimaryKeyConstraint("id", name="pk_input_requests"),
    )
    op.create_index("ix_input_requests_task_id_created_at", "input_requests", ["task_id", "created_at"])
    op.create_index("ix_input_requests_status_expires_at", "input_requests", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_input_requests_status_expires_at", table_name="input_requests")
    op.drop_index("ix_input_requests_task_id_created_at", table_name="input_requests")
    op.drop_table("input_requests")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("checkpoint")
