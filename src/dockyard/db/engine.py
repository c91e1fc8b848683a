"""The database engine, transactions, and migrations at start-up.

Two kinds of transaction: :meth:`Database.read` and :meth:`Database.write`. On SQLite a
write transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the
database lock instead of failing half-way with "database is locked"; reads stay deferred
and, thanks to WAL, never block writers.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def normalize_url(url: str) -> str:
    """Use the pure-Python pg8000 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+pg8000://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+pg8000://" + url[len("postgres://") :]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 40) -> None:
        # The pool matches the server's worker-thread limit (anyio's default, 40), so a
        # busy server reuses connections instead of opening and closing overflow ones.
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._writer = WriterLock(_sqlite_path(self.url) if self.is_sqlite else None)
        self.inline_reads = self.is_sqlite
        """Point reads are cheap enough to run on the event loop (SQLite in WAL mode:
        readers never wait for writers)."""
        if self.is_sqlite:
            self.engine = sa.create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=8,
                connect_args={"check_same_thread": False, "timeout": 60},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = sa.create_engine(
                self.url, pool_size=pool_size, max_overflow=8, pool_pre_ping=True
            )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction. ``durable=False`` (SQLite) commits without waiting for
        the disk: a crash of the process loses nothing, a power loss may lose this
        transaction. Only for writes whose loss is repaired by something durable: the
        job queue's bookkeeping (a lost claim or outcome makes the job run again, and
        every handler is idempotent)."""
        if not self.is_sqlite:
            with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        # SQLite runs one write transaction at a time. Writers queue on a lock of their
        # own (see WriterLock), which hands over the moment a commit ends; left to
        # SQLite's busy handler they would poll, sleeping up to 100 ms between tries,
        # and the database would sit idle while they sleep.
        with self._writer, self.engine.connect() as plain:
            conn = plain.execution_options(sqlite_immediate=True)
            if durable:
                with conn.begin():
                    yield conn
                return
            driver: Any = plain.connection.driver_connection
            driver.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                driver.execute("PRAGMA synchronous=FULL")

    def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to run from many replicas)."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_lock(7042001)"))
                conn.commit()
            try:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if not self.is_sqlite:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(7042001)"))
                    conn.commit()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        self._writer.close()


class WriterLock:
    """Whoever writes to one SQLite database, in this process or another (the server
    and its job worker, several server processes), takes this lock first: a thread lock
    within the process, and an ``flock`` on ``<database>-writer.lock`` across processes
    (the kernel wakes the next waiter as soon as it is released). Reentrant per thread,
    so that a nested write fails as it always did (SQLite's busy timeout) rather than
    hanging here."""

    def __init__(self, database_path: Path | None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = threading.local()
        self._path = (
            database_path.with_name(database_path.name + "-writer.lock")
            if database_path is not None
            else None
        )
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        if depth == 0 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth.n = 0
                self._thread_lock.release()
                raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __exit__(self, *_: object) -> None:
        self._depth.n -= 1
        try:
            if self._depth.n == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for an in-memory database)."""
    path = url.partition(":///")[2].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("dockyard.db").joinpath("migrations"))
    )
    return cfg


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is unreliable).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    # Straight to the driver: this runs on every transaction, and SQLAlchemy's execution
    # machinery costs more than the statement.
    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        "BEGIN IMMEDIATE" if immediate else "BEGIN"
    )


__all__ = ["Database", "Engine", "as_utc", "utcnow"]
