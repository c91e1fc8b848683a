"""Vulnerability scans in the registry: queued on push or on request, run by workers on
the ``scans`` queue, stored per manifest digest.

A result belongs to the digest, not to a tag or a repository: every tag and repository
that points at the digest shows it, and a digest already scanned with the current
vulnerability database is not scanned again on push. An index gets one scan per
platform manifest and a row of its own that sums them.

The row of a digest always keeps the last *complete* scan (its database version, counts,
findings and report) while a new one is queued or runs, so pull blocking and the
console keep a result to go by; ``status`` says what is happening now.

Scans read blobs straight from the blob store (:mod:`dockyard.scanning.blobsource`),
within the engine's limits. An artifact that is not an image ends ``unsupported``; one
that cannot be read ends ``failed`` with the reason, never retried in a loop: only
errors of the blob store (S3 unreachable) are retried, and the last attempt records the
failure.

The vulnerability database comes through one seam, ``vulndb`` (a context manager
factory) with ``database_version`` (``""`` when nothing was imported: results then say
``database: "empty"``, never a clean-looking zero).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import dialect_insert, upsert
from dockyard.errors import Invalid, NotFound
from dockyard.events import model as events
from dockyard.events.outbox import Subject, write_event
from dockyard.jobs.queue import Job, JobQueue, JobSpec, enqueue, settle
from dockyard.jobs.worker import Handler
from dockyard.oci import mediatypes as mt
from dockyard.oci.reference import RepositoryName
from dockyard.origin import Origin
from dockyard.scanning.formats.common import LayerInfo
from dockyard.scanning.model import SEVERITIES, Finding, OperatingSystem, Package, ScanResult
from dockyard.scanning.report import as_json, summary
from dockyard.scanning.vulndb import VulnDB
from dockyard.storage.base import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

SCAN: Final = JobSpec("scans.scan", queue="scans", max_attempts=3)
"""Scan one image manifest. Few attempts: only blob store outages are retried."""

QUEUED: Final = "queued"
SCANNING: Final = "scanning"
COMPLETE: Final = "complete"
FAILED_SCAN: Final = "failed"
UNSUPPORTED: Final = "unsupported"
STATUSES: Final = (QUEUED, SCANNING, COMPLETE, FAILED_SCAN, UNSUPPORTED)
EMPTY_DATABASE: Final = "empty"
"""The database version of a scan made with no vulnerability data imported."""

BLOCK_LEVELS: Final = ("none", "low", "medium", "high")
"""``block_pull_severity``: pulls are refused at this level and above."""
_LEVEL_OF: Final = {"low": "Low", "medium": "Medium", "high": "High"}
_COUNTED: Final = ("High", "Medium", "Low")
"""Levels pull blocking counts (Unknown never blocks: it is no level)."""

PUSH_PRIORITY: Final = 0
REQUEST_PRIORITY: Final = 10
RESCAN_PRIORITY: Final = -10
STALE_QUEUED: Final = timedelta(hours=1)
"""A scan queued or running this long without an end is queued again (its job died)."""
POLICY_TTL: Final = 5.0
"""Seconds a process trusts its copy of a namespace's pull policy."""
PULL_RECORD_INTERVAL: Final = 3600.0
"""A manifest's last pull is written at most this often (seconds) by one process."""
VERSION_TTL: Final = 10.0
"""Seconds the database version is trusted before it is asked again."""

VulnDBOpener = Callable[[], contextlib.AbstractContextManager[VulnDB]]


