"""Insert-or-update that works on both SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT into ``table`` in the dialect of ``conn`` (SQLite's or PostgreSQL's,
    both with ``on_conflict_do_*``). The dialect's module is imported when first used:
    a SQLite instance never loads PostgreSQL's (some 2 MB in every process)."""
    name = conn.dialect.name
    module = _DIALECTS.get(name)
    if module is None:
        module = _DIALECTS[name] = importlib.import_module(f"sqlalchemy.dialects.{name}")
    return module.insert(table)


_DIALECTS: dict[str, Any] = {}


def upsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert ``values``; on a conflict over ``keys`` update the columns in ``update``
    (or do nothing when ``update`` is empty)."""
    stmt = dialect_insert(conn, table).values(**values)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)


def blob_key(digest: str) -> str:
    return f"blob:{digest}"


def manifest_key(repository_id: int, digest: str) -> str:
    return f"manifest:{repository_id}:{digest}"


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Hold a lock on each named object (``blob_key``, ``manifest_key``) until the
    transaction ends.

    Whoever writes something that relies on an object existing, and whoever deletes it,
    takes its lock first; the second to come then reads what the first committed.
    PostgreSQL takes transaction-scoped advisory locks, in sorted order so that two
    transactions never wait for each other; SQLite needs nothing, since its write
    transactions (BEGIN IMMEDIATE) already run one at a time.
    """
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})
