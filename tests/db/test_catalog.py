"""The catalog service (namespaces, repositories) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest
import sqlalchemy as sa

from dockyard.catalog.service import CatalogService, parse_repository_name
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.errors import Conflict, Invalid, NotFound
from tests.db.conftest import run_concurrently


@pytest.fixture
def catalog(database: Database) -> CatalogService:
    return CatalogService(database)


def _ensure(catalog: CatalogService, name: str) -> int:
    ref = catalog.resolve(parse_repository_name(name))
    with catalog.db.write() as conn:
        return catalog.ensure_repository(conn, ref)


def _repository_count(catalog: CatalogService) -> int:
    with catalog.db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(t.repositories)).scalar_one()
        )


# -- namespaces ----------------------------------------------------------------------


def test_create_and_get_namespace(catalog: CatalogService) -> None:
    before = utcnow()
    ns = catalog.create_namespace("team-a", auto_create=False, default_public=True)
    assert ns.name == "team-a"
    assert ns.id > 0
    assert ns.account_id is None
    assert ns.auto_create is False
    assert ns.default_public is True
    assert ns.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= ns.created_at <= utcnow() + timedelta(seconds=1)
    assert catalog.get_namespace("team-a") == ns


def test_namespace_defaults(catalog: CatalogService) -> None:
    ns = catalog.create_namespace("library")
    assert ns.auto_create is True
    assert ns.default_public is False


def test_namespace_of_an_account(catalog: CatalogService) -> None:
    with catalog.db.write() as conn:
        pk = conn.execute(
            sa.insert(t.accounts).values(name="acme", created_at=utcnow())
        ).inserted_primary_key
    assert pk is not None
    ns = catalog.create_namespace("acme", account_id=pk[0])
    assert ns.account_id == pk[0]


def test_duplicate_namespace_conflicts(catalog: CatalogService) -> None:
    first = catalog.create_namespace("dup")
    with pytest.raises(Conflict, match="already exists") as info:
        catalog.create_namespace("dup", auto_create=False)
    assert info.value.status == 409
    assert catalog.get_namespace("dup") == first
    # The failed insert left the database usable.
    catalog.create_namespace("other")


@pytest.mark.parametrize("name", ["", "a", "A-team", "x" * 31, "a/b", "-ab", "ab-", "a b"])
def test_invalid_namespace_names(catalog: CatalogService, name: str) -> None:
    with pytest.raises(Invalid) as info:
        catalog.create_namespace(name)
    assert info.value.status == 400
    assert catalog.list_namespaces() == []


def test_missing_namespace(catalog: CatalogService) -> None:
    with pytest.raises(NotFound) as info:
        catalog.get_namespace("nope")
    assert info.value.status == 404
    with pytest.raises(NotFound):
        catalog.delete_namespace("nope")


def test_list_namespaces_pages_in_name_order(catalog: CatalogService) -> None:
    names = ["zeta", "alpha", "mid", "beta", "a0", "omega", "a-1"]
    for name in names:
        catalog.create_namespace(name)
    pages: list[list[str]] = []
    after: str | None = None
    while page := [ns.name for ns in catalog.list_namespaces(limit=3, after=after)]:
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for p in pages for n in p] == sorted(names)
    assert [ns.name for ns in catalog.list_namespaces()] == sorted(names)
    assert catalog.list_namespaces(after="zeta") == []


def test_delete_namespace_and_its_repositories(catalog: CatalogService) -> None:
    catalog.create_namespace("gone")
    catalog.create_namespace("stays")
    _ensure(catalog, "gone/app")
    kept = _ensure(catalog, "stays/app")
    catalog.delete_namespace("gone")
    with pytest.raises(NotFound):
        catalog.get_namespace("gone")
    assert [r[0] for r in catalog.list_repositories()] == ["stays/app"]
    assert catalog.list_repositories()[0][1] == kept
    with pytest.raises(NotFound):
        catalog.delete_namespace("gone")
    # The name is free again.
    catalog.create_namespace("gone")


# -- repositories --------------------------------------------------------------------


def test_resolve(catalog: CatalogService) -> None:
    name = parse_repository_name("team/app")
    missing = catalog.resolve(name)
    assert missing.namespace_id is None
    assert missing.repository_id is None
    assert not missing.exists

    ns = catalog.create_namespace("team", default_public=True)
    empty = catalog.resolve(name)
    assert empty.name == name
    assert empty.namespace_id == ns.id
    assert empty.account_id is None
    assert empty.auto_create is True
    assert empty.default_public is True
    assert empty.repository_id is None
    assert not empty.exists
    assert empty.is_public is False

    repo_id = _ensure(catalog, "team/app")
    found = catalog.resolve(name)
    assert found.exists
    assert found.repository_id == repo_id
    assert found.is_public is True  # from the namespace's default
    # Inside a transaction too.
    with catalog.db.read() as conn:
        assert catalog.resolve(name, conn) == found


def test_ensure_repository_creates_once(catalog: CatalogService) -> None:
    catalog.create_namespace("team")
    stale = catalog.resolve(parse_repository_name("team/app"))
    first = _ensure(catalog, "team/app")
    # A reference resolved before the repository existed finds it rather than inserting.
    with catalog.db.write() as conn:
        assert catalog.ensure_repository(conn, stale) == first
    assert _ensure(catalog, "team/app") == first
    assert _ensure(catalog, "team/other") != first
    assert catalog.list_repositories() == [
        ("team/app", first, None, False),
        ("team/other", _ensure(catalog, "team/other"), None, False),
    ]


def test_ensure_repository_in_a_rolled_back_transaction(catalog: CatalogService) -> None:
    catalog.create_namespace("team")
    ref = catalog.resolve(parse_repository_name("team/app"))

    def push_then_fail() -> None:
        with catalog.db.write() as conn:
            catalog.ensure_repository(conn, ref)
            raise RuntimeError("the push failed")

    with pytest.raises(RuntimeError):
        push_then_fail()
    assert _repository_count(catalog) == 0


def test_ensure_repository_without_auto_create(catalog: CatalogService) -> None:
    catalog.create_namespace("strict", auto_create=False)
    with pytest.raises(NotFound, match="does not create repositories on push"):
        _ensure(catalog, "strict/app")
    assert _repository_count(catalog) == 0


def test_ensure_repository_without_namespace(catalog: CatalogService) -> None:
    with pytest.raises(NotFound, match="create it first"):
        _ensure(catalog, "ghost/app")
    assert _repository_count(catalog) == 0


def test_ensure_repository_concurrently(catalog: CatalogService) -> None:
    """Parallel layer uploads into a new repository all end up in the same one.

    On PostgreSQL the write transactions run side by side, so all of them are held
    inside their transaction until each has seen "no such repository"; SQLite runs
    write transactions one at a time (holding them there would deadlock)."""
    catalog.create_namespace("team")
    threads = 8
    inside = None if catalog.db.is_sqlite else Barrier(threads)

    def push(_: int) -> int:
        ref = catalog.resolve(parse_repository_name("team/app"))
        with catalog.db.write() as conn:
            if inside is not None:
                conn.execute(sa.select(t.repositories.c.id)).all()
                inside.wait(timeout=60)
            return catalog.ensure_repository(conn, ref)

    ids = run_concurrently(threads, push)
    assert len(set(ids)) == 1
    assert _repository_count(catalog) == 1


def _wait_for_a_lock_wait(db: Database, timeout: float = 30) -> None:
    """Until some session of this database waits for a lock (PostgreSQL)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as conn:
            if conn.execute(query).scalar_one():
                return
        assert time.monotonic() < deadline, "the second transaction never waited for the first"
        time.sleep(0.02)


