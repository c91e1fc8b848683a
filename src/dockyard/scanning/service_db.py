"""The vulnerability database as a service: one store in the main database, a fast
matcher per machine.

Why two layers
--------------
The records live canonically in the main database (``vulndb_records``: id, ``modified``,
the raw OSV JSON compressed), so that every replica and worker sees one database, on
SQLite as on PostgreSQL. Matching, though, wants the engine's :class:`VulnDB` — a SQLite
file whose tables and indexes are laid out for :meth:`VulnDB.match` — and that speed must
not change. So each machine keeps a *derived* copy, the matcher cache
(``<data dir>/vulndb-cache/osv.sqlite``), and :meth:`VulnDBService.open` brings it up to
date before handing it out.

Every import that changes something takes the next *version* (``vulndb_state.version``,
one row, locked by the import so that imports run one at a time) and stamps the records
it wrote with it. A cache remembers the store's id and the version it holds; bringing
it up to date reads only the records with a newer version (one indexed range read) and
imports them into the cache in one SQLite transaction, under a file lock so that the
server and the workers of one machine never do it twice. A cache made from another
store, or ahead of this one (a restored database), is rebuilt from scratch. When the
version has not moved, :meth:`open` costs one single-row read.

Imports
-------
:meth:`VulnDBService.import_files` reads files as ``dockyard vulndb import`` does (OSV
JSON, arrays of records, folders, osv.dev zip archives), checks every record by the
engine's rules (:func:`~dockyard.scanning.vulndb.check_record`) *before* taking any
lock, then writes in one short transaction with multi-row statements (a record is
replaced only by one whose ``modified`` is not older). It lands whole or not at all.
Each import has a row in ``vulndb_imports`` (state, progress, counts, the invalid
records with their reasons) that the API and the console show.

An upload (``POST /api/v1/vulndb/imports``) is stored in the blob store's upload area —
shared by every replica, unlike a data directory — and imported by a job
(:data:`IMPORT_JOB`); the upload is removed once the import has ended.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import tempfile
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection, Dialect

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.errors import NotFound
from dockyard.jobs.queue import Job, JobQueue, JobSpec, enqueue
from dockyard.jobs.worker import Fail, Handler
from dockyard.origin import Origin
from dockyard.scanning.vulndb import (
    InvalidRecord,
    VulnDB,
    check_record,
    documents,
    record_time,
    records_in,
)
from dockyard.storage.base import BlobStore, UploadNotFound

log = logging.getLogger(__name__)

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
IMPORT_STATES: Final = (QUEUED, RUNNING, SUCCEEDED, FAILED)

IMPORT_JOB: Final = JobSpec("vulndb.import", "scans", max_attempts=3)
"""Imports an uploaded file (payload ``import_id``)."""
SYNC_JOB: Final = JobSpec("vulndb.sync", "scans", max_attempts=3)
"""Fetches what changed at ``DOCKYARD_VULNDB_SOURCE`` and imports it."""

CACHE_DIRNAME: Final = "vulndb-cache"
MAX_ERRORS: Final = 200
"""Invalid records an import keeps the reasons of (all are counted)."""
_ROWS: Final = 500
"""Rows per multi-row INSERT and ids per ``IN (…)``: few round trips on PostgreSQL
(pg8000 runs an executemany row by row), well below either database's parameter limit."""
_SYNC_PAGE: Final = 2000
"""Records per read when a matcher cache catches up."""
_PROGRESS_EVERY: Final = 1.0
"""Seconds between two progress writes of a running import."""

_R = t.vulndb_records.c
_I = t.vulndb_imports.c
_S = t.vulndb_state.c
_COUNT_RECORDS = sa.select(sa.func.count()).select_from(t.vulndb_records).where(~_R.withdrawn)
"""Records that are not withdrawn (the ones that can match)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did."""

    import_id: int
    added: int
    updated: int
    kept: int
    """Records skipped: the store holds a copy that is newer (or the same)."""
    invalid: int
    errors: tuple[tuple[str, str], ...]
    """(record id or file, reason) of the first :data:`MAX_ERRORS` invalid records."""
    version: str
    """The store's version after the import."""
    seconds: float

    @property
    def changed(self) -> bool:
        return self.added + self.updated > 0


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """An import as the API shows it."""

    id: int
    state: str
    source: str
    actor: str
    filename: str
    upload_id: str | None
    size: int
    job_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress_done: int
    progress_total: int
    added: int
    updated: int
    kept: int
    invalid: int
    version: str
    errors: list[dict[str, str]]
    error: str


