"""Management API routes of vulnerability scans and security settings.

- ``POST …/tags/{tag}/scan`` and ``POST …/manifests/{digest}/scan`` queue a scan now
  (``cr:StartRepoTagScan``): 202 with the result's URL in ``Location``.
- ``GET …/tags/{tag}/scan`` and ``GET …/manifests/{digest}/scan``
  (``cr:GetRepoTagScanResult``): status, times, database version, counts per level and
  ``vulnerabilities[]`` in the engine's JSON shape, filtered by ``severity``,
  ``fixable=true`` and ``package``, paged (``limit``, ``after``: the position to go on
  from, as ``next`` gives it). An index has ``platforms[]`` and its vulnerabilities say
  which platform they are in. ``format=`` serves the report in the formats other tools
  read too (:mod:`dockyard.scanning.exports`, rendered in a worker thread).
- ``GET …/manifests/{digest}/sbom?format=cyclonedx|spdx`` (``cr:GetRepoTagScanResult``):
  the package inventory.
- ``GET``/``PUT /api/v1/namespaces/{name}/security``: scan on push, pull blocking and the
  allowlist (``cr:GetNamespaceSecuritySetting``, ``cr:UpdateNamespaceSecuritySetting``).
- ``GET``/``PUT …/repositories/{namespace}/{repository}/security``: the repository's
  ``scan_on_push`` override (``cr:GetRepoSecuritySetting``,
  ``cr:UpdateRepoSecuritySetting``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
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
from dockyard.openapi import (
    Body,
    ConfigDict,
    Field,
    Int64,
    Model,
    NoFields,
    Op,
    Query,
    Reply,
    RootModel,
    Timestamp,
    describe,
)
from dockyard.scanning.exports import (
    DEFAULT_SBOM,
    check_format,
    platform_part,
    report_document,
    sbom_document,
)
from dockyard.scanning.formats import REPORT_FORMATS, SBOM_FORMATS
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

# --- the document's types ----------------------------------------------------------

ScanStatus = Literal["queued", "scanning", "complete", "failed", "unsupported"]
Level = Literal["High", "Medium", "Low", "Unknown"]


class LevelCounts(Reply):
    """Findings per level."""

    High: int
    Medium: int
    Low: int
    Unknown: int


class ScanOut(Reply):
    """A digest's scan: what is happening now, and the last complete result's counts."""

    digest: str = Field(examples=["sha256:" + "0" * 64])
    kind: Literal["image", "index"]
    platform: str | None = Field(description="os/arch, for a platform of an index")
    status: ScanStatus
    reason: str | None = Field(description="why it failed or is unsupported")
    queued_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    database: str | None = Field(
        description="the vulnerability database version used; empty: there was no data",
        examples=["42", "empty"],
    )
    summary: LevelCounts | None = Field(description="counts of the last complete result")


class ScanStartedOut(ScanOut):
    url: str = Field(
        description="where the result is read", json_schema_extra={"format": "uri-reference"}
    )


class ArtifactOut(Reply):
    name: str
    digest: str


class OsOut(Reply):
    family: str = Field(examples=["debian"])
    version: str = Field(examples=["12"])


class PackageOut(Reply):
    name: str
    version: str
    ecosystem: str = Field(examples=["Debian:12", "PyPI"])
    source_name: str
    source_version: str
    layer: str = Field(description="the digest of the layer that added it")


class LayerOut(Reply):
    digest: str
    diff_id: str
    size: Int64
    created_by: str = Field(description="the image history step that made the layer")


class VulnerabilityOut(Reply):
    id: str = Field(examples=["DSA-5532-1"])
    aliases: list[str] = Field(examples=[["CVE-2023-5678"]])
    package: str
    ecosystem: str
    installed_version: str
    fixed_version: str = Field(description='"" when no fixed version is known')
    severity: Level
    source_name: str
    layer: str
    summary: str
    allowlisted: bool = Field(description="listed in the namespace's allowlist (not blocking)")
    layer_created_by: str
    platform: str = Field(default="", description="an index's platform the finding is in")


class ScanReportOut(ScanOut):
    """A scan in the engine's shape (``format=dockyard``), with a page of its filtered
    vulnerabilities."""

    repository: str = Field(examples=["team/app"])
    artifact: ArtifactOut
    os: OsOut
    packages: list[PackageOut]
    layers: list[LayerOut] = Field(default_factory=list, description="once a result exists")
    platforms: list[ScanStartedOut] = Field(
        default_factory=list, description="an index's platforms, each with its result's URL"
    )
    matched: int = Field(description="findings the filters matched (all pages)")
    matched_summary: LevelCounts
    vulnerabilities: list[VulnerabilityOut]
    next: str | None = Field(
        default=None,
        description="the next page of vulnerabilities, when this one is full",
        json_schema_extra={"format": "uri-reference"},
    )


class _Open(Reply):
    """A document in another tool's format: the fields named here, and more as that
    format defines them."""

    model_config = ConfigDict(extra="allow")


class TrivyResult(_Open):
    Target: str
    Class: str = Field(examples=["os-pkgs", "lang-pkgs"])
    Type: str = Field(examples=["debian", "python-pkg"])
    Vulnerabilities: list[dict[str, Any]] = Field(
        default_factory=list,
        description="VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity, Layer…",
    )


class TrivyReport(_Open):
    """Trivy's JSON report (``format=trivy``), schema version 2."""

    SchemaVersion: Literal[2]
    CreatedAt: str
    ArtifactName: str
    ArtifactType: Literal["container_image"]
    Metadata: dict[str, Any]
    Results: list[TrivyResult]


