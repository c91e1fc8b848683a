"""Harbor's pluggable scanner report (Scanner Adapter API v1.1, ``HarborVulnerabilityReport``).

Harbor reads this shape from every scanner it plugs in, and its own API serves it under
``application/vnd.security.vulnerability.report; version=1.1``. Levels are title case on
Harbor's scale; ours has no Critical (a CVSS score of 9 or more is High), so none is
emitted. ``severity`` is the highest level found, and ``Unknown`` when nothing was found,
as Harbor's own Trivy adapter answers.

``vendor_attributes`` is an object: the OpenAPI document draws it as an array of
key/value pairs, but Harbor decodes it into a map (and its Trivy adapter writes one), so
an array would fail to load. Layers, source packages and the CVSS vectors go there, the
vectors in the ``CVSS`` shape Harbor's console reads (as the Trivy adapter writes it).
"""

from __future__ import annotations

from typing import Any

from dockyard.scanning.formats.common import (
    SCANNER_NAME,
    SCANNER_VENDOR,
    SCANNER_VERSION,
    ReportContext,
    best,
    cvss_by_source,
    highest_level,
    level,
    links,
    utc_timestamp,
)
from dockyard.scanning.model import Finding, ScanResult
from dockyard.scanning.report import sort_findings

MEDIA_TYPE = "application/vnd.security.vulnerability.report; version=1.1"


def _preferred_cvss(finding: Finding) -> dict[str, Any] | None:
    """The v3 and v2 vectors Harbor shows (v3 scored by the engine); ``None`` without."""
    v3, v2 = best(finding, "3"), best(finding, "2")
    if v3 is None and v2 is None:
        return None
    cvss: dict[str, Any] = {}
    if v3 is not None:
        cvss["score_v3"] = v3.score
        cvss["vector_v3"] = v3.vector
    if v2 is not None:
        cvss["vector_v2"] = v2.vector
    return cvss


def _vendor_attributes(finding: Finding, context: ReportContext) -> dict[str, Any]:
    package = finding.package
    layer = context.layer(package.layer)
    attributes: dict[str, Any] = {
        "ecosystem": package.ecosystem,
        "layer": {"digest": layer.digest, "diff_id": layer.diff_id},
    }
    if layer.created_by:
        attributes["layer"]["created_by"] = layer.created_by
    if package.path:
        attributes["path"] = package.path
    if package.source_name:
        attributes["source_package"] = package.source_name
    if finding.aliases:
        attributes["aliases"] = list(finding.aliases)
    cvss = cvss_by_source(finding)
    if cvss:
        attributes["CVSS"] = cvss
    return attributes


def _item(finding: Finding, context: ReportContext) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": finding.id,
        "package": finding.package.name,
        "version": finding.package.version,
        "fix_version": finding.fixed_version,
        "severity": level(finding),
        "description": finding.summary,
        "links": links(finding),
        "cwe_ids": list(finding.cwe_ids),
        "vendor_attributes": _vendor_attributes(finding, context),
    }
    cvss = _preferred_cvss(finding)
    if cvss is not None:
        item["preferred_cvss"] = cvss
    return item


def report(result: ScanResult, context: ReportContext) -> dict[str, Any]:
    findings = sort_findings(result.findings)
    artifact: dict[str, Any] = {
        "repository": context.repository,
        "digest": context.digest,
        "mime_type": context.mime_type,
    }
    if context.tag:
        artifact["tag"] = context.tag
    return {
        "generated_at": utc_timestamp(context.generated_at, fraction=True),
        "artifact": artifact,
        "scanner": {"name": SCANNER_NAME, "vendor": SCANNER_VENDOR, "version": SCANNER_VERSION},
        "severity": highest_level(findings) or "Unknown",
        "vulnerabilities": [_item(f, context) for f in findings],
    }
