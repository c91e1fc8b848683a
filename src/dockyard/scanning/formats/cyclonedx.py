"""CycloneDX 1.6 JSON, built and serialised by ``cyclonedx-python-lib``: a vulnerability
report (components and ``vulnerabilities``) and an SBOM (components only).

The image is ``metadata.component`` (type ``container``, ``pkg:oci`` purl) and every
package is a component with its purl, depending on nothing and depended on by the
image; properties carry what CycloneDX has no field for: the layer that added it (digest,
diff ID, the ``created_by`` of its history step), where its record is, its ecosystem
and source package. The engine does not read licences, so none are claimed.

In the report each vulnerability id is one entry (CycloneDX groups affected components
under it): ``source`` is its OSV page, ``ratings`` one per CVSS vector with the
engine's score (a level-only record gets one rating of method ``other``),
``affects`` the components by bom-ref with the installed version, and
``recommendation`` the fixed versions. The vulnerability database version is a
property of the document (``dockyard:vulnerability_database``: ``empty`` when none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from dockyard.scanning.formats.common import (
    CYCLONEDX_MEDIA_TYPE,
    OSV_URL,
    SCANNER_NAME,
    SCANNER_VERSION,
    ReportContext,
    Score,
    cwe_numbers,
    image_purl,
    level,
    purl,
    scores,
    sorted_packages,
)
from dockyard.scanning.model import Finding, Package, ScanResult
from dockyard.scanning.report import sort_findings

MEDIA_TYPE: Final = CYCLONEDX_MEDIA_TYPE
_PREFIX: Final = "dockyard:"
_LEVELS: Final = {
    "High": VulnerabilitySeverity.HIGH,
    "Medium": VulnerabilitySeverity.MEDIUM,
    "Low": VulnerabilitySeverity.LOW,
    "Unknown": VulnerabilitySeverity.UNKNOWN,
}


def _cvss_severity(score: float) -> VulnerabilitySeverity:
    """The CVSS qualitative rating of a score (what a CVSS rating's severity means)."""
    if score >= 9.0:
        return VulnerabilitySeverity.CRITICAL
    if score >= 7.0:
        return VulnerabilitySeverity.HIGH
    if score >= 4.0:
        return VulnerabilitySeverity.MEDIUM
    if score > 0.0:
        return VulnerabilitySeverity.LOW
    return VulnerabilitySeverity.NONE


def _method(score: Score) -> VulnerabilityScoreSource:
    if score.version == "4":
        return VulnerabilityScoreSource.CVSS_V4
    if score.version == "2":
        return VulnerabilityScoreSource.CVSS_V2
    if score.vector.startswith("CVSS:3.1/"):
        return VulnerabilityScoreSource.CVSS_V3_1
    return VulnerabilityScoreSource.CVSS_V3


def _properties(values: Iterable[tuple[str, str]]) -> list[Property]:
    return [Property(name=_PREFIX + name, value=value) for name, value in values if value]


def _component(package: Package, ref: str, result: ScanResult, ctx: ReportContext) -> Component:
    layer = ctx.layer(package.layer)
    return Component(
        type=ComponentType.LIBRARY,  # OS packages too, as Trivy and Syft describe them
        name=package.name,
        version=package.version,
        bom_ref=ref,
        purl=PackageURL.from_string(purl(package, result.os)),
        properties=_properties(
            [
                ("ecosystem", package.ecosystem),
                ("path", package.path),
                ("source_name", package.source_name),
                ("source_version", package.source_version),
                ("layer:digest", layer.digest),
                ("layer:diff_id", layer.diff_id),
                ("layer:created_by", layer.created_by),
            ]
        ),
    )


def _refs(packages: list[Package], result: ScanResult) -> dict[Package, str]:
    """A unique bom-ref per package: its purl, made unique by path and layer if needed."""
    refs: dict[Package, str] = {}
    taken: set[str] = set()
    for package in packages:
        ref = purl(package, result.os)
        if ref in taken:
            ref = f"{ref}|{package.path}|{package.layer}"
        taken.add(ref)
        refs[package] = ref
    return refs


def _ratings(findings: list[Finding]) -> list[VulnerabilityRating]:
    source = VulnerabilitySource(name="OSV", url=XsUri(OSV_URL + findings[0].id))
    seen: set[str] = set()
    ratings = []
    for finding in findings:
        for score in scores(finding):
            if score.vector in seen:
                continue
            seen.add(score.vector)
            ratings.append(
                VulnerabilityRating(
                    source=source,
                    score=Decimal(str(score.score)) if score.score is not None else None,
                    severity=_cvss_severity(score.score) if score.score is not None else None,
                    method=_method(score),
                    vector=score.vector,
                )
            )
    if not ratings:
        worst = min(findings, key=lambda f: list(_LEVELS).index(level(f)))
        ratings.append(
            VulnerabilityRating(
                source=source,
                severity=_LEVELS[level(worst)],
                method=VulnerabilityScoreSource.OTHER,
            )
        )
    return ratings


def _vulnerability(findings: list[Finding], refs: dict[Package, str]) -> Vulnerability:
    first = findings[0]
    fixes = [
        f"{f.package.name} {f.package.version}: upgrade to {f.fixed_version}"
        if f.fixed_version
        else f"{f.package.name} {f.package.version}: no fix known"
        for f in findings
    ]
    return Vulnerability(
        bom_ref=f"vulnerability:{first.id}",
        id=first.id,
        source=VulnerabilitySource(name="OSV", url=XsUri(OSV_URL + first.id)),
        references=[
            VulnerabilityReference(
                id=alias, source=VulnerabilitySource(name="OSV", url=XsUri(OSV_URL + alias))
            )
            for alias in first.aliases
        ],
        ratings=_ratings(findings),
        cwes=cwe_numbers(first),
        description=first.summary or None,
        recommendation="; ".join(dict.fromkeys(fixes)),
        affects=[
            BomTarget(
                ref=refs[f.package],
                versions=[
                    BomTargetVersionRange(
                        version=f.package.version, status=ImpactAnalysisAffectedStatus.AFFECTED
                    )
                ],
            )
            for f in findings
        ],
    )


def document(result: ScanResult, context: ReportContext, *, vulnerabilities: bool) -> str:
    """The CycloneDX JSON text: the SBOM, plus the vulnerabilities when asked."""
    packages = sorted_packages(
        [*result.packages, *(f.package for f in result.findings)]
        if vulnerabilities
        else result.packages
    )
    refs = _refs(packages, result)
    image = Component(
        type=ComponentType.CONTAINER,
        name=context.repository,
        version=context.digest,
        bom_ref=f"image:{context.repository}@{context.digest}",
        purl=PackageURL.from_string(image_purl(context)),
        properties=_properties(
            [
                ("tag", context.tag or ""),
                ("media_type", context.mime_type),
                ("platform", context.platform),
            ]
        ),
    )
    kind = "report" if vulnerabilities else "sbom"
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"dockyard:{kind}:{context.repository}@{context.digest}:{context.generated_at.isoformat()}",
    )
    bom = Bom(serial_number=serial)
    bom.metadata.timestamp = context.generated_at
    bom.metadata.component = image
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=SCANNER_NAME, version=SCANNER_VERSION)
    )
    if vulnerabilities:
        bom.metadata.properties.update(
            Property(name=_PREFIX + name, value=value or "")
            for name, value in context.database_properties().items()
        )
    components = [_component(p, refs[p], result, context) for p in packages]
    bom.components.update(components)
    # The graph is built here in one go: Bom.register_dependency searches the whole
    # graph per call, which made a 3,000-package image take seconds more to render.
    bom.dependencies.update(
        [
            Dependency(
                ref=image.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components]
            ),
            *(Dependency(ref=c.bom_ref) for c in components),
        ]
    )
    if vulnerabilities:
        by_id: dict[str, list[Finding]] = {}
        for finding in sort_findings(result.findings):
            by_id.setdefault(finding.id, []).append(finding)
        for findings in by_id.values():
            bom.vulnerabilities.add(_vulnerability(findings, refs))
    return JsonV1Dot6(bom).output_as_string(indent=2)
