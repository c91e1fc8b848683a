"""Management API routes of vulnerability scans and security settings.

- ``POST …/tags/{tag}/scan`` and ``POST …/manifests/{digest}/scan`` queue a scan now
  (``cr:StartRepoTagScan``): 202 with the result's URL in ``Location``.
- ``GET …/tags/{tag}/scan`` and ``GET …/manifests/{digest}/scan``
  (``cr:GetRepoTagScanResult``): status, times, database version, counts per level and
  ``vulnerabilities[]`` in the engine's JSON shape, filtered by ``severity``,
  ``fixable=true`` and ``package``, paged (``limit``, ``after``: the position to go on
  from, as ``next`` gives it). An index has ``platforms[]`` and its vulnerabilities say
  which platform they are in. ``format=dockyard`` is the only format served here.
- ``GET``/``PUT /api/v1/namespaces/{name}/security``: scan on push, pull blocking and the
  allowlist (``cr:GetNamespaceSecuritySetting``, ``cr:UpdateNamespaceSecuritySetting``).
- ``GET``/``PUT …/repositories/{namespace}/{repository}/security``: the repository's
  ``scan_on_push`` override (``cr:GetRepoSecuritySetting``,
  ``cr:UpdateRepoSecuritySetting``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import (
    ApiError,
    call_service,
    iso,
    json_body,
    no_fields,
    only_fields,
    optional_field,
    page_params,
)
from dockyard.audit import origin_of
from dockyard.catalog.http import NamespaceRoutes, RepositoryRoutes
from dockyard.db.engine import utcnow
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import NameError_, RepositoryName, check_tag
from dockyard.scanning.model import SEVERITIES
from dockyard.scanning.report import as_json, parse_levels
from dockyard.scanning.service import (
    AllowEntry,
    Report,
    RepositorySecurity,
    ScanService,
    SecuritySettings,
    StoredScan,
)

FORMATS = ("dockyard", "harbor", "trivy", "sarif", "cyclonedx")
"""Every report format of the API; only ``dockyard`` is rendered by this module."""


def scan_url(name: RepositoryName | str, digest: str) -> str:
    return f"/api/v1/repositories/{name}/manifests/{digest}/scan"


def scan_brief(scan: StoredScan | None, name: RepositoryName | str, digest: str) -> dict[str, Any]:
    """What a tag listing carries about a digest's scan (``status: none`` when it was
    never queued)."""
    if scan is None:
        return {"status": "none", "summary": None, "database": None, "url": None}
    return {
        "status": scan.status,
        "reason": scan.reason or None,
        "summary": scan.counts if scan.has_result else None,
        "database": scan.database or None,
        "finished_at": iso(scan.finished_at) if scan.finished_at else None,
        "url": scan_url(name, digest),
    }


def tag_briefs(
    scans: ScanService, name: RepositoryName, digests: list[str]
) -> dict[str, dict[str, Any]]:
    """Each digest's :func:`scan_brief`, in one query (a tag listing's page)."""
    found = scans.summaries(digests)
    return {d: scan_brief(found.get(d), name, d) for d in digests}


def scan_json(scan: StoredScan) -> dict[str, Any]:
    return {
        "digest": scan.digest,
        "kind": scan.kind,
        "platform": scan.platform or None,
        "status": scan.status,
        "reason": scan.reason or None,
        "queued_at": iso(scan.queued_at),
        "started_at": iso(scan.started_at) if scan.started_at else None,
        "finished_at": iso(scan.finished_at) if scan.finished_at else None,
        "database": scan.database or None,
        "summary": scan.counts if scan.has_result else None,
    }


def settings_json(settings: SecuritySettings) -> dict[str, Any]:
    return {
        "scan_on_push": settings.scan_on_push,
        "block_pull_severity": settings.block_pull_severity,
        "block_unscanned": settings.block_unscanned,
        "allowlist": [
            {
                "id": e.id,
                "expires_at": iso(e.expires_at) if e.expires_at else None,
                "comment": e.comment,
            }
            for e in settings.allowlist
        ],
    }


def repository_settings_json(found: RepositorySecurity) -> dict[str, Any]:
    return {
        "scan_on_push": found.scan_on_push,
        "effective_scan_on_push": found.effective_scan_on_push,
        "namespace": settings_json(found.namespace),
    }


def vulnerabilities(
    report: Report,
    *,
    levels: tuple[str, ...] | None = None,
    fixable: bool = False,
    package: str | None = None,
    allowed: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The report's findings in the engine's shape (with ``platform`` for an index's),
    filtered, each marked ``allowlisted`` and with its layer's ``created_by``."""
    parts = report.platforms if report.scan.kind == "index" else [report]
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.result is None:
            continue
        chosen = [
            f
            for f in part.result.findings
            if (levels is None or f.severity in levels)
            and (not fixable or f.fixed_version)
            and (package is None or f.package.name == package)
        ]
        steps = {layer.digest: layer.created_by for layer in part.layers}
        for item in as_json(part.result, chosen)["vulnerabilities"]:
            item["allowlisted"] = item["id"] in allowed or any(
                a in allowed for a in item["aliases"]
            )
            item["layer_created_by"] = steps.get(item["layer"], "")
            if report.scan.kind == "index":
                item["platform"] = part.scan.platform
            out.append(item)
    return out


