"""The database layer on SQLite and PostgreSQL: migrations, upsert, transactions."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from dockyard.db import tables as t
from dockyard.db.engine import Database, alembic_config, as_utc, script_heads, utcnow
from dockyard.db.raw import RawQuery
from dockyard.db.upsert import upsert
from tests.db.conftest import run_concurrently
from tests.fixtures.postgres import PostgresServer

THREADS = 8


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _version(db: Database) -> list[str]:
    with db.read() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


def _tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _add_blob(db: Database, digest: str, size: int = 0) -> None:
    now = utcnow()
    with db.write() as conn:
        conn.execute(
            sa.insert(t.blobs).values(digest=digest, size=size, created_at=now, touched_at=now)
        )


def _blob_size(db: Database, digest: str) -> int | None:
    with db.read() as conn:
        size = conn.execute(sa.select(t.blobs.c.size).where(t.blobs.c.digest == digest)).scalar()
    return None if size is None else int(size)


def _count(db: Database, table: sa.Table) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- migrations ----------------------------------------------------------------------


def test_migrate_from_empty_and_again(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert _tables(db) == set()
        db.migrate()
        assert _tables(db) == {*t.metadata.tables, "alembic_version"}
        assert _version(db) == [_head()]
        _add_blob(db, "sha256:" + "a" * 64, 3)
        # A restart (or a second replica) migrates again: nothing changes, nothing is lost.
        db.migrate()
        Database(database_url).migrate()
        assert _version(db) == [_head()]
        assert _blob_size(db, "sha256:" + "a" * 64) == 3
    finally:
        db.dispose()


def test_script_heads_are_alembics() -> None:
    """The heads read from the scripts' text are those alembic finds."""
    assert script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_migrate_from_an_older_revision(database_url: str) -> None:
    """A database one revision behind (an upgrade of Dockyard) is migrated, not taken
    for one at head."""
    db = Database(database_url)
    try:
        db.migrate()
        previous = ScriptDirectory.from_config(alembic_config()).get_revision(_head())
        assert previous is not None
        assert isinstance(previous.down_revision, str)
        with db.engine.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, previous.down_revision)
            conn.commit()
        assert _version(db) == [previous.down_revision]
        db.migrate()
        assert _version(db) == [_head()]
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, t.metadata) == []
    finally:
        db.dispose()