class ScanObserver(Protocol):
    """What the service reports when a scan ends (the metrics)."""

    def scan_finished(self, outcome: str, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class AllowEntry:
    id: str
    expires_at: datetime | None = None
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """A namespace's security settings (the defaults when it has none stored)."""

    scan_on_push: bool = True
    block_pull_severity: str = "none"
    block_unscanned: bool = False
    allowlist: tuple[AllowEntry, ...] = ()

    def allowed_ids(self, now: datetime) -> frozenset[str]:
        return frozenset(e.id for e in self.allowlist if e.active(now))


@dataclass(frozen=True, slots=True)
class RepositorySecurity:
    scan_on_push: bool | None
    """The repository's own setting; None: its namespace's."""
    namespace: SecuritySettings

    @property
    def effective_scan_on_push(self) -> bool:
        if self.scan_on_push is None:
            return self.namespace.scan_on_push
        return self.scan_on_push


@dataclass(frozen=True, slots=True)
class StoredScan:
    """One digest's scan row: what is happening now, and the last complete result."""

    digest: str
    kind: str
    """``image`` or ``index``."""
    platform: str
    parent_digest: str | None
    status: str
    reason: str
    database: str
    """The database version of the last complete scan, ``empty`` when it had no data,
    ``""`` when no scan has completed."""
    counts: dict[str, int]
    findings: dict[str, list[str]]
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def has_result(self) -> bool:
        return bool(self.database)


@dataclass(frozen=True, slots=True)
class Report:
    """A result as the API shows it: the row, its engine result, its layers, and for an
    index its platforms."""

    scan: StoredScan
    result: ScanResult | None
    layers: list[LayerInfo]
    platforms: list[Report] = field(default_factory=list)
    media_type: str = ""
    """The manifest's media type (what the report formats name the artifact as)."""


@dataclass(frozen=True, slots=True)
class _Manifest:
    repository_id: int
    digest: str
    media_type: str
    content: bytes


_S = t.scan_results.c


def _scan(row: Any) -> StoredScan:
    m = row._mapping
    return StoredScan(
        digest=m["digest"],
        kind=m["kind"],
        platform=m["platform"],
        parent_digest=m["parent_digest"],
        status=m["status"],
        reason=m["reason"],
        database=m["database"],
        counts={
            "High": int(m["high"]),
            "Medium": int(m["medium"]),
            "Low": int(m["low"]),
            "Unknown": int(m["unknown"]),
        },
        findings=json.loads(m["findings"] or "{}"),
        queued_at=as_utc(m["queued_at"]),
        started_at=as_utc(m["started_at"]) if m["started_at"] else None,
        finished_at=as_utc(m["finished_at"]) if m["finished_at"] else None,
    )


_SCAN_COLUMNS = [c for c in t.scan_results.c if c.name != "result"]
_SCAN_BY_DIGEST = sa.select(*_SCAN_COLUMNS).where(_S.digest == sa.bindparam("digest"))
"""Built once: pull blocking reads it on manifest GETs."""


def _compress(doc: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def _decompress(blob: bytes | None) -> dict[str, Any] | None:
    if not blob:
        return None
    doc: dict[str, Any] = json.loads(zlib.decompress(bytes(blob)))
    return doc


def stored_document(
    result: ScanResult, layers: Sequence[LayerInfo], warnings: Sequence[str]
) -> dict[str, Any]:
    """What a complete scan stores: the engine's JSON report, the layers, the warnings."""
    return {
        "report": as_json(result),
        "layers": [
            {
                "digest": x.digest,
                "diff_id": x.diff_id,
                "size": x.size,
                "media_type": x.media_type,
                "created_by": x.created_by,
            }
            for x in layers
        ],
        "warnings": list(warnings),
    }


def ecosystems_of(doc: dict[str, Any]) -> str:
    """The OSV ecosystems a stored document's packages are matched in, sorted and joined
    by commas (what ``scan_results.ecosystems`` keeps, so that a sync learns them without
    reading every report)."""
    found = {str(p.get("ecosystem") or "") for p in doc.get("report", {}).get("packages", [])}
    found.discard("")
    return ",".join(sorted(e.replace(",", "") for e in found))


def rebuild_result(doc: dict[str, Any]) -> tuple[ScanResult, list[LayerInfo]]:
    """The engine's :class:`ScanResult` and the layers from a stored document."""
    report = doc["report"]
    os_doc = report.get("os") or {}
    os = (
        OperatingSystem(os_doc.get("family", ""), os_doc.get("version", ""))
        if os_doc.get("family")
        else None
    )
    packages = [
        Package(
            name=p["name"],
            version=p["version"],
            ecosystem=p["ecosystem"],
            source_name=p.get("source_name", ""),
            source_version=p.get("source_version", ""),
            layer=p.get("layer", ""),
        )
        for p in report.get("packages", [])
    ]
    by_key = {(p.name, p.version, p.ecosystem, p.layer): p for p in packages}
    findings = []
    for v in report.get("vulnerabilities", []):
        key = (v["package"], v["installed_version"], v["ecosystem"], v.get("layer", ""))
        package = by_key.get(key) or Package(
            name=v["package"],
            version=v["installed_version"],
            ecosystem=v["ecosystem"],
            source_name=v.get("source_name", ""),
            layer=v.get("layer", ""),
        )
        findings.append(
            Finding(
                id=v["id"],
                package=package,
                severity=v["severity"],
                fixed_version=v.get("fixed_version", ""),
                aliases=tuple(v.get("aliases", ())),
                summary=v.get("summary", ""),
            )
        )
    artifact = report.get("artifact") or {}
    result = ScanResult(
        name=artifact.get("name", ""),
        digest=artifact.get("digest", ""),
        os=os,
        packages=packages,
        findings=findings,
    )
    layers = [
        LayerInfo(
            digest=x["digest"],
            diff_id=x.get("diff_id", ""),
            size=int(x.get("size", 0)),
            media_type=x.get("media_type", ""),
            created_by=x.get("created_by", ""),
        )
        for x in doc.get("layers", [])
    ]
    return result, layers


def _platform_of(descriptor: dict[str, Any]) -> str:
    spec = descriptor.get("platform")
    if not isinstance(spec, dict):
        return ""
    parts = [str(spec.get(k, "")) for k in ("os", "architecture", "variant")]
    return "/".join(p for p in parts if p)


def blocking_counts(scan: StoredScan, level: str, allowed: frozenset[str]) -> dict[str, int]:
    """Findings at ``level`` (``low``/``medium``/``high``) or above that count for pull
    blocking, per level: allowlisted ids do not."""
    wanted = _COUNTED[: _COUNTED.index(_LEVEL_OF[level]) + 1]
    out: dict[str, int] = {}
    for name in wanted:
        ids = scan.findings.get(name, [])
        n = sum(1 for i in ids if i not in allowed) if allowed else len(ids)
        if n:
            out[name] = n
    return out


_SCAN_ON_PUSH = (
    sa.select(
        t.repositories.c.id,
        t.namespace_security.c.scan_on_push.label("ns_scan"),
        t.repository_security.c.scan_on_push.label("repo_scan"),
    )
    .select_from(
        t.repositories.join(t.namespaces)
        .outerjoin(
            t.namespace_security,
            t.namespace_security.c.namespace_id == t.namespaces.c.id,
        )
        .outerjoin(
            t.repository_security,
            t.repository_security.c.repository_id == t.repositories.c.id,
        )
    )
    .where(
        t.namespaces.c.name == sa.bindparam("namespace"),
        t.repositories.c.name == sa.bindparam("repository"),
    )
)
"""A pushed repository's ``scan_on_push`` settings (built once: every push reads it)."""


class ScanService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        changes: Changes,
        jobs: JobQueue,
        vulndb: VulnDBOpener,
        database_version: Callable[[], str],
    ) -> None:
        self.db = db
        self.store = store
        self.changes = changes
        self.jobs = jobs
        self.vulndb = vulndb
        self._database_version = database_version
        self.observer: ScanObserver | None = None
        self._version: tuple[float, str] = (-1e9, "")
        self._policies: dict[str, tuple[float, SecuritySettings, int | None]] = {}
        self._pulls: dict[str, float] = {}
        self._guard = threading.Lock()

    # -- the database seam -----------------------------------------------------------

    def database_version(self, *, fresh: bool = False) -> str:
        """The vulnerability database's version, ``empty`` when nothing is imported
        (asked again at most every :data:`VERSION_TTL` seconds, unless ``fresh``: a scan
        and a rescan after an import must see the import)."""
        at, version = self._version
        if fresh or time.monotonic() - at > VERSION_TTL:
            version = self._database_version() or EMPTY_DATABASE
            self._version = (time.monotonic(), version)
        return version

    # -- security settings -----------------------------------------------------------

    @staticmethod
    def _namespace_id(conn: Connection, namespace: str) -> int:
        found = conn.execute(
            sa.select(t.namespaces.c.id).where(t.namespaces.c.name == namespace)
        ).scalar()
        if found is None:
            raise NotFound(f"namespace {namespace!r} does not exist")
        return int(found)

    @staticmethod
    def _repository_id(conn: Connection, name: RepositoryName) -> int:
        found = conn.execute(
            sa.select(t.repositories.c.id)
            .select_from(t.repositories.join(t.namespaces))
            .where(t.namespaces.c.name == name.namespace, t.repositories.c.name == name.repository)
        ).scalar()
        if found is None:
            raise NotFound(f"repository {name} does not exist")
        return int(found)

    @staticmethod
    def _settings(conn: Connection, namespace_id: int) -> SecuritySettings:
        row = conn.execute(
            sa.select(t.namespace_security).where(
                t.namespace_security.c.namespace_id == namespace_id
            )
        ).first()
        allow = conn.execute(
            sa.select(t.scan_allowlist)
            .where(t.scan_allowlist.c.namespace_id == namespace_id)
            .order_by(t.scan_allowlist.c.vulnerability_id)
        ).all()
        entries = tuple(
            AllowEntry(
                a.vulnerability_id, as_utc(a.expires_at) if a.expires_at else None, a.comment
            )
            for a in allow
        )
        if row is None:
            return SecuritySettings(allowlist=entries)
        return SecuritySettings(
            scan_on_push=bool(row.scan_on_push),
            block_pull_severity=row.block_pull_severity,
            block_unscanned=bool(row.block_unscanned),
            allowlist=entries,
        )

    def namespace_settings(self, namespace: str) -> SecuritySettings:
        with self.db.read() as conn:
            return self._settings(conn, self._namespace_id(conn, namespace))

    def update_namespace_settings(
        self,
        origin: Origin,
        namespace: str,
        *,
        scan_on_push: bool | None = None,
        block_pull_severity: str | None = None,
        block_unscanned: bool | None = None,
        allowlist: Sequence[AllowEntry] | None = None,
    ) -> SecuritySettings:
        """Change the given settings (the allowlist is replaced whole when given)."""
        if block_pull_severity is not None and block_pull_severity not in BLOCK_LEVELS:
            raise Invalid(f"block_pull_severity is one of {', '.join(BLOCK_LEVELS)}")
        if allowlist is not None:
            seen: set[str] = set()
            for entry in allowlist:
                if not entry.id or len(entry.id) > 200 or entry.id != entry.id.strip():
                    raise Invalid(f"allowlist id {entry.id[:200]!r} is not a vulnerability id")
                if entry.id in seen:
                    raise Invalid(f"allowlist names {entry.id!r} twice")
                if len(entry.comment) > 1024:
                    raise Invalid("an allowlist comment has at most 1024 characters")
                seen.add(entry.id)
        now = utcnow()
        with self.changes.open(origin) as change:
            conn = change.conn
            ns_id = self._namespace_id(conn, namespace)
            current = self._settings(conn, ns_id)
            values = {
                "namespace_id": ns_id,
                "scan_on_push": current.scan_on_push if scan_on_push is None else scan_on_push,
                "block_pull_severity": block_pull_severity or current.block_pull_severity,
                "block_unscanned": (
                    current.block_unscanned if block_unscanned is None else block_unscanned
                ),
                "updated_at": now,
            }
            upsert(
                conn,
                t.namespace_security,
                values,
                keys=("namespace_id",),
                update=("scan_on_push", "block_pull_severity", "block_unscanned", "updated_at"),
            )
            if allowlist is not None:
                conn.execute(
                    sa.delete(t.scan_allowlist).where(t.scan_allowlist.c.namespace_id == ns_id)
                )
                if allowlist:
                    conn.execute(
                        sa.insert(t.scan_allowlist),
                        [
                            {
                                "namespace_id": ns_id,
                                "vulnerability_id": e.id,
                                "expires_at": e.expires_at,
                                "comment": e.comment,
                                "created_at": now,
                            }
                            for e in allowlist
                        ],
                    )
            updated = self._settings(conn, ns_id)
        with self._guard:
            self._policies.pop(namespace, None)
        return updated

    def repository_settings(self, name: RepositoryName) -> RepositorySecurity:
        with self.db.read() as conn:
            return self._repository_settings(conn, name)

    def _repository_settings(self, conn: Connection, name: RepositoryName) -> RepositorySecurity:
        repo_id = self._repository_id(conn, name)
        own = conn.execute(
            sa.select(t.repository_security.c.scan_on_push).where(
                t.repository_security.c.repository_id == repo_id
            )
        ).first()
        namespace = self._settings(conn, self._namespace_id(conn, name.namespace))
        return RepositorySecurity(own[0] if own is not None else None, namespace)

    def update_repository_settings(
        self, origin: Origin, name: RepositoryName, *, scan_on_push: bool | None
    ) -> RepositorySecurity:
        """Set the repository's own ``scan_on_push``; None goes back to its namespace's."""
        with self.changes.open(origin) as change:
            conn = change.conn
            repo_id = self._repository_id(conn, name)
            upsert(
                conn,
                t.repository_security,
                {"repository_id": repo_id, "scan_on_push": scan_on_push, "updated_at": utcnow()},
                keys=("repository_id",),
                update=("scan_on_push", "updated_at"),
            )
            return self._repository_settings(conn, name)

    # -- queueing --------------------------------------------------------------------

    @staticmethod
    def wants(_conn: Connection, type_: str, _subject: Subject) -> bool:
        """Whether a push event needs the fan-out (asked in the push's transaction, so it
        reads nothing: the fan-out job decides with the namespace's settings)."""
        return type_ == events.PUSH

    def on_event(self, conn: Connection, event: events.Event) -> None:
        """A tag was pushed: queue its manifest's scan (each platform's for an index),
        when the repository's ``scan_on_push`` allows. Runs in the fan-out transaction;
        a second run queues nothing new (a scan already queued is not queued again)."""
        if event.type != events.PUSH or not event.digest:
            return
        row = conn.execute(
            _SCAN_ON_PUSH, {"namespace": event.namespace, "repository": event.repository}
        ).first()
        if row is None:
            return
        enabled = row.repo_scan if row.repo_scan is not None else row.ns_scan
        if enabled is False:
            return
        manifest = self._manifest(conn, event.digest, int(row.id))
        if manifest is not None:
            self._queue(conn, manifest, force=False, priority=PUSH_PRIORITY)

    @staticmethod
    def _manifest(conn: Connection, digest: str, repository_id: int | None) -> _Manifest | None:
        """The stored manifest ``digest``: in ``repository_id`` when given and there,
        else in any repository that has it."""
        m = t.manifests.c
        q = sa.select(m.repository_id, m.digest, m.media_type, m.content).where(m.digest == digest)
        row = None
        if repository_id is not None:
            row = conn.execute(q.where(m.repository_id == repository_id)).first()
        if row is None:
            row = conn.execute(q.order_by(m.id).limit(1)).first()
        if row is None:
            return None
        return _Manifest(int(row.repository_id), row.digest, row.media_type, bytes(row.content))

    def _queue(
        self, conn: Connection, manifest: _Manifest, *, force: bool, priority: int
    ) -> list[str]:
        """Queue scans of ``manifest`` (of each platform of an index): the digests
        queued. A digest already queued, or scanned with the current database (unless
        ``force``), is left alone."""
        if manifest.media_type not in mt.INDEXES:
            queued = self._queue_one(
                conn, manifest, "image", "", None, force=force, priority=priority
            )
            return [manifest.digest] if queued else []
        try:
            doc = json.loads(manifest.content)
            children = [d for d in doc.get("manifests", []) if isinstance(d, dict)]
        except (ValueError, AttributeError):
            children = []
        out = []
        images = [
            d
            for d in children
            if d.get("mediaType") in mt.IMAGE_MANIFESTS
            and isinstance(d.get("digest"), str)
            and not _platform_of(d).startswith("unknown")  # build attestations
        ]
        for descriptor in images:
            child = self._manifest(conn, descriptor["digest"], manifest.repository_id)
            if child is None:
                continue
            if self._queue_one(
                conn,
                child,
                "image",
                _platform_of(descriptor),
                manifest.digest,
                force=force,
                priority=priority,
            ):
                out.append(child.digest)
        self._queue_one(
            conn, manifest, "index", "", None, force=force or bool(out), priority=priority
        )
        if out:
            out.append(manifest.digest)
        else:
            self._update_index(conn, manifest.digest)
        return out

    def _queue_one(
        self,
        conn: Connection,
        manifest: _Manifest,
        kind: str,
        platform: str,
        parent: str | None,
        *,
        force: bool,
        priority: int,
    ) -> bool:
        now = utcnow()
        existing = conn.execute(_SCAN_BY_DIGEST, {"digest": manifest.digest}).first()
        if existing is not None:
            scan = _scan(existing)
            if (platform and not scan.platform) or (parent and not scan.parent_digest):
                # Scanned alone before, now a platform of an index: say which.
                conn.execute(
                    sa.update(t.scan_results)
                    .where(_S.digest == manifest.digest)
                    .values(
                        platform=scan.platform or platform,
                        parent_digest=scan.parent_digest or parent,
                    )
                )
            busy = scan.status in (QUEUED, SCANNING) and now - scan.queued_at < STALE_QUEUED
            if busy and kind == "image":
                return False
            fresh = scan.status in (COMPLETE, UNSUPPORTED) and (
                scan.status == UNSUPPORTED or scan.database == self.database_version()
            )
            if fresh and not force:
                return False
            values: dict[str, Any] = {
                "status": QUEUED,
                "reason": "",
                "queued_at": now,
                "repository_id": manifest.repository_id,
            }
            if platform:
                values["platform"] = platform
            if parent:
                values["parent_digest"] = parent
            conn.execute(
                sa.update(t.scan_results).where(_S.digest == manifest.digest).values(values)
            )
        else:
            inserted = conn.execute(
                dialect_insert(conn, t.scan_results)
                .values(
                    digest=manifest.digest,
                    kind=kind,
                    platform=platform,
                    parent_digest=parent,
                    repository_id=manifest.repository_id,
                    status=QUEUED,
                    queued_at=now,
                )
                .on_conflict_do_nothing(index_elements=["digest"])
                .returning(_S.digest)
            ).first()
            if inserted is None:
                return False  # queued at this moment by another transaction
        if kind == "image":
            enqueue(conn, SCAN, {"digest": manifest.digest, "force": force}, priority=priority)
        return True

    def start_scan(self, origin: Origin, name: RepositoryName, reference: str) -> StoredScan:
        """Queue a scan of the tag or digest ``reference`` now (even if one with the
        current database exists), audited as ``origin``'s change."""
        with self.changes.open(origin) as change:
            conn = change.conn
            manifest = self._resolve(conn, name, reference)
            self._queue(conn, manifest, force=True, priority=REQUEST_PRIORITY)
            row = conn.execute(_SCAN_BY_DIGEST, {"digest": manifest.digest}).first()
        self.jobs.notify()
        assert row is not None
        return _scan(row)

    def _resolve(self, conn: Connection, name: RepositoryName, reference: str) -> _Manifest:
        repo_id = self._repository_id(conn, name)
        m = t.manifests.c
        q = sa.select(m.repository_id, m.digest, m.media_type, m.content)
        if ":" in reference:
            row = conn.execute(q.where(m.repository_id == repo_id, m.digest == reference)).first()
            what = f"manifest {reference}"
        else:
            row = conn.execute(
                q.select_from(t.tags.join(t.manifests, t.tags.c.manifest_id == m.id)).where(
                    t.tags.c.repository_id == repo_id, t.tags.c.name == reference
                )
            ).first()
            what = f"tag {reference!r}"
        if row is None:
            raise NotFound(f"{what} does not exist in {name}")
        return _Manifest(int(row.repository_id), row.digest, row.media_type, bytes(row.content))

    def rescan_recent(self, window: timedelta) -> int:
        """Queue low-priority rescans of the manifests pushed or pulled within
        ``window`` that were scanned before, but not with the current database; how many
        digests were queued (an index counts with each of its platforms)."""
        cutoff = utcnow() - window
        self.database_version(fresh=True)
        m = t.manifests.c
        pushed = sa.select(m.digest).where(
            m.touched_at >= cutoff, m.media_type.in_(sorted(mt.MANIFESTS))
        )
        pulled = sa.select(t.manifest_pulls.c.digest).where(t.manifest_pulls.c.pulled_at >= cutoff)
        # Only what was scanned before (a manifest its namespace chose not to scan on push
        # stays unscanned), and no index's platform alone: its index's rescan queues it.
        with self.db.read() as conn:
            digests = sorted(
                conn.execute(
                    sa.select(_S.digest).where(
                        _S.parent_digest.is_(None),
                        sa.or_(_S.digest.in_(pushed), _S.digest.in_(pulled)),
                    )
                ).scalars()
            )
        queued = 0
        for start in range(0, len(digests), 200):
            with self.db.write() as conn:
                for digest in digests[start : start + 200]:
                    manifest = self._manifest(conn, digest, None)
                    if manifest is not None:
                        queued += len(
                            self._queue(conn, manifest, force=False, priority=RESCAN_PRIORITY)
                        )
            self.jobs.notify()
        return queued

    # -- running ---------------------------------------------------------------------

    def handler(self) -> Handler:
        async def run(job: Job, owner: str) -> str | None:
            return await to_thread.run_sync(self.run_job, job, owner)

        return Handler(SCAN, run)

    def run_job(self, job: Job, owner: str) -> str:
        """Scan the job's digest and record the outcome with the job's, in one
        transaction; the job's new state."""
        digest = str(job.payload.get("digest", ""))
        force = bool(job.payload.get("force", False))
        version = self.database_version(fresh=True)
        started = utcnow()
        clock = time.monotonic()
        with self.db.write() as conn:
            row = conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).first()
            if row is None:
                return settle(conn, job, owner, error="the scan record is gone", retry_in=None)
            scan = _scan(row)
            if not force and scan.status == COMPLETE and scan.database == version:
                return settle(conn, job, owner)
            conn.execute(
                sa.update(t.scan_results)
                .where(_S.digest == digest)
                .values(status=SCANNING, started_at=started, reason="")
            )
            repository_id = conn.execute(
                sa.select(_S.repository_id).where(_S.digest == digest)
            ).scalar()
            manifest = self._manifest(conn, digest, repository_id)
        status, reason, doc, found = self._scan_manifest(manifest, digest, version, job)
        if status == "retry":
            return self._retry(job, owner, digest, reason)
        seconds = time.monotonic() - clock
        with self.db.write() as conn:
            state = settle(conn, job, owner)
            if state:
                self._record(conn, digest, status, reason, version, doc, found, started)
        if self.observer is not None:
            self.observer.scan_finished(status, seconds)
        if state:
            self.jobs.notify()
        log.info("scan of %s ended %s in %.1f s %s", digest, status, seconds, reason)
        return state

    def _scan_manifest(
        self, manifest: _Manifest | None, digest: str, version: str, job: Job
    ) -> tuple[str, str, dict[str, Any] | None, list[Finding]]:
        """(status, reason, stored document, findings); status ``retry`` for a blob
        store outage with attempts left."""
        # The scan engine (layer unpacking, its decompressors, the detectors) is loaded
        # by the first scan, not by every process that builds this service.
        from dockyard.scanning.blobsource import Unsupported, open_stored_image
        from dockyard.scanning.image import ScanError
        from dockyard.scanning.scan import inventory_of

        if manifest is None:
            return FAILED_SCAN, "the manifest is no longer stored", None, []
        try:
            content = json.loads(manifest.content)
            if not isinstance(content, dict):
                raise ScanError("the manifest is not a JSON object")
            image, layers = open_stored_image(self.store, f"{digest}", digest, content)
            warnings: list[str] = []
            with image:
                result = inventory_of(image, on_warning=warnings.append)
            if version != EMPTY_DATABASE:
                with self.vulndb() as database:
                    result.findings = database.match(result.packages)
        except Unsupported as exc:
            return UNSUPPORTED, str(exc), None, []
        except (ScanError, BlobNotFound, ValueError, RecursionError) as exc:
            return FAILED_SCAN, str(exc) or type(exc).__name__, None, []
        except Exception as exc:  # the blob store or the database could not be reached
            reason = f"{type(exc).__name__}: {exc}"
            if job.attempts < job.max_attempts:
                return "retry", reason, None, []
            return FAILED_SCAN, f"gave up after {job.attempts} attempts: {reason}", None, []
        return COMPLETE, "", stored_document(result, layers, warnings), result.findings

    def _retry(self, job: Job, owner: str, digest: str, reason: str) -> str:
        with self.db.write() as conn:
            state = settle(conn, job, owner, error=reason, retry_in=30.0)
            if state:
                conn.execute(
                    sa.update(t.scan_results)
                    .where(_S.digest == digest)
                    .values(status=QUEUED, reason=f"retrying: {reason}"[:2000])
                )
        return state

    def _record(
        self,
        conn: Connection,
        digest: str,
        status: str,
        reason: str,
        version: str,
        doc: dict[str, Any] | None,
        findings: list[Finding],
        started: datetime,
    ) -> None:
        previous_row = conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).first()
        previous = _scan(previous_row) if previous_row is not None else None
        values: dict[str, Any] = {
            "status": status,
            "reason": reason[:2000],
            "started_at": started,
            "finished_at": utcnow(),
        }
        if status == COMPLETE:
            counts = summary(findings)
            ids: dict[str, list[str]] = {level: [] for level in SEVERITIES}
            for f in findings:
                ids[f.severity if f.severity in ids else "Unknown"].append(f.id)
            values |= {
                "database": version,
                "high": counts["High"],
                "medium": counts["Medium"],
                "low": counts["Low"],
                "unknown": counts["Unknown"],
                "findings": json.dumps({k: v for k, v in ids.items() if v}),
                "result": _compress(doc or {}),
                "ecosystems": ecosystems_of(doc or {}),
            }
        conn.execute(sa.update(t.scan_results).where(_S.digest == digest).values(values))
        current = _scan(conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).one())
        parents = self._related(conn, digest, parents=True)
        for parent in parents:
            self._update_index(conn, parent)
        if not parents:  # else the indexes' events tell of it
            self._emit(conn, current, previous)

    @staticmethod
    def _related(conn: Connection, digest: str, *, parents: bool) -> list[str]:
        """The scanned indexes that list ``digest`` (``parents``), or the scanned
        manifests the index ``digest`` lists: an image may be a platform of several
        indexes, and scanned alone too."""
        m, r = t.manifests.c, t.manifest_references.c
        joined = t.manifest_references.join(t.manifests, m.id == r.manifest_id)
        if parents:
            q = (
                sa.select(m.digest)
                .select_from(joined)
                .where(r.kind == "manifest", r.digest == digest)
            )
            kind = "index"
        else:
            q = (
                sa.select(r.digest)
                .select_from(joined)
                .where(r.kind == "manifest", m.digest == digest)
            )
            kind = "image"
        found = sorted(set(conn.execute(q).scalars()))
        if not found:
            return []
        scanned = conn.execute(
            sa.select(_S.digest).where(_S.digest.in_(found), _S.kind == kind)
        ).scalars()
        return sorted(scanned)

    def _update_index(self, conn: Connection, digest: str) -> None:
        """Sum an index's platforms into its row; when the last of them ends, the index's
        ``scan_completed`` event."""
        row = conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).first()
        if row is None:
            return
        before = _scan(row)
        listed = self._related(conn, digest, parents=False)
        children = [
            _scan(r)
            for r in conn.execute(
                sa.select(*_SCAN_COLUMNS).where(_S.digest.in_(listed)).order_by(_S.platform)
            )
        ]
        values: dict[str, Any]
        if not children:
            values = {
                "status": UNSUPPORTED,
                "reason": "the index has no platform images to scan",
                "finished_at": utcnow(),
            }
        elif any(c.status in (QUEUED, SCANNING) for c in children):
            status = SCANNING if any(c.status == SCANNING for c in children) else QUEUED
            values = {"status": status, "reason": ""}
        else:
            failed = [c for c in children if c.status == FAILED_SCAN]
            complete = [c for c in children if c.has_result]
            if failed:
                status = FAILED_SCAN
            elif any(c.status == COMPLETE for c in children):
                status = COMPLETE
            else:
                status = UNSUPPORTED
            reason = "; ".join(f"{c.platform or c.digest}: {c.reason}" for c in failed)
            if status == UNSUPPORTED:
                reason = "no platform of the index is a container image"
            ids: dict[str, list[str]] = {}
            for c in complete:
                for level, found in c.findings.items():
                    ids.setdefault(level, []).extend(found)
            versions = sorted({c.database for c in complete})
            values = {
                "status": status,
                "reason": reason[:2000],
                "finished_at": max((c.finished_at for c in children if c.finished_at), default=None)
                or utcnow(),
                "started_at": min((c.started_at for c in children if c.started_at), default=None),
            }
            if complete:
                values |= {
                    "database": versions[0] if len(versions) == 1 else ", ".join(versions),
                    "high": sum(c.counts["High"] for c in complete),
                    "medium": sum(c.counts["Medium"] for c in complete),
                    "low": sum(c.counts["Low"] for c in complete),
                    "unknown": sum(c.counts["Unknown"] for c in complete),
                    "findings": json.dumps(ids),
                }
        conn.execute(sa.update(t.scan_results).where(_S.digest == digest).values(values))
        after = _scan(conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).one())
        ended = after.status not in (QUEUED, SCANNING)
        if ended and (before.status in (QUEUED, SCANNING) or before.finished_at is None):
            self._emit(conn, after, before if before.has_result else None)

    def _emit(self, conn: Connection, scan: StoredScan, previous: StoredScan | None) -> None:
        """``scan_completed`` in each repository whose tags point at the digest (or, with
        none tagged, the repository the scan was queued from)."""
        m, tg = t.manifests.c, t.tags.c
        rows = conn.execute(
            sa.select(
                m.repository_id,
                m.media_type,
                m.size,
                t.repositories.c.name.label("repository"),
                t.repositories.c.is_public,
                t.repositories.c.created_at,
                t.namespaces.c.name.label("namespace"),
                t.namespaces.c.account_id,
                tg.name.label("tag"),
            )
            .select_from(
                t.manifests.join(t.repositories, t.repositories.c.id == m.repository_id)
                .join(t.namespaces)
                .outerjoin(t.tags, tg.manifest_id == m.id)
            )
            .where(m.digest == scan.digest)
            .order_by(m.repository_id, tg.name)
        ).all()
        by_repo: dict[int, list[Any]] = {}
        for r in rows:
            by_repo.setdefault(int(r.repository_id), []).append(r)
        tagged = {k: v for k, v in by_repo.items() if any(r.tag for r in v)}
        if tagged:
            by_repo = tagged
        elif by_repo:
            first = min(by_repo)
            by_repo = {first: by_repo[first]}
        new_high: list[str] = []
        if previous is not None and previous.has_result and scan.status == COMPLETE:
            old = set(previous.findings.get("High", []))
            new_high = sorted(set(scan.findings.get("High", [])) - old)
        origin = Origin(actor="dockyard-scanner")
        for repo_rows in by_repo.values():
            first_row = repo_rows[0]
            tags = sorted({r.tag for r in repo_rows if r.tag})
            detail: dict[str, Any] = {
                "scan": {
                    "status": scan.status,
                    "reason": scan.reason or None,
                    "database": scan.database or None,
                    "summary": scan.counts,
                    "tags": tags,
                    "rescan": previous is not None and previous.has_result,
                    "new_high": new_high,
                }
            }
            subject = Subject(
                account_id=first_row.account_id,
                namespace=first_row.namespace,
                repository=first_row.repository,
                tag=tags[0] if tags else "",
                digest=scan.digest,
                media_type=first_row.media_type,
                size=int(first_row.size),
                repository_public=bool(first_row.is_public),
                repository_created_at=as_utc(first_row.created_at),
                detail=detail,
            )
            write_event(conn, origin, events.SCAN_COMPLETED, subject, self.changes.interests)

    # -- reading ---------------------------------------------------------------------

    def get(self, digest: str) -> StoredScan | None:
        with self.db.read() as conn:
            row = conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).first()
        return None if row is None else _scan(row)

    def report(self, name: RepositoryName, reference: str) -> Report:
        """The scan of the tag or digest ``reference`` in ``name``: NotFound when the
        manifest is not there or was never queued for a scan."""
        with self.db.read() as conn:
            manifest = self._resolve(conn, name, reference)
            return self._report(
                conn, manifest.digest, f"{name}@{manifest.digest}", manifest.media_type
            )

    def _report(self, conn: Connection, digest: str, what: str, media_type: str) -> Report:
        row = conn.execute(sa.select(t.scan_results).where(_S.digest == digest)).first()
        if row is None:
            raise NotFound(f"{what} has not been scanned; POST …/scan to scan it", code="NoScan")
        scan = _scan(row)
        result: ScanResult | None = None
        layers: list[LayerInfo] = []
        doc = _decompress(row.result)
        if doc is not None:
            result, layers = rebuild_result(doc)
        platforms = []
        if scan.kind == "index":
            listed = self._related(conn, digest, parents=False)
            for child in conn.execute(
                sa.select(_S.digest).where(_S.digest.in_(listed)).order_by(_S.platform)
            ).scalars():
                stored = self._manifest(conn, child, None)
                kind = stored.media_type if stored is not None else ""
                platforms.append(self._report(conn, child, child, kind))
        return Report(scan, result, layers, platforms, media_type)

    def summaries(self, digests: Iterable[str]) -> dict[str, StoredScan]:
        """The scans of ``digests`` that exist, in one query (the tag listings)."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(sa.select(*_SCAN_COLUMNS).where(_S.digest.in_(wanted))).all()
        return {r.digest: _scan(r) for r in rows}

    def purge(self) -> int:
        """Forget the scans and pull records of digests no repository holds any more
        (deleted, or collected); the housekeeping calls it. How many scans went."""
        held = sa.select(t.manifests.c.id).where(t.manifests.c.digest == _S.digest).exists()
        pulled = (
            sa.select(t.manifests.c.id)
            .where(t.manifests.c.digest == t.manifest_pulls.c.digest)
            .exists()
        )
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(t.scan_results).where(~held)).rowcount
            conn.execute(sa.delete(t.manifest_pulls).where(~pulled))
        return int(gone)

    def ecosystems_in_use(self) -> set[str]:
        """The OSV ecosystems the packages of stored images are matched in (``Debian:12``,
        ``PyPI``…), from their complete scans: a provider of
        :attr:`~dockyard.scanning.sources.VulnSync.ecosystems_in_use`, so that a sync
        fetches only those. Scans of images no longer stored are purged, and with them
        what they used. One query over a few distinct values; empty before any scan."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(_S.ecosystems)
                .where(_S.status == COMPLETE, _S.ecosystems != "")
                .distinct()
            ).scalars()
            return {e for joined in rows for e in str(joined).split(",") if e}

    def status_counts(self) -> list[tuple[str, int]]:
        """Stored scans per status (the metrics)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(_S.status, sa.func.count()).group_by(_S.status)).all()
        return [(str(status), int(count)) for status, count in rows]

    # -- pull policy -----------------------------------------------------------------

    def _policy(self, namespace: str) -> tuple[SecuritySettings, int | None]:
        now = time.monotonic()
        with self._guard:
            cached = self._policies.get(namespace)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        with self.db.read() as conn:
            ns_id = conn.execute(
                sa.select(t.namespaces.c.id).where(t.namespaces.c.name == namespace)
            ).scalar()
            settings = self._settings(conn, int(ns_id)) if ns_id is not None else SecuritySettings()
        with self._guard:
            self._policies[namespace] = (now + POLICY_TTL, settings, ns_id)
        return settings, ns_id

    def pull_denial(self, namespace: str, digest: str, report_url: str) -> str | None:
        """Why a pull of ``digest`` in ``namespace`` is refused by its pull policy, or
        None. Namespaces that block nothing cost no query (the policy is cached); the
        others one indexed read of the digest's scan."""
        settings, _ = self._policy(namespace)
        level = settings.block_pull_severity
        if level == "none" and not settings.block_unscanned:
            return None
        with self.db.read() as conn:
            row = conn.execute(_SCAN_BY_DIGEST, {"digest": digest}).first()
        scan = _scan(row) if row is not None else None
        if scan is None or not scan.has_result:
            if scan is not None and scan.status == UNSUPPORTED:
                return None
            if settings.block_unscanned:
                state = f"its scan is {scan.status}" if scan is not None else "it was never scanned"
                return (
                    f"namespace {namespace} refuses pulls of images without a complete "
                    f"vulnerability scan, and {digest} has none ({state}); "
                    f"scan it and read the report at {report_url}"
                )
            return None
        if level == "none":
            return None
        counts = blocking_counts(scan, level, settings.allowed_ids(utcnow()))
        if not counts:
            return None
        listed = ", ".join(f"{n} {lvl}" for lvl, n in counts.items())
        return (
            f"namespace {namespace} refuses pulls of images with vulnerabilities of "
            f"{_LEVEL_OF[level]} severity or above: {digest} has {listed}; "
            f"the report is at {report_url}"
        )

    def pulled(self, digest: str) -> bool:
        """Note a pull; True when it is due to be written (:meth:`record_pull`), at most
        once per :data:`PULL_RECORD_INTERVAL` per digest in this process."""
        now = time.monotonic()
        with self._guard:
            last = self._pulls.get(digest)
            if last is not None and now - last < PULL_RECORD_INTERVAL:
                return False
            if len(self._pulls) > 100_000:
                self._pulls.clear()
            self._pulls[digest] = now
        return True

    def record_pull(self, digest: str) -> None:
        with self.db.write(durable=False) as conn:
            upsert(
                conn,
                t.manifest_pulls,
                {"digest": digest, "pulled_at": utcnow()},
                keys=("digest",),
                update=("pulled_at",),
            )


__all__ = [
    "SCAN",
    "AllowEntry",
    "Report",
    "RepositorySecurity",
    "ScanService",
    "SecuritySettings",
    "StoredScan",
    "rebuild_result",
]
