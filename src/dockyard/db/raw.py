"""Statements that return many rows, run straight on the DB-API cursor.

SQLAlchemy builds a ``Row`` for every row it hands back, and fetches one row at a time
when iterated; for a listing of a thousand tags that costs more than the query and the
JSON together. A :class:`RawQuery` is written with SQLAlchemy (so it is the same
statement on SQLite and PostgreSQL), compiled once per dialect, and run on the driver's
own cursor with ``fetchall``: the rows come back as the driver makes them (tuples, or
lists with pg8000), with no type processing. Only for columns whose driver values are
already what the caller wants: strings, integers, and booleans that ``bool()`` makes
right (SQLite answers 0 and 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect


class RawQuery:
    """A SELECT with named ``sa.bindparam``\\ s, compiled once per dialect."""

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """The SQL, its parameters' names in order and the values SQLAlchemy fills in
        itself (SQLite's ``OFFSET`` after a ``LIMIT``)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if not compiled.positional:
                raise TypeError(f"{dialect.name}: RawQuery needs a positional paramstyle")
            # Private, but the only way to ask: a parameter SQLAlchemy would convert (a
            # datetime on SQLite) would reach the driver unconverted, and match wrong.
            if compiled._bind_processors:
                raise TypeError("RawQuery takes statements whose parameters need no conversion")
            filled = {k: v for k, v in compiled.params.items() if v is not None}
            found = (compiled.string, tuple(compiled.positiontup or ()), filled)
            self._compiled[dialect.name] = found
        return found

    def rows(self, conn: Connection, **params: Any) -> Sequence[Sequence[Any]]:
        """Every row the statement returns for ``params``, within ``conn``'s transaction."""
        return self.rows_on(conn.connection.driver_connection, conn.dialect, **params)

    def rows_on(self, driver: Any, dialect: Dialect, **params: Any) -> Sequence[Sequence[Any]]:
        """The same on a driver connection of ``dialect`` (outside any transaction, a
        single statement on SQLite reads one consistent snapshot)."""
        sql, names, defaults = self._for(dialect)
        values = defaults | params
        cursor = driver.cursor()
        try:
            cursor.execute(sql, tuple(values[name] for name in names))
            rows: Sequence[Sequence[Any]] = cursor.fetchall()
        finally:
            cursor.close()
        return rows


def keyset_pages(
    base: sa.Select[Any], key: sa.ColumnElement[Any], after: str
) -> dict[tuple[bool, bool], RawQuery]:
    """A listing's queries, by (from past a key?, limited?): ``base`` in ``key`` order,
    past the value bound as ``after`` and at most the value bound as ``limit`` rows when
    asked (a page of the OCI ``last``/``n`` kind)."""

    def page(past: bool, limited: bool) -> RawQuery:
        q = base
        if past:
            q = q.where(key > sa.bindparam(after, type_=sa.String))
        q = q.order_by(key)
        if limited:
            q = q.limit(sa.bindparam("limit"))
        return RawQuery(q)

    return {
        (past, limited): page(past, limited) for past in (False, True) for limited in (False, True)
    }
