"""Scan results in the formats other tools read: Harbor's scanner report, Trivy's JSON,
SARIF, CycloneDX, and SBOMs (CycloneDX, SPDX).

Pure functions: a :class:`~dockyard.scanning.model.ScanResult` and a
:class:`ReportContext` (what the registry adds: repository, tag, media type, when, the
database version, the layers) in, ``(bytes, media type)`` out. The API serves them for
``?format=`` on a scan result and on ``…/sbom``; each module's docstring says how its
format is filled and where it deviates from the published description, and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from dockyard.scanning.formats import harbor, sarif, spdx, trivy
from dockyard.scanning.formats.common import (
    CYCLONEDX_MEDIA_TYPE,
    LayerInfo,
    ReportContext,
    UnknownFormat,
)
from dockyard.scanning.model import ScanResult
from dockyard.scanning.report import render_json

__all__ = [
    "REPORT_FORMATS",
    "SBOM_FORMATS",
    "LayerInfo",
    "ReportContext",
    "UnknownFormat",
    "combinable",
    "render_index_report",
    "render_report",
    "render_sbom",
]

REPORT_FORMATS: Final[dict[str, str]] = {
    "dockyard": "application/json",
    "harbor": harbor.MEDIA_TYPE,
    "trivy": trivy.MEDIA_TYPE,
    "sarif": sarif.MEDIA_TYPE,
    "cyclonedx": CYCLONEDX_MEDIA_TYPE,
}
"""Report format name → the media type it is served with."""

SBOM_FORMATS: Final[dict[str, str]] = {
    "cyclonedx": CYCLONEDX_MEDIA_TYPE,
    "spdx": spdx.MEDIA_TYPE,
}
"""SBOM format name → the media type it is served with."""


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _cyclonedx(result: ScanResult, context: ReportContext, *, vulnerabilities: bool) -> bytes:
    # Imported when a CycloneDX document is asked for: cyclonedx-python-lib is the
    # heaviest library of the formats, and most processes never render one.
    from dockyard.scanning.formats import cyclonedx

    return (cyclonedx.document(result, context, vulnerabilities=vulnerabilities) + "\n").encode()


_REPORTS: Final[dict[str, Callable[[ScanResult, ReportContext], bytes]]] = {
    # exactly what ``dockyard scan --format json`` prints
    "dockyard": lambda result, _context: render_json(result).encode(),
    "harbor": lambda result, context: _json(harbor.report(result, context)),
    "trivy": lambda result, context: _json(trivy.report(result, context)),
    "sarif": lambda result, context: _json(sarif.report(result, context)),
    "cyclonedx": lambda result, context: _cyclonedx(result, context, vulnerabilities=True),
}

_SBOMS: Final[dict[str, Callable[[ScanResult, ReportContext], bytes]]] = {
    "cyclonedx": lambda result, context: _cyclonedx(result, context, vulnerabilities=False),
    "spdx": lambda result, context: _json(spdx.document(result, context)),
}


def render_report(result: ScanResult, fmt: str, context: ReportContext) -> tuple[bytes, str]:
    """The scan *result* as report format *fmt*: ``(body, media type)``.

    Raises :class:`UnknownFormat` (a :class:`ValueError` listing the names) for a name
    not in :data:`REPORT_FORMATS`.
    """
    render = _REPORTS.get(fmt)
    if render is None:
        raise UnknownFormat("report", fmt, REPORT_FORMATS)
    return render(result, context), REPORT_FORMATS[fmt]


def render_sbom(result: ScanResult, fmt: str, context: ReportContext) -> tuple[bytes, str]:
    """The packages of *result* as SBOM format *fmt*: ``(body, media type)``.

    Raises :class:`UnknownFormat` for a name not in :data:`SBOM_FORMATS`.
    """
    render = _SBOMS.get(fmt)
    if render is None:
        raise UnknownFormat("SBOM", fmt, SBOM_FORMATS)
    return render(result, context), SBOM_FORMATS[fmt]


def _combined_trivy(
    parts: list[tuple[ScanResult, ReportContext]], context: ReportContext
) -> dict[str, Any]:
    """One Trivy document for an index: each platform's results, their targets marked
    with the platform (Trivy names one target per result, so two platforms' ``debian
    12`` would otherwise read as one)."""
    results: list[Any] = []
    platforms = []
    for result, part in parts:
        doc = trivy.report(result, part)
        platforms.append({"Platform": part.platform, "ManifestDigest": part.digest})
        for entry in doc["Results"]:
            entry["Target"] = f"{entry['Target']} ({part.platform})"
            results.append(entry)
    return {
        "SchemaVersion": trivy.SCHEMA_VERSION,
        "CreatedAt": context.generated_at.isoformat(),
        "ArtifactName": context.artifact_name,
        "ArtifactType": "container_image",
        "Metadata": {
            "RepoTags": [f"{context.repository}:{context.tag}"] if context.tag else [],
            "RepoDigests": [f"{context.repository}@{context.digest}"],
            "Dockyard": {
                "ManifestDigest": context.digest,
                "MediaType": context.mime_type,
                "Platforms": platforms,
                "VulnerabilityDatabaseVersion": context.database_version,
                "VulnerabilityDatabase": context.database_properties()["vulnerability_database"],
            },
        },
        "Results": results,
    }


def _combined_sarif(
    parts: list[tuple[ScanResult, ReportContext]], _context: ReportContext
) -> dict[str, Any]:
    """SARIF has one run per analysis: an index is one run per platform (each run's
    properties name its platform and manifest)."""
    runs: list[Any] = []
    for result, part in parts:
        runs.extend(sarif.report(result, part)["runs"])
    return {"$schema": sarif.SCHEMA_URI, "version": "2.1.0", "runs": runs}


_COMBINED: Final[
    dict[str, Callable[[list[tuple[ScanResult, ReportContext]], ReportContext], dict[str, Any]]]
] = {"trivy": _combined_trivy, "sarif": _combined_sarif}
"""The report formats that can hold several images' results in one document. Harbor's
report names one artifact, and a CycloneDX document describes one component, so an
index is served in those per platform."""


def combinable(fmt: str) -> bool:
    """Whether report format *fmt* can combine an index's platforms in one document."""
    return fmt in _COMBINED


def render_index_report(
    parts: list[tuple[ScanResult, ReportContext]], fmt: str, context: ReportContext
) -> tuple[bytes, str]:
    """The platforms of an index (each result with its own context) as one report in
    format *fmt*, under the index's *context*: ``(body, media type)``.

    Raises :class:`UnknownFormat` for a format that cannot combine (see
    :func:`combinable`)."""
    combine = _COMBINED.get(fmt)
    if combine is None:
        raise UnknownFormat("combined report", fmt, _COMBINED)
    return _json(combine(parts, context)), REPORT_FORMATS[fmt]