@dataclass(frozen=True, slots=True)
class EcosystemCount:
    ecosystem: str
    records: int
    newest_modified: str
    """The newest ``modified`` time among them (sortable UTC text), ``""`` if none."""


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    """``""`` while nothing was imported."""
    records: int
    """Records that are not withdrawn."""
    ecosystems: list[EcosystemCount]
    last_import_at: datetime | None
    """The end of the last successful import."""
    next_refresh_at: datetime | None
    """When the periodic refresh from the source is next due."""


@dataclass(frozen=True, slots=True)
class Checked:
    modified: str
    withdrawn: bool
    ecosystems: tuple[str, ...]
    data: bytes


@dataclass
class _Checks:
    """What reading an import's files found."""

    records: dict[str, Checked] = field(default_factory=dict)
    """To write, unless a newer copy is stored by the time the write runs."""
    kept: int = 0
    """Records skipped already: the stored copy is as new."""
    invalid: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def _import_record(row: Any) -> ImportRecord:
    m = row._mapping
    return ImportRecord(
        id=int(m["id"]),
        state=m["state"],
        source=m["source"],
        actor=m["actor"],
        filename=m["filename"],
        upload_id=m["upload_id"],
        size=int(m["size"]),
        job_id=m["job_id"],
        created_at=as_utc(m["created_at"]),
        started_at=as_utc(m["started_at"]) if m["started_at"] else None,
        finished_at=as_utc(m["finished_at"]) if m["finished_at"] else None,
        progress_done=int(m["progress_done"]),
        progress_total=int(m["progress_total"]),
        added=int(m["added"]),
        updated=int(m["updated"]),
        kept=int(m["kept"]),
        invalid=int(m["invalid"]),
        version=str(m["version"]) if m["version"] else "",
        errors=json.loads(m["errors"]),
        error=m["error"],
    )


@functools.cache
def _multi_insert(dialect: Dialect, table: sa.Table, rows: int) -> tuple[str, list[str] | None]:
    """``INSERT … VALUES (…), (…)`` of ``rows`` rows, compiled once per dialect and size
    (compiling a multi-row statement costs as much as running it, and SQLAlchemy does not
    cache those): the SQL and, for a positional parameter style, the parameter order."""
    statement = sa.insert(table).values(
        [{c.name: sa.bindparam(f"{c.name}_{n}") for c in table.columns} for n in range(rows)]
    )
    compiled = statement.compile(dialect=dialect)
    order = list(compiled.positiontup) if compiled.positiontup is not None else None
    return compiled.string, order