def report_json(
    request: Request, report: Report, name: RepositoryName, allowed: frozenset[str]
) -> dict[str, Any]:
    """The GET …/scan body: the scan, and a page of its filtered vulnerabilities."""
    query = request.query_params
    fmt = query.get("format") or "dockyard"
    if fmt not in FORMATS:
        raise ApiError(400, "Bad Request", f"format is one of {', '.join(FORMATS)}")
    if fmt != "dockyard":
        raise ApiError(
            400, "Bad Request", f"format {fmt!r} is not served by this server yet; use dockyard"
        )
    levels = None
    if query.get("severity"):
        try:
            levels = parse_levels(query["severity"])
        except ValueError as exc:
            raise ApiError(400, "Bad Request", f"severity: {exc}") from exc
    fixable_text = (query.get("fixable") or "false").lower()
    if fixable_text not in ("true", "false"):
        raise ApiError(400, "Bad Request", "fixable is true or false")
    package = query.get("package") or None
    limit, after = page_params(request)
    start = 0
    if after is not None:
        if not (after.isascii() and after.isdigit() and len(after) <= 9):
            raise ApiError(400, "Bad Request", "after is the position next gives")
        start = int(after)
    found = vulnerabilities(
        report, levels=levels, fixable=fixable_text == "true", package=package, allowed=allowed
    )
    body = scan_json(report.scan)
    body["repository"] = str(name)
    # The engine's shape (``dockyard scan --format json``): artifact, os, packages,
    # vulnerabilities; ``summary`` counts the whole scan, ``matched`` the filtered page's
    # findings, which ``matched_summary`` counts per level.
    body["artifact"] = {"name": f"{name}@{report.scan.digest}", "digest": report.scan.digest}
    result = report.result
    body["os"] = {"family": "", "version": ""}
    body["packages"] = []
    if result is not None:
        engine = as_json(result, [])
        body["os"] = engine["os"]
        body["packages"] = engine["packages"]
        body["layers"] = [
            {
                "digest": x.digest,
                "diff_id": x.diff_id,
                "size": x.size,
                "created_by": x.created_by,
            }
            for x in report.layers
        ]
    if report.scan.kind == "index":
        body["platforms"] = [
            scan_json(p.scan) | {"url": scan_url(name, p.scan.digest)} for p in report.platforms
        ]
    body["matched"] = len(found)
    body["matched_summary"] = {
        level: sum(1 for v in found if v["severity"] == level) for level in SEVERITIES
    }
    body["vulnerabilities"] = found[start : start + limit]
    if start + limit < len(found):
        kept = {k: v for k, v in query.items() if k not in ("after", "limit")}
        body["next"] = (
            f"{request.url.path}?{urlencode({**kept, 'limit': limit, 'after': start + limit})}"
        )
    return body


def _allow_entries(raw: Any) -> list[AllowEntry]:
    if not isinstance(raw, list):
        raise ApiError(400, "Bad Request", "allowlist is a list of {id, expires_at, comment}")
    out = []
    for entry in raw:
        item = {"id": entry} if isinstance(entry, str) else entry
        if not isinstance(item, dict):
            raise ApiError(400, "Bad Request", "an allowlist entry is an object with an id")
        only_fields(item, ("id", "expires_at", "comment"))
        vuln_id = item.get("id")
        if not isinstance(vuln_id, str) or not vuln_id.strip():
            raise ApiError(400, "Bad Request", "an allowlist entry needs an id (a string)")
        expires = item.get("expires_at")
        if expires is not None and not isinstance(expires, str):
            raise ApiError(400, "Bad Request", "expires_at is an ISO 8601 time")
        comment = item.get("comment") or ""
        if not isinstance(comment, str):
            raise ApiError(400, "Bad Request", "comment is a string")
        out.append(AllowEntry(vuln_id, _parse_time(expires) if expires else None, comment))
    return out


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "Bad Request", f"expires_at {text[:64]!r} is no ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _reference(request: Request) -> str:
    """The tag or digest in the path, checked (404 for one that can name nothing)."""
    if "tag" in request.path_params:
        tag: str = request.path_params["tag"]
        try:
            check_tag(tag)
        except NameError_ as exc:
            raise ApiError(404, "Not Found", f"tag {tag[:128]!r} does not exist: {exc}") from exc
        return tag
    digest: str = request.path_params["digest"]
    try:
        Digest.parse(digest)
    except DigestError as exc:
        raise ApiError(400, "Bad Request", f"digest: {exc}") from exc
    return digest


