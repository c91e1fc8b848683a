"""The records the scanning modules pass to each other."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("High", "Medium", "Low", "Unknown")
"""Every finding's level is exactly one of these, most severe first."""


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    family: str
    """``ID`` from /etc/os-release: ``debian``, ``ubuntu``, ``alpine``, ``rhel``, …"""
    version: str
    """``VERSION_ID`` from /etc/os-release: ``12``, ``3.18.4``, ``9.3``, …"""


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    ecosystem: str
    """The OSV ecosystem the package is matched in: ``Debian:12``, ``Alpine:v3.18``,
    ``PyPI``, ``npm``, ``Rocky Linux:9``, …"""
    source_name: str = ""
    """The source package it was built from (Debian ``Source:``, Alpine origin, source RPM
    name); empty where the ecosystem has none."""
    source_version: str = ""
    layer: str = ""
    """Digest of the layer that introduced the package: for the dpkg and apk databases
    (one file every layer rewrites) the first layer whose database lists it at this
    version; elsewhere the layer of its record file as the image finally holds it."""
    path: str = ""
    """Where in the image the package's record was found."""


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    package: Package
    severity: str
    """One of :data:`SEVERITIES`."""
    fixed_version: str = ""
    aliases: tuple[str, ...] = ()
    summary: str = ""
    references: tuple[str, ...] = ()
    """URLs from the record's ``references``, in its order: reports link to them."""
    cwe_ids: tuple[str, ...] = ()
    """``CWE-…`` identifiers from the record's ``database_specific.cwe_ids``."""
    cvss: tuple[tuple[str, str], ...] = ()
    """``(OSV type, vector)`` pairs (``CVSS_V2``, ``CVSS_V3``, ``CVSS_V4``) for this package:
    the affected entry's when it has any, else the record's, as the level is decided.
    Reports carry the vectors and their scores."""


@dataclass(slots=True)
class ScanResult:
    name: str
    digest: str
    os: OperatingSystem | None
    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
