"""The shared vulnerability database (dockyard.scanning.service_db) on SQLite and
PostgreSQL: imports, status, the per-machine matcher cache, the refresh schedule and
uploads queued as jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.audit import Decision
from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.jobs.queue import JobQueue
from dockyard.origin import Origin
from dockyard.scanning.model import Package
from dockyard.scanning.service_db import (
    FAILED,
    IMPORT_JOB,
    SUCCEEDED,
    SYNC_JOB,
    ImportResult,
    VulnDBService,
)
from dockyard.scanning.vulndb import VulnDB
from dockyard.storage.fs import FilesystemBlobStore
from tests.db.conftest import database, database_url, run_concurrently
from tests.scanning.osv import INVALID_RECORD, many_records, osv_record, write_json, write_zip

__all__ = ["database", "database_url"]


@pytest.fixture
def service(database: Database, tmp_path: Path) -> VulnDBService:
    jobs = JobQueue(database)
    return VulnDBService(
        database,
        tmp_path / "cache-a",
        changes=Changes(database, jobs),
        jobs=jobs,
        store=FilesystemBlobStore(tmp_path / "storage"),
    )


@pytest.fixture
def other(database_url: str, tmp_path: Path) -> Iterator[VulnDBService]:
    """A second instance on the same database, with a cache of its own: another
    replica or worker machine."""
    db = Database(database_url)
    try:
        yield VulnDBService(db, tmp_path / "cache-b")
    finally:
        db.dispose()


def deb(name: str, version: str) -> Package:
    return Package(name=name, version=version, ecosystem="Debian:12")


def test_import_zip_and_json_status_and_version(service: VulnDBService, tmp_path: Path) -> None:
    assert service.version() == ""
    assert service.status().records == 0
    seen: list[ImportResult] = []
    service.on_imported.append(seen.append)

    archive = write_zip(tmp_path / "Debian" / "all.zip", many_records(30))
    first = service.import_files([archive], source="test")
    assert (first.added, first.updated, first.kept, first.invalid) == (30, 0, 0, 0)
    assert first.version == service.version() == "1"

    newer = osv_record("DSA-0", "Debian:12", "pkg0", "2.1", modified="2024-06-01T00:00:00Z")
    pypi = osv_record("PYSEC-1", "PyPI", "Requests", "2.31")
    document = write_json(tmp_path / "more.json", [newer, pypi, INVALID_RECORD])
    second = service.import_files([document])
    assert (second.added, second.updated, second.kept, second.invalid) == (1, 1, 0, 1)
    assert second.errors[0][0] == "BAD-1"
    assert "modified" in second.errors[0][1]
    assert service.version() == "2"

    status = service.status()
    assert status.records == 31
    assert [(e.ecosystem, e.records) for e in status.ecosystems] == [("Debian", 30), ("PyPI", 1)]
    assert status.ecosystems[0].newest_modified.startswith("2024-06-01")
    assert status.last_import_at is not None

    # The same archive again: nothing changes, the version stays, no hook fires.
    again = service.import_files([archive])
    assert (again.added, again.updated, again.kept) == (0, 0, 30)
    assert service.version() == "2"
    assert [r.import_id for r in seen] == [first.import_id, second.import_id]

    history = service.imports()
    assert [i.state for i in history] == [SUCCEEDED] * 3
    assert history[1].invalid == 1
    assert history[1].errors == [{"record": "BAD-1", "reason": second.errors[0][1]}]
    assert service.outcomes()[SUCCEEDED] == 3


def test_matcher_finds_what_the_engine_finds_on_the_same_records(
    service: VulnDBService, tmp_path: Path
) -> None:
    records = [
        *many_records(50),
        osv_record("DSA-OLD", "Debian:11", "pkg1", "9.0"),  # another release
        osv_record("GHSA-1", "PyPI", "Requests", "2.31.0"),
        {**osv_record("DSA-W", "Debian:12", "pkg2", "9.0"), "withdrawn": "2024-02-01T00:00:00Z"},
    ]
    archive = write_zip(tmp_path / "all.zip", records)
    service.import_files([archive])
    packages = [
        deb("pkg1", "1.0"),
        deb("pkg2", "1.5"),
        deb("pkg3", "2.0"),
        Package("requests", "2.30.0", "PyPI"),
    ]
    with VulnDB(tmp_path / "direct") as direct:
        direct.import_paths([archive])
        expected = direct.match(packages)
    with service.open() as matcher:
        found = matcher.match(packages)
    assert found == expected
    assert {f.id for f in found} == {"DSA-1", "DSA-2", "GHSA-1"}


def test_another_process_sees_the_import_and_catches_up_incrementally(
    service: VulnDBService, other: VulnDBService, tmp_path: Path
) -> None:
    with other.open() as matcher:
        assert matcher.match([deb("pkg1", "1.0")]) == []
    service.import_files([write_zip(tmp_path / "a.zip", many_records(2100))])  # > a page
    assert other.version() == "1"
    assert other.status().records == 2100
    with other.open() as matcher:
        assert [f.id for f in matcher.match([deb("pkg1", "1.0")])] == ["DSA-1"]
    assert other.refresh_cache() == 0  # current: nothing read

    changed = osv_record("DSA-1", "Debian:12", "pkg1", "0.5", modified="2025-01-01T00:00:00Z")
    service.import_files([write_json(tmp_path / "b.json", [changed])])
    assert other.refresh_cache() == 1  # only the changed record is read
    with other.open() as matcher:
        assert matcher.match([deb("pkg1", "1.0")]) == []  # fixed in 0.5 now
        assert matcher.record_count() == 2100


def test_a_cache_made_from_another_store_is_rebuilt(
    service: VulnDBService, tmp_path: Path, database_url: str
) -> None:
    service.import_files([write_zip(tmp_path / "a.zip", many_records(5))])
    with service.open() as matcher:
        assert matcher.record_count() == 5
    fresh = Database(f"sqlite:///{tmp_path / 'other.db'}")
    fresh.migrate()
    try:
        elsewhere = VulnDBService(fresh, service.cache_dir)  # same cache folder
        elsewhere.import_files([write_json(tmp_path / "b.json", many_records(2, prefix="X"))])
        with elsewhere.open() as matcher:
            assert matcher.record_count() == 2
    finally:
        fresh.dispose()


def test_refresh_is_scheduled_once_across_replicas_and_survives_restarts(
    service: VulnDBService, other: VulnDBService
) -> None:
    every = timedelta(hours=24)
    assert service.schedule_refresh(timedelta(0)) is None  # refresh off
    first = service.schedule_refresh(every)
    assert first is not None
    assert other.schedule_refresh(every) is None  # the other replica: not due
    assert service.schedule_refresh(every) is None
    due = service.status().next_refresh_at
    assert due is not None
    assert abs((due - utcnow()) - every) < timedelta(minutes=1)
    # A restarted process reads the schedule from the database; it runs when due.
    later = utcnow() + every + timedelta(seconds=1)
    second = other.schedule_refresh(every, now=later)
    assert second is not None
    assert service.schedule_refresh(every, now=later) is None
    with service.db.read() as conn:
        kinds = conn.execute(sa.select(t.jobs.c.kind).order_by(t.jobs.c.id)).scalars().all()
    assert kinds == [SYNC_JOB.kind, SYNC_JOB.kind]


def test_uploaded_file_is_imported_by_its_job_and_removed(
    service: VulnDBService, tmp_path: Path
) -> None:
    assert service.store is not None
    archive = write_zip(tmp_path / "all.zip", [*many_records(3), INVALID_RECORD])
    upload_id = service.start_upload()
    data = archive.read_bytes()
    service.append_upload(upload_id, [data[:100], data[100:]])
    origin = Origin(
        actor="admin",
        decision=Decision("admin", "cr:ImportVulnDB", "acs:cr:local::instance", True),
    )
    queued = service.queue_import(origin, upload_id, filename="all.zip", size=len(data))
    assert queued.state == "queued"
    assert queued.source == "upload"
    with service.db.read() as conn:
        job = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == queued.job_id)).one()
        audit = conn.execute(sa.select(t.audit_log.c.action)).scalars().all()
    assert job.kind == IMPORT_JOB.kind
    assert json.loads(job.payload) == {"import_id": queued.id}
    assert audit == ["cr:ImportVulnDB"]

    result = service.run_uploaded(queued.id)
    assert result is not None
    assert (result.added, result.invalid) == (3, 1)
    done = service.get_import(queued.id)
    assert done.state == SUCCEEDED
    assert (done.progress_done, done.progress_total) == (4, 4)
    assert done.upload_id is None
    assert upload_id not in {u.upload_id for u in service.store.iter_uploads()}
    assert service.run_uploaded(queued.id) is None  # a second run of the job: nothing


def test_an_upload_that_is_no_osv_data_fails_the_import_cleanly(
    service: VulnDBService,
) -> None:
    upload_id = service.start_upload()
    service.append_upload(upload_id, [b"\x00not json at all"])
    queued = service.queue_import(Origin(actor="admin"), upload_id, filename="x", size=16)
    result = service.run_uploaded(queued.id)
    assert result is not None
    assert (result.added, result.invalid) == (0, 1)
    assert "not valid JSON" in result.errors[0][1]
    assert service.get_import(queued.id).state == SUCCEEDED
    assert service.version() == ""


def test_a_missing_upload_fails_the_import(service: VulnDBService) -> None:
    upload_id = service.start_upload()
    queued = service.queue_import(Origin(actor="admin"), upload_id, filename="x", size=0)
    service.abort_upload(upload_id)
    assert service.run_uploaded(queued.id) is None
    found = service.get_import(queued.id)
    assert found.state == FAILED
    assert "gone" in found.error


def test_concurrent_imports_take_turns_and_each_gets_a_version(
    service: VulnDBService, other: VulnDBService, tmp_path: Path
) -> None:
    files = [write_zip(tmp_path / f"{n}.zip", many_records(300, prefix=f"C{n}")) for n in range(2)]
    results = run_concurrently(2, lambda n: (service if n == 0 else other).import_files([files[n]]))
    assert sorted(r.version for r in results) == ["1", "2"]
    assert all(r.added == 300 for r in results)
    assert service.status().records == 600
    with other.open() as matcher:
        assert matcher.record_count() == 600
