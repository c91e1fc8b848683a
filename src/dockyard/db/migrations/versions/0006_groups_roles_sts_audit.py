"""groups, roles, STS sessions, policy versions and managed policies, audit log,
repository detail and quota

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _link(table: str, left: str, left_target: str, right: str, right_target: str) -> None:
    op.create_table(
        table,
        sa.Column(left, ID, nullable=False),
        sa.Column(right, ID, nullable=False),
        _fk(table, left, left_target),
        _fk(table, right, right_target),
        sa.PrimaryKeyConstraint(left, right, name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("repository_quota", sa.Integer(), nullable=False, server_default="300"),
    )
    op.add_column("repositories", sa.Column("detail", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "policies", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("policies", sa.Column("managed_resource", sa.String(512), nullable=True))
    op.add_column("policies", sa.Column("managed_role", sa.String(16), nullable=True))
    op.create_table(
        "policy_versions",
        sa.Column("policy_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        _fk("policy_versions", "policy_id", "policies"),
        sa.PrimaryKeyConstraint("policy_id", "version", name=op.f("pk_policy_versions")),
    )
    # Existing custom policies start at version 1.
    op.execute(
        "INSERT INTO policy_versions (policy_id, version, document, created_at) "
        "SELECT id, 1, document, updated_at FROM policies WHERE account_id IS NOT NULL"
    )
    for table in ("groups", "roles"):
        extra: list[sa.Column[int] | sa.Column[str]] = (
            [
                sa.Column("trust_policy", sa.Text(), nullable=False),
                sa.Column(
                    "max_session_seconds", sa.Integer(), nullable=False, server_default="3600"
                ),
            ]
            if table == "roles"
            else []
        )
        op.create_table(
            table,
            sa.Column("id", ID, nullable=False),
            sa.Column("account_id", ID, nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("description", sa.String(1024), nullable=False, server_default=""),
            *extra,
            sa.Column("created_at", NOW, nullable=False),
            _fk(table, "account_id", "accounts"),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("account_id", "name", name=f"uq_{table}_account_name"),
        )
    _link("group_members", "group_id", "groups", "user_id", "users")
    op.create_index("ix_group_members_user", "group_members", ["user_id"])
    _link("group_policies", "group_id", "groups", "policy_id", "policies")
    _link("role_policies", "role_id", "roles", "policy_id", "policies")
    op.create_table(
        "sts_sessions",
        sa.Column("access_key_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("role_id", ID, nullable=False),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("assumed_by", sa.String(200), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("expires_at", NOW, nullable=False),
        _fk("sts_sessions", "role_id", "roles"),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_sts_sessions")),
    )
    op.create_index("ix_sts_sessions_expires", "sts_sessions", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", NOW, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource", sa.String(1024), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        _fk("audit_log", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_account", "audit_log", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_account", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_sts_sessions_expires", table_name="sts_sessions")
    op.drop_table("sts_sessions")
    op.drop_table("role_policies")
    op.drop_table("group_policies")
    op.drop_index("ix_group_members_user", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("roles")
    op.drop_table("groups")
    op.drop_table("policy_versions")
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("managed_role")
        batch.drop_column("managed_resource")
        batch.drop_column("version")
    with op.batch_alter_table("repositories") as batch:
        batch.drop_column("detail")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("repository_quota")
