"""Trivy's JSON report (``trivy image --format json``, ``SchemaVersion`` 2), so that
tools which read Trivy output read ours.

Results are grouped as Trivy groups them: the OS packages in one ``os-pkgs`` result
named ``<image> (<family> <version>)``; installed language packages of the aggregated
kinds (Python, Node.js, Ruby, Java) in one ``lang-pkgs`` result per language, each
vulnerability naming its ``PkgPath``; other language packages in one result per file.
A result is listed only when it has vulnerabilities, like Trivy without
``--list-all-pkgs``. Levels are upper case; ours has no CRITICAL (a CVSS score of 9 or
more is HIGH). Trivy's ``CVSS`` map is keyed by data source: ours is ``osv``.
"""

from __future__ import annotations

from typing import Any, Final

from dockyard.scanning.formats.common import (
    LANGUAGE_ECOSYSTEMS,
    OS_ECOSYSTEMS,
    ReportContext,
    cvss_by_source,
    ecosystem_base,
    is_language,
    level,
    links,
    purl,
)
from dockyard.scanning.model import Finding, Package, ScanResult
from dockyard.scanning.report import sort_findings

MEDIA_TYPE = "application/json"
SCHEMA_VERSION = 2
DATA_SOURCE: Final = {"ID": "osv", "Name": "OSV", "URL": "https://osv.dev"}


def _vulnerability(finding: Finding, result: ScanResult, context: ReportContext) -> dict[str, Any]:
    package = finding.package
    layer = context.layer(package.layer)
    item: dict[str, Any] = {
        "VulnerabilityID": finding.id,
        "VendorIDs": list(finding.aliases),
        "PkgID": f"{package.name}@{package.version}",
        "PkgName": package.name,
        "PkgIdentifier": {"PURL": purl(package, result.os)},
        "InstalledVersion": package.version,
        "FixedVersion": finding.fixed_version,
        "Status": "fixed" if finding.fixed_version else "affected",
        "Layer": {"Digest": layer.digest, "DiffID": layer.diff_id},
        "SeveritySource": DATA_SOURCE["ID"],
        "PrimaryURL": links(finding)[0],
        "DataSource": DATA_SOURCE,
        "Title": finding.summary,
        "Description": finding.summary,
        "Severity": level(finding).upper(),
        "CweIDs": list(finding.cwe_ids),
        "CVSS": cvss_by_source(finding),
        "References": links(finding),
    }
    if is_language(package) and package.path:
        item["PkgPath"] = package.path.lstrip("/")
    if not finding.fixed_version:
        del item["FixedVersion"]
    for key in ("VendorIDs", "CweIDs", "CVSS", "Title", "Description"):
        if not item[key]:
            del item[key]
    return item


def _group(package: Package, result: ScanResult, context: ReportContext) -> tuple[str, str, str]:
    """(Target, Class, Type) of the result a package's findings belong to."""
    base = ecosystem_base(package)
    if base in LANGUAGE_ECOSYSTEMS:
        _, kind, aggregate = LANGUAGE_ECOSYSTEMS[base]
        return aggregate or package.path.lstrip("/") or kind, "lang-pkgs", kind
    family = result.os.family if result.os else ""
    kind = OS_ECOSYSTEMS[base][2] if base in OS_ECOSYSTEMS else family or "unknown"
    os_name = f"{family} {result.os.version}".strip() if result.os else "unknown"
    return f"{context.artifact_name} ({os_name})", "os-pkgs", kind


def report(result: ScanResult, context: ReportContext) -> dict[str, Any]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    os_packages = [p for p in result.packages if not is_language(p)]
    if result.os is not None and os_packages:
        # Trivy lists the detected OS even when none of its packages is affected.
        groups[_group(os_packages[0], result, context)] = []
    for finding in sort_findings(result.findings):
        groups.setdefault(_group(finding.package, result, context), []).append(
            _vulnerability(finding, result, context)
        )
    # OS packages first, then the language results by target, as Trivy lists them.
    ordered = sorted(groups.items(), key=lambda item: (item[0][1] != "os-pkgs", item[0]))
    metadata: dict[str, Any] = {}
    if result.os is not None:
        metadata["OS"] = {"Family": result.os.family, "Name": result.os.version}
    diff_ids = [layer.diff_id for layer in context.layers if layer.diff_id]
    if diff_ids:
        metadata["DiffIDs"] = diff_ids
    if context.tag:
        metadata["RepoTags"] = [f"{context.repository}:{context.tag}"]
    metadata["RepoDigests"] = [f"{context.repository}@{context.digest}"]
    metadata["Size"] = sum(layer.size for layer in context.layers)
    metadata["Dockyard"] = {
        "ManifestDigest": context.digest,
        "MediaType": context.mime_type,
        **({"Platform": context.platform} if context.platform else {}),
        "VulnerabilityDatabaseVersion": context.database_version,
        "VulnerabilityDatabase": context.database_properties()["vulnerability_database"],
    }
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "CreatedAt": context.generated_at.isoformat(),
        "ArtifactName": context.artifact_name,
        "ArtifactType": "container_image",
        "Metadata": metadata,
        "Results": [
            {
                "Target": target,
                "Class": cls,
                "Type": kind,
                **({"Vulnerabilities": vulns} if vulns else {}),
            }
            for (target, cls, kind), vulns in ordered
        ],
    }
