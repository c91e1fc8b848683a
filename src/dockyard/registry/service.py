"""The registry service: blobs, uploads, manifests, tags and referrers.

Every method is synchronous (database and blob store calls block) and is called from a
worker thread by the HTTP layer. Methods take an already authorized :class:`RepoRef`;
deciding who may call them is the HTTP layer's job, through ``iam.authz``.

Uploads keep a running SHA-256 in memory so that closing an upload does not re-read it;
when that state is missing (another replica took the previous chunk, or the server
restarted) the digest is rebuilt from the stored bytes, so uploads survive restarts.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.catalog.service import (
    CatalogService,
    RepoRef,
    image_subject,
    remove_tag,
    touch_repository,
)
from dockyard.changes import Change
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.raw import RawQuery, keyset_pages
from dockyard.db.upsert import blob_key, lock_keys, manifest_key, upsert
from dockyard.errors import Forbidden, NotFound
from dockyard.events import model as events
from dockyard.oci.digest import Digest, DigestError, Hasher, new_hasher
from dockyard.oci.manifest import Manifest, ManifestError, parse_manifest
from dockyard.oci.reference import NameError_, RepositoryName, check_tag
from dockyard.origin import Origin
from dockyard.registry.errors import (
    RegistryError,
    blob_unknown,
    manifest_unknown,
    name_unknown,
    upload_unknown,
)
from dockyard.storage.base import BlobNotFound, BlobStore, UploadNotFound, UploadWriter


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    content: bytes
    subject: str | None = None


@dataclass(slots=True)
class _HashState:
    offset: int
    hasher: Hasher


def parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except DigestError as exc:
        raise RegistryError("DIGEST_INVALID", str(exc), detail={"digest": text[:200]}) from exc


MAX_TAGS_PER_PUSH = 100
"""``tag`` query parameters one push by digest may carry."""

# An upload id: a random part, then the id of the repository the upload belongs to.
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}-([0-9]{1,18})")

# Hot-path statements, built once (building and keying them per request costs more than
# running them).
_MANIFEST_COLUMNS = (
    t.manifests.c.digest,
    t.manifests.c.media_type,
    t.manifests.c.content,
    t.manifests.c.subject_digest,
)
_MANIFEST_BY_DIGEST = sa.select(*_MANIFEST_COLUMNS).where(
    t.manifests.c.repository_id == sa.bindparam("repo"),
    t.manifests.c.digest == sa.bindparam("ref"),
)
_MANIFEST_BY_TAG = (
    sa.select(*_MANIFEST_COLUMNS)
    .select_from(t.tags.join(t.manifests, t.tags.c.manifest_id == t.manifests.c.id))
    .where(t.tags.c.repository_id == sa.bindparam("repo"), t.tags.c.name == sa.bindparam("ref"))
)
_BLOB_SIZE = RawQuery(
    sa.select(t.blobs.c.size)
    .select_from(t.repository_blobs.join(t.blobs))
    .where(
        t.repository_blobs.c.repository_id == sa.bindparam("repo"),
        t.repository_blobs.c.digest == sa.bindparam("digest"),
    )
)

_TOUCH_BLOB = (
    sa.update(t.blobs)
    .where(t.blobs.c.digest == sa.bindparam("d"))
    .values(touched_at=sa.bindparam("at"))
)
_LINKED_BLOBS = sa.select(t.repository_blobs.c.digest).where(
    t.repository_blobs.c.repository_id == sa.bindparam("repo"),
    t.repository_blobs.c.digest.in_(sa.bindparam("digests", expanding=True)),
)
_PRESENT_MANIFESTS = sa.select(t.manifests.c.digest).where(
    t.manifests.c.repository_id == sa.bindparam("repo"),
    t.manifests.c.digest.in_(sa.bindparam("digests", expanding=True)),
)
_TOUCH_MANIFEST = (
    sa.update(t.manifests)
    .where(
        t.manifests.c.repository_id == sa.bindparam("repo"),
        t.manifests.c.digest == sa.bindparam("d"),
    )
    .values(touched_at=sa.bindparam("at"))
    .returning(t.manifests.c.id)
)
_INSERT_MANIFEST = sa.insert(t.manifests).returning(t.manifests.c.id)
_INSERT_REFERENCES = sa.insert(t.manifest_references)


class UploadAppender:
    """Appends one request's bytes to an upload, hashing them as they pass."""

    def __init__(
        self, writer: UploadWriter, state: _HashState | None, start: int, lock: threading.Lock
    ) -> None:
        self._writer = writer
        self._state = state
        self.start = start
        self.written = 0
        self._lock = lock

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        if self._state is not None:
            self._state.hasher.update(data)
        self.written += len(data)

    def close(self) -> int:
        try:
            self._writer.close()
            if self._state is not None:
                self._state.offset = self.start + self.written
        finally:
            self._lock.release()
        return self.start + self.written

    def abort(self) -> None:
        try:
            self._writer.abort()
        finally:
            self._lock.release()


