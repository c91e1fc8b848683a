"""Garbage collection and consistency checks (``dockyard gc``, ``dockyard fsck``).

Garbage collection is safe while the registry serves pushes. It deletes only what is
both unreachable and older than a grace period, and it re-checks both inside a write
transaction that first takes the object's lock (``db.upsert.lock_keys``). Every write
that relies on an object existing takes the same lock in its own transaction: a manifest
push locks the blobs and child manifests it references and itself, a blob upload or mount
locks its blob (see ``RegistryService``). So either the push commits first and the
re-check finds the object in use, or the delete commits first and the push, reading after
it, refuses the manifest (``MANIFEST_BLOB_UNKNOWN``) instead of committing one whose
layers are gone.

What is reachable: every tagged manifest; the children of a reachable index; and every
manifest whose ``subject`` is reachable (signatures, SBOMs and other referrers live as
long as the image they describe). A blob is reachable when a manifest references it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import blob_key, lock_keys, manifest_key
from dockyard.oci.digest import Digest, DigestError, new_hasher
from dockyard.oci.manifest import ManifestError, parse_manifest
from dockyard.storage.base import BlobNotFound, BlobStore


@dataclass
class GCReport:
    dry_run: bool
    manifests: list[str] = field(default_factory=list)
    """``namespace/repo@digest`` of each manifest removed."""
    blobs: list[tuple[str, int]] = field(default_factory=list)
    orphans: list[tuple[str, int]] = field(default_factory=list)
    """Stored bytes no database row knows (left by a crash mid-publish)."""
    uploads: list[str] = field(default_factory=list)
    grace: timedelta = timedelta(0)
    spared_manifests: int = 0
    """Unreachable manifests left because they were touched within the grace period."""
    spared_blobs: int = 0
    """Unreferenced blobs left because they were touched within the grace period."""

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs) + sum(size for _, size in self.orphans)

    def summary(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        return (
            f"{verb} {self.bytes_freed} bytes: {counted(len(self.manifests), 'manifest')}, "
            f"{counted(len(self.blobs), 'blob')}, "
            f"{counted(len(self.orphans), 'unrecorded stored blob')}, "
            f"{counted(len(self.uploads), 'abandoned upload')}; the grace period "
            f"({int(self.grace.total_seconds())} s) spared "
            f"{counted(self.spared_manifests, 'unreachable manifest')} and "
            f"{counted(self.spared_blobs, 'unreferenced blob')} touched within it"
        )


def counted(n: int, noun: str) -> str:
    """``1 manifest``, ``2 manifests``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class _Graph:
    """Every manifest and how they hold each other, read once per run: ``children``
    (an index → its child manifests), ``referrers`` (a subject → the manifests whose
    ``subject`` it is), their reverse ``holders`` (a manifest → the indexes that list it
    and its subject), and ``live``, what a tag reaches."""

    rows: Sequence[Any]
    children: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    referrers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    holders: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    live: set[int] = field(default_factory=set)


def _graph(conn: sa.Connection) -> _Graph:
    graph = _Graph(
        conn.execute(
            sa.select(
                t.manifests.c.id,
                t.manifests.c.repository_id,
                t.manifests.c.digest,
                t.manifests.c.subject_digest,
                t.manifests.c.touched_at,
            )
        ).all()
    )
    by_digest = {(r.repository_id, r.digest): r.id for r in graph.rows}
    for r in graph.rows:
        if r.subject_digest:
            subject = by_digest.get((r.repository_id, r.subject_digest))
            if subject is not None:
                graph.referrers[subject].append(r.id)
                graph.holders[r.id].append(subject)
    repo_of = {r.id: r.repository_id for r in graph.rows}
    for ref in conn.execute(
        sa.select(t.manifest_references.c.manifest_id, t.manifest_references.c.digest).where(
            t.manifest_references.c.kind == "manifest"
        )
    ):
        child = by_digest.get((repo_of.get(ref.manifest_id), ref.digest))
        if child is not None:
            graph.children[ref.manifest_id].append(child)
            graph.holders[child].append(ref.manifest_id)
    graph.live = set(conn.execute(sa.select(t.tags.c.manifest_id)).scalars())
    stack = list(graph.live)
    while stack:
        current = stack.pop()
        for nxt in (*graph.children.get(current, ()), *graph.referrers.get(current, ())):
            if nxt not in graph.live:
                graph.live.add(nxt)
                stack.append(nxt)
    return graph


