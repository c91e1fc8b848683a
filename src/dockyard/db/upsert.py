"""Insert-or-update that works on both SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def upsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert ``values``; on a conflict over ``keys`` update the columns in ``update``
    (or do nothing when ``update`` is empty)."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).values(**values)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)


def lock_digest(conn: Connection, digest: str) -> None:
    """Serialize writers of one blob digest until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite needs nothing, since its
    write transactions (BEGIN IMMEDIATE) already run one at a time.
    """
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
