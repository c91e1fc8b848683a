"""Vulnerability scans in the console: the report page of a manifest's scan, the Scan
button of the tag table, and a namespace's security settings (scan on push, pull
blocking, allowlist). The tag table's "Security scan" column reads the ``scan`` the
tag listing carries (see :mod:`dockyard.console.views.catalog`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx, may_on, seg
from dockyard.scanning.formats import REPORT_FORMATS, SBOM_FORMATS, combinable

LEVELS = ("High", "Medium", "Low", "Unknown")
BLOCK_LEVELS = ("none", "low", "medium", "high")
START_SCAN = "cr:StartRepoTagScan"
UPDATE_NS_SECURITY = "cr:UpdateNamespaceSecuritySetting"


def routes(console: Console) -> list[Route]:
    page = console.page
    repo = f"{PREFIX}/repositories/{{ns}}/{{repo}}"
    ns = f"{PREFIX}/namespaces/{{ns}}"
    found = [
        Route(f"{repo}/scans/{{digest}}", page(report)),
        Route(f"{repo}/scans/{{digest}}/download", page(download)),
        Route(f"{repo}/tags/{{tag}}/scan", page(scan_tag), methods=["POST"]),
        Route(f"{ns}/security", page(security), methods=["GET", "POST"]),
        Route(f"{repo}/security", page(repository_security), methods=["POST"]),
    ]
    needs = {
        f"{repo}/scans/{{digest}}": ("/api/v1/repositories/{}/{}/manifests/{}/scan", "GET"),
        f"{repo}/scans/{{digest}}/download": (
            "/api/v1/repositories/{}/{}/manifests/{}/scan",
            "GET",
        ),
        f"{repo}/tags/{{tag}}/scan": ("/api/v1/repositories/{}/{}/tags/{}/scan", "POST"),
        f"{ns}/security": ("/api/v1/namespaces/{}/security", "GET"),
        f"{repo}/security": ("/api/v1/repositories/{}/{}/security", "PUT"),
    }
    return [r for r in found if console.has(*needs[r.path])]


def advisory_url(vuln_id: str) -> str:
    """Where an advisory is read: OSV's page knows every id the database imports."""
    return f"https://osv.dev/vulnerability/{seg(vuln_id)}"


def _repo_api(ctx: Ctx) -> str:
    return f"/api/v1/repositories/{seg(ctx.param('ns'))}/{seg(ctx.param('repo'))}"


def _repo_url(ctx: Ctx) -> str:
    return f"{PREFIX}/repositories/{seg(ctx.param('ns'))}/{seg(ctx.param('repo'))}"


async def report(ctx: Ctx) -> Response:
    """A manifest's scan: summary bar, findings filtered by level and fixable."""
    digest = ctx.param("digest")
    level = ctx.query("level")
    fixable = ctx.query("fixable") == "true"
    params = {"limit": "1000"}
    if level in LEVELS:
        params["severity"] = level
    if fixable:
        params["fixable"] = "true"
    try:
        body = await ctx.api.get(f"{_repo_api(ctx)}/manifests/{seg(digest)}/scan", params)
    except ApiProblem as exc:
        if exc.status != 404:
            raise
        body = None
    may = await may_on(ctx, (START_SCAN,), f"{ctx.param('ns')}/{ctx.param('repo')}")
    return ctx.render(
        "scan_report.html",
        nav="repositories",
        ns=ctx.param("ns"),
        repo=ctx.param("repo"),
        digest=digest,
        tag=ctx.query("tag"),
        scan=body,
        level=level if level in LEVELS else "",
        fixable=fixable,
        levels=LEVELS,
        advisory_url=advisory_url,
        downloads=DOWNLOADS,
        combined=COMBINED,
        sboms=SBOMS,
        can_scan=ctx.has("/api/v1/repositories/{}/{}/manifests/{}/scan", "POST")
        and START_SCAN in may,
    )


DOWNLOADS = tuple(REPORT_FORMATS)
"""The report formats the report page offers (the API's, in its order)."""
COMBINED = tuple(f for f in REPORT_FORMATS if combinable(f))
"""Those an index's page offers: the others describe one platform, on its own page."""
SBOMS = tuple(SBOM_FORMATS)


