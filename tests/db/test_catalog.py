"""The catalog service (namespaces, repositories) on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier
from typing import Any

import pytest
import sqlalchemy as sa

from dockyard.catalog.service import (
    CatalogService,
    QuotaExceeded,
    RepositoryEntry,
    RepositoryFilter,
    parse_repository_name,
)
from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.upsert import upsert
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.jobs.queue import JobQueue
from dockyard.origin import Origin
from tests.db.conftest import run_concurrently

ORIGIN = Origin(actor="tester")


@pytest.fixture
def catalog(database: Database) -> CatalogService:
    return CatalogService(database, Changes(database, JobQueue(database)))


def _ensure(catalog: CatalogService, name: str) -> int:
    ref = catalog.resolve(parse_repository_name(name))
    with catalog.changes.open(ORIGIN) as change:
        return catalog.ensure_repository(change, ref)


def _repository_count(catalog: CatalogService) -> int:
    with catalog.db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(t.repositories)).scalar_one()
        )


# -- namespaces ----------------------------------------------------------------------


def test_create_and_get_namespace(catalog: CatalogService) -> None:
    before = utcnow()
    ns = catalog.create_namespace(ORIGIN, "team-a", auto_create=False, default_public=True)
    assert ns.name == "team-a"
    assert ns.id > 0
    assert ns.account_id is None
    assert ns.auto_create is False
    assert ns.default_public is True
    assert ns.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= ns.created_at <= utcnow() + timedelta(seconds=1)
    assert catalog.get_namespace("team-a") == ns


def test_namespace_defaults(catalog: CatalogService) -> None:
    ns = catalog.create_namespace(ORIGIN, "library")
    assert ns.auto_create is True
    assert ns.default_public is False


def test_namespace_of_an_account(catalog: CatalogService) -> None:
    with catalog.db.write() as conn:
        pk = conn.execute(
            sa.insert(t.accounts).values(name="acme", created_at=utcnow())
        ).inserted_primary_key
    assert pk is not None
    ns = catalog.create_namespace(ORIGIN, "acme", account_id=pk[0])
    assert ns.account_id == pk[0]


def test_duplicate_namespace_conflicts(catalog: CatalogService) -> None:
    first = catalog.create_namespace(ORIGIN, "dup")
    with pytest.raises(Conflict, match="already exists") as info:
        catalog.create_namespace(ORIGIN, "dup", auto_create=False)
    assert info.value.status == 409
    assert catalog.get_namespace("dup") == first
    # The failed insert left the database usable.
    catalog.create_namespace(ORIGIN, "other")


@pytest.mark.parametrize("name", ["", "a", "A-team", "x" * 31, "a/b", "-ab", "ab-", "a b"])
def test_invalid_namespace_names(catalog: CatalogService, name: str) -> None:
    with pytest.raises(Invalid) as info:
        catalog.create_namespace(ORIGIN, name)
    assert info.value.status == 400
    assert catalog.list_namespaces() == []


def test_missing_namespace(catalog: CatalogService) -> None:
    with pytest.raises(NotFound) as info:
        catalog.get_namespace("nope")
    assert info.value.status == 404
    with pytest.raises(NotFound):
        catalog.delete_namespace(ORIGIN, "nope")


def test_list_namespaces_pages_in_name_order(catalog: CatalogService) -> None:
    names = ["zeta", "alpha", "mid", "beta", "a0", "omega", "a-1"]
    for name in names:
        catalog.create_namespace(ORIGIN, name)
    pages: list[list[str]] = []
    after: str | None = None
    while page := [ns.name for ns in catalog.list_namespaces(limit=3, after=after)]:
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for p in pages for n in p] == sorted(names)
    assert [ns.name for ns in catalog.list_namespaces()] == sorted(names)
    assert catalog.list_namespaces(after="zeta") == []


def test_delete_namespace_only_when_empty(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "gone")
    catalog.create_namespace(ORIGIN, "stays")
    _ensure(catalog, "gone/app")
    kept = _ensure(catalog, "stays/app")
    with pytest.raises(Conflict, match="still holds 1 repository"):
        catalog.delete_namespace(ORIGIN, "gone")
    assert len(catalog.list_repositories()) == 2
    catalog.delete_repository(ORIGIN, parse_repository_name("gone/app"))
    catalog.delete_namespace(ORIGIN, "gone")
    with pytest.raises(NotFound):
        catalog.get_namespace("gone")
    assert [r[0] for r in catalog.list_repositories()] == ["stays/app"]
    assert catalog.list_repositories()[0][1] == kept
    with pytest.raises(NotFound):
        catalog.delete_namespace(ORIGIN, "gone")
    # The name is free again.
    catalog.create_namespace(ORIGIN, "gone")


# -- repositories --------------------------------------------------------------------


def test_resolve(catalog: CatalogService) -> None:
    name = parse_repository_name("team/app")
    missing = catalog.resolve(name)
    assert missing.namespace_id is None
    assert missing.repository_id is None
    assert not missing.exists

    ns = catalog.create_namespace(ORIGIN, "team", default_public=True)
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
    catalog.create_namespace(ORIGIN, "team")
    stale = catalog.resolve(parse_repository_name("team/app"))
    first = _ensure(catalog, "team/app")
    # A reference resolved before the repository existed finds it rather than inserting.
    with catalog.changes.open(ORIGIN) as change:
        assert catalog.ensure_repository(change, stale) == first
    assert _ensure(catalog, "team/app") == first
    assert _ensure(catalog, "team/other") != first
    assert catalog.list_repositories() == [
        ("team/app", first, None, False),
        ("team/other", _ensure(catalog, "team/other"), None, False),
    ]


def test_ensure_repository_in_a_rolled_back_transaction(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team")
    ref = catalog.resolve(parse_repository_name("team/app"))

    def push_then_fail() -> None:
        with catalog.changes.open(ORIGIN) as change:
            catalog.ensure_repository(change, ref)
            raise RuntimeError("the push failed")

    with pytest.raises(RuntimeError):
        push_then_fail()
    assert _repository_count(catalog) == 0


def test_ensure_repository_without_auto_create(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "strict", auto_create=False)
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
    catalog.create_namespace(ORIGIN, "team")
    threads = 8
    inside = None if catalog.db.is_sqlite else Barrier(threads)

    def push(_: int) -> int:
        ref = catalog.resolve(parse_repository_name("team/app"))
        with catalog.changes.open(ORIGIN) as change:
            if inside is not None:
                change.conn.execute(sa.select(t.repositories.c.id)).all()
                inside.wait(timeout=60)
            return catalog.ensure_repository(change, ref)

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
    catalog.create_namespace(ORIGIN, "team")
    ref = catalog.resolve(parse_repository_name("team/app"))
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with catalog.changes.open(ORIGIN) as first:
            first_id = catalog.ensure_repository(first, ref)
            second = pool.submit(_ensure, catalog, "team/app")
            _wait_for_a_lock_wait(catalog.db)
        assert second.result(timeout=60) == first_id
    finally:
        pool.shutdown(wait=True)
    assert _repository_count(catalog) == 1


def test_list_repositories_pages_in_name_order(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "b-team")
    catalog.create_namespace(ORIGIN, "a-team", default_public=True)
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


# -- settings, explicit repositories, quotas -------------------------------------------


def _account(catalog: CatalogService, name: str, *, admin: bool = False, **quotas: int) -> int:
    """An account (with an instance-administrator user when ``admin``)."""
    with catalog.db.write() as conn:
        pk = conn.execute(
            sa.insert(t.accounts).values(name=name, created_at=utcnow(), **quotas)
        ).inserted_primary_key
        assert pk is not None
        if admin:
            conn.execute(
                sa.insert(t.users).values(
                    name=name,
                    account_id=pk[0],
                    password_hash="x",
                    is_admin=True,
                    is_root=True,
                    created_at=utcnow(),
                )
            )
    return int(pk[0])


def test_update_namespace(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team")
    ns = catalog.update_namespace(ORIGIN, "team", default_public=True)
    assert (ns.auto_create, ns.default_public) == (True, True)
    ns = catalog.update_namespace(ORIGIN, "team", auto_create=False)
    assert (ns.auto_create, ns.default_public) == (False, True)
    assert catalog.update_namespace(ORIGIN, "team") == ns
    assert catalog.get_namespace("team") == ns
    with pytest.raises(NotFound):
        catalog.update_namespace(ORIGIN, "nope", auto_create=True)
    with pytest.raises(NotFound):
        catalog.update_namespace(ORIGIN, "nope")


def test_create_get_update_delete_repository(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team", default_public=True)
    name = parse_repository_name("team/app")
    repo = catalog.create_repository(ORIGIN, name, summary="An app", detail="# App")
    assert (repo.namespace, repo.name, repo.full_name) == ("team", "app", "team/app")
    assert repo.is_public is True  # the namespace's default
    assert (repo.summary, repo.detail, repo.tag_count, repo.size) == ("An app", "# App", 0, 0)
    assert repo.created_at == repo.updated_at
    assert repo.created_at.utcoffset() == timedelta(0)
    assert catalog.get_repository(name) == repo
    assert catalog.resolve(name).repository_id == repo.id
    private = catalog.create_repository(ORIGIN, parse_repository_name("team/secret"), public=False)
    assert private.is_public is False
    with pytest.raises(Conflict, match="already exists"):
        catalog.create_repository(ORIGIN, name)

    updated = catalog.update_repository(ORIGIN, name, summary="The app")
    assert (updated.summary, updated.detail, updated.is_public) == ("The app", "# App", True)
    assert updated.updated_at > repo.updated_at
    assert updated.created_at == repo.created_at
    updated = catalog.update_repository(ORIGIN, name, public=False, detail="")
    assert (updated.summary, updated.detail, updated.is_public) == ("The app", "", False)

    catalog.delete_repository(ORIGIN, name)
    for call in (
        catalog.get_repository,
        functools.partial(catalog.delete_repository, ORIGIN),
        functools.partial(catalog.update_repository, ORIGIN),
    ):
        with pytest.raises(NotFound, match="repository team/app does not exist"):
            call(name)
    with pytest.raises(NotFound, match="namespace 'ghost' does not exist; create it"):
        catalog.create_repository(ORIGIN, parse_repository_name("ghost/app"))
    with pytest.raises(NotFound, match="namespace 'ghost' does not exist"):
        catalog.get_repository(parse_repository_name("ghost/app"))


def test_repository_text_limits(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team")
    name = parse_repository_name("team/app")
    with pytest.raises(Invalid, match="101 characters; at most 100"):
        catalog.create_repository(ORIGIN, name, summary="s" * 101)
    with pytest.raises(Invalid, match="65537 bytes"):
        catalog.create_repository(ORIGIN, name, detail="d" * 65537)
    with pytest.raises(Invalid, match="bytes"):
        catalog.create_repository(ORIGIN, name, detail="é" * 40000)  # 80,000 bytes in UTF-8
    assert _repository_count(catalog) == 0
    catalog.create_repository(ORIGIN, name, summary="é" * 100, detail="d" * 65536)
    with pytest.raises(Invalid, match="at most 100"):
        catalog.update_repository(ORIGIN, name, summary="s" * 101)
    assert catalog.get_repository(name).summary == "é" * 100


def test_repository_quota(catalog: CatalogService) -> None:
    account = _account(catalog, "acme", repository_quota=2)
    catalog.create_namespace(ORIGIN, "acme-a", account_id=account)
    catalog.create_namespace(ORIGIN, "acme-b", account_id=account)
    catalog.create_repository(ORIGIN, parse_repository_name("acme-a/one"))
    _ensure(catalog, "acme-b/two")  # a push creates the second one
    with pytest.raises(QuotaExceeded) as info:
        catalog.create_repository(ORIGIN, parse_repository_name("acme-a/three"))
    assert info.value.status == 403
    assert "account 'acme' has 2 of its 2 repositories" in str(info.value)
    assert 'PATCH /api/v1/accounts/acme {"repository_quota": N}' in str(info.value)
    with pytest.raises(QuotaExceeded, match="2 of its 2 repositories"):
        _ensure(catalog, "acme-b/three")
    assert _repository_count(catalog) == 2
    # Existing repositories are no new ones.
    _ensure(catalog, "acme-b/two")
    # The instance administrator (enforce_quota off) is not bound by it.
    catalog.create_repository(ORIGIN, parse_repository_name("acme-a/three"), enforce_quota=False)
    # Another account's quota is its own.
    other = _account(catalog, "globex", repository_quota=1)
    catalog.create_namespace(ORIGIN, "globex", account_id=other)
    _ensure(catalog, "globex/one")
    with pytest.raises(QuotaExceeded, match="'globex' has 1 of its 1"):
        catalog.create_repository(ORIGIN, parse_repository_name("globex/two"))


def test_pushes_into_the_administrators_account_ignore_the_quota(
    catalog: CatalogService,
) -> None:
    account = _account(catalog, "admin", admin=True, repository_quota=1)
    catalog.create_namespace(ORIGIN, "library", account_id=account)
    _ensure(catalog, "library/one")
    _ensure(catalog, "library/two")
    assert _repository_count(catalog) == 2
    # Through the API the administrator is exempt by enforce_quota=False; anyone else of
    # the account is bound.
    with pytest.raises(QuotaExceeded):
        catalog.create_repository(ORIGIN, parse_repository_name("library/three"))


def test_default_repository_quota_is_300(catalog: CatalogService) -> None:
    account = _account(catalog, "acme")
    with catalog.db.read() as conn:
        quota = conn.execute(
            sa.select(t.accounts.c.repository_quota).where(t.accounts.c.id == account)
        ).scalar_one()
    assert quota == 300


def test_list_repositories_filters(catalog: CatalogService) -> None:
    acme = _account(catalog, "acme")
    globex = _account(catalog, "globex")
    catalog.create_namespace(ORIGIN, "acme", account_id=acme)
    catalog.create_namespace(ORIGIN, "globex", account_id=globex)
    for full, public in (
        ("acme/web", True),
        ("acme/api", False),
        ("acme/web_1", False),
        ("acme/webx1", False),
        ("globex/web", False),
    ):
        catalog.create_repository(ORIGIN, parse_repository_name(full), public=public)

    def names(after: str | None = None, **filters: Any) -> list[str]:
        chosen = RepositoryFilter(**filters)
        return [e.full_name for e in catalog.list_repositories(after=after, filters=chosen)]

    assert names() == ["acme/api", "acme/web", "acme/web_1", "acme/webx1", "globex/web"]
    assert names(account_id=acme) == ["acme/api", "acme/web", "acme/web_1", "acme/webx1"]
    assert names(account_name="globex") == ["globex/web"]
    assert names(account_name="nobody") == []
    assert names(namespace="globex") == ["globex/web"]
    assert names(contains="WEB") == ["acme/web", "acme/web_1", "acme/webx1", "globex/web"]
    assert names(contains="b_1") == ["acme/web_1"]  # LIKE wildcards are literal
    assert names(public=True) == ["acme/web"]
    assert names(public=False, account_id=acme, after="acme/web") == ["acme/web_1", "acme/webx1"]
    entry = catalog.list_repositories(filters=RepositoryFilter(namespace="acme", public=True))[0]
    assert (entry.account_id, entry.is_public) == (acme, True)


def test_find_repositories_keeps_what_the_caller_may_see(
    catalog: CatalogService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that filling a page takes several reads.
    monkeypatch.setattr("dockyard.catalog.service._SCAN_BATCH", 3)
    catalog.create_namespace(ORIGIN, "team")
    all_names = [f"team/app{i:02}" for i in range(12)]
    for full in all_names:
        catalog.create_repository(ORIGIN, parse_repository_name(full))
    seen: list[str] = []

    def every_third(entry: RepositoryEntry) -> bool:
        seen.append(entry.full_name)
        return int(entry.full_name[-2:]) % 3 == 0

    page = catalog.find_repositories(every_third, limit=3)
    assert [r.full_name for r in page] == ["team/app00", "team/app03", "team/app06"]
    assert seen == all_names[:9]  # no further than needed
    rest = catalog.find_repositories(every_third, limit=3, after="team/app06")
    assert [r.full_name for r in rest] == ["team/app09"]
    assert catalog.find_repositories(lambda _: False) == []
    plain = catalog.find_repositories(limit=2, after="team/app10")
    assert [r.full_name for r in plain] == ["team/app11"]


# -- tags and sizes --------------------------------------------------------------------


def _manifest(
    conn: sa.Connection,
    repository_id: int,
    digest: str,
    size: int,
    *,
    blobs: dict[str, int] | None = None,
    children: tuple[str, ...] = (),
    media_type: str = "application/vnd.oci.image.manifest.v1+json",
) -> int:
    now = utcnow()
    for blob, blob_size in (blobs or {}).items():
        upsert(
            conn,
            t.blobs,
            {"digest": blob, "size": blob_size, "created_at": now, "touched_at": now},
            keys=["digest"],
        )
        upsert(
            conn,
            t.repository_blobs,
            {"repository_id": repository_id, "digest": blob, "created_at": now},
            keys=["repository_id", "digest"],
        )
    pk = conn.execute(
        sa.insert(t.manifests).values(
            repository_id=repository_id,
            digest=digest,
            media_type=media_type,
            size=size,
            content=b"x" * size,
            created_at=now,
            touched_at=now,
        )
    ).inserted_primary_key
    assert pk is not None
    refs = [("blob", b) for b in blobs or {}] + [("manifest", c) for c in children]
    for kind, ref in refs:
        conn.execute(
            sa.insert(t.manifest_references).values(manifest_id=pk[0], kind=kind, digest=ref)
        )
    return int(pk[0])


def _tag(conn: sa.Connection, repository_id: int, name: str, manifest_id: int, at: int) -> None:
    conn.execute(
        sa.insert(t.tags).values(
            repository_id=repository_id,
            name=name,
            manifest_id=manifest_id,
            updated_at=utcnow() - timedelta(minutes=60 - at),
        )
    )


def test_tags_with_sizes(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team")
    name = parse_repository_name("team/app")
    repo_id = _ensure(catalog, "team/app")
    index_type = "application/vnd.oci.image.index.v1+json"
    with catalog.db.write() as conn:
        one = _manifest(conn, repo_id, "sha256:1", 100, blobs={"sha256:c1": 10, "sha256:l1": 1000})
        two = _manifest(conn, repo_id, "sha256:2", 200, blobs={"sha256:c2": 20, "sha256:l1": 1000})
        index = _manifest(
            conn, repo_id, "sha256:i", 50, children=("sha256:1", "sha256:2"), media_type=index_type
        )
        _tag(conn, repo_id, "v1", one, at=1)
        _tag(conn, repo_id, "v2", two, at=2)
        _tag(conn, repo_id, "multi", index, at=3)
        _tag(conn, repo_id, "also-v1", one, at=3)

    tags = catalog.list_tags(name)
    assert [x.name for x in tags] == ["also-v1", "multi", "v2", "v1"]  # latest first, then name
    by_name = {x.name: x for x in tags}
    assert by_name["v1"].size == 100 + 10 + 1000
    assert by_name["v1"].digest == "sha256:1"
    assert by_name["v2"].size == 200 + 20 + 1000
    assert by_name["multi"].size == 50 + 1110 + 1220
    assert by_name["multi"].media_type == index_type
    assert by_name["v1"].pushed_at.utcoffset() == timedelta(0)
    assert catalog.get_tag(name, "multi") == by_name["multi"]

    assert [x.name for x in catalog.list_tags(name, order="name")] == [
        "also-v1",
        "multi",
        "v1",
        "v2",
    ]
    assert [x.name for x in catalog.list_tags(name, limit=2, after="multi")] == ["v2", "v1"]
    assert [x.name for x in catalog.list_tags(name, limit=1, after="also-v1")] == ["multi"]
    assert [x.name for x in catalog.list_tags(name, order="name", after="multi")] == ["v1", "v2"]
    assert [x.name for x in catalog.list_tags(name, contains="v1")] == ["also-v1", "v1"]
    # The largest first (ties by name), or turned; every order pages by its own key.
    assert [x.name for x in catalog.list_tags(name, order="size")] == [
        "multi",
        "v2",
        "also-v1",
        "v1",
    ]
    smallest = catalog.list_tags(name, order="size", direction="asc")
    assert [x.name for x in smallest] == ["also-v1", "v1", "v2", "multi"]
    assert [x.size for x in smallest] == [1110, 1110, 1220, 2380]
    for order, direction in (("size", None), ("size", "asc"), ("name", "desc"), ("pushed", "asc")):
        whole = [x.name for x in catalog.list_tags(name, order=order, direction=direction)]
        paged: list[str] = []
        while len(paged) <= len(whole):
            found = catalog.list_tags(
                name, order=order, direction=direction, limit=1, after=paged[-1] if paged else None
            )
            if not found:
                break
            paged += [x.name for x in found]
        assert paged == whole, (order, direction)
    assert [x.name for x in catalog.list_tags(name, order="name", direction="desc")] == [
        "v2",
        "v1",
        "multi",
        "also-v1",
    ]
    oldest = catalog.list_tags(name, order="pushed", direction="asc")
    assert [x.name for x in oldest] == [x.name for x in reversed(tags)]
    with pytest.raises(Invalid, match="list again from the start"):
        catalog.list_tags(name, order="size", after="gone")
    assert catalog.list_tags(name, contains="%") == []
    with pytest.raises(Invalid, match="list again from the start"):
        catalog.list_tags(name, after="gone")

    repo = catalog.get_repository(name)
    assert repo.tag_count == 4
    # Distinct blobs (l1 once) plus every manifest.
    assert repo.size == (10 + 20 + 1000) + (100 + 200 + 50)
    [listed] = catalog.find_repositories()
    assert listed == repo

    with pytest.raises(NotFound, match="tag 'nope' does not exist in team/app"):
        catalog.get_tag(name, "nope")
    with pytest.raises(Invalid, match="must match"):
        catalog.get_tag(name, "-bad")
    with pytest.raises(NotFound, match="repository team/other does not exist"):
        catalog.list_tags(parse_repository_name("team/other"))


def test_delete_tag_and_repository(catalog: CatalogService) -> None:
    catalog.create_namespace(ORIGIN, "team")
    name = parse_repository_name("team/app")
    repo_id = _ensure(catalog, "team/app")
    with catalog.db.write() as conn:
        one = _manifest(conn, repo_id, "sha256:1", 100, blobs={"sha256:c1": 10})
        _tag(conn, repo_id, "v1", one, at=1)
    before = catalog.get_repository(name)
    catalog.delete_tag(ORIGIN, name, "v1")
    after = catalog.get_repository(name)
    assert after.tag_count == 0
    assert after.updated_at > before.updated_at
    assert after.size == before.size  # the manifest stays
    with pytest.raises(NotFound, match="does not exist"):
        catalog.delete_tag(ORIGIN, name, "v1")

    catalog.delete_repository(ORIGIN, name)
    with catalog.db.read() as conn:
        for table in (t.manifests, t.tags, t.repository_blobs, t.manifest_references):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
        # Blobs stay for garbage collection.
        assert conn.execute(sa.select(t.blobs.c.digest)).scalars().all() == ["sha256:c1"]