def _plan(graph: _Graph, cutoff: datetime) -> list[int]:
    """The unreachable manifests older than ``cutoff`` to delete, each after everything
    that holds it (an index before its children, a subject before its referrers): a
    manifest goes only once all that holds it has gone, so a holder that is spared (too
    recent, or found in use when deleted) spares what it holds. Linear in manifests and
    references (Kahn's topological order over the candidates)."""
    candidates = {
        r.id for r in graph.rows if r.id not in graph.live and as_utc(r.touched_at) < cutoff
    }
    waiting = {m: sum(h in candidates for h in graph.holders.get(m, ())) for m in candidates}
    ready = [m for m in sorted(candidates) if waiting[m] == 0]
    gone: set[int] = set()
    order: list[int] = []
    while ready:
        current = ready.pop()
        if all(h in gone for h in graph.holders.get(current, ())):
            gone.add(current)
            order.append(current)
        for held in (*graph.children.get(current, ()), *graph.referrers.get(current, ())):
            if held in waiting:
                waiting[held] -= 1
                if waiting[held] == 0:
                    ready.append(held)
    return order


GC_BATCH = 500
"""Manifests deleted per write transaction (each under its lock)."""

_HELD = sa.exists().where(
    t.manifest_references.c.kind == "manifest",
    t.manifest_references.c.digest == sa.bindparam("digest"),
    t.manifest_references.c.manifest_id == t.manifests.c.id,
    t.manifests.c.repository_id == sa.bindparam("repository_id"),
)
_SUBJECT_EXISTS = sa.exists().where(
    t.manifests.c.repository_id == sa.bindparam("repository_id"),
    t.manifests.c.digest == sa.bindparam("subject"),
)
_STILL_GARBAGE = sa.select(sa.not_(_HELD) & sa.not_(_SUBJECT_EXISTS))
_DELETE_MANIFEST = sa.delete(t.manifests).where(
    t.manifests.c.id == sa.bindparam("id"),
    t.manifests.c.touched_at < sa.bindparam("cutoff"),
    ~sa.exists().where(t.tags.c.manifest_id == sa.bindparam("id")),
)


def collect_garbage(
    db: Database,
    store: BlobStore,
    *,
    grace: timedelta,
    upload_age: timedelta,
    dry_run: bool = False,
) -> GCReport:
    report = GCReport(dry_run=dry_run, grace=grace)
    cutoff = utcnow() - grace
    doomed = _collect_manifests(db, cutoff, dry_run, report)
    _collect_blobs(db, store, cutoff, doomed, dry_run, report)
    _collect_uploads(store, utcnow() - upload_age, dry_run, report)
    return report


