"""scan results per manifest digest, namespace and repository security settings, the
allowlist, last pulls, events' detail, and manifests by digest

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
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
    op.create_index("ix_manifests_digest", "manifests", ["digest"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))

    op.create_table(
        "scan_results",
        sa.Column("id", ID, primary_key=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False, server_default=""),
        sa.Column("parent_digest", sa.String(200), nullable=True),
        sa.Column("repository_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("database", sa.String(128), nullable=False, server_default=""),
        sa.Column("high", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("medium", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("low", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unknown", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("findings", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("queued_at", NOW, nullable=False),
        sa.Column("started_at", NOW, nullable=True),
        sa.Column("finished_at", NOW, nullable=True),
        _fk("scan_results", "repository_id", "repositories", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_results")),
        sa.UniqueConstraint("digest", name=op.f("uq_scan_results_digest")),
    )
    op.create_index("ix_scan_results_parent", "scan_results", ["parent_digest"])

    op.create_table(
        "namespace_security",
        sa.Column("namespace_id", ID, nullable=False),
        sa.Column("scan_on_push", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("block_pull_severity", sa.String(16), nullable=False, server_default="none"),
        sa.Column("block_unscanned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", NOW, nullable=False),
        _fk("namespace_security", "namespace_id", "namespaces"),
        sa.PrimaryKeyConstraint("namespace_id", name=op.f("pk_namespace_security")),
    )
    op.create_table(
        "repository_security",
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("scan_on_push", sa.Boolean(), nullable=True),
        sa.Column("updated_at", NOW, nullable=False),
        _fk("repository_security", "repository_id", "repositories"),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_repository_security")),
    )
    op.create_table(
        "scan_allowlist",
        sa.Column("namespace_id", ID, nullable=False),
        sa.Column("vulnerability_id", sa.String(200), nullable=False),
        sa.Column("expires_at", NOW, nullable=True),
        sa.Column("comment", sa.String(1024), nullable=False, server_default=""),
        sa.Column("created_at", NOW, nullable=False),
        _fk("scan_allowlist", "namespace_id", "namespaces"),
        sa.PrimaryKeyConstraint("namespace_id", "vulnerability_id", name=op.f("pk_scan_allowlist")),
    )
    op.create_table(
        "manifest_pulls",
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("pulled_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_manifest_pulls")),
    )
    op.create_index("ix_manifest_pulls_at", "manifest_pulls", ["pulled_at"])


def downgrade() -> None:
    op.drop_index("ix_manifest_pulls_at", table_name="manifest_pulls")
    op.drop_table("manifest_pulls")
    op.drop_table("scan_allowlist")
    op.drop_table("repository_security")
    op.drop_table("namespace_security")
    op.drop_index("ix_scan_results_parent", table_name="scan_results")
    op.drop_table("scan_results")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("detail")
    op.drop_index("ix_manifests_digest", table_name="manifests")
