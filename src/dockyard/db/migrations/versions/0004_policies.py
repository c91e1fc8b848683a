"""policies and their attachment to users, with the two system policies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SYSTEM = {
    "AliyunContainerRegistryFullAccess": [
        {"Effect": "Allow", "Action": "cr:*", "Resource": "*"},
    ],
    "AliyunContainerRegistryReadOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": ["cr:Get*", "cr:List*", "cr:PullRepository"],
            "Resource": "*",
        },
    ],
}


def upgrade() -> None:
    policies = op.create_table(
        "policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_policies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("account_id", "name", name="uq_policies_account_name"),
    )
    op.create_table(
        "user_policies",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_policies_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_user_policies_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "policy_id", name=op.f("pk_user_policies")),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        policies,
        [
            {
                "account_id": None,
                "name": name,
                "document": json.dumps({"Version": "1", "Statement": statements}),
                "created_at": now,
                "updated_at": now,
            }
            for name, statements in SYSTEM.items()
        ],
    )


def downgrade() -> None:
    op.drop_table("user_policies")
    op.drop_table("policies")
