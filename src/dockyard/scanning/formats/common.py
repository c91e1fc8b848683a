"""What every report format shares: the context a stored scan adds to the engine's
result, levels, CVSS scores, links, package URLs and layers.

The formats are pure functions of a :class:`~dockyard.scanning.model.ScanResult` and a
:class:`ReportContext`: no HTTP, no database, so the API, the console and tests render
the same bytes from the same inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from packageurl import PackageURL

from dockyard import __version__
from dockyard.scanning.cvss import cvss3_base_score, cvss4_base_score
from dockyard.scanning.model import SEVERITIES, Finding, OperatingSystem, Package

SCANNER_NAME: Final = "Dockyard"
SCANNER_VENDOR: Final = "Dockyard"
SCANNER_VERSION: Final = __version__
CYCLONEDX_MEDIA_TYPE: Final = "application/vnd.cyclonedx+json; version=1.6"
"""Here rather than in :mod:`.cyclonedx`, so that the list of formats does not load
``cyclonedx-python-lib`` (a few MB of every process) before a document is asked for."""
OSV_URL: Final = "https://osv.dev/vulnerability/"
"""Every finding comes from an OSV record; its public page is the first link."""


class UnknownFormat(ValueError):
    """A format name that is not one of the known ones; the message lists those."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown {kind} format {name!r} (use one of: {', '.join(self.known)})")


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer of the scanned image, as the manifest and config describe it."""

    digest: str
    """Compressed layer digest (what :attr:`Package.layer` names)."""
    diff_id: str
    """From the config's ``rootfs.diff_ids`` (``""`` if unknown)."""
    size: int
    """Compressed size in bytes."""
    created_by: str
    """The image history step that made it (``""`` if unknown)."""
    media_type: str = ""
    """The layer blob's media type from the manifest (``""`` if unknown). The scan
    service stores and reads this same type, so the API hands it to the formats as is."""


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the registry knows about a scan beyond the engine's result."""

    repository: str
    """``namespace/repository``."""
    digest: str
    """The manifest digest."""
    tag: str | None
    mime_type: str
    """The manifest media type."""
    generated_at: datetime
    """Aware, UTC: when the scan finished."""
    database_version: str
    """``""`` when no vulnerability data was imported."""
    layers: tuple[LayerInfo, ...] = ()
    platform: str = ""
    """``linux/amd64`` etc., for a child of an index."""

    @property
    def artifact_name(self) -> str:
        """``repo:tag`` when tagged, else ``repo@digest``: how image tools name it."""
        return f"{self.repository}:{self.tag}" if self.tag else f"{self.repository}@{self.digest}"

    def layer(self, digest: str) -> LayerInfo:
        """The layer with compressed digest *digest*; only the digest when not listed."""
        for layer in self.layers:
            if layer.digest == digest:
                return layer
        return LayerInfo(digest=digest, diff_id="", size=0, created_by="")

    def database_properties(self) -> dict[str, str]:
        """Where a format has room for it: which vulnerability data the scan used, and
        plainly that there was none (an empty report is then no clean bill of health)."""
        return {
            "vulnerability_database_version": self.database_version,
            "vulnerability_database": "loaded" if self.database_version else "empty",
        }


def utc_timestamp(moment: datetime, *, fraction: bool = False) -> str:
    """``2024-05-01T12:00:00Z`` (RFC 3339 in UTC, the form SPDX requires); with
    *fraction*, milliseconds too."""
    if moment.tzinfo is None:
        raise ValueError("generated_at must be an aware datetime")
    moment = moment.astimezone(UTC)
    if fraction:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- levels and scores ---------------------------------------------------------------

_RANK: Final = {level: rank for rank, level in enumerate(SEVERITIES)}


def level(finding: Finding) -> str:
    """The finding's level, ``Unknown`` for anything outside :data:`SEVERITIES`."""
    return finding.severity if finding.severity in _RANK else "Unknown"


def highest_level(findings: Iterable[Finding]) -> str | None:
    """The most severe level among *findings*, ``None`` when there are none."""
    levels = [level(f) for f in findings]
    return min(levels, key=_RANK.__getitem__) if levels else None


@dataclass(frozen=True, slots=True)
class Score:
    version: str
    """``2``, ``3`` or ``4``."""
    vector: str
    score: float | None
    """``None`` for CVSS v2, which the engine does not score."""