def _insert_rows(conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (values in the table's column order) with one statement."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    params = {
        f"{name}_{n}": value
        for n, row in enumerate(rows)
        for name, value in zip(names, row, strict=True)
    }
    sql, order = _multi_insert(conn.dialect, table, len(rows))
    if order is None:
        conn.exec_driver_sql(sql, params)
    else:
        conn.exec_driver_sql(sql, tuple(params[name] for name in order))


def count_documents(paths: Sequence[Path]) -> int:
    """How many JSON documents :func:`~dockyard.scanning.vulndb.documents` will yield
    (zip members counted from the archive's directory): an import's progress total."""
    total = 0
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            suffix = file.suffix.lower()
            if path.is_dir() and suffix not in (".json", ".zip"):
                continue
            if suffix == ".zip" or (suffix != ".json" and zipfile.is_zipfile(file)):
                try:
                    with zipfile.ZipFile(file) as archive:
                        total += sum(
                            1
                            for m in archive.infolist()
                            if not m.is_dir() and m.filename.lower().endswith(".json")
                        )
                except (zipfile.BadZipFile, OSError):
                    total += 1
            else:
                total += 1
    return total


class _FileLock:
    """An exclusive ``flock`` on a file: the processes of one machine take turns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class VulnDBService:
    """The shared vulnerability database (module docstring)."""

    db: Database
    cache_dir: Path
    """Where this machine's matcher cache lives (``<data dir>/vulndb-cache``)."""
    changes: Changes | None = None
    """For imports queued through the API (their audit record commits with them)."""
    jobs: JobQueue | None = None
    store: BlobStore | None = None
    """Holds uploaded files until their import ends."""
    on_imported: list[Callable[[ImportResult], None]] = field(default_factory=list)
    """Called (in the process that ran it) after an import that changed something:
    the lead connects the rescan of recent images here."""

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        self._guard = threading.Lock()
        self._fresh: tuple[str, int] | None = None
        """(store id, version) the cache was last seen to hold, by this process."""

    # -- the matcher -----------------------------------------------------------------

    def _state(self, conn: Connection) -> tuple[str, int]:
        row = conn.execute(sa.select(_S.store_id, _S.version).where(_S.id == 1)).one()
        return str(row.store_id), int(row.version)

    def version(self) -> str:
        """The store's version, ``""`` while nothing was imported (scans record it)."""
        with self.db.read() as conn:
            _, version = self._state(conn)
        return str(version) if version else ""

    @contextmanager
    def open(self) -> Iterator[VulnDB]:
        """An up-to-date matcher (closed on exit). Open one per thread and scan: a
        :class:`VulnDB` keeps a SQLite connection of the thread that first used it."""
        self.refresh_cache()
        matcher = VulnDB(self.cache_dir)
        try:
            yield matcher
        finally:
            matcher.close()

    def refresh_cache(self) -> int:
        """Bring this machine's matcher cache up to the store's version; the number of
        records read (0 when it was current)."""
        with self.db.read() as conn:
            wanted = self._state(conn)
        if self._fresh == wanted:
            return 0
        with self._guard, _FileLock(self.cache_dir / "sync.lock"), VulnDB(self.cache_dir) as local:
            store_id, version = wanted
            held_version = int(local.meta("store_version") or 0)
            reset = local.meta("store_id") != store_id or held_version > version
            since = 0 if reset else held_version
            if not reset and since == version:
                self._fresh = wanted
                return 0
            read = 0

            def records() -> Iterator[tuple[str, Any]]:
                nonlocal read
                after: tuple[int, str] | None = None
                while True:
                    newer = _R.version > since
                    if after is not None:  # the next page
                        newer = sa.tuple_(_R.version, _R.id) > sa.tuple_(*after)
                    with self.db.read() as conn:
                        rows = conn.execute(
                            sa.select(_R.id, _R.version, _R.data)
                            .where(newer, _R.version <= version)
                            .order_by(_R.version, _R.id)
                            .limit(_SYNC_PAGE)
                        ).all()
                    for row in rows:
                        read += 1
                        yield row.id, json.loads(zlib.decompress(row.data))
                    if len(rows) < _SYNC_PAGE:
                        return
                    after = (int(rows[-1].version), rows[-1].id)

            started = time.perf_counter()
            local.import_records(
                records(),
                reset=reset,
                meta={"store_id": store_id, "store_version": str(version)},
            )
            log.info(
                "vulnerability matcher cache at version %s: %d records read in %.1f s%s",
                version,
                read,
                time.perf_counter() - started,
                " (rebuilt)" if reset else "",
            )
            self._fresh = wanted
            return read

    # -- status ----------------------------------------------------------------------

    def status(self) -> Status:
        e = t.vulndb_ecosystems.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(e.ecosystem, sa.func.count(), sa.func.max(_R.modified))
                .select_from(t.vulndb_ecosystems.join(t.vulndb_records, _R.id == e.record_id))
                .group_by(e.ecosystem)
                .order_by(e.ecosystem)
            ).all()
            records = conn.execute(_COUNT_RECORDS).scalar_one()
            state = conn.execute(sa.select(t.vulndb_state).where(_S.id == 1)).one()
        return Status(
            version=str(state.version) if state.version else "",
            records=int(records),
            ecosystems=[EcosystemCount(eco, int(n), newest or "") for eco, n, newest in rows],
            last_import_at=as_utc(state.last_import_at) if state.last_import_at else None,
            next_refresh_at=as_utc(state.next_refresh_at) if state.next_refresh_at else None,
        )

    def summary(self) -> tuple[int, datetime | None]:
        """Records (not withdrawn) and the end of the last successful import: what the
        metrics show, in two cheap reads."""
        with self.db.read() as conn:
            records = conn.execute(_COUNT_RECORDS).scalar_one()
            last = conn.execute(sa.select(_S.last_import_at).where(_S.id == 1)).scalar()
        return int(records), as_utc(last) if last else None

    def outcomes(self) -> dict[str, int]:
        """Imports by state, for the metrics."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(_I.state, sa.func.count()).group_by(_I.state)).all()
        found = dict.fromkeys(IMPORT_STATES, 0)
        found.update({state: int(n) for state, n in rows})
        return found

    # -- imports ---------------------------------------------------------------------

    def imports(self, *, limit: int = 50, before: int | None = None) -> list[ImportRecord]:
        """The import history, newest first."""
        q = sa.select(t.vulndb_imports).order_by(_I.id.desc()).limit(limit)
        if before is not None:
            q = q.where(_I.id < before)
        with self.db.read() as conn:
            return [_import_record(r) for r in conn.execute(q)]

    def get_import(self, import_id: int) -> ImportRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.vulndb_imports).where(_I.id == import_id)).first()
        if row is None:
            raise NotFound(f"import {import_id} does not exist")
        return _import_record(row)

    def _new_import(self, conn: Connection, **values: Any) -> int:
        res = conn.execute(sa.insert(t.vulndb_imports).values(created_at=utcnow(), **values))
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def _set_import(self, import_id: int, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(t.vulndb_imports).where(_I.id == import_id).values(**values))

    def import_files(
        self,
        paths: Iterable[Path],
        *,
        source: str = "cli",
        actor: str = "system",
        import_id: int | None = None,
    ) -> ImportResult:
        """Import OSV files (JSON, arrays, folders, zip archives) into the store, as the
        import ``import_id`` (a new one when None), writing its progress as it goes.

        Raises :class:`FileNotFoundError` before anything when a path is missing; any
        other failure marks the import failed, writes nothing, and is raised.
        """
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"no such file or directory: {path}")
        if import_id is None:
            with self.db.write() as conn:
                import_id = self._new_import(
                    conn,
                    state=RUNNING,
                    source=source[:2048],
                    actor=actor[:200],
                    filename=", ".join(p.name for p in paths)[:255],
                    started_at=utcnow(),
                )
        else:
            self._set_import(import_id, state=RUNNING, started_at=utcnow(), error="")
        try:
            return self._import(import_id, paths)
        except BaseException as exc:
            try:
                self._set_import(
                    import_id,
                    state=FAILED,
                    finished_at=utcnow(),
                    error=f"{type(exc).__name__}: {exc}"[:4000],
                )
            except Exception:
                log.exception("could not record that import %s failed", import_id)
            raise

    def _import(self, import_id: int, paths: list[Path]) -> ImportResult:
        started = time.perf_counter()
        total = count_documents(paths)
        self._set_import(import_id, progress_total=total)
        checks = self._check(import_id, paths)
        errors, invalid = checks.errors, checks.invalid
        with self.db.write() as conn:
            version, (added, updated, kept) = self._write(conn, checks.records)
            kept += checks.kept
            now = utcnow()
            conn.execute(
                sa.update(t.vulndb_state)
                .where(_S.id == 1)
                .values(version=version, last_import_at=now)
            )
            conn.execute(
                sa.update(t.vulndb_imports)
                .where(_I.id == import_id)
                .values(
                    state=SUCCEEDED,
                    finished_at=now,
                    progress_done=total,
                    progress_total=total,
                    added=added,
                    updated=updated,
                    kept=kept,
                    invalid=invalid,
                    version=version or None,
                    errors=json.dumps([{"record": r, "reason": why} for r, why in errors]),
                    error="",
                )
            )
        result = ImportResult(
            import_id=import_id,
            added=added,
            updated=updated,
            kept=kept,
            invalid=invalid,
            errors=tuple(errors),
            version=str(version) if version else "",
            seconds=time.perf_counter() - started,
        )
        if result.changed:
            for hook in list(self.on_imported):
                try:
                    hook(result)
                except Exception:
                    log.exception("an on_imported hook failed after import %s", import_id)
        return result

    def _check(self, import_id: int, paths: list[Path]) -> _Checks:
        """Every record of ``paths`` checked and compressed, before any lock is taken
        (the write itself is then short): the newest copy per id.

        A record whose stored copy is as new is only counted (kept): re-importing an
        ecosystem's archive, in which most records have not changed, then costs little
        more than reading it."""
        found = _Checks()

        def report(label: str, reason: str) -> None:
            found.invalid += 1
            if len(found.errors) < MAX_ERRORS:
                found.errors.append((label[:300], reason[:500]))

        with self.db.read() as conn:
            stored: dict[str, str] = {
                row.id: row.modified for row in conn.execute(sa.select(_R.id, _R.modified))
            }
        done = 0
        written_at = time.monotonic()
        for label, raw in documents(paths, report):
            for record_label, record in records_in(label, raw, report):
                vuln_id = record.get("id") if isinstance(record, dict) else None
                if isinstance(vuln_id, str) and vuln_id in stored:
                    modified = record_time(record)
                    if modified is not None and stored[vuln_id] >= modified:
                        found.kept += 1
                        continue
                try:
                    checked = check_record(record)
                except InvalidRecord as exc:
                    report(
                        vuln_id if isinstance(vuln_id, str) and vuln_id else record_label, str(exc)
                    )
                    continue
                previous = found.records.get(checked.id)
                if previous is not None and previous.modified > checked.modified:
                    continue
                # A document of one record is kept as it came; one of an array's records
                # is written out again.
                data = (
                    raw
                    if record_label == label
                    else json.dumps(record, separators=(",", ":")).encode()
                )
                found.records[checked.id] = Checked(
                    checked.modified, checked.withdrawn, checked.ecosystems, zlib.compress(data, 6)
                )
            done += 1
            if time.monotonic() - written_at >= _PROGRESS_EVERY:
                self._set_import(import_id, progress_done=done, invalid=found.invalid)
                written_at = time.monotonic()
        return found

    @staticmethod
    def _write(conn: Connection, checked: dict[str, Checked]) -> tuple[int, tuple[int, int, int]]:
        """Write the records newer than the stored copies under the next version; the
        store's version after it and (added, updated, kept)."""
        # The state row serializes imports (a row lock on PostgreSQL; SQLite's write
        # transactions run one at a time already).
        lock = sa.select(_S.version).where(_S.id == 1)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update()
        version = int(conn.execute(lock).scalar_one())
        ids = list(checked)
        stored: dict[str, str] = {}
        for start in range(0, len(ids), _ROWS):
            chunk = ids[start : start + _ROWS]
            query = sa.select(_R.id, _R.modified).where(_R.id.in_(chunk))
            stored.update((row.id, row.modified) for row in conn.execute(query))
        changed: list[str] = []
        replaced: list[str] = []
        for vuln_id, item in checked.items():
            old = stored.get(vuln_id)
            if old is not None and old >= item.modified:
                continue  # the same copy, or a newer one, is stored
            changed.append(vuln_id)
            if old is not None:
                replaced.append(vuln_id)
        counts = (len(changed) - len(replaced), len(replaced), len(checked) - len(changed))
        if not changed:
            return version, counts
        version += 1
        e = t.vulndb_ecosystems.c
        for start in range(0, len(replaced), _ROWS):
            chunk = replaced[start : start + _ROWS]
            conn.execute(sa.delete(t.vulndb_ecosystems).where(e.record_id.in_(chunk)))
            conn.execute(sa.delete(t.vulndb_records).where(_R.id.in_(chunk)))
        for start in range(0, len(changed), _ROWS):
            chunk = changed[start : start + _ROWS]
            _insert_rows(
                conn,
                t.vulndb_records,
                [
                    (i, checked[i].modified, checked[i].withdrawn, version, checked[i].data)
                    for i in chunk
                ],
            )
            links = [(i, eco[:128]) for i in chunk for eco in checked[i].ecosystems]
            for first in range(0, len(links), _ROWS):
                _insert_rows(conn, t.vulndb_ecosystems, links[first : first + _ROWS])
        return version, counts

    # -- uploads through the API -----------------------------------------------------

    def _store(self) -> BlobStore:
        if self.store is None:
            raise RuntimeError("this VulnDBService has no blob store for uploads")
        return self.store

    def start_upload(self) -> str:
        """A new upload session in the blob store for a file to import."""
        upload_id = f"vulndb-{uuid.uuid4().hex}"
        self._store().upload_start(upload_id)
        return upload_id

    def append_upload(self, upload_id: str, chunks: Iterable[bytes]) -> None:
        with self._store().upload_writer(upload_id) as writer:
            for chunk in chunks:
                writer.write(chunk)

    def abort_upload(self, upload_id: str) -> None:
        self._store().upload_abort(upload_id)

    def queue_import(
        self, origin: Origin, upload_id: str, *, filename: str, size: int
    ) -> ImportRecord:
        """Queue the import of an uploaded file: its row, its job and the audit record
        commit together."""
        if self.changes is None or self.jobs is None:
            raise RuntimeError("this VulnDBService cannot queue jobs")
        with self.changes.open(origin) as change:
            import_id = self._new_import(
                change.conn,
                state=QUEUED,
                source="upload",
                actor=origin.actor[:200],
                filename=filename[:255],
                upload_id=upload_id,
                size=size,
            )
            job_id = enqueue(change.conn, IMPORT_JOB, {"import_id": import_id})
            change.conn.execute(
                sa.update(t.vulndb_imports).where(_I.id == import_id).values(job_id=job_id)
            )
        self.jobs.notify()
        return self.get_import(import_id)

    def run_uploaded(self, import_id: int) -> ImportResult | None:
        """Run a queued upload's import (the job's work); None when there is nothing to
        do (it already ended: a job may run twice). The upload is removed once the
        import has ended, either way; an error that may pass (the database) is raised
        with the upload kept for the next attempt."""
        found = self.get_import(import_id)
        if found.state in (SUCCEEDED, FAILED):
            return None
        if not found.upload_id:
            self._set_import(import_id, state=FAILED, finished_at=utcnow(), error="no upload")
            return None
        store = self._store()
        with tempfile.TemporaryDirectory(prefix="vulndb-upload-") as work:
            path = Path(work) / "upload.bin"
            try:
                with path.open("wb") as out:
                    for chunk in store.upload_read(found.upload_id):
                        out.write(chunk)
            except UploadNotFound:
                self._set_import(
                    import_id,
                    state=FAILED,
                    finished_at=utcnow(),
                    error="the uploaded file is gone from the blob store",
                )
                return None
            if not zipfile.is_zipfile(path):
                path = path.rename(path.with_suffix(".json"))
            try:
                result = self.import_files([path], import_id=import_id)
            finally:
                if self.get_import(import_id).state in (SUCCEEDED, FAILED):
                    store.upload_abort(found.upload_id)
                    self._set_import(import_id, upload_id=None)
        return result

    def import_handler(self) -> Handler:
        """Runs an uploaded file's import (:data:`IMPORT_JOB`)."""

        async def run(job: Job, owner: str) -> str | None:
            import_id = int(job.payload["import_id"])
            await to_thread.run_sync(self.run_uploaded, import_id)
            found = await to_thread.run_sync(self.get_import, import_id)
            if found.state == FAILED:
                raise Fail(f"import {import_id} failed: {found.error}")
            return None

        return Handler(IMPORT_JOB, run)

    # -- the periodic refresh --------------------------------------------------------

    def schedule_refresh(self, every: timedelta, *, now: datetime | None = None) -> int | None:
        """Queue a sync job when the refresh is due, and move the next one ``every``
        later, in one transaction: the schedule lives in the database, so it survives
        restarts, and the conditional update lets exactly one replica queue it. The
        job's id, or None when it was not due."""
        if every <= timedelta(0):
            return None
        now = now or utcnow()
        with self.db.write() as conn:
            res = conn.execute(
                sa.update(t.vulndb_state)
                .where(
                    _S.id == 1,
                    sa.or_(_S.next_refresh_at.is_(None), _S.next_refresh_at <= now),
                )
                .values(next_refresh_at=now + every)
            )
            if not res.rowcount:
                return None
            job_id = enqueue(conn, SYNC_JOB, {})
        if self.jobs is not None:
            self.jobs.notify()
        return job_id

    # -- sources: what was fetched ---------------------------------------------------

    def validators(self, location: str) -> tuple[str, str] | None:
        """(ETag, Last-Modified) of the copy of ``location`` last imported, or None."""
        c = t.vulndb_sources.c
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(c.etag, c.last_modified).where(c.location == location[:1024])
            ).first()
        return None if row is None else (row.etag, row.last_modified)

    def remember(self, fetched: Sequence[tuple[str, str, str]]) -> None:
        """Record (location, ETag, Last-Modified) of copies just imported."""
        c = t.vulndb_sources.c
        now = utcnow()
        with self.db.write() as conn:
            for location, etag, modified in fetched:
                key = location[:1024]
                conn.execute(sa.delete(t.vulndb_sources).where(c.location == key))
                conn.execute(
                    sa.insert(t.vulndb_sources).values(
                        location=key, etag=etag[:512], last_modified=modified[:128], fetched_at=now
                    )
                )
