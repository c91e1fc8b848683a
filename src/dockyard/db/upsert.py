"""Insert-or-update that works on both SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT into ``table`` in the dialect of ``conn`` (SQLite's or PostgreSQL's,
    both with ``on_conflict_do_*``). The dialect's module is imported when first used:
    a SQLite instance never loads PostgreSQL's (some 2 MB in every process)."""
    return _insert_in(conn.dialect.name, table)


def _insert_in(dialect: str, table: Table) -> Any:
    return importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(table)


def upsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert ``values``; on a conflict over ``keys`` update the columns in ``update``
    (or do nothing when ``update`` is empty)."""
    stmt = _statement(conn.dialect.name, table, tuple(keys), tuple(update))
    conn.execute(stmt, values)


@functools.cache
def _statement(
    dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...]
) -> Executable:
    """One statement object per kind of upsert, its values bound at execution: building
    the statement (and its cache key) anew on every call cost more than running it."""
    stmt = _insert_in(dialect, table)
    if update:
        return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))  # type: ignore[no-any-return]


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