def _collect_manifests(db: Database, cutoff: datetime, dry_run: bool, report: GCReport) -> set[int]:
    """Remove unreachable manifests; return the ids of those removed (or to remove).

    Reachability is computed once. Each deletion then re-checks, under the manifest's
    lock, only what a concurrent write could have changed about it: no tag on it (a
    tag's write locks the manifest), nothing that lists it as a child (a push of an
    index locks its children), its subject gone, and not pushed again since. Whatever
    holds it was deleted before it (see :func:`_plan`), so these local checks stand for
    the whole graph, and a run costs time linear in manifests instead of a rebuild of
    the graph per deletion."""
    with db.read() as conn:
        graph = _graph(conn)
        names = {
            r.id: f"{r.ns}/{r.repo}"
            for r in conn.execute(
                sa.select(
                    t.repositories.c.id,
                    t.namespaces.c.name.label("ns"),
                    t.repositories.c.name.label("repo"),
                ).select_from(t.repositories.join(t.namespaces))
            )
        }
    rows = {r.id: r for r in graph.rows}
    plan = [rows[m] for m in _plan(graph, cutoff)]
    report.spared_manifests = sum(
        1 for r in graph.rows if r.id not in graph.live and as_utc(r.touched_at) >= cutoff
    )
    doomed: set[int] = set()
    if dry_run:
        report.manifests.extend(f"{names[r.repository_id]}@{r.digest}" for r in plan)
        return {r.id for r in plan}
    for start in range(0, len(plan), GC_BATCH):
        batch = plan[start : start + GC_BATCH]
        removed = []
        with db.write() as conn:
            lock_keys(conn, [manifest_key(r.repository_id, r.digest) for r in batch])
            for row in batch:
                # Under the manifest's lock, re-check: nothing holds it, still old, untagged.
                key = {"digest": row.digest, "repository_id": row.repository_id}
                if not conn.execute(
                    _STILL_GARBAGE, {**key, "subject": row.subject_digest}
                ).scalar():
                    continue
                if conn.execute(_DELETE_MANIFEST, {"id": row.id, "cutoff": cutoff}).rowcount:
                    removed.append(row)
        for row in removed:
            report.manifests.append(f"{names[row.repository_id]}@{row.digest}")
            doomed.add(row.id)
    return doomed


