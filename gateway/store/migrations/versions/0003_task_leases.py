"""Task leases: the attempt under way, who runs it and until when; cancel reasons; dispatch time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Stamp = sa.DateTime(timezone=True)  # as in 0001: the models map it to aware UTC


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", Stamp, nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dispatched_at", Stamp, nullable=True))
        batch.create_index("ix_tasks_status_lease_expires_at", ["status", "lease_expires_at"])
    # A task a runner had claimed before leases existed is attempt 1, with a lease that has run out.
    op.execute("UPDATE tasks SET attempt = 1 WHERE status <> 'queued'")


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_status_lease_expires_at")
        for column in ("dispatched_at", "cancel_reason", "lease_expires_at", "lease_owner", "attempt"):
            batch.drop_column(column)
