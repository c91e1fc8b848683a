"""Alembic environment: runs on the connection Dockyard hands it."""

from __future__ import annotations

from alembic import context

from dockyard.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Dockyard runs migrations with Database.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