class ScanDocument(RootModel[ScanReportOut | TrivyReport]):
    """A scan as JSON: the engine's shape (``format=dockyard``, the default) or Trivy's
    (``format=trivy``)."""


class HarborArtifact(_Open):
    repository: str
    digest: str
    tag: str = ""
    mime_type: str


class HarborScanner(_Open):
    name: str
    vendor: str
    version: str


class HarborVulnerability(_Open):
    id: str
    package: str
    version: str
    fix_version: str
    severity: Level
    description: str
    links: list[str]
    cwe_ids: list[str]
    vendor_attributes: dict[str, Any]
    preferred_cvss: dict[str, Any] | None = None


class HarborReport(_Open):
    """Harbor's pluggable scanner report, version 1.1 (``format=harbor``)."""

    generated_at: str
    artifact: HarborArtifact
    scanner: HarborScanner
    severity: Level
    vulnerabilities: list[HarborVulnerability]


class SarifLog(_Open):
    """A SARIF 2.1.0 log (``format=sarif``): one run, or one per platform of an index."""

    schema_uri: str = Field(alias="$schema")
    version: Literal["2.1.0"]
    runs: list[dict[str, Any]]


class CycloneDxDocument(_Open):
    """A CycloneDX 1.6 BOM: with ``vulnerabilities`` as a scan report, without as an
    SBOM."""

    bom_format: Literal["CycloneDX"] = Field(alias="bomFormat")
    spec_version: str = Field(alias="specVersion", examples=["1.6"])
    serial_number: str = Field(default="", alias="serialNumber")
    version: int
    metadata: dict[str, Any]
    components: list[dict[str, Any]] = Field(default_factory=list)
    vulnerabilities: list[dict[str, Any]] = Field(default_factory=list)


class SpdxDocument(_Open):
    """An SPDX 2.3 document (``format=spdx``)."""

    spdx_version: Literal["SPDX-2.3"] = Field(alias="spdxVersion")
    data_license: str = Field(alias="dataLicense")
    spdx_id: str = Field(alias="SPDXID")
    name: str
    document_namespace: str = Field(alias="documentNamespace")
    creation_info: dict[str, Any] = Field(alias="creationInfo")
    packages: list[dict[str, Any]]


class ScanQuery(Query):
    format: Literal["dockyard", "harbor", "trivy", "sarif", "cyclonedx"] = Field(
        default="dockyard",
        description="the report's format: dockyard (the engine's shape), harbor, trivy, "
        "sarif or cyclonedx (each answered with its own media type)",
    )
    platform: str | None = Field(
        default=None,
        description="an index's platform (os/arch) to report on; harbor and cyclonedx "
        "need one for an index, trivy and sarif combine the platforms without",
        examples=["linux/amd64"],
    )
    severity: str | None = Field(
        default=None, description="levels, comma-separated (dockyard format)", examples=["High"]
    )
    fixable: bool | None = Field(default=None, description="only findings with a fixed version")
    package: str | None = Field(default=None, description="only findings in this package")
    limit: int | None = Field(
        default=None, ge=1, le=1000, description="vulnerabilities per page (dockyard format)"
    )
    after: str | None = Field(
        default=None, pattern="^[0-9]{1,9}$", description="the position to go on from (from next)"
    )


class SbomQuery(Query):
    format: Literal["cyclonedx", "spdx"] = Field(default="cyclonedx")
    platform: str | None = Field(
        default=None, description="an index's platform (os/arch): an SBOM describes one image"
    )


class AllowEntryBody(Body):
    id: str = Field(min_length=1, examples=["CVE-2023-5678"])
    expires_at: Timestamp | None = None
    comment: str = ""


class AllowEntryOut(Reply):
    id: str
    expires_at: Timestamp | None
    comment: str


BlockLevel = Literal["none", "low", "medium", "high"]


class SecurityOut(Reply):
    """A namespace's security settings."""

    scan_on_push: bool
    block_pull_severity: BlockLevel
    block_unscanned: bool
    allowlist: list[AllowEntryOut]


class SecurityChange(Body):
    """The fields to change (the allowlist is replaced whole)."""

    scan_on_push: bool | None = None
    block_pull_severity: BlockLevel | None = None
    block_unscanned: bool | None = None
    allowlist: list[AllowEntryBody | str] | None = Field(
        default=None, description="entries, or bare ids"
    )


