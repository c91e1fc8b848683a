"""SPDX 2.3 JSON SBOM: the image as the described package, containing every package
the engine found.

Each package has its purl as a ``PACKAGE-MANAGER`` external reference; licences are
``NOASSERTION`` since the engine does not read them; nothing is downloaded from a known
location (``downloadLocation: NOASSERTION``) and no files are analysed. SPDX 2.3 has no
free-form properties, so the layer that added a package (digest, diff ID, history step)
and the path of its record are annotations by the tool, as Trivy writes them. The
document's namespace is derived from the repository, digest and scan time, so the same
scan renders the same bytes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from dockyard.scanning.formats.common import (
    SCANNER_NAME,
    SCANNER_VERSION,
    ReportContext,
    image_purl,
    purl,
    sorted_packages,
    utc_timestamp,
)
from dockyard.scanning.model import Package, ScanResult

MEDIA_TYPE = "application/spdx+json"
NOASSERTION = "NOASSERTION"
TOOL = f"Tool: {SCANNER_NAME.lower()}-{SCANNER_VERSION}"


def _spdx_id(prefix: str, text: str, index: int) -> str:
    """``SPDXRef-<prefix>-<index>-<text made of the allowed characters>``."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:60]
    return f"SPDXRef-{prefix}-{index}" + (f"-{cleaned}" if cleaned else "")


def _annotations(package: Package, context: ReportContext, created: str) -> list[dict[str, str]]:
    layer = context.layer(package.layer)
    notes = [
        ("LayerDigest", layer.digest),
        ("LayerDiffID", layer.diff_id),
        ("LayerCreatedBy", layer.created_by),
        ("PkgPath", package.path),
        ("Ecosystem", package.ecosystem),
    ]
    return [
        {
            "annotationDate": created,
            "annotationType": "OTHER",
            "annotator": TOOL,
            "comment": f"{key}: {value}",
        }
        for key, value in notes
        if value
    ]


def _package(
    package: Package, spdx_id: str, result: ScanResult, context: ReportContext, created: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(package, result.os),
            }
        ],
    }
    if package.source_name:
        source = f"{package.source_name} {package.source_version}".strip()
        entry["sourceInfo"] = f"built package from: {source}"
    annotations = _annotations(package, context, created)
    if annotations:
        entry["annotations"] = annotations
    return entry


def document(result: ScanResult, context: ReportContext) -> dict[str, Any]:
    created = utc_timestamp(context.generated_at)
    name = f"{context.repository}@{context.digest}"
    namespace_id = uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:spdx:{name}:{created}")
    image_id = "SPDXRef-Image"
    packages = sorted_packages(result.packages)
    ids = [_spdx_id("Package", p.name, i) for i, p in enumerate(packages, start=1)]
    image: dict[str, Any] = {
        "SPDXID": image_id,
        "name": context.repository,
        "versionInfo": context.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": image_purl(context),
            }
        ],
    }
    if result.os is not None:
        image["comment"] = f"Operating system: {result.os.family} {result.os.version}".strip()
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": context.artifact_name,
        "documentNamespace": (
            f"https://spdx.org/spdxdocs/dockyard/{context.repository}-{namespace_id}"
        ),
        "creationInfo": {"created": created, "creators": [TOOL]},
        "packages": [
            image,
            *(
                _package(p, spdx_id, result, context, created)
                for p, spdx_id in zip(packages, ids, strict=True)
            ),
        ],
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": image_id,
            },
            *(
                {
                    "spdxElementId": image_id,
                    "relationshipType": "CONTAINS",
                    "relatedSpdxElement": spdx_id,
                }
                for spdx_id in ids
            ),
        ],
    }
