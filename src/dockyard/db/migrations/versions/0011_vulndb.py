"""vulndb_records, vulndb_ecosystems, vulndb_state, vulndb_imports, vulndb_sources: the
vulnerability database shared by every replica and worker

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vulndb_records",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("modified", sa.String(32), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_records")),
    )
    op.create_index("ix_vulndb_records_version", "vulndb_records", ["version", "id"])
    op.create_table(
        "vulndb_ecosystems",
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("ecosystem", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "ecosystem", name=op.f("pk_vulndb_ecosystems")),
    )
    op.create_index("ix_vulndb_ecosystems_ecosystem", "vulndb_ecosystems", ["ecosystem"])
    op.create_table(
        "vulndb_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.String(32), nullable=False),
        sa.Column("last_import_at", NOW, nullable=True),
        sa.Column("next_refresh_at", NOW, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_state")),
    )
    state = sa.table(
        "vulndb_state",
        sa.column("id", sa.Integer()),
        sa.column("version", sa.BigInteger()),
        sa.column("store_id", sa.String()),
    )
    # The one row exists from the start: imports lock it, nobody has to create it.
    op.bulk_insert(state, [{"id": 1, "version": 0, "store_id": uuid.uuid4().hex}])
    op.create_table(
        "vulndb_imports",
        sa.Column("id", ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(2048), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False, server_default=""),
        sa.Column("upload_id", sa.String(128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("started_at", NOW, nullable=True),
        sa.Column("finished_at", NOW, nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("added", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("kept", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("invalid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("errors", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_imports")),
    )
    op.create_table(
        "vulndb_sources",
        sa.Column("location", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(512), nullable=False, server_default=""),
        sa.Column("last_modified", sa.String(128), nullable=False, server_default=""),
        sa.Column("fetched_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("location", name=op.f("pk_vulndb_sources")),
    )


def downgrade() -> None:
    for table in (
        "vulndb_sources",
        "vulndb_imports",
        "vulndb_state",
        "vulndb_ecosystems",
        "vulndb_records",
    ):
        op.drop_table(table)