_SCORERS: Final = {"CVSS_V3": ("3", cvss3_base_score), "CVSS_V4": ("4", cvss4_base_score)}


def scores(finding: Finding) -> list[Score]:
    """Every vector of the finding with its base score; malformed vectors left out."""
    out = []
    for kind, vector in finding.cvss:
        if kind == "CVSS_V2":
            out.append(Score("2", vector, None))
            continue
        version, scorer = _SCORERS.get(kind, ("", None))
        if scorer is None:
            continue
        try:
            out.append(Score(version, vector, scorer(vector)))
        except ValueError:
            continue
    return out


def best(finding: Finding, version: str) -> Score | None:
    """The highest-scoring vector of one CVSS version (the one the level rule uses)."""
    chosen = [s for s in scores(finding) if s.version == version]
    return max(chosen, key=lambda s: s.score or 0.0) if chosen else None


def deciding_score(finding: Finding) -> float | None:
    """The score the level was decided from: the best v4.0, else the best v3."""
    for version in ("4", "3"):
        found = best(finding, version)
        if found is not None:
            return found.score
    return None


def cvss_by_source(finding: Finding) -> dict[str, dict[str, str | float]]:
    """Trivy's ``CVSS`` shape, which Harbor's console also reads from a report's
    ``vendor_attributes``: ``{"osv": {"V3Vector": …, "V3Score": …, "V40Vector": …}}``,
    the best vector of each version; ``{}`` when the record has none."""
    entry: dict[str, str | float] = {}
    for version, prefix in (("2", "V2"), ("3", "V3"), ("4", "V40")):
        found = best(finding, version)
        if found is None:
            continue
        entry[f"{prefix}Vector"] = found.vector
        if found.score is not None:
            entry[f"{prefix}Score"] = found.score
    return {"osv": entry} if entry else {}


_NOMINAL: Final = {"High": 8.0, "Medium": 5.5, "Low": 2.0, "Unknown": 0.0}
"""A number inside each level's CVSS band, for formats that need a score when the
record gave the level in words only."""


def numeric_severity(finding: Finding) -> float:
    """The deciding CVSS score, else a number within the finding's level band."""
    score = deciding_score(finding)
    return score if score is not None else _NOMINAL[level(finding)]


def links(finding: Finding) -> list[str]:
    """The OSV page of the record, then its references, without duplicates."""
    return list(dict.fromkeys([OSV_URL + finding.id, *finding.references]))


def cwe_numbers(finding: Finding) -> list[int]:
    """``CWE-79`` → 79, for formats that take numbers; anything else skipped."""
    numbers = []
    for cwe in finding.cwe_ids:
        match = re.fullmatch(r"CWE-(\d+)", cwe.strip(), re.IGNORECASE)
        if match:
            numbers.append(int(match.group(1)))
    return list(dict.fromkeys(numbers))


# --- ecosystems and package URLs -----------------------------------------------------

LANGUAGE_ECOSYSTEMS: Final = {
    # OSV ecosystem -> (purl type, Trivy package type, Trivy aggregate target or "")
    "pypi": ("pypi", "python-pkg", "Python"),
    "npm": ("npm", "node-pkg", "Node.js"),
    "maven": ("maven", "jar", "Java"),
    "rubygems": ("gem", "gemspec", "Ruby"),
    "go": ("golang", "gobinary", ""),
    "crates.io": ("cargo", "rustbinary", ""),
    "nuget": ("nuget", "nuget", ""),
    "packagist": ("composer", "composer", ""),
    "hex": ("hex", "hex", ""),
    "pub": ("pub", "pub", ""),
}
"""Trivy puts the packages of the aggregated types (installed Python, Node.js, Ruby and
Java packages) in one result per language; the others in one result per file."""

