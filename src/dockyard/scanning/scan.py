"""One scan: read an image, find its packages, match them against the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dockyard.scanning.detectors import detect_os, detect_packages, lookup_paths, select
from dockyard.scanning.image import ImageSource, Progress, open_image, read_filesystem
from dockyard.scanning.model import ScanResult

if TYPE_CHECKING:
    from dockyard.scanning.vulndb import VulnDB


def inventory(
    ref: str,
    platform: str = "linux/amd64",
    progress: Progress | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ScanResult:
    """The image's operating system and packages, without findings.

    Raises :class:`dockyard.scanning.image.ScanError` when the image cannot be read.
    """
    with open_image(ref, platform) as image:
        return inventory_of(image, progress, on_warning)


def inventory_of(
    image: ImageSource,
    progress: Progress | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ScanResult:
    """:func:`inventory` of an image already opened (the registry's blob store opens
    its own: :mod:`dockyard.scanning.blobsource`)."""
    warnings: list[str] = []
    warn = on_warning or warnings.append
    view = read_filesystem(image, select, progress, paths=lookup_paths())
    for warning in view.warnings:
        warn(warning)
    os = detect_os(view)
    packages = detect_packages(view, os, warn)
    return ScanResult(name=image.name, digest=image.digest, os=os, packages=packages)


def scan_image(
    ref: str,
    db: VulnDB,
    platform: str = "linux/amd64",
    progress: Progress | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ScanResult:
    """Scan ``ref`` (``oci:PATH[:TAG]`` or ``docker-archive:PATH``) against ``db``."""
    result = inventory(ref, platform, progress, on_warning)
    result.findings = db.match(result.packages)
    return result