class RepositoryScanRoutes(RepositoryRoutes):
    """Scans of a repository's tags and manifests, and its security override."""

    scans: ScanService

    def with_scans(self, scans: ScanService) -> RepositoryScanRoutes:
        self.scans = scans
        return self

    def routes(self) -> list[Route]:
        one = "/api/v1/repositories/{namespace}/{repository}"
        return [
            Route(one + "/tags/{tag}/scan", self.scan, methods=["GET", "POST"]),
            Route(one + "/manifests/{digest}/scan", self.scan, methods=["GET", "POST"]),
            Route(one + "/security", self.security, methods=["GET", "PUT"]),
        ]

    async def scan(self, request: Request) -> Response:
        """A tag's or manifest's vulnerability scan (GET), or queue one now (POST: 202).

        GET filters: ``severity`` (levels, comma-separated), ``fixable=true``,
        ``package`` (a name); ``format=dockyard``."""
        reference = _reference(request)
        if request.method == "POST":
            ref = await self._named(request, actions.START_SCAN)
            await no_fields(request)
            origin = await self._origin(request, status=202)
            started = await call_service(
                lambda: self.scans.start_scan(origin, ref.name, reference), ServiceError
            )
            url = scan_url(ref.name, started.digest)
            return JSONResponse(
                scan_json(started) | {"url": url}, status_code=202, headers={"Location": url}
            )
        ref = await self._named(request, actions.GET_SCAN)
        found = await call_service(lambda: self.scans.report(ref.name, reference), ServiceError)
        settings = await call_service(
            lambda: self.scans.namespace_settings(ref.name.namespace), ServiceError
        )
        body = report_json(request, found, ref.name, settings.allowed_ids(utcnow()))
        return JSONResponse(body)

    async def security(self, request: Request) -> Response:
        """The repository's security settings: its own ``scan_on_push`` (null: its
        namespace's) and its namespace's settings."""
        if request.method == "PUT":
            ref = await self._named(request, actions.UPDATE_REPO_SECURITY)
            body = await json_body(request)
            only_fields(body, ("scan_on_push",))
            if "scan_on_push" not in body:
                raise ApiError(
                    400, "Bad Request", "scan_on_push (true, false or null: the namespace's)"
                )
            value = optional_field(body, "scan_on_push", bool)
            origin = await self._origin(request, status=200)
            updated = await call_service(
                lambda: self.scans.update_repository_settings(origin, ref.name, scan_on_push=value),
                ServiceError,
            )
            return JSONResponse(repository_settings_json(updated))
        ref = await self._named(request, actions.GET_REPO_SECURITY)
        found = await call_service(lambda: self.scans.repository_settings(ref.name), ServiceError)
        return JSONResponse(repository_settings_json(found))


class NamespaceSecurityRoutes(NamespaceRoutes):
    scans: ScanService

    def with_scans(self, scans: ScanService) -> NamespaceSecurityRoutes:
        self.scans = scans
        return self

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/namespaces/{name}/security", self.security, methods=["GET", "PUT"]),
        ]

    async def security(self, request: Request) -> Response:
        """A namespace's security settings: scan on push, pull blocking, the allowlist
        (PUT changes the fields given; the allowlist is replaced whole)."""
        name = request.path_params["name"]
        if request.method == "PUT":
            principal, owner = await self._require(request, actions.UPDATE_NS_SECURITY, name)
            if owner is None and not principal.is_admin:
                raise ApiError(404, "Not Found", f"namespace {name!r} does not exist")
            body = await json_body(request)
            fields = ("scan_on_push", "block_pull_severity", "block_unscanned", "allowlist")
            only_fields(body, fields)
            allowlist = _allow_entries(body["allowlist"]) if "allowlist" in body else None
            origin = origin_of(request.scope, principal, status=200)
            updated = await call_service(
                lambda: self.scans.update_namespace_settings(
                    origin,
                    name,
                    scan_on_push=optional_field(body, "scan_on_push", bool),
                    block_pull_severity=optional_field(body, "block_pull_severity", str),
                    block_unscanned=optional_field(body, "block_unscanned", bool),
                    allowlist=allowlist,
                ),
                ServiceError,
            )
            return JSONResponse(settings_json(updated))
        await self._require(request, actions.GET_NS_SECURITY, name)
        found = await call_service(lambda: self.scans.namespace_settings(name), ServiceError)
        return JSONResponse(settings_json(found))


def report_link(public_url: str, name: RepositoryName | str, digest: str) -> str:
    """Where a refused pull's message sends people: the console's report page."""
    namespace, _, repository = str(name).partition("/")
    path = f"/console/repositories/{quote(namespace)}/{quote(repository)}/scans/{digest}"
    return f"{public_url}{path}" if public_url else path