def test_migrate_at_head_leaves_alembic_unloaded(database: Database) -> None:
    """A start on a schema at head tells so with one query: alembic, some 40 MB of
    every process's memory, is not imported (a fresh interpreter, so that nothing else
    in this test session has imported it already)."""
    code = (
        "import sys\n"
        "from dockyard.db.engine import Database\n"
        f"db = Database({database.url!r})\n"
        "db.migrate()\n"
        "db.dispose()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'alembic', 'mako'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_migrated_schema_matches_metadata(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, t.metadata) == []


@pytest.mark.postgres
def test_concurrent_migrate_on_postgres(postgres_server: PostgresServer) -> None:
    """Replicas starting together: the advisory lock lets one migrate, the others wait
    and then find nothing to do."""
    url = postgres_server.new_database()
    replicas = [Database(url) for _ in range(4)]
    try:
        run_concurrently(len(replicas), lambda i: replicas[i].migrate())
        assert _version(replicas[0]) == [_head()]
        assert _tables(replicas[0]) == {*t.metadata.tables, "alembic_version"}
        # The lock is released: one more migration does not wait for it.
        replicas[0].migrate()
    finally:
        for db in replicas:
            db.dispose()


# -- upsert --------------------------------------------------------------------------


def test_upsert_inserts_then_updates(database: Database) -> None:
    digest = "sha256:" + "b" * 64
    first = utcnow() - timedelta(hours=1)
    second = utcnow()
    values = {"digest": digest, "size": 10, "created_at": first, "touched_at": first}
    with database.write() as conn:
        upsert(conn, t.blobs, values, keys=["digest"], update=["touched_at"])
    with database.write() as conn:
        upsert(
            conn,
            t.blobs,
            {**values, "size": 99, "created_at": second, "touched_at": second},
            keys=["digest"],
            update=["touched_at"],
        )
    with database.read() as conn:
        rows = conn.execute(sa.select(t.blobs)).all()
    assert len(rows) == 1
    row = rows[0]._mapping
    assert row["size"] == 10  # not in ``update``: kept
    assert as_utc(row["created_at"]) == first
    assert as_utc(row["touched_at"]) == second


def test_upsert_without_update_does_nothing_on_conflict(database: Database) -> None:
    digest = "sha256:" + "c" * 64
    now = utcnow()
    for size in (1, 2):
        with database.write() as conn:
            upsert(
                conn,
                t.blobs,
                {"digest": digest, "size": size, "created_at": now, "touched_at": now},
                keys=["digest"],
            )
    assert _blob_size(database, digest) == 1


def test_upsert_on_a_composite_key(database: Database) -> None:
    now = utcnow()
    digest = "sha256:" + "d" * 64
    _add_blob(database, digest)
    with database.write() as conn:
        ns = conn.execute(
            sa.insert(t.namespaces).values(
                name="ns", auto_create=True, default_public=False, created_at=now
            )
        ).inserted_primary_key
        assert ns is not None
        repo = conn.execute(
            sa.insert(t.repositories).values(
                namespace_id=ns[0], name="repo", created_at=now, updated_at=now
            )
        ).inserted_primary_key
        assert repo is not None
    for _ in range(3):
        with database.write() as conn:
            upsert(
                conn,
                t.repository_blobs,
                {"repository_id": repo[0], "digest": digest, "created_at": now},
                keys=["repository_id", "digest"],
            )
    assert _count(database, t.repository_blobs) == 1


# -- transactions --------------------------------------------------------------------


def test_concurrent_write_transactions(database: Database) -> None:
    """8 threads each read, insert and increment in write transactions at the same time.
    On SQLite every write transaction takes the lock up front (BEGIN IMMEDIATE), so a
    transaction that has read never fails to upgrade with "database is locked"."""
    counter = "sha256:" + "0" * 64
    _add_blob(database, counter, 0)
    rounds = 15

    def work(thread: int) -> None:
        for i in range(rounds):
            with database.write() as conn:
                # A read first: this is what turns a deferred transaction into a
                # lock-upgrade deadlock on SQLite.
                conn.execute(sa.select(sa.func.count()).select_from(t.accounts)).scalar_one()
                time.sleep(0.001)
                conn.execute(
                    sa.insert(t.accounts).values(name=f"t{thread}-{i}", created_at=utcnow())
                )
                conn.execute(
                    sa.update(t.blobs)
                    .where(t.blobs.c.digest == counter)
                    .values(size=t.blobs.c.size + 1)
                )

    run_concurrently(THREADS, work)
    assert _count(database, t.accounts) == THREADS * rounds
    assert _blob_size(database, counter) == THREADS * rounds


def test_sqlite_write_transactions_are_serialized(database: Database) -> None:
    """Read-modify-write in a write transaction loses no update on SQLite."""
    if not database.is_sqlite:
        pytest.skip("PostgreSQL write transactions are READ COMMITTED, not serialized")
    counter = "sha256:" + "1" * 64
    _add_blob(database, counter, 0)
    rounds = 15

    def work(_: int) -> None:
        for _i in range(rounds):
            with database.write() as conn:
                size = conn.execute(
                    sa.select(t.blobs.c.size).where(t.blobs.c.digest == counter)
                ).scalar_one()
                time.sleep(0.001)
                conn.execute(
                    sa.update(t.blobs).where(t.blobs.c.digest == counter).values(size=size + 1)
                )

    run_concurrently(THREADS, work)
    assert _blob_size(database, counter) == THREADS * rounds


def _background_twin(database: Database) -> Database:
    """A second handle on the same SQLite file whose writes are background work, as a
    job worker's are (its own lock files' descriptors: to ``flock`` it is another
    process)."""
    if not database.is_sqlite:
        pytest.skip("only SQLite writers share one lock")
    twin = Database(database.url)
    twin.write_in_background()
    return twin


def test_background_writes_let_waiting_requests_go_first(database: Database) -> None:
    """A background writer that asked before a request's second writer still goes after
    it: while the server has a writer at work or waiting, workers hold back."""
    worker = _background_twin(database)
    order: list[str] = []
    holding = threading.Event()

    def write(db: Database, name: str, hold: float = 0.0) -> None:
        with db.write() as conn:
            if hold:
                holding.set()
                time.sleep(hold)
            conn.execute(sa.insert(t.accounts).values(name=name, created_at=utcnow()))
            order.append(name)

    try:
        first = threading.Thread(target=write, args=(database, "first-request", 0.4))
        first.start()
        assert holding.wait(10)
        background = threading.Thread(target=write, args=(worker, "background"))
        background.start()
        time.sleep(0.1)  # the worker is waiting (for the lock, or for quiet) now
        second = threading.Thread(target=write, args=(database, "second-request"))
        second.start()
        for thread in (first, second, background):
            thread.join(10)
        assert order == ["first-request", "second-request", "background"]
    finally:
        worker.dispose()


def test_background_writes_wait_a_bounded_time(database: Database) -> None:
    """Under a stream of requests' writes that never pauses, a background write still
    gets its turn after the lock's patience, not when the stream ends."""
    worker = _background_twin(database)
    worker._writer.patience = 0.2
    stop = threading.Event()
    started = time.monotonic()

    def stream(index: int) -> None:
        while not stop.is_set():
            with database.write() as conn:
                conn.execute(sa.select(1))
                time.sleep(0.005)
            if time.monotonic() - started > 5:
                return

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        begun = time.monotonic()
        with worker.write() as conn:
            waited = time.monotonic() - begun
            conn.execute(sa.insert(t.accounts).values(name="background", created_at=utcnow()))
        assert waited < 1.5, f"the background write waited {waited:.2f} s"
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        worker.dispose()
    assert _count(database, t.accounts) == 1


class Boom(Exception):
    pass


def test_failed_write_transaction_rolls_back(database: Database) -> None:
    kept = "sha256:" + "e" * 64
    _add_blob(database, kept, 1)

    def fail_half_way() -> None:
        with database.write() as conn:
            conn.execute(sa.insert(t.accounts).values(name="ghost", created_at=utcnow()))
            conn.execute(sa.update(t.blobs).where(t.blobs.c.digest == kept).values(size=2))
            conn.execute(sa.delete(t.blobs).where(t.blobs.c.digest == kept))
            raise Boom

    with pytest.raises(Boom):
        fail_half_way()
    assert _count(database, t.accounts) == 0
    assert _blob_size(database, kept) == 1
    # The connection went back to the pool clean and the lock is free: other threads write.
    run_concurrently(
        THREADS,
        lambda i: _add_blob(database, f"sha256:{i:064x}"),
    )
    assert _count(database, t.blobs) == 1 + THREADS


def test_failed_statement_rolls_back_the_transaction(database: Database) -> None:

    def insert_twice() -> None:
        with database.write() as conn:
            conn.execute(sa.insert(t.accounts).values(name="first", created_at=utcnow()))
            conn.execute(sa.insert(t.accounts).values(name="first", created_at=utcnow()))

    with pytest.raises(sa.exc.IntegrityError):
        insert_twice()
    assert _count(database, t.accounts) == 0


def test_foreign_keys_cascade(database: Database) -> None:
    """SQLite enforces foreign keys (PRAGMA foreign_keys=ON) as PostgreSQL does."""
    now = utcnow()
    with database.write() as conn:
        account = conn.execute(
            sa.insert(t.accounts).values(name="acme", created_at=now)
        ).inserted_primary_key
        assert account is not None
        conn.execute(
            sa.insert(t.namespaces).values(
                name="acme",
                account_id=account[0],
                auto_create=True,
                default_public=False,
                created_at=now,
            )
        )
    with database.write() as conn:
        conn.execute(sa.delete(t.accounts))
    assert _count(database, t.namespaces) == 0
    with pytest.raises(sa.exc.DBAPIError), database.write() as conn:
        conn.execute(
            sa.insert(t.namespaces).values(
                name="orphan",
                account_id=12345,
                auto_create=True,
                default_public=False,
                created_at=now,
            )
        )


def test_datetimes_round_trip_in_utc(database: Database) -> None:
    digest = "sha256:" + "f" * 64
    now = utcnow()
    with database.write() as conn:
        conn.execute(
            sa.insert(t.blobs).values(digest=digest, size=0, created_at=now, touched_at=now)
        )
    with database.read() as conn:
        stored = conn.execute(
            sa.select(t.blobs.c.created_at).where(t.blobs.c.digest == digest)
        ).scalar_one()
    assert as_utc(stored) == now
    assert as_utc(stored).utcoffset() == timedelta(0)


def test_ping(database: Database) -> None:
    database.ping()


def test_fetch_one_reads_a_prebuilt_query(database: Database) -> None:
    """The point-read fast path answers as a read transaction would, on both databases:
    the row in the query's column order, or None."""
    query = RawQuery(
        sa.select(t.blobs.c.digest, t.blobs.c.size).where(t.blobs.c.digest == sa.bindparam("d"))
    )
    digest = "sha256:" + "7" * 64
    assert database.fetch_one(query, d=digest) is None
    _add_blob(database, digest, 42)
    assert tuple(database.fetch_one(query, d=digest) or ()) == (digest, 42)


def test_raw_queries_refuse_parameters_that_need_conversion(database: Database) -> None:
    """The driver would get a datetime unconverted (SQLAlchemy stores it on SQLite as
    text of its own format): such a query is refused rather than answered wrong."""
    if not database.is_sqlite:
        pytest.skip("pg8000 takes datetimes as they are")
    query = RawQuery(sa.select(t.blobs.c.digest).where(t.blobs.c.created_at < sa.bindparam("at")))
    with pytest.raises(TypeError, match="need no conversion"):
        database.fetch_one(query, at=utcnow())
