"""events (the transactional outbox), the job queue, secret keys, webhooks and their
deliveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
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


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at", NOW, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("namespace", sa.String(255), nullable=False, server_default=""),
        sa.Column("repository", sa.String(255), nullable=False, server_default=""),
        sa.Column("tag", sa.String(128), nullable=False, server_default=""),
        sa.Column("digest", sa.String(200), nullable=False, server_default=""),
        sa.Column("media_type", sa.String(255), nullable=False, server_default=""),
        sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        sa.Column("request_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("client_address", sa.String(64), nullable=False, server_default=""),
        sa.Column("repository_public", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("repository_created_at", NOW, nullable=True),
        _fk("events", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_account", "events", ["account_id", "id"])
    op.create_index("ix_events_at", "events", ["at"])

    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", NOW, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.Column("started_at", NOW, nullable=True),
        sa.Column("finished_at", NOW, nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", NOW, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("concurrency_key", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_claim", "jobs", ["queue", "state", "run_after"])
    op.create_index("ix_jobs_kind_state", "jobs", ["kind", "state"])
    op.create_index("ix_jobs_concurrency", "jobs", ["concurrency_key", "state"])

    op.create_table(
        "secret_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_keys")),
    )

    op.create_table(
        "webhooks",
        sa.Column("id", ID, primary_key=True),
        sa.Column("namespace_id", ID, nullable=False),
        sa.Column("repository_id", ID, nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", NOW, nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("failing_since", NOW, nullable=True),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        _fk("webhooks", "namespace_id", "namespaces"),
        _fk("webhooks", "repository_id", "repositories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_scope", "webhooks", ["namespace_id", "repository_id"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, primary_key=True),
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("event_id", ID, nullable=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.Column("request_url", sa.String(2048), nullable=False, server_default=""),
        sa.Column("request_headers", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("request_body", sa.Text(), nullable=False, server_default=""),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("response_body", sa.Text(), nullable=False, server_default=""),
        _fk("webhook_deliveries", "webhook_id", "webhooks"),
        _fk("webhook_deliveries", "event_id", "events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])

    op.create_table(
        "webhook_attempts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("delivery_id", ID, nullable=False),
        sa.Column("at", NOW, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        _fk("webhook_attempts", "delivery_id", "webhook_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])


def downgrade() -> None:
    for table in (
        "webhook_attempts",
        "webhook_deliveries",
        "webhooks",
        "secret_keys",
        "jobs",
        "events",
    ):
        op.drop_table(table)
