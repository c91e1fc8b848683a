"""The scan service below HTTP, on both databases: security settings, the pull policy's
decisions with the allowlist, and a stored result rebuilt into the engine's result (what
the report formats read)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.errors import Invalid, NotFound
from dockyard.jobs.queue import JobQueue
from dockyard.origin import Origin
from dockyard.scanning.formats import LayerInfo
from dockyard.scanning.model import Finding, OperatingSystem, Package, ScanResult
from dockyard.scanning.report import as_json
from dockyard.scanning.service import (
    AllowEntry,
    ScanService,
    rebuild_result,
    stored_document,
)
from dockyard.scanning.service_db import VulnDBService
from dockyard.storage.fs import FilesystemBlobStore
from tests.db.conftest import database, database_url

__all__ = ["database", "database_url"]

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def scans(database: Database, tmp_path: Path) -> ScanService:
    jobs = JobQueue(database)
    changes = Changes(database, jobs)
    store = FilesystemBlobStore(tmp_path / "blobs")
    vulndb = VulnDBService(database, tmp_path / "cache", changes=changes, jobs=jobs, store=store)
    service = ScanService(database, store, changes, jobs, vulndb.open, vulndb.version)
    with database.write() as conn:
        conn.execute(
            sa.insert(t.namespaces).values(
                name="team", auto_create=True, default_public=False, created_at=utcnow()
            )
        )
    return service


def _store_scan(db: Database, findings: dict[str, list[str]], status: str = "complete") -> None:
    counts = {level: len(findings.get(level, [])) for level in ("High", "Medium", "Low")}
    with db.write() as conn:
        conn.execute(
            sa.insert(t.scan_results).values(
                digest=DIGEST,
                kind="image",
                status=status,
                database="3 records" if status == "complete" else "",
                high=counts["High"],
                medium=counts["Medium"],
                low=counts["Low"],
                findings=json.dumps(findings),
                queued_at=utcnow(),
            )
        )


def test_settings_default_change_and_refuse_bad_values(scans: ScanService) -> None:
    found = scans.namespace_settings("team")
    assert (found.scan_on_push, found.block_pull_severity, found.block_unscanned) == (
        True,
        "none",
        False,
    )
    later = utcnow() + timedelta(days=3)
    updated = scans.update_namespace_settings(
        Origin(),
        "team",
        block_pull_severity="medium",
        allowlist=[AllowEntry("CVE-2", later, "ok"), AllowEntry("CVE-1")],
    )
    assert updated.block_pull_severity == "medium"
    assert updated.scan_on_push is True
    assert [e.id for e in updated.allowlist] == ["CVE-1", "CVE-2"]
    assert scans.update_namespace_settings(Origin(), "team", allowlist=[]).allowlist == ()
    with pytest.raises(Invalid):
        scans.update_namespace_settings(Origin(), "team", block_pull_severity="critical")
    with pytest.raises(Invalid):
        scans.update_namespace_settings(
            Origin(), "team", allowlist=[AllowEntry("CVE-1"), AllowEntry("CVE-1")]
        )
    with pytest.raises(NotFound):
        scans.namespace_settings("nobody")
    # Nothing half-written by the refusals.
    assert scans.namespace_settings("team").block_pull_severity == "medium"


def test_pull_policy_counts_levels_and_skips_allowlisted_ids(
    scans: ScanService, database: Database
) -> None:
    assert scans.pull_denial("team", DIGEST, "/report") is None  # nothing blocks
    scans.update_namespace_settings(Origin(), "team", block_unscanned=True)
    assert "never scanned" in (scans.pull_denial("team", DIGEST, "/report") or "")
    _store_scan(database, {"High": ["CVE-1", "CVE-1"], "Medium": ["CVE-2"], "Low": ["CVE-3"]})
    assert scans.pull_denial("team", DIGEST, "/report") is None  # scanned, level none
    scans.update_namespace_settings(Origin(), "team", block_pull_severity="high")
    denial = scans.pull_denial("team", DIGEST, "/report")
    assert denial is not None
    assert "2 High" in denial
    assert "/report" in denial
    scans.update_namespace_settings(Origin(), "team", allowlist=[AllowEntry("CVE-1")])
    assert scans.pull_denial("team", DIGEST, "/report") is None
    scans.update_namespace_settings(Origin(), "team", block_pull_severity="low")
    assert "1 Medium, 1 Low" in (scans.pull_denial("team", DIGEST, "/report") or "")
    expired = AllowEntry("CVE-1", utcnow() - timedelta(seconds=1))
    scans.update_namespace_settings(
        Origin(), "team", block_pull_severity="high", allowlist=[expired]
    )
    assert "2 High" in (scans.pull_denial("team", DIGEST, "/report") or "")


def test_pulls_are_recorded_at_most_once_an_hour(scans: ScanService, database: Database) -> None:
    assert scans.pulled(DIGEST) is True
    assert scans.pulled(DIGEST) is False
    scans.record_pull(DIGEST)
    scans.record_pull(DIGEST)
    with database.read() as conn:
        rows = conn.execute(sa.select(t.manifest_pulls)).all()
    assert [r.digest for r in rows] == [DIGEST]


def test_a_stored_result_rebuilds_the_engine_result() -> None:
    base = "sha256:" + "1" * 64
    libc = Package("libc6", "2.36-9", "Debian:12", "glibc", "2.36-9", base)
    lodash = Package("lodash", "4.17.20", "npm", layer=base)
    result = ScanResult(
        name="team/app@sha256:x",
        digest="sha256:x",
        os=OperatingSystem("debian", "12"),
        packages=[libc, lodash],
        findings=[
            Finding("DSA-1", libc, "High", "2.36-10", ("CVE-1",), "glibc bug"),
            Finding("GHSA-2", lodash, "Medium"),
        ],
    )
    layers = [LayerInfo(base, "sha256:" + "2" * 64, 1234, "ADD rootfs /", "application/x")]
    doc = json.loads(json.dumps(stored_document(result, layers, ["a warning"])))
    rebuilt, rebuilt_layers = rebuild_result(doc)
    assert as_json(rebuilt) == as_json(result)
    assert rebuilt.findings[0].package == libc
    assert rebuilt_layers == layers


def test_scans_of_digests_no_repository_holds_are_purged(
    scans: ScanService, database: Database
) -> None:
    _store_scan(database, {"High": ["CVE-1"]})
    scans.record_pull(DIGEST)
    now = utcnow()
    with database.write() as conn:
        ns_id = conn.execute(sa.select(t.namespaces.c.id)).scalar_one()
        repo_id = conn.execute(
            sa.insert(t.repositories)
            .values(namespace_id=ns_id, name="app", created_at=now, updated_at=now)
            .returning(t.repositories.c.id)
        ).scalar_one()
        manifest = {
            "repository_id": repo_id,
            "digest": DIGEST,
            "media_type": "application/vnd.oci.image.manifest.v1+json",
            "size": 2,
            "content": b"{}",
            "created_at": now,
            "touched_at": now,
        }
        conn.execute(sa.insert(t.manifests).values(manifest))
    assert scans.purge() == 0  # still held
    with database.write() as conn:
        conn.execute(sa.delete(t.manifests))
    assert scans.purge() == 1
    assert scans.get(DIGEST) is None
    with database.read() as conn:
        assert conn.execute(sa.select(t.manifest_pulls)).all() == []
