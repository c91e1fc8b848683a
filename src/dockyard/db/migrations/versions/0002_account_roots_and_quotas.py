"""account roots and namespace quotas

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("namespace_quota", sa.Integer(), nullable=False, server_default="3"),
    )
    op.add_column(
        "users",
        sa.Column("is_root", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_root")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("namespace_quota")