OS_ECOSYSTEMS: Final = {
    # OSV ecosystem base -> (purl type, purl namespace, Trivy OS family)
    "debian": ("deb", "debian", "debian"),
    "ubuntu": ("deb", "ubuntu", "ubuntu"),
    "alpine": ("apk", "alpine", "alpine"),
    "wolfi": ("apk", "wolfi", "wolfi"),
    "chainguard": ("apk", "chainguard", "chainguard"),
    "rocky linux": ("rpm", "rocky", "rocky"),
    "almalinux": ("rpm", "almalinux", "alma"),
    "red hat": ("rpm", "redhat", "redhat"),
    "fedora": ("rpm", "fedora", "fedora"),
    "centos": ("rpm", "centos", "centos"),
    "opensuse": ("rpm", "opensuse", "opensuse"),
    "suse": ("rpm", "suse", "suse"),
    "oracle linux": ("rpm", "oracle", "oracle"),
    "amazon linux": ("rpm", "amazon", "amazon"),
    "azure linux": ("rpm", "azurelinux", "azurelinux"),
    "photon os": ("rpm", "photon", "photon"),
    "mageia": ("rpm", "mageia", "mageia"),
    "openeuler": ("rpm", "openeuler", "openeuler"),
}

_BY_PATH: Final = (("/var/lib/dpkg/", "deb"), ("/lib/apk/", "apk"), ("rpm", "rpm"))
"""The package database a record was read from, for OS packages of an unknown OS."""


def ecosystem_base(package: Package) -> str:
    return package.ecosystem.partition(":")[0].strip().lower()


def is_language(package: Package) -> bool:
    return ecosystem_base(package) in LANGUAGE_ECOSYSTEMS


def _os_purl_parts(package: Package, os: OperatingSystem | None) -> tuple[str, str, str]:
    """(purl type, namespace, distro qualifier) of an OS package."""
    base = ecosystem_base(package)
    if base in OS_ECOSYSTEMS:
        kind, namespace, _ = OS_ECOSYSTEMS[base]
    else:
        kind = next((k for marker, k in _BY_PATH if marker in package.path), "generic")
        namespace = os.family if os else ""
    if os is None or not os.version:
        release = package.ecosystem.partition(":")[2].strip()
        return kind, namespace, f"{namespace}-{release}" if release and namespace else ""
    if kind == "apk":
        return kind, namespace, os.version  # apk purls name the bare release
    return kind, namespace, f"{os.family}-{os.version}"


def purl(package: Package, os: OperatingSystem | None) -> str:
    """The package URL of *package* (purl-spec types per ecosystem)."""
    base = ecosystem_base(package)
    name, version = package.name, package.version
    namespace: str | None = None
    qualifiers: dict[str, str] = {}
    if base in LANGUAGE_ECOSYSTEMS:
        kind = LANGUAGE_ECOSYSTEMS[base][0]
        if kind == "pypi":
            name = re.sub(r"[-_.]+", "-", name).lower()
        elif kind in ("npm", "golang", "composer") and "/" in name:
            namespace, _, name = name.rpartition("/")
        elif kind == "maven" and ":" in name:
            namespace, _, name = name.partition(":")
    elif not base and not package.path:
        kind = "generic"
    else:
        kind, namespace_text, distro = _os_purl_parts(package, os)
        namespace = namespace_text or None
        if distro:
            qualifiers["distro"] = distro
        if kind == "rpm" and ":" in version:
            epoch, _, version = version.partition(":")
            qualifiers["epoch"] = epoch
        if package.source_name and package.source_name != package.name:
            upstream = package.source_name
            if package.source_version:
                upstream += f"@{package.source_version}"
            qualifiers["upstream"] = upstream
    return PackageURL(
        type=kind,
        namespace=namespace,
        name=name,
        version=version or None,
        qualifiers=qualifiers or None,
    ).to_string()


def image_purl(context: ReportContext) -> str:
    """``pkg:oci/name@digest`` for the image itself, with its tag and platform."""
    qualifiers = {}
    if context.tag:
        qualifiers["tag"] = context.tag
    if context.platform:
        os_name, _, arch = context.platform.partition("/")
        if arch:
            qualifiers["arch"] = arch
        qualifiers["os"] = os_name
    return PackageURL(
        type="oci",
        name=context.repository.rpartition("/")[2],
        version=context.digest,
        qualifiers=qualifiers or None,
    ).to_string()


def package_key(package: Package) -> tuple[str, str, str, str, str]:
    """A stable order for packages (and so for identifiers derived from it)."""
    return (package.ecosystem, package.name, package.version, package.path, package.layer)


def sorted_packages(packages: Iterable[Package]) -> list[Package]:
    return sorted(dict.fromkeys(packages), key=package_key)