class RepositorySecurityOut(Reply):
    scan_on_push: bool | None = Field(description="null: the namespace's setting")
    effective_scan_on_push: bool
    namespace: SecurityOut


class RepositorySecurityChange(Body):
    scan_on_push: bool | None = Field(description="true, false, or null: the namespace's")


_REPORT_MEDIA: tuple[tuple[str, type[Model]], ...] = (
    (REPORT_FORMATS["harbor"], HarborReport),
    (REPORT_FORMATS["sarif"], SarifLog),
    (REPORT_FORMATS["cyclonedx"], CycloneDxDocument),
)
_SBOM_MEDIA: tuple[tuple[str, type[Model]], ...] = (
    (SBOM_FORMATS["cyclonedx"], CycloneDxDocument),
    (SBOM_FORMATS["spdx"], SpdxDocument),
)
_READ_SCAN = Op(
    "Read a scan, as a report in one of the formats",
    tag="scans",
    reply=ScanDocument,
    query=ScanQuery,
    media=_REPORT_MEDIA,
    errors=(409,),
)
_START_SCAN = Op(
    "Scan now",
    tag="scans",
    body=NoFields,
    body_required=False,
    reply=ScanStartedOut,
    status=202,
    location=True,
)


T = TypeVar("T")


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


def _checked(check: Callable[[], T]) -> T:
    """A quick check of the request against what is already read, on the event loop
    (no thread for a dictionary lookup); its refusal answered as problem JSON."""
    try:
        return check()
    except ServiceError as exc:
        raise ApiError.of(exc) from exc


async def _rendered(render: Callable[[], tuple[bytes, str]]) -> Response:
    """A report or SBOM rendered in a worker thread (a large inventory takes a while to
    render, CycloneDX above all: never on the event loop), answered with its format's
    media type."""
    body, media_type = await call_service(render, ServiceError)
    return Response(body, media_type=media_type)


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
            Route(one + "/manifests/{digest}/sbom", self.sbom, methods=["GET"]),
            Route(one + "/security", self.security, methods=["GET", "PUT"]),
        ]

    @describe(get=_READ_SCAN, post=_START_SCAN)
    async def scan(self, request: Request) -> Response:
        """A tag's or manifest's vulnerability scan (GET), or queue one now (POST: 202).

        GET filters (the dockyard format): ``severity`` (levels, comma-separated),
        ``fixable=true``, ``package`` (a name). ``format`` chooses the report:
        ``dockyard`` (the engine's shape, paged), ``harbor``, ``trivy``, ``sarif`` or
        ``cyclonedx``, each with its media type; 409 while there is no complete result
        to render. For an index, ``platform=os/arch`` names one platform; trivy and
        sarif combine them all without it."""
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
        fmt = request.query_params.get("format") or "dockyard"
        _checked(lambda: check_format(fmt, REPORT_FORMATS, "report"))
        found = await call_service(lambda: self.scans.report(ref.name, reference), ServiceError)
        platform = request.query_params.get("platform") or ""
        if fmt == "dockyard" and platform and found.scan.kind == "index":
            found = _checked(lambda: platform_part(found, platform))
        if fmt != "dockyard":
            tag = request.path_params.get("tag")
            return await _rendered(
                lambda: report_document(
                    found, fmt, repository=str(ref.name), tag=tag, platform=platform
                )
            )
        settings = await call_service(
            lambda: self.scans.namespace_settings(ref.name.namespace), ServiceError
        )
        body = report_json(request, found, ref.name, settings.allowed_ids(utcnow()))
        return JSONResponse(body)

    @describe(
        get=Op(
            "Read a manifest's package inventory (SBOM)",
            tag="scans",
            query=SbomQuery,
            media=_SBOM_MEDIA,
            errors=(409,),
        )
    )
    async def sbom(self, request: Request) -> Response:
        """The packages of a scanned manifest (name, version, purl, the layer that added
        it; licences are not read yet) as CycloneDX (the default) or SPDX; an index's platform
        is named with ``platform=os/arch``. 409 while there is no complete result."""
        reference = _reference(request)
        ref = await self._named(request, actions.GET_SCAN)
        fmt = request.query_params.get("format") or DEFAULT_SBOM
        _checked(lambda: check_format(fmt, SBOM_FORMATS, "SBOM"))
        found = await call_service(lambda: self.scans.report(ref.name, reference), ServiceError)
        platform = request.query_params.get("platform") or ""
        return await _rendered(
            lambda: sbom_document(found, fmt, repository=str(ref.name), tag=None, platform=platform)
        )

    @describe(
        get=Op(
            "Read a repository's security settings", tag="security", reply=RepositorySecurityOut
        ),
        put=Op(
            "Change a repository's scan on push",
            tag="security",
            body=RepositorySecurityChange,
            reply=RepositorySecurityOut,
        ),
    )
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

    @describe(
        get=Op("Read a namespace's security settings", tag="security", reply=SecurityOut),
        put=Op(
            "Change a namespace's security settings",
            tag="security",
            body=SecurityChange,
            reply=SecurityOut,
        ),
    )
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