async def download(ctx: Ctx) -> Response:
    """A scan's report in one of the formats (``?format=``), or its SBOM
    (``?sbom=cyclonedx|spdx``), saved as a file: the API's bytes, as the API serves them."""
    digest = ctx.param("digest")
    sbom = ctx.query("sbom")
    if sbom:
        path, fmt, kind = f"{_repo_api(ctx)}/manifests/{seg(digest)}/sbom", sbom, "sbom"
    else:
        fmt = ctx.query("format") or "dockyard"
        path, kind = f"{_repo_api(ctx)}/manifests/{seg(digest)}/scan", "scan"
    params = {"format": fmt, "platform": ctx.query("platform")}
    if fmt == "dockyard" and not sbom:
        params["limit"] = "1000"
    body, media_type = await ctx.api.download(path, params)
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in f"{ctx.param('repo')}-{fmt}")
    filename = f"{safe}-{kind}-{digest.replace(':', '-')[:19]}.json"
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def scan_tag(ctx: Ctx) -> Response:
    tag = ctx.param("tag")
    return await ctx.act(
        "POST",
        f"{_repo_api(ctx)}/tags/{seg(tag)}/scan",
        then=f"{_repo_url(ctx)}?tab=tags",
        said=f"Scan of {tag} queued.",
    )


def parse_allowlist(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """The allowlist textarea: one ``ID[, expiry date][, comment]`` per line."""
    entries: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        entry: dict[str, Any] = {"id": parts[0]}
        if len(parts) > 1 and parts[1]:
            expiry = parts[1]
            if len(expiry) == 10:  # a date: the end of that day
                expiry += "T23:59:59Z"
            entry["expires_at"] = expiry
        if len(parts) > 2:
            entry["comment"] = parts[2]
        if not entry["id"] or " " in entry["id"]:
            return [], f"Line {number}: start with a vulnerability id."
        entries.append(entry)
    return entries, None


def allowlist_text(entries: list[dict[str, Any]]) -> str:
    lines = []
    for e in entries:
        parts = [e["id"], (e.get("expires_at") or "")[:10]]
        if e.get("comment"):
            parts.append(e["comment"])
        lines.append(", ".join(parts).rstrip(", "))
    return "\n".join(lines)


async def _security_page(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None, **values: Any
) -> Response:
    name = ctx.param("ns")
    settings = await ctx.api.get(f"/api/v1/namespaces/{seg(name)}/security")
    may = await may_on(ctx, (UPDATE_NS_SECURITY,), name)
    return ctx.render(
        "namespace_security.html",
        status,
        nav="namespaces",
        ns=name,
        settings=settings,
        allowlist=values.get("allowlist", allowlist_text(settings["allowlist"])),
        block_levels=BLOCK_LEVELS,
        can_edit=ctx.has("/api/v1/namespaces/{}/security", "PUT") and UPDATE_NS_SECURITY in may,
        errors=errors or {},
    )


async def security(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _security_page(ctx)
    text = ctx.form.get("allowlist", "")
    entries, problem = parse_allowlist(text)
    level = ctx.form.get("block_pull_severity", "none")
    body = {
        "scan_on_push": ctx.form.get("scan_on_push") == "on",
        "block_pull_severity": level,
        "block_unscanned": ctx.form.get("block_unscanned") == "on",
        "allowlist": entries,
    }
    name = ctx.param("ns")
    return await ctx.act(
        "PUT",
        f"/api/v1/namespaces/{seg(name)}/security",
        body,
        then=f"{PREFIX}/namespaces/{seg(name)}/security",
        said="Security settings saved.",
        page=partial(_security_page, allowlist=text),
        key="security",
        invalid=problem,
    )


async def repository_security(ctx: Ctx) -> Response:
    """The repository's own scan on push: on, off, or its namespace's (``inherit``)."""
    choice = ctx.form.get("scan_on_push", "")
    value = {"on": True, "off": False, "inherit": None}.get(choice, "bad")
    return await ctx.act(
        "PUT",
        f"{_repo_api(ctx)}/security",
        {"scan_on_push": value},
        then=f"{_repo_url(ctx)}?tab=info",
        said="Scan on push saved.",
        invalid=None if value != "bad" else "Choose on, off or the namespace's setting.",
    )
