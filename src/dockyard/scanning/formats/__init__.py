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

from dockyard.scanning.formats import cyclonedx, harbor, sarif, spdx, trivy
from dockyard.scanning.formats.common import LayerInfo, ReportContext, UnknownFormat
from dockyard.scanning.model import ScanResult
from dockyard.scanning.report import render_json

__all__ = [
    "REPORT_FORMATS",
    "SBOM_FORMATS",
    "LayerInfo",
    "ReportContext",
    "UnknownFormat",
    "render_report",
    "render_sbom",
]

REPORT_FORMATS: Final[dict[str, str]] = {
    "dockyard": "application/json",
    "harbor": harbor.MEDIA_TYPE,
    "trivy": trivy.MEDIA_TYPE,
    "sarif": sarif.MEDIA_TYPE,
    "cyclonedx": cyclonedx.MEDIA_TYPE,
}
"""Report format name → the media type it is served with."""

SBOM_FORMATS: Final[dict[str, str]] = {
    "cyclonedx": cyclonedx.MEDIA_TYPE,
    "spdx": spdx.MEDIA_TYPE,
}
"""SBOM format name → the media type it is served with."""


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


_REPORTS: Final[dict[str, Callable[[ScanResult, ReportContext], bytes]]] = {
    # exactly what ``dockyard scan --format json`` prints
    "dockyard": lambda result, _context: render_json(result).encode(),
    "harbor": lambda result, context: _json(harbor.report(result, context)),
    "trivy": lambda result, context: _json(trivy.report(result, context)),
    "sarif": lambda result, context: _json(sarif.report(result, context)),
    "cyclonedx": lambda result, context: (
        cyclonedx.document(result, context, vulnerabilities=True) + "\n"
    ).encode(),
}

_SBOMS: Final[dict[str, Callable[[ScanResult, ReportContext], bytes]]] = {
    "cyclonedx": lambda result, context: (
        cyclonedx.document(result, context, vulnerabilities=False) + "\n"
    ).encode(),
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
