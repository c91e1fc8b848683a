"""A stored scan in the formats other tools read: which result to render (an image's,
an index's platform, or an index's platforms combined), with what context, and the
refusals when there is nothing to render yet.

The API (``?format=`` on a scan, ``…/sbom``) and the console's downloads both call
:func:`report_document` and :func:`sbom_document`, so they serve the same bytes. No HTTP
here: the errors are domain errors (400 for a format or platform that does not fit,
409 for a scan without a complete result), which the API maps in one place. Rendering a
large inventory takes a while (CycloneDX above all): callers run these in a thread.
"""

from __future__ import annotations

from typing import Final

from dockyard.errors import Conflict, Invalid
from dockyard.scanning.formats import (
    REPORT_FORMATS,
    SBOM_FORMATS,
    ReportContext,
    UnknownFormat,
    combinable,
    render_index_report,
    render_report,
    render_sbom,
)
from dockyard.scanning.model import ScanResult
from dockyard.scanning.service import Report

DEFAULT_SBOM: Final = "cyclonedx"


class ScanNotComplete(Conflict):
    """The scan has no complete result yet (queued, scanning, failed, unsupported)."""

    code = "ScanNotComplete"


def check_format(fmt: str, known: dict[str, str], what: str) -> None:
    """400 naming the valid formats, for a name not among *known*."""
    if fmt not in known:
        raise Invalid(f"format: {UnknownFormat(what, fmt, known)}", code="UnknownFormat")


def _context(part: Report, repository: str, tag: str | None) -> ReportContext:
    scan = part.scan
    return ReportContext(
        repository=repository,
        digest=scan.digest,
        tag=tag,
        mime_type=part.media_type,
        generated_at=scan.finished_at or scan.started_at or scan.queued_at,
        # ``empty``: the scan ran with no vulnerability data; the formats say so
        # when the version is "".
        database_version="" if scan.database == "empty" else scan.database,
        layers=tuple(part.layers),
        platform=scan.platform,
    )


def _result(part: Report) -> ScanResult:
    if part.result is None:
        scan = part.scan
        why = f" ({scan.reason})" if scan.reason else ""
        where = f" of {scan.platform}" if scan.platform else ""
        raise ScanNotComplete(
            f"the scan{where} ({scan.digest}) is {scan.status}{why}: there is no complete "
            "result to render yet; read the scan's status and try again when it is complete"
        )
    return part.result


def platform_part(report: Report, platform: str) -> Report:
    """The index's platform *platform*; 400 naming those it has when it is not one."""
    for part in report.platforms:
        if part.scan.platform == platform:
            return part
    have = ", ".join(p.scan.platform for p in report.platforms) or "none scanned"
    raise Invalid(f"platform {platform[:64]!r} is not one of this index's: {have}")


def report_document(
    report: Report, fmt: str, *, repository: str, tag: str | None, platform: str = ""
) -> tuple[bytes, str]:
    """*report* as report format *fmt*: ``(body, media type)``.

    An index is one platform's report when *platform* (``os/arch``) names it, else its
    platforms combined where the format holds several images (Trivy, SARIF); Harbor's
    and CycloneDX's documents describe one image, so those ask for a platform."""
    check_format(fmt, REPORT_FORMATS, "report")
    if report.scan.kind != "index":
        return render_report(_result(report), fmt, _context(report, repository, tag))
    if platform:
        part = platform_part(report, platform)
        return render_report(_result(part), fmt, _context(part, repository, tag))
    if not combinable(fmt):
        have = ", ".join(p.scan.platform for p in report.platforms)
        raise Invalid(
            f"format {fmt} describes one image: name a platform of this index with "
            f"platform= ({have})"
        )
    if not report.platforms:
        raise ScanNotComplete(f"no platform of the index {report.scan.digest} is scanned yet")
    parts = [(_result(p), _context(p, repository, tag)) for p in report.platforms]
    return render_index_report(parts, fmt, _context(report, repository, tag))


def sbom_document(
    report: Report, fmt: str, *, repository: str, tag: str | None, platform: str = ""
) -> tuple[bytes, str]:
    """The package inventory of *report* as SBOM format *fmt*: ``(body, media type)``;
    an index's platform must be named (an SBOM describes one image)."""
    check_format(fmt, SBOM_FORMATS, "SBOM")
    part = report
    if report.scan.kind == "index":
        if not platform:
            have = ", ".join(p.scan.platform for p in report.platforms)
            raise Invalid(f"an SBOM describes one image: name a platform with platform= ({have})")
        part = platform_part(report, platform)
    return render_sbom(_result(part), fmt, _context(part, repository, tag))