def test_ensure_repository_while_another_transaction_creates_it(
    catalog: CatalogService,
) -> None:
    """The first push's transaction has inserted the repository but not committed; a
    second push neither sees it nor may insert it again. It waits, then uses it."""
    if catalog.db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time")
    catalog.create_namespace("team")
    ref = catalog.resolve(parse_repository_name("team/app"))
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with catalog.db.write() as first:
            first_id = catalog.ensure_repository(first, ref)
            second = pool.submit(_ensure, catalog, "team/app")
            _wait_for_a_lock_wait(catalog.db)
        assert second.result(timeout=60) == first_id
    finally:
        pool.shutdown(wait=True)
    assert _repository_count(catalog) == 1


def test_list_repositories_pages_in_name_order(catalog: CatalogService) -> None:
    catalog.create_namespace("b-team")
    catalog.create_namespace("a-team", default_public=True)
    names = ["b-team/web", "a-team/web", "a-team/api", "b-team/api", "a-team/z"]
    ids = {name: _ensure(catalog, name) for name in names}
    pages: list[list[str]] = []
    after: str | None = None
    while page := [r[0] for r in catalog.list_repositories(limit=2, after=after)]:
        pages.append(page)
        after = page[-1]
    assert pages == [["a-team/api", "a-team/web"], ["a-team/z", "b-team/api"], ["b-team/web"]]
    rows = catalog.list_repositories()
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (name, ids[name], name.startswith("a-team")) for name in sorted(names)
    ]
