"""``/api/v1/vulndb``: the vulnerability database, for the instance administrator.

``GET /api/v1/vulndb`` (``cr:GetVulnDB``) says what is imported (records per ecosystem,
the version scans record, the last import, the source and the next refresh).
``POST /api/v1/vulndb/imports`` (``cr:ImportVulnDB``) takes an OSV zip archive or JSON
file as the request body or as the one file of a ``multipart/form-data`` form, keeps it
in the blob store and answers 202 with the import, which a job runs;
``GET /api/v1/vulndb/imports[/{id}]`` shows the imports with their progress and results.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from anyio import to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from dockyard.api import (
    ApiAuth,
    ApiError,
    before_param,
    call_service,
    iso,
    listing,
    page_params,
    paged,
    path_id,
)
from dockyard.audit import origin_of
from dockyard.config import Settings
from dockyard.db.engine import utcnow
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import instance_arn
from dockyard.openapi import Field, Int64, Op, Reply, Timestamp, describe
from dockyard.scanning.service_db import ImportRecord, Status, VulnDBService
from dockyard.scanning.sources import redacted

_CHUNK = 1024 * 1024
_UPLOAD_TYPES = ("application/octet-stream", "application/json", "multipart/form-data")
"""How an import is sent: a zip archive (or any file: its first bytes say what it is),
JSON, or a form's one file."""


class ImportProgress(Reply):
    done: int = Field(description="documents (records or files) read so far")
    total: int | None = Field(description="documents to read, once known")
    percent: int | None


class ImportOut(Reply):
    """An import of OSV records: its state, progress and result."""

    id: Int64
    state: str = Field(examples=["queued", "running", "succeeded", "failed"])
    source: str = Field(description="upload, or the source a sync read", examples=["upload"])
    actor: str
    filename: str | None
    size: Int64 | None = Field(description="bytes uploaded")
    job_id: Int64 | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    progress: ImportProgress
    imported: int = Field(description="records added or updated")
    added: int
    updated: int
    skipped: int = Field(description="records already stored at least as new")
    invalid: int
    version: Int64 | None = Field(description="the database version this import made")
    errors: list[Any] = Field(description="invalid records and why")
    error: str | None = Field(description="why the import failed, when it did")


class EcosystemOut(Reply):
    ecosystem: str = Field(examples=["Debian:12"])
    records: int
    newest_modified: str | None


class VulnDBStatusOut(Reply):
    """What the vulnerability database holds."""

    version: Int64 | str | None = Field(description="the version scans record")
    empty: bool = Field(description="nothing imported: scans then say so")
    records: int
    ecosystems: list[EcosystemOut]
    last_import_at: Timestamp | None
    age_seconds: int | None
    last_import: ImportOut | None
    source: str | None = Field(description="DOCKYARD_VULNDB_SOURCE, credentials removed")
    refresh_hours: int
    next_refresh_at: Timestamp | None


def import_json(found: ImportRecord) -> dict[str, Any]:
    total = found.progress_total
    return {
        "id": found.id,
        "state": found.state,
        "source": found.source,
        "actor": found.actor,
        "filename": found.filename,
        "size": found.size,
        "job_id": found.job_id,
        "created_at": iso(found.created_at),
        "started_at": iso(found.started_at) if found.started_at else None,
        "finished_at": iso(found.finished_at) if found.finished_at else None,
        "progress": {
            "done": found.progress_done,
            "total": total,
            "percent": round(100 * found.progress_done / total) if total else None,
        },
        "imported": found.added + found.updated,
        "added": found.added,
        "updated": found.updated,
        "skipped": found.kept,
        "invalid": found.invalid,
        "version": found.version or None,
        "errors": found.errors,
        "error": found.error or None,
    }


def status_json(
    status: Status, last: ImportRecord | None, *, source: str, refresh_hours: int
) -> dict[str, Any]:
    age = (utcnow() - status.last_import_at).total_seconds() if status.last_import_at else None
    return {
        "version": status.version,
        "empty": status.records == 0,
        "records": status.records,
        "ecosystems": [
            {"ecosystem": e.ecosystem, "records": e.records, "newest_modified": e.newest_modified}
            for e in status.ecosystems
        ],
        "last_import_at": _iso_or_none(status.last_import_at),
        "age_seconds": round(age) if age is not None else None,
        "last_import": import_json(last) if last else None,
        "source": source or None,
        "refresh_hours": refresh_hours,
        "next_refresh_at": _iso_or_none(status.next_refresh_at) if source else None,
    }


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def _looks_like_osv(head: bytes) -> bool:
    """A zip archive, or JSON that starts as an object or an array."""
    return head.startswith(b"PK\x03\x04") or head.lstrip()[:1] in (b"{", b"[")


