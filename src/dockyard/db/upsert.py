"""Insert-or-update that works on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
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
