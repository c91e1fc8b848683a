"""builds from git: code sources, build rules, builds, their logs, hook deliveries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "code_sources",
        sa.Column("id", ID, primary_key=True),
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("credentials_kind", sa.String(16), nullable=False, server_default=""),
        sa.Column("auto_build", sa.Boolean(), nullable=False),
        sa.Column("build_without_cache", sa.Boolean(), nullable=False),
        sa.Column("build_pool", sa.String(64), nullable=False),
        sa.Column("poll_interval", sa.Integer(), nullable=True),
        sa.Column("hook_id", sa.String(64), nullable=False),
        sa.Column("hook_secret", sa.Text(), nullable=False),
        sa.Column("polled_refs", sa.Text(), nullable=True),
        sa.Column("polled_at", NOW, nullable=True),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        _fk("code_sources", "repository_id", "repositories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_sources")),
        sa.UniqueConstraint("repository_id", name=op.f("uq_code_sources_repository_id")),
        sa.UniqueConstraint("hook_id", name=op.f("uq_code_sources_hook_id")),
    )
    op.create_table(
        "build_rules",
        sa.Column("id", ID, primary_key=True),
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("dockerfile_dir", sa.String(1024), nullable=False),
        sa.Column("dockerfile_name", sa.String(255), nullable=False),
        sa.Column("image_tags", sa.Text(), nullable=False),
        sa.Column("build_args", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        _fk("build_rules", "repository_id", "repositories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_rules")),
    )
    op.create_index("ix_build_rules_repository", "build_rules", ["repository_id", "id"])
    op.create_table(
        "builds",
        sa.Column("id", ID, primary_key=True),
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("rule_id", ID, nullable=True),
        sa.Column("rule_ref", sa.String(255), nullable=False, server_default=""),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("triggered_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("hook_delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("ref_type", sa.String(16), nullable=False),
        sa.Column("ref_name", sa.String(255), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("commit_subject", sa.String(1024), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("image_tags", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("digest", sa.String(200), nullable=False, server_default=""),
        sa.Column("error", sa.String(1024), nullable=False, server_default=""),
        sa.Column("worker", sa.String(128), nullable=False, server_default=""),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("log_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("log_lines", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("started_at", NOW, nullable=True),
        sa.Column("built_at", NOW, nullable=True),
        sa.Column("pushed_at", NOW, nullable=True),
        sa.Column("finished_at", NOW, nullable=True),
        _fk("builds", "repository_id", "repositories"),
        _fk("builds", "rule_id", "build_rules", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
    )
    op.create_index("ix_builds_repository", "builds", ["repository_id", "id"])
    op.create_index("ix_builds_status", "builds", ["status"])
    op.create_table(
        "build_log_lines",
        sa.Column("build_id", ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("at", NOW, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _fk("build_log_lines", "build_id", "builds"),
        sa.PrimaryKeyConstraint("build_id", "line", name=op.f("pk_build_log_lines")),
    )
    op.create_table(
        "hook_deliveries",
        sa.Column("id", ID, primary_key=True),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("received_at", NOW, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False, server_default=""),
        sa.Column("delivery", sa.String(128), nullable=False, server_default=""),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False, server_default=""),
        sa.Column("commit_sha", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False, server_default=""),
        sa.Column("builds", sa.Text(), nullable=False, server_default="[]"),
        _fk("hook_deliveries", "source_id", "code_sources"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_deliveries")),
    )
    op.create_index("ix_hook_deliveries_source", "hook_deliveries", ["source_id", "id"])


def downgrade() -> None:
    for table in ("hook_deliveries", "build_log_lines", "builds", "build_rules", "code_sources"):
        op.drop_table(table)
