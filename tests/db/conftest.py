"""Databases for service-level tests, on SQLite and on PostgreSQL.

``database_url`` is an empty database: a SQLite file in the test's temporary folder or
a fresh database on the session's PostgreSQL cluster (``tests/fixtures/postgres.py``).
``database`` is a :class:`Database` over it with the schema migrated. Both are
parametrized, so every test that takes either runs once per dialect (ids ``[sqlite]``
and ``[postgresql]``; the latter carry the ``postgres`` marker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import TypeVar

import pytest

from dockyard.db.engine import Database
from tests.fixtures.postgres import PostgresServer

T = TypeVar("T")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dockyard.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


def run_concurrently(count: int, work: Callable[[int], T], timeout: float = 120) -> list[T]:
    """Run ``work(0)`` … ``work(count - 1)`` on ``count`` threads released at once;
    re-raise the first exception any of them raised."""
    barrier = Barrier(count)

    def start(index: int) -> T:
        barrier.wait(timeout=timeout)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start, i) for i in range(count)]
        return [f.result(timeout=timeout) for f in futures]
