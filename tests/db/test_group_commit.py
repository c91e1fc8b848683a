"""Group commit on SQLite: a durable write returns only once its commit is in an fsynced
write-ahead log, and concurrent writers share fsyncs instead of taking one each."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, WalSync, utcnow
from tests.db.conftest import run_concurrently

THREADS = 8


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'dockyard.db'}")
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


def _insert_account(db: Database, name: str, *, durable: bool = True) -> None:
    with db.write(durable=durable) as conn:
        conn.execute(sa.insert(t.accounts).values(name=name, created_at=utcnow()))


class _Journal:
    """What happened, in order: commits on the engine and fsyncs, with the file."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entries: list[str] = []
        self._lock = threading.Lock()
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            real_fsync(fd)
            self._add(f"fsync {Path(path).name}")

        monkeypatch.setattr("dockyard.db.engine.os.fsync", fsync)
        sa.event.listen(db.engine, "commit", lambda _conn: self._add("commit"))

    def _add(self, entry: str) -> None:
        with self._lock:
            self.entries.append(entry)


def test_a_durable_write_fsyncs_the_log_after_its_commit(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _Journal(sqlite_db, monkeypatch)
    _insert_account(sqlite_db, "durable")
    assert journal.entries == ["commit", "fsync dockyard.db-wal"]
    # The connections themselves do not sync at commit: that is the group's job.
    with sqlite_db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_a_write_that_is_not_durable_waits_for_no_disk(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _Journal(sqlite_db, monkeypatch)
    _insert_account(sqlite_db, "bookkeeping", durable=False)
    assert journal.entries == ["commit"]
    sqlite_db.sync()  # what a caller with more to sync first runs afterwards
    assert journal.entries == ["commit", "fsync dockyard.db-wal"]


def test_a_failed_write_syncs_nothing(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _Journal(sqlite_db, monkeypatch)
    _insert_account(sqlite_db, "taken")
    journal.entries.clear()
    with pytest.raises(sa.exc.IntegrityError):
        _insert_account(sqlite_db, "taken")
    assert journal.entries == []


class _CountingSync(WalSync):
    """A WalSync whose fsync is slow (as on a real disk under load) and counted: each
    fsync gets a number when it starts, and remembers it when it ends."""

    def __init__(self, database_path: Path) -> None:
        super().__init__(database_path)
        self.started = 0
        self.finished: list[int] = []
        self._count_lock = threading.Lock()

    def _fsync(self) -> None:
        with self._count_lock:
            self.started += 1
            number = self.started
        time.sleep(0.01)
        super()._fsync()
        with self._count_lock:
            self.finished.append(number)


def test_concurrent_writers_share_fsyncs(sqlite_db: Database, tmp_path: Path) -> None:
    counting = _CountingSync(tmp_path / "dockyard.db")
    sqlite_db._wal = counting
    rounds = 20

    def work(thread: int) -> None:
        for i in range(rounds):
            _insert_account(sqlite_db, f"w{thread}-{i}")

    run_concurrently(THREADS, work)
    with sqlite_db.read() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(t.accounts)).scalar_one()
    assert stored >= THREADS * rounds
    # 160 durable commits; one fsync each would take 1.6 s of fsyncs alone.
    assert counting.started < THREADS * rounds / 2


def test_every_sync_waits_for_an_fsync_that_began_after_it(tmp_path: Path) -> None:
    """The guarantee itself: whoever calls sync() after committing returns only once an
    fsync that started after the call has finished (an fsync already running when it
    came may have missed its commit)."""
    (tmp_path / "dockyard.db-wal").write_bytes(b"")
    counting = _CountingSync(tmp_path / "dockyard.db")
    failures: list[str] = []

    def work(thread: int) -> None:
        for i in range(10):
            with counting._count_lock:
                begun_before = counting.started
            counting.sync()
            with counting._count_lock:
                if not any(n > begun_before for n in counting.finished):
                    failures.append(f"thread {thread}, sync {i}")

    run_concurrently(THREADS, work)
    assert failures == []
    assert counting.started < THREADS * 10


def test_without_a_log_file_the_database_file_is_synced(tmp_path: Path) -> None:
    """Once every connection has closed, SQLite has checkpointed the log into the
    database file and removed it: a sync then flushes the database file."""
    (tmp_path / "dockyard.db").write_bytes(b"")
    counting = _CountingSync(tmp_path / "dockyard.db")
    counting.sync()
    assert counting.finished == [1]