class RegistryService:
    def __init__(self, db: Database, store: BlobStore, catalog: CatalogService) -> None:
        self.db = db
        self.store = store
        self.catalog = catalog
        self._hashes: dict[str, _HashState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- repositories ----------------------------------------------------------------

    def require_repository(self, ref: RepoRef) -> int:
        if ref.repository_id is not None:
            return ref.repository_id
        if ref.namespace_id is None:
            raise name_unknown(
                str(ref.name),
                f"namespace {ref.name.namespace!r} does not exist; create it with "
                f"'dockyard namespace create {ref.name.namespace}' or POST /api/v1/namespaces",
            )
        raise name_unknown(str(ref.name), f"repository {ref.name} does not exist")

    def _ensure_repository(self, change: Change, ref: RepoRef) -> int:
        try:
            return self.catalog.ensure_repository(change, ref)
        except NotFound as exc:
            raise name_unknown(str(ref.name), str(exc)) from exc
        except Forbidden as exc:  # the account's repository quota
            raise RegistryError("DENIED", str(exc)) from exc

    # -- blobs -----------------------------------------------------------------------

    def stat_blob(self, ref: RepoRef, digest: str) -> int:
        repo_id = self.require_repository(ref)
        parse_digest(digest)
        row = self.db.fetch_one(_BLOB_SIZE, repo=repo_id, digest=digest)
        if row is None:
            raise blob_unknown(digest)
        return int(row[0])

    def read_blob(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        try:
            return self.store.read(digest, start, end)
        except BlobNotFound as exc:
            raise blob_unknown(digest) from exc

    def delete_blob(self, ref: RepoRef, digest: str) -> None:
        repo_id = self.require_repository(ref)
        parse_digest(digest)
        with self.db.write() as conn:
            res = conn.execute(
                sa.delete(t.repository_blobs).where(
                    t.repository_blobs.c.repository_id == repo_id,
                    t.repository_blobs.c.digest == digest,
                )
            )
        if res.rowcount == 0:
            raise blob_unknown(digest)

    def mount_blob(self, origin: Origin, ref: RepoRef, source: RepoRef, digest: str) -> bool:
        """Link ``digest`` from ``source`` into ``ref``; False when it is not there."""
        if source.repository_id is None:
            return False
        with self.catalog.changes.open(origin, identity=False) as change:
            conn = change.conn
            lock_keys(conn, [blob_key(digest)])
            linked = conn.execute(
                sa.select(t.repository_blobs.c.digest).where(
                    t.repository_blobs.c.repository_id == source.repository_id,
                    t.repository_blobs.c.digest == digest,
                )
            ).first()
            if linked is None:
                return False
            repo_id = self._ensure_repository(change, ref)
            self._link_blob(conn, repo_id, digest)
        return True

    @staticmethod
    def _link_blob(conn: Connection, repo_id: int, digest: str, *, touch: bool = True) -> None:
        now = utcnow()
        if touch:
            conn.execute(_TOUCH_BLOB, {"d": digest, "at": now})
        upsert(
            conn,
            t.repository_blobs,
            {"repository_id": repo_id, "digest": digest, "created_at": now},
            keys=("repository_id", "digest"),
        )

    # -- uploads ---------------------------------------------------------------------

    def start_upload(self, origin: Origin, ref: RepoRef) -> str:
        """Open an upload session in the repository (creating the repository if needed).

        The session has no database record: its id names the repository it belongs to,
        its bytes and start time live in the blob store, and ``dockyard gc`` purges the
        abandoned ones. Opening one costs no write transaction once the repository exists.
        """
        repo_id = ref.repository_id
        if repo_id is None:
            with self.catalog.changes.open(origin, identity=False) as change:
                repo_id = self._ensure_repository(change, ref)
        upload_id = f"{uuid.uuid4().hex}-{repo_id}"
        self.store.upload_start(upload_id)
        self._hashes[upload_id] = _HashState(0, new_hasher("sha256"))
        return upload_id

    @staticmethod
    def _check_upload(ref: RepoRef, upload_id: str) -> None:
        """The upload must belong to this repository (its id says which)."""
        match = _UPLOAD_ID.fullmatch(upload_id)
        if match is None or ref.repository_id is None or int(match[1]) != ref.repository_id:
            raise upload_unknown(upload_id)

    def upload_size(self, ref: RepoRef, upload_id: str) -> int:
        self._check_upload(ref, upload_id)
        try:
            return self.store.upload_size(upload_id)
        except UploadNotFound as exc:
            raise upload_unknown(upload_id) from exc

    def _lock_for(self, upload_id: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(upload_id)
            if lock is None:
                lock = self._locks[upload_id] = threading.Lock()
            return lock

    def open_append(
        self, ref: RepoRef, upload_id: str, expected_start: int | None
    ) -> UploadAppender:
        """Begin appending; ``expected_start`` (from Content-Range) must equal the size."""
        self._check_upload(ref, upload_id)
        lock = self._lock_for(upload_id)
        if not lock.acquire(timeout=60):
            raise RegistryError("BLOB_UPLOAD_INVALID", "another request is writing to this upload")
        try:
            size = self.store.upload_size(upload_id)
            if expected_start is not None and expected_start != size:
                raise RegistryError(
                    "RANGE_INVALID",
                    f"chunk starts at {expected_start} but the upload has {size} bytes; "
                    f"send the chunk that starts at {size}",
                    status=416,
                    headers=upload_headers(ref, upload_id, size),
                )
            writer = self.store.upload_writer(upload_id)
        except UploadNotFound as exc:
            lock.release()
            raise upload_unknown(upload_id) from exc
        except BaseException:
            lock.release()
            raise
        state = self._hashes.get(upload_id)
        if state is not None and state.offset != size:
            self._hashes.pop(upload_id, None)
            state = None
        return UploadAppender(writer, state, size, lock)

    def append(self, ref: RepoRef, upload_id: str, expected_start: int | None, data: bytes) -> int:
        """Append a whole body at once (open, write, close: one call, so that a small
        body costs the server one thread hop); the upload's new size."""
        appender = self.open_append(ref, upload_id, expected_start)
        try:
            appender.write(data)
        except BaseException:
            appender.abort()
            raise
        return appender.close()

    def _upload_digest(self, upload_id: str, algorithm: str, size: int) -> str:
        state = self._hashes.get(upload_id)
        if algorithm == "sha256" and state is not None and state.offset == size:
            return f"sha256:{state.hasher.hexdigest()}"
        hasher = new_hasher(algorithm)
        for chunk in self.store.upload_read(upload_id):
            hasher.update(chunk)
        return f"{algorithm}:{hasher.hexdigest()}"

    def finish_upload(self, ref: RepoRef, upload_id: str, digest_text: str) -> str:
        """Verify the digest, publish the blob and link it; a mismatch removes it all."""
        self._check_upload(ref, upload_id)
        try:
            digest = Digest.parse(digest_text)
        except DigestError as exc:
            raise RegistryError(
                "DIGEST_INVALID", str(exc), detail={"digest": digest_text[:200]}
            ) from exc
        lock = self._lock_for(upload_id)
        with lock:
            try:
                size = self.store.upload_size(upload_id)
                actual = self._upload_digest(upload_id, digest.algorithm, size)
            except UploadNotFound as exc:
                raise upload_unknown(upload_id) from exc
            if actual != str(digest):
                self.cancel_upload(ref, upload_id)
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"the uploaded content has digest {actual}, not {digest}; "
                    "the upload was discarded",
                    detail={"expected": str(digest), "actual": actual},
                )
            now = utcnow()
            # Durable below, name and record together, once the lock is free for others.
            with self.db.write(durable=False) as conn:
                # Publishing inside the transaction, under the digest's lock, keeps garbage
                # collection from deleting these bytes between publish and record.
                lock_keys(conn, [blob_key(str(digest))])
                self.store.upload_commit(upload_id, str(digest), durable=False)
                upsert(
                    conn,
                    t.blobs,
                    {"digest": str(digest), "size": size, "created_at": now, "touched_at": now},
                    keys=("digest",),
                    update=("touched_at",),
                )
                self._link_blob(conn, self.require_repository(ref), str(digest), touch=False)
            self.store.sync_blob(str(digest))
            self.db.sync()
        self._forget_upload(upload_id)
        return str(digest)

    def cancel_upload(self, ref: RepoRef, upload_id: str) -> None:
        self._check_upload(ref, upload_id)
        try:
            self.store.upload_size(upload_id)
        except UploadNotFound as exc:
            raise upload_unknown(upload_id) from exc
        self.store.upload_abort(upload_id)
        self._forget_upload(upload_id)

    def _forget_upload(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        with self._locks_guard:
            self._locks.pop(upload_id, None)

    # -- manifests -------------------------------------------------------------------

    def find_manifest(
        self, name: RepositoryName, reference: str
    ) -> tuple[RepoRef, StoredManifest | RegistryError]:
        """Resolve the repository and fetch the manifest in one read transaction.

        The outcome is returned, not raised, so that the caller can authorize against the
        repository before it reveals whether the manifest exists.
        """
        with self.db.read() as conn:
            ref = self.catalog.resolve(name, conn)
            try:
                return ref, self.get_manifest(ref, reference, conn)
            except RegistryError as exc:
                return ref, exc

    def get_manifest(
        self, ref: RepoRef, reference: str, conn: Connection | None = None
    ) -> StoredManifest:
        repo_id = self.require_repository(ref)
        # A malformed reference names no manifest: the spec lists only 404 for a pull
        # (PUT and DELETE still answer 400).
        try:
            if ":" in reference:
                Digest.parse(reference)
                q = _MANIFEST_BY_DIGEST
            else:
                check_tag(reference)
                q = _MANIFEST_BY_TAG
        except (DigestError, NameError_) as exc:
            raise manifest_unknown(reference, str(exc)) from exc
        params = {"repo": repo_id, "ref": reference}
        if conn is None:
            with self.db.read() as own:
                row = own.execute(q, params).first()
        else:
            row = conn.execute(q, params).first()
        if row is None:
            raise manifest_unknown(reference)
        return StoredManifest(row.digest, row.media_type, bytes(row.content), row.subject_digest)

    def put_manifest(
        self,
        origin: Origin,
        ref: RepoRef,
        reference: str,
        body: bytes,
        content_type: str | None,
        tags: Sequence[str] = (),
    ) -> tuple[str, Manifest, list[str]]:
        """Store the manifest and move its tags, with a ``push`` event per tag
        (``manifest_push`` for a push by digest alone), all in one transaction.

        The tags are ``reference`` when it is one, else ``tags`` (the ``tag`` query
        parameters of a push by digest, each checked before anything is written: all are
        applied or none). Returns the digest, the manifest and the tags applied.
        """
        by_digest = ":" in reference
        if by_digest:
            applied = list(dict.fromkeys(tags))
            if len(applied) > MAX_TAGS_PER_PUSH:
                raise RegistryError(
                    "MANIFEST_INVALID",
                    f"at most {MAX_TAGS_PER_PUSH} tags may be applied with one push",
                )
            for tag in applied:
                check_reference_tag(tag)
        else:
            applied = [reference]
        if by_digest:
            expected = parse_digest(reference)
            actual = Digest.of(body, expected.algorithm)
            if actual != expected:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"the manifest's digest is {actual}, not {expected}",
                    detail={"expected": str(expected), "actual": str(actual)},
                )
        else:
            check_reference_tag(reference)
            actual = Digest.of(body)
        try:
            manifest = parse_manifest(body, content_type)
        except ManifestError as exc:
            raise RegistryError("MANIFEST_INVALID", str(exc)) from exc
        digest = str(actual)
        now = utcnow()
        with self.catalog.changes.open(origin, identity=False) as change:
            conn = change.conn
            repo_id = self._ensure_repository(change, ref)
            self._check_references(conn, repo_id, digest, manifest)
            # Touching an existing manifest marks it as in use, for the gc grace period.
            manifest_id = conn.execute(
                _TOUCH_MANIFEST, {"repo": repo_id, "d": digest, "at": now}
            ).scalar()
            if manifest_id is None:
                manifest_id = self._insert_manifest(conn, repo_id, digest, body, manifest, now)
            for tag in applied:
                upsert(
                    conn,
                    t.tags,
                    {
                        "repository_id": repo_id,
                        "name": tag,
                        "manifest_id": manifest_id,
                        "updated_at": now,
                    },
                    keys=("repository_id", "name"),
                    update=("manifest_id", "updated_at"),
                )
            touch_repository(conn, repo_id, now)
            subject = image_subject(
                conn,
                ref,
                repo_id,
                tag="",
                digest=digest,
                media_type=manifest.media_type,
                size=len(body),
            )
            for tag in applied:
                change.emit(events.PUSH, replace(subject, tag=tag))
            if not applied:
                change.emit(events.MANIFEST_PUSH, subject)
        return digest, manifest, applied

    @staticmethod
    def _check_references(conn: Connection, repo_id: int, digest: str, manifest: Manifest) -> None:
        blob_digests = sorted({str(d.digest) for d in manifest.blobs})
        child_digests = sorted({str(d.digest) for d in manifest.children})
        # Everything this manifest relies on stays put until the commit: garbage
        # collection takes the same locks before it deletes.
        lock_keys(
            conn,
            [blob_key(d) for d in blob_digests]
            + [manifest_key(repo_id, d) for d in child_digests]
            + [manifest_key(repo_id, digest)],
        )
        if blob_digests:
            # Marks them as in use, for the grace period of garbage collection.
            now = utcnow()
            conn.execute(_TOUCH_BLOB, [{"d": d, "at": now} for d in blob_digests])
        checks = (
            (blob_digests, _LINKED_BLOBS, "the manifest references blob"),
            (child_digests, _PRESENT_MANIFESTS, "the index references manifest"),
        )
        for digests, query, what in checks:
            if not digests:
                continue
            present = set(conn.execute(query, {"repo": repo_id, "digests": digests}).scalars())
            missing = [d for d in digests if d not in present]
            if missing:
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN",
                    f"{what} {missing[0]}, which is not in this repository; push it first",
                    detail={"digest": missing[0]},
                )

    @staticmethod
    def _insert_manifest(
        conn: Connection, repo_id: int, digest: str, body: bytes, manifest: Manifest, now: Any
    ) -> int:
        manifest_id = int(
            conn.execute(
                _INSERT_MANIFEST,
                {
                    "repository_id": repo_id,
                    "digest": digest,
                    "media_type": manifest.media_type,
                    "size": len(body),
                    "content": body,
                    "artifact_type": manifest.artifact_type,
                    "subject_digest": str(manifest.subject.digest) if manifest.subject else None,
                    "annotations": (
                        json.dumps(manifest.annotations) if manifest.annotations else None
                    ),
                    "created_at": now,
                    "touched_at": now,
                },
            ).scalar_one()
        )
        refs = {("blob", str(d.digest)) for d in manifest.blobs}
        refs |= {("manifest", str(d.digest)) for d in manifest.children}
        if refs:
            conn.execute(
                _INSERT_REFERENCES,
                [{"manifest_id": manifest_id, "kind": k, "digest": d} for k, d in sorted(refs)],
            )
        return manifest_id

    def delete_manifest(self, origin: Origin, ref: RepoRef, reference: str) -> None:
        """Delete a tag (``tag_delete``) or a manifest by digest with the tags that
        point at it (``manifest_delete``)."""
        repo_id = self.require_repository(ref)
        if ":" not in reference:
            check_reference_tag(reference)
            with self.catalog.changes.open(origin, identity=False) as change:
                if not remove_tag(change, ref, repo_id, reference):
                    raise manifest_unknown(reference)
            return
        parse_digest(reference)
        with self.catalog.changes.open(origin, identity=False) as change:
            conn = change.conn
            # The tags pointing at the manifest go with it: each with its event.
            tagged = conn.execute(
                sa.select(t.tags.c.name)
                .select_from(t.tags.join(t.manifests, t.tags.c.manifest_id == t.manifests.c.id))
                .where(t.manifests.c.repository_id == repo_id, t.manifests.c.digest == reference)
                .order_by(t.tags.c.name)
            ).scalars()
            for tag in list(tagged):
                remove_tag(change, ref, repo_id, tag)
            row = conn.execute(
                sa.delete(t.manifests)
                .where(
                    t.manifests.c.repository_id == repo_id,
                    t.manifests.c.digest == reference,
                )
                .returning(t.manifests.c.media_type, t.manifests.c.size)
            ).first()
            if row is None:
                raise manifest_unknown(reference)
            touch_repository(conn, repo_id)
            change.emit(
                events.MANIFEST_DELETE,
                image_subject(
                    conn,
                    ref,
                    repo_id,
                    tag="",
                    digest=reference,
                    media_type=row.media_type,
                    size=int(row.size),
                ),
            )

    # -- discovery -------------------------------------------------------------------

    def find_tags(
        self, name: RepositoryName, limit: int | None, last: str | None
    ) -> tuple[RepoRef, tuple[list[str], bool] | RegistryError]:
        """Resolve the repository and read a page of its tags in lexical order after
        ``last`` (and whether more follow) in one read transaction. As with
        :meth:`find_manifest`, a missing repository is returned, not raised, so that the
        caller authorizes before it tells."""
        with self.db.read() as conn:
            ref = self.catalog.resolve(name, conn)
            try:
                repo_id = self.require_repository(ref)
            except RegistryError as exc:
                return ref, exc
            query = _TAG_NAMES[bool(last), limit is not None]
            params = {"repository_id": repo_id, "last": last, "limit": (limit or 0) + 1}
            names = [tag for (tag,) in query.rows(conn, **params)]
        if limit is not None and len(names) > limit:
            return ref, (names[:limit], True)
        return ref, (names, False)

    def referrers(
        self, ref: RepoRef, digest: str, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        """The manifests in ``ref`` whose subject is ``digest``. A repository with nothing
        pushed yet (or none at all) has none: the spec lets a registry that supports the
        referrers API answer 404 only when it does not, and ORAS and notation take a 404
        to mean exactly that (they fall back to the tag schema)."""
        parse_digest(digest)
        if ref.repository_id is None:
            return []
        q = sa.select(
            t.manifests.c.digest,
            t.manifests.c.media_type,
            t.manifests.c.size,
            t.manifests.c.artifact_type,
            t.manifests.c.annotations,
        ).where(
            t.manifests.c.repository_id == ref.repository_id,
            t.manifests.c.subject_digest == digest,
        )
        if artifact_type:
            q = q.where(t.manifests.c.artifact_type == artifact_type)
        with self.db.read() as conn:
            rows = conn.execute(q.order_by(t.manifests.c.digest)).all()
        out = []
        for row in rows:
            desc: dict[str, Any] = {
                "mediaType": row.media_type,
                "digest": row.digest,
                "size": row.size,
            }
            if row.artifact_type:
                desc["artifactType"] = row.artifact_type
            if row.annotations:
                desc["annotations"] = json.loads(row.annotations)
            out.append(desc)
        return out


def check_reference_tag(reference: str) -> None:
    try:
        check_tag(reference)
    except NameError_ as exc:
        raise RegistryError("MANIFEST_INVALID", str(exc), detail={"tag": reference[:200]}) from exc


def upload_headers(ref: RepoRef, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{ref.name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


_TAG_NAMES = keyset_pages(
    sa.select(t.tags.c.name).where(t.tags.c.repository_id == sa.bindparam("repository_id")),
    t.tags.c.name,
    "last",
)
"""``/tags/list``'s query, by (after a tag?, limited?): a listing of thousands of tags
is the rows' cost, so they are fetched straight from the driver (see :mod:`db.raw`)."""
