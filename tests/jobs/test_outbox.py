"""The transactional outbox: a change, its audit record and its event commit together,
or none of them does."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.audit import Decision
from dockyard.catalog.service import CatalogService, parse_repository_name
from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database
from dockyard.errors import Conflict
from dockyard.events.outbox import FANOUT, EventLog
from dockyard.iam.ram import RamService
from dockyard.jobs.queue import SUCCEEDED, JobQueue
from dockyard.jobs.worker import Fail
from dockyard.origin import Origin
from dockyard.registry.service import RegistryService
from dockyard.storage.fs import FilesystemBlobStore


@pytest.fixture
def catalog(database: Database) -> CatalogService:
    changes = Changes(database, JobQueue(database))
    changes.interests.append(lambda _conn, _type, subject: subject.namespace != "quiet")
    return CatalogService(database, changes, "test-region")


def _origin(**decision: object) -> Origin:
    entry = Decision("alice", "cr:CreateRepository", "acs:cr:x:1:repository/team/app", True)
    return Origin(
        actor="alice",
        request_id="req-1",
        client_address="192.0.2.7",
        decision=entry if decision.get("audited", True) else None,
        status=201,
    )


def _count(db: Database, table: sa.Table) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_change_commits_with_its_event_audit_record_and_fanout_job(
    catalog: CatalogService,
) -> None:
    catalog.create_namespace(Origin(), "team")
    origin = _origin()
    catalog.create_repository(origin, parse_repository_name("team/app"), public=True)
    assert origin.recorded  # the middleware must not write it again

    events = EventLog(catalog.db, catalog.changes.jobs).list(None)
    assert [(e.type, e.namespace, e.repository) for e in events] == [
        ("repository_create", "team", "app")
    ]
    event = events[0]
    assert (event.actor, event.request_id, event.client_address) == (
        "alice",
        "req-1",
        "192.0.2.7",
    )
    assert event.repository_public is True
    assert event.repository_created_at is not None

    with catalog.db.read() as conn:
        audit = conn.execute(sa.select(t.audit_log)).one()
        jobs = conn.execute(sa.select(t.jobs.c.kind, t.jobs.c.payload)).all()
    assert (audit.actor, audit.action, audit.status, audit.source_ip) == (
        "alice",
        "cr:CreateRepository",
        201,
        "192.0.2.7",
    )
    assert jobs == [(FANOUT.kind, f'{{"event_id":{event.id}}}')]


def test_a_rolled_back_change_fires_nothing(catalog: CatalogService) -> None:
    catalog.create_namespace(Origin(), "team")
    ref = catalog.resolve(parse_repository_name("team/app"))
    origin = _origin()

    def push_then_fail() -> None:
        with catalog.changes.open(origin) as change:
            catalog.ensure_repository(change, ref)  # writes repository_create
            raise RuntimeError("the push failed after creating the repository")

    with pytest.raises(RuntimeError):
        push_then_fail()

    assert not origin.recorded
    for table in (t.repositories, t.events, t.jobs, t.audit_log):
        assert _count(catalog.db, table) == 0, table.name


def test_a_refused_change_fires_nothing(catalog: CatalogService) -> None:
    catalog.create_namespace(Origin(), "team")
    name = parse_repository_name("team/app")
    catalog.create_repository(Origin(), name)
    with pytest.raises(Conflict):
        catalog.create_repository(_origin(), name)
    assert _count(catalog.db, t.events) == 1
    assert _count(catalog.db, t.audit_log) == 0


def test_deleting_a_repository_takes_its_permissions_and_writes_its_event(
    catalog: CatalogService,
) -> None:
    with catalog.db.write() as conn:
        account = conn.execute(
            sa.insert(t.accounts).values(name="acme", created_at=sa.func.now())
        ).inserted_primary_key
    account_id = int(account[0])  # type: ignore[index]
    catalog.create_namespace(Origin(), "acme-ns", account_id=account_id)
    name = parse_repository_name("acme-ns/app")
    catalog.create_repository(Origin(), name)
    arn = f"acs:cr:test-region:{account_id}:repository/acme-ns/app"
    with catalog.db.write() as conn:
        conn.execute(
            sa.insert(t.policies).values(
                account_id=account_id,
                name="managed-read",
                document="{}",
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
                managed_resource=arn,
                managed_role="read-only",
            )
        )
    catalog.delete_repository(_origin(), name)
    with catalog.db.read() as conn:
        managed = conn.execute(
            sa.select(t.policies.c.name).where(t.policies.c.managed_resource.is_not(None))
        ).all()
    assert managed == []
    events = EventLog(catalog.db, catalog.changes.jobs).list(account_id)
    assert [e.type for e in events] == ["repository_delete", "repository_create"]
    assert all(e.account_id == account_id for e in events)


def test_tag_delete_carries_the_manifest(catalog: CatalogService) -> None:
    catalog.create_namespace(Origin(), "team")
    name = parse_repository_name("team/app")
    repo = catalog.create_repository(Origin(), name)
    with catalog.db.write() as conn:
        manifest_id = conn.execute(
            sa.insert(t.manifests).values(
                repository_id=repo.id,
                digest="sha256:" + "a" * 64,
                media_type="application/vnd.oci.image.manifest.v1+json",
                size=321,
                content=b"{}",
                created_at=sa.func.now(),
                touched_at=sa.func.now(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(
            sa.insert(t.tags).values(
                repository_id=repo.id, name="1.0", manifest_id=manifest_id, updated_at=sa.func.now()
            )
        )
    catalog.delete_tag(_origin(), name, "1.0")
    event = EventLog(catalog.db, catalog.changes.jobs).list(None, types=["tag_delete"])[0]
    assert (event.tag, event.digest, event.size) == ("1.0", "sha256:" + "a" * 64, 321)
    assert event.media_type == "application/vnd.oci.image.manifest.v1+json"


def test_ram_changes_commit_with_their_audit_record(catalog: CatalogService) -> None:
    ram = RamService(catalog.db, catalog.changes)
    with catalog.db.write() as conn:
        account = conn.execute(
            sa.insert(t.accounts).values(name="acme", created_at=sa.func.now())
        ).inserted_primary_key
    account_id = int(account[0])  # type: ignore[index]
    arn = f"acs:ram::{account_id}:group/devs"

    def origin() -> Origin:
        entry = Decision("acme", "ram:CreateGroup", arn, True, account_id=account_id)
        return Origin(actor="acme", account_id=account_id, decision=entry, status=201)

    first = origin()
    ram.create_group(first, account_id, "devs")
    assert first.recorded
    again = origin()
    with pytest.raises(Conflict):
        ram.create_group(again, account_id, "devs")
    assert not again.recorded  # the refused change left nothing: the request's record
    with catalog.db.read() as conn:
        rows = conn.execute(sa.select(t.audit_log.c.action, t.audit_log.c.status)).all()
    assert rows == [("ram:CreateGroup", 201)]


def test_an_event_nobody_wants_gets_no_fanout_job(catalog: CatalogService) -> None:
    catalog.create_namespace(Origin(), "quiet")
    catalog.create_repository(Origin(), parse_repository_name("quiet/app"))
    assert [e.type for e in EventLog(catalog.db, catalog.changes.jobs).list(None)] == [
        "repository_create"
    ]
    assert _count(catalog.db, t.jobs) == 0


def test_a_workers_fanouts_commit_together_and_a_gone_event_fails_alone(
    catalog: CatalogService,
) -> None:
    """The fan-out jobs one worker holds run in one transaction; an event purged since
    its job was queued fails that job (no retry helps) and no other."""
    log = EventLog(catalog.db, catalog.changes.jobs)
    seen: list[tuple[str | None, int]] = []
    log.listen(lambda conn, event: seen.append((event.repository, id(conn))))
    catalog.create_namespace(Origin(), "team")
    for name in ("one", "two", "three"):
        catalog.create_repository(Origin(), parse_repository_name(f"team/{name}"))
    gone = next(e.id for e in log.list(None) if e.repository == "two")
    with catalog.db.write() as conn:
        conn.execute(sa.delete(t.events).where(t.events.c.id == gone))
    queue = catalog.changes.jobs
    jobs = queue.claim("worker-1", ["events"], 10, lease=60)
    assert len(jobs) == 3
    handler = log.handler()

    async def run_all() -> list[str | BaseException | None]:
        return await asyncio.gather(
            *(handler.run(job, "worker-1") for job in jobs), return_exceptions=True
        )

    ids = [int(j.payload["event_id"]) for j in jobs]
    outcomes = dict(zip(ids, asyncio.run(run_all()), strict=True))
    failed = outcomes.pop(gone)
    assert isinstance(failed, Fail)
    assert "no longer exists" in str(failed)
    assert set(outcomes.values()) == {SUCCEEDED}
    assert sorted(repo or "" for repo, _ in seen) == ["one", "three"]
    assert len({conn for _, conn in seen}) == 1  # one transaction for both
    assert {queue.get(j.id).state for j in jobs if j.payload["event_id"] != gone} == {SUCCEEDED}


def test_identity_hooks_run_for_identity_changes_and_not_for_pushes(
    catalog: CatalogService, tmp_path: Path
) -> None:
    """The principal cache is cleared after a change that may alter a login or a policy,
    and left warm by registry content (a manifest push, a tag delete)."""
    calls: list[str] = []
    catalog.changes.identity_changed.append(lambda: calls.append("forget"))
    catalog.create_namespace(Origin(), "team")
    assert calls == ["forget"]

    registry = RegistryService(catalog.db, FilesystemBlobStore(tmp_path), catalog)
    ref = catalog.resolve(parse_repository_name("team/app"))
    config = b"{}"
    upload = registry.start_upload(Origin(), ref)  # creates the repository: a push
    ref = catalog.resolve(parse_repository_name("team/app"))
    appender = registry.open_append(ref, upload, 0)
    appender.write(config)
    appender.close()
    registry.finish_upload(ref, upload, f"sha256:{hashlib.sha256(config).hexdigest()}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    registry.put_manifest(
        Origin(), ref, "v1", manifest, "application/vnd.oci.image.manifest.v1+json"
    )
    registry.delete_manifest(Origin(), catalog.resolve(parse_repository_name("team/app")), "v1")
    assert calls == ["forget"]

    catalog.create_namespace(Origin(), "other")
    assert calls == ["forget", "forget"]