class VulnDBRoutes:
    def __init__(
        self,
        vulndb: VulnDBService,
        auth: ApiAuth,
        region: str,
        *,
        upload_limit: int,
        source: str = "",
        refresh_hours: int = 0,
    ) -> None:
        self.vulndb = vulndb
        self.auth = auth
        self.region = region
        self.upload_limit = upload_limit
        self.source = source
        self.refresh_hours = refresh_hours

    @classmethod
    def from_settings(
        cls, vulndb: VulnDBService, auth: ApiAuth, settings: Settings
    ) -> VulnDBRoutes:
        return cls(
            vulndb,
            auth,
            settings.region,
            upload_limit=settings.vulndb_upload_limit * 1024 * 1024,
            source=redacted(settings.vulndb_source),
            refresh_hours=settings.vulndb_refresh if settings.vulndb_source else 0,
        )

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/vulndb", self.status, methods=["GET"]),
            Route("/api/v1/vulndb/imports", self.list_imports, methods=["GET"]),
            Route("/api/v1/vulndb/imports", self.upload, methods=["POST"]),
            Route("/api/v1/vulndb/imports/{id}", self.one_import, methods=["GET"]),
        ]

    @describe(
        get=Op("Read the vulnerability database's status", tag="vulndb", reply=VulnDBStatusOut)
    )
    async def status(self, request: Request) -> Response:
        """What the vulnerability database holds: records per ecosystem, version, last
        import, source and next refresh."""
        await self.auth.authorize(request, actions.GET_VULNDB, instance_arn(self.region))
        return JSONResponse(await call_service(self.status_body, ServiceError))

    def status_body(self) -> dict[str, Any]:
        """The body of ``GET /api/v1/vulndb`` (the console shows the same)."""
        recent = self.vulndb.imports(limit=1)
        return status_json(
            self.vulndb.status(),
            recent[0] if recent else None,
            source=self.source,
            refresh_hours=self.refresh_hours,
        )

    @describe(get=Op("List the imports, newest first", tag="vulndb", reply=ImportOut, paged=True))
    async def list_imports(self, request: Request) -> Response:
        """The imports, newest first."""
        await self.auth.authorize(request, actions.GET_VULNDB, instance_arn(self.region))
        limit, after = page_params(request, default=50)
        before = before_param(after, "an import")
        found = await call_service(
            lambda: self.vulndb.imports(limit=limit, before=before), ServiceError
        )
        return paged(listing([import_json(i) for i in found], limit, request, "id", ()))

    @describe(get=Op("Read an import", tag="vulndb", reply=ImportOut))
    async def one_import(self, request: Request) -> Response:
        """One import: its state, progress and result."""
        await self.auth.authorize(request, actions.GET_VULNDB, instance_arn(self.region))
        import_id = path_id(request, "id", "import")
        found = await call_service(lambda: self.vulndb.get_import(import_id), ServiceError)
        return JSONResponse(import_json(found))

    @describe(
        post=Op(
            "Import OSV records from an uploaded zip archive or JSON file",
            tag="vulndb",
            upload=_UPLOAD_TYPES,
            reply=ImportOut,
            status=202,
            location=True,
            errors=(413, 415),
        )
    )
    async def upload(self, request: Request) -> Response:
        """Upload an OSV zip archive or JSON file (the body, or a multipart form's one
        file) to import; 202 with the import, which a job runs."""
        principal = await self.auth.authorize(
            request, actions.IMPORT_VULNDB, instance_arn(self.region)
        )
        with tempfile.SpooledTemporaryFile(max_size=8 * _CHUNK) as spool:
            filename = await self._receive(request, spool)
            size = spool.tell()
            spool.seek(0)
            if size == 0:
                raise ApiError(
                    400, "Bad Request", "the upload is empty: send an OSV zip archive or JSON"
                )
            if not _looks_like_osv(spool.read(64)):
                raise ApiError(
                    415,
                    "Unsupported Media Type",
                    "the upload is neither a zip archive nor JSON: send an OSV zip archive "
                    "(as osv.dev publishes) or a JSON record or array of records",
                )
            spool.seek(0)
            upload_id = await to_thread.run_sync(self.vulndb.start_upload)
            try:
                await to_thread.run_sync(self.vulndb.append_upload, upload_id, _chunks(spool))
                origin = origin_of(request.scope, principal, status=202)
                found = await to_thread.run_sync(
                    lambda: self.vulndb.queue_import(
                        origin, upload_id, filename=filename, size=size
                    )
                )
            except BaseException:
                await to_thread.run_sync(self.vulndb.abort_upload, upload_id)
                raise
        return JSONResponse(
            import_json(found),
            status_code=202,
            headers={"Location": f"/api/v1/vulndb/imports/{found.id}"},
        )

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "Content Too Large",
            f"the upload may have at most {self.upload_limit} bytes (DOCKYARD_VULNDB_UPLOAD_LIMIT)",
            headers={"Connection": "close"},
        )

    async def _receive(self, request: Request, spool: IO[bytes]) -> str:
        """Copy the upload into ``spool`` (refusing it beyond the limit, from its
        Content-Length or while it arrives); its file name."""
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.upload_limit:
            raise self._too_large()
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            return await self._receive_form(request, spool)
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > self.upload_limit:
                raise self._too_large()
            spool.write(chunk)
        return request.query_params.get("filename", "")[:255] or "upload"

    async def _receive_form(self, request: Request, spool: IO[bytes]) -> str:
        received = 0
        receive = request.receive

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            # The form's own fields and boundaries add a little to the file.
            if received > self.upload_limit + 64 * 1024:
                raise self._too_large()
            return message

        form_request = Request(request.scope, bounded)
        try:
            form = await form_request.form(max_files=1, max_fields=10)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(400, "Bad Request", f"the form cannot be read: {exc}") from exc
        try:
            files = [v for v in form.values() if isinstance(v, UploadFile)]
            if not files:
                raise ApiError(400, "Bad Request", "the form has no file: add the OSV file")
            upload = files[0]
            size = 0
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > self.upload_limit:
                    raise self._too_large()
                spool.write(chunk)
            return (upload.filename or "upload")[:255]
        finally:
            await form.close()


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    while chunk := spool.read(_CHUNK):
        yield chunk