def _unreferenced(cutoff: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    referenced = sa.exists().where(t.manifest_references.c.digest == t.blobs.c.digest)
    return (t.blobs.c.touched_at < cutoff, ~referenced)


def _collect_blobs(
    db: Database,
    store: BlobStore,
    cutoff: datetime,
    doomed: set[int],
    dry_run: bool,
    report: GCReport,
) -> None:
    with db.read() as conn:
        # References from manifests this run removes (or, dry, would remove) don't count.
        kept = {
            r.digest
            for r in conn.execute(
                sa.select(t.manifest_references.c.manifest_id, t.manifest_references.c.digest)
            )
            if r.manifest_id not in doomed
        }
        old = conn.execute(
            sa.select(t.blobs.c.digest, t.blobs.c.size).where(t.blobs.c.touched_at < cutoff)
        ).all()
        candidates = [(r.digest, r.size) for r in old if r.digest not in kept]
        young = conn.execute(
            sa.select(t.blobs.c.digest).where(t.blobs.c.touched_at >= cutoff)
        ).scalars()
        report.spared_blobs = sum(1 for digest in young if digest not in kept)
        known = set(conn.execute(sa.select(t.blobs.c.digest)).scalars())

    def unreferenced(conn: sa.Connection, digest: str) -> bool:
        res = conn.execute(
            sa.delete(t.blobs).where(t.blobs.c.digest == digest, *_unreferenced(cutoff))
        )
        return bool(res.rowcount)

    def unrecorded(conn: sa.Connection, digest: str) -> bool:
        found = conn.execute(sa.select(t.blobs.c.digest).where(t.blobs.c.digest == digest))
        return found.first() is None

    _sweep(db, store, candidates, unreferenced, dry_run, report.blobs)
    stored = [(d, size) for d, size in store.iter_blobs() if d not in known]
    _sweep(db, store, stored, unrecorded, dry_run, report.orphans)


def _sweep(
    db: Database,
    store: BlobStore,
    candidates: list[tuple[str, int]],
    still_garbage: Callable[[sa.Connection, str], bool],
    dry_run: bool,
    removed: list[tuple[str, int]],
) -> None:
    """Delete each candidate blob whose ``still_garbage`` re-check holds under its lock
    (the re-check may delete the blob's row itself); record what went in ``removed``."""
    for digest, size in candidates:
        if dry_run:
            removed.append((digest, size))
            continue
        with db.write() as conn:
            # Under the blob's lock, the re-check reads whatever a push committed first.
            lock_keys(conn, [blob_key(digest)])
            if still_garbage(conn, digest):
                store.delete(digest)
                removed.append((digest, size))


def _collect_uploads(store: BlobStore, cutoff: datetime, dry_run: bool, report: GCReport) -> None:
    for info in list(store.iter_uploads()):
        if as_utc(info.started_at) >= cutoff:
            continue
        report.uploads.append(info.upload_id)
        if not dry_run:
            store.upload_abort(info.upload_id)


# -- fsck --------------------------------------------------------------------------------


@dataclass
class FsckReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    manifests_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems


def check_consistency(db: Database, store: BlobStore, *, rehash: bool = True) -> FsckReport:
    report = FsckReport()
    with db.read() as conn:
        blob_rows = conn.execute(sa.select(t.blobs.c.digest, t.blobs.c.size)).all()
    recorded: dict[str, int] = {row.digest: row.size for row in blob_rows}
    for digest, size in blob_rows:
        report.blobs_checked += 1
        _check_blob(store, digest, size, rehash, report)
    for digest, size in store.iter_blobs():
        if digest not in recorded:
            report.notes.append(
                f"blob {digest} ({size} bytes) is stored but not recorded; gc removes it"
            )
    _check_manifests(db, recorded, report)
    return report


def _check_blob(store: BlobStore, digest: str, size: int, rehash: bool, report: FsckReport) -> None:
    stored = store.stat(digest)
    if stored is None:
        report.problems.append(f"blob {digest} is recorded but its bytes are missing")
        return
    if stored != size:
        report.problems.append(f"blob {digest} has {stored} bytes, recorded {size}")
        return
    if not rehash:
        return
    try:
        parsed = Digest.parse(digest)
        hasher = new_hasher(parsed.algorithm)
        for chunk in store.read(digest):
            hasher.update(chunk)
    except (DigestError, BlobNotFound) as exc:
        report.problems.append(f"blob {digest} cannot be read: {exc}")
        return
    actual = f"{parsed.algorithm}:{hasher.hexdigest()}"
    if actual != digest:
        report.problems.append(f"blob {digest} is corrupt: its bytes hash to {actual}")


def _check_manifests(db: Database, recorded: dict[str, int], report: FsckReport) -> None:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(
                t.manifests.c.id,
                t.manifests.c.repository_id,
                t.manifests.c.digest,
                t.manifests.c.media_type,
                t.manifests.c.content,
                t.namespaces.c.name.label("ns"),
                t.repositories.c.name.label("repo"),
            ).select_from(t.manifests.join(t.repositories).join(t.namespaces))
        ).all()
        in_repo = {(r.repository_id, r.digest) for r in rows}
    for row in rows:
        report.manifests_checked += 1
        where = f"manifest {row.ns}/{row.repo}@{row.digest}"
        content = bytes(row.content)
        try:
            algorithm = Digest.parse(row.digest).algorithm
        except DigestError:
            report.problems.append(f"{where} has a malformed digest")
            continue
        if str(Digest.of(content, algorithm)) != row.digest:
            report.problems.append(f"{where}: its content does not match its digest")
            continue
        try:
            manifest = parse_manifest(content, row.media_type)
        except ManifestError as exc:
            report.problems.append(f"{where} no longer parses: {exc}")
            continue
        for desc in manifest.blobs:
            if str(desc.digest) not in recorded:
                report.problems.append(f"{where} references missing blob {desc.digest}")
        for desc in manifest.children:
            if (row.repository_id, str(desc.digest)) not in in_repo:
                report.problems.append(f"{where} references missing manifest {desc.digest}")


__all__ = ["FsckReport", "GCReport", "check_consistency", "collect_garbage"]
