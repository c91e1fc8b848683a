"""The database engine, transactions, and migrations at start-up.

Two kinds of transaction: :meth:`Database.read` and :meth:`Database.write`. On SQLite a
write transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the
database lock instead of failing half-way with "database is locked"; reads stay deferred
and, thanks to WAL, never block writers.

Durable writes on SQLite use group commit (see :class:`WalSync`): a transaction commits
without waiting for the disk and lets the next writer in, then waits, outside the lock,
for an fsync of the write-ahead log that began after its commit. Writers that commit
while one fsync runs share the next one, so N concurrent pushes cost far fewer than N
fsyncs, and none is acknowledged before its commit is on disk. (PostgreSQL groups its
WAL flushes on its own.)
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from dockyard.db.raw import RawQuery

if TYPE_CHECKING:
    from alembic.config import Config


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
        # The pool matches the process's thread limit (anyio's default, 40; a server's
        # is Settings.threads), so a busy process reuses connections instead of opening
        # and closing overflow ones.
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        path = _sqlite_path(self.url) if self.is_sqlite else None
        if path is not None:
            # Created readable by the owner only (SQLite gives its -wal and -shm files
            # the database file's mode); an existing file keeps its mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._writer = WriterLock(_sqlite_path(self.url) if self.is_sqlite else None)
        self._wal = WalSync(path) if self.is_sqlite and path is not None else None
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

    def fetch_one(self, query: RawQuery, **params: Any) -> Sequence[Any] | None:
        """The first row of ``query``, for the point reads every registry request starts
        with (which repository a name is). On SQLite it runs on a pooled driver
        connection without a transaction of its own (one statement reads a consistent
        snapshot): SQLAlchemy's connection and transaction cost five times the query.
        """
        if not self.is_sqlite:
            with self.read() as conn:
                rows = query.rows(conn, **params)
        else:
            pooled = self.engine.pool.connect()
            try:
                rows = query.rows_on(pooled.driver_connection, self.engine.dialect, **params)
            finally:
                pooled.close()
        return rows[0] if rows else None

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction, durable once the block ends: on SQLite its commit is in
        an fsynced write-ahead log before this returns (group commit, :class:`WalSync`).

        ``durable=False`` (SQLite) returns without waiting for the disk: a crash of the
        process loses nothing, a power loss may lose this transaction (unless a later
        durable write's fsync took it along). Only for writes whose loss is repaired by
        something durable: the job queue's bookkeeping (a lost claim or outcome makes the
        job run again, and every handler is idempotent)."""
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
            with conn.begin():
                yield conn
        if durable:
            self.sync()

    def sync(self) -> None:
        """Make every commit so far durable: for a ``write(durable=False)`` whose caller
        had more to sync first (on PostgreSQL, every commit is durable already)."""
        if self._wal is not None:
            self._wal.sync()

    def write_in_background(self) -> None:
        """This process's writes are background work (a job worker's): on SQLite they
        let requests' writes go first, within bounds (see :class:`WriterLock`)."""
        self._writer.background = True

    def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to run from many replicas).

        A schema already at the newest revision, as at every start but the first after
        an upgrade, is told by one query: alembic (its migration machinery and every
        revision script, some 40 MB of a process's memory for good) is loaded only when
        there is something to migrate."""
        with self.engine.connect() as conn:
            if _at_head(conn):
                return
        from alembic import command

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


class WalSync:
    """Group commit for one SQLite database in WAL mode.

    Connections run with ``synchronous=NORMAL``: a commit appends its frames to the
    ``-wal`` file and returns without an fsync. :meth:`sync`, called after a commit, makes
    it durable: it returns once an fsync of the log that started after that commit has
    ended. One caller at a time runs the fsync; those who arrive meanwhile wait and share
    the next one, which covers every commit made before it starts (the log is appended
    in order, so an fsync covers all earlier frames, whoever wrote them; on Linux fsync
    flushes the file, whichever descriptor or process wrote to it).

    Before SQLite checkpoints the log into the database file or starts it over, it
    syncs the log and, after the checkpoint, the database file (``synchronous=NORMAL``
    does that much), so a commit that has left the log is durable already; when no log
    file is left (every connection closed), the database file is synced instead.
    """

    def __init__(self, database_path: Path) -> None:
        self._database = database_path
        self._log = database_path.with_name(database_path.name + "-wal")
        self._cond = threading.Condition()
        self._committed = 0
        """Commits that asked for a sync, numbered in the order they asked."""
        self._synced = 0
        """Every commit up to this number is on disk."""
        self._syncing = False

    def sync(self) -> None:
        """Return once this thread's last commit is on disk."""
        with self._cond:
            self._committed += 1
            ticket = self._committed
            while self._synced < ticket:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                covered = self._committed
                self._cond.release()
                try:
                    self._fsync()
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                self._synced = max(self._synced, covered)

    def _fsync(self) -> None:
        try:
            fd = os.open(self._log, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(self._database, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class WriterLock:
    """Whoever writes to one SQLite database, in this process or another (the server
    and its job workers, several server processes), takes this lock first: a thread lock
    within the process, and an ``flock`` on ``<database>-writer.lock`` across processes
    (the kernel wakes the next waiter as soon as it is released). Reentrant per thread,
    so that a nested write fails as it always did (SQLite's busy timeout) rather than
    hanging here.

    Requests come first. A process whose writes are background work (a job worker:
    :meth:`Database.write_in_background`) lets the database go to a request that waits
    for it or is writing: while any foreground process has a writer waiting or at work,
    it holds a shared ``flock`` on ``<database>-writer.busy``, and a background writer
    waits until that file is free, up to :attr:`patience` seconds, before it queues for
    the lock. A worker that waited writes what piled up meanwhile in one transaction
    (the queue claims, and results commit, in batches), so under a burst of pushes the
    workers take the lock a few times a second instead of several times per push, and
    when requests pause they have it at once."""

    patience = 0.5
    """Seconds a background writer yields to foreground ones before it queues anyway:
    the bound on how long a stream of requests can hold background work back."""

    def __init__(self, database_path: Path | None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = threading.local()
        self._path = (
            database_path.with_name(database_path.name + "-writer.lock")
            if database_path is not None
            else None
        )
        self._busy_path = (
            database_path.with_name(database_path.name + "-writer.busy")
            if database_path is not None
            else None
        )
        self._fd: int | None = None
        self._busy_fd: int | None = None
        self._busy_guard = threading.Lock()
        self._writers = 0
        """This process's foreground writers, waiting or at work."""
        self.background = False

    def _busy_file(self) -> int:
        if self._busy_fd is None:
            assert self._busy_path is not None
            self._busy_fd = os.open(self._busy_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._busy_fd

    def _announce(self, change: int) -> None:
        """Count a foreground writer in (+1) or out (-1); the first in takes the shared
        lock on the busy file, the last out lets it go."""
        with self._busy_guard:
            self._writers += change
            if change > 0 and self._writers == 1:
                fcntl.flock(self._busy_file(), fcntl.LOCK_SH)
            elif change < 0 and self._writers == 0 and self._busy_fd is not None:
                fcntl.flock(self._busy_fd, fcntl.LOCK_UN)

    def _wait_for_quiet(self) -> None:
        """Background: until no foreground process has writers, or patience runs out."""
        fd = self._busy_file()
        deadline = time.monotonic() + self.patience
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return

    def __enter__(self) -> None:
        foreground = self._path is not None and not self.background
        if foreground:
            self._announce(+1)
        try:
            self._thread_lock.acquire()
        except BaseException:
            if foreground:
                self._announce(-1)
            raise
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        if depth == 0 and self._path is not None:
            try:
                if self.background:
                    self._wait_for_quiet()
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth.n = 0
                self._thread_lock.release()
                if foreground:
                    self._announce(-1)
                raise

    def close(self) -> None:
        for fd in (self._fd, self._busy_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._busy_fd = None

    def __exit__(self, *_: object) -> None:
        self._depth.n -= 1
        try:
            if self._depth.n == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()
            if self._path is not None and not self.background:
                self._announce(-1)


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for an in-memory database)."""
    path = url.partition(":///")[2].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("dockyard.db").joinpath("migrations"))
    )
    return cfg


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*$", re.M)
_QUOTED = re.compile(r"""^(?:"([^"\\]*)"|'([^'\\]*)')$""")


def _revisions_named(value: str) -> list[str] | None:
    """The revisions a ``revision =`` or ``down_revision =`` line names: ``None``, a
    quoted id, or a tuple or list of quoted ids; None for anything else."""
    if value == "None":
        return []
    if value[:1] in "([" and value[-1:] in ")]":
        items = [i.strip() for i in value[1:-1].split(",") if i.strip()]
    else:
        items = [value]
    found = [_QUOTED.match(i) for i in items]
    if not all(found):
        return None
    return [m.group(1) or m.group(2) for m in found if m]


def script_heads() -> set[str] | None:
    """The revisions no other revision script revises: the schema's newest revision (a
    set: a branched history has several). Read from the scripts' text without alembic
    (and without ``ast``, whose parser is not thread-safe on Python 3.11: replicas
    migrate from several threads in tests); None when a script does not name its
    revisions on plain lines of literals (then only alembic can tell)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    versions = resources.files("dockyard.db").joinpath("migrations", "versions")
    for script in versions.iterdir():
        if not script.name.endswith(".py"):
            continue
        names: dict[str, list[str]] = {}
        for match in _REVISION_LINE.finditer(script.read_text(encoding="utf-8")):
            named = _revisions_named(match.group(2))
            if named is None or match.group(1) in names:
                return None
            names[match.group(1)] = named
        own = names.get("revision", [])
        if len(own) != 1 or "down_revision" not in names:
            return None
        revisions.update(own)
        revised.update(names["down_revision"])
    return revisions - revised or None


def _at_head(conn: Connection) -> bool:
    """Whether the database's schema is at the scripts' newest revision (False when it
    cannot be told: no revision table yet, or scripts only alembic can read)."""
    heads = script_heads()
    if heads is None:
        return False
    try:
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:  # a new database: no alembic_version table yet
        conn.rollback()
        return False
    conn.rollback()
    return {row[0] for row in rows} == heads


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is unreliable).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # Commits do not wait for the disk; durable writes wait for WalSync's group fsync.
    cur.execute("PRAGMA synchronous=NORMAL")
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
