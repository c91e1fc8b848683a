"""A real Debian image: ``debootstrap --variant=minbase`` (from the mirror and suite of the
machine's apt configuration, cached per suite), committed by buildah to an OCI layout,
then scanned; every package ``dpkg-query`` lists must be found with its version."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard.scanning.model import OperatingSystem
from dockyard.scanning.scan import inventory
from tests.scanning.images import apt_debian_source, buildah_oci_image, debootstrap_tarball


@pytest.mark.slow
def test_debootstrap_image_packages_are_all_detected(tmp_path: Path) -> None:
    try:
        tarball, _ = debootstrap_tarball()
        buildah_oci_image(tarball, tmp_path / "layout")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(
        ["tar", "-C", str(root), "-xf", str(tarball), "./var/lib/dpkg", "./etc/debian_version"],
        check=True,
        timeout=120,
    )
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package} ${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    expected = {tuple(line.split(" ", 1)) for line in listed.splitlines() if line}
    assert len(expected) > 50

    result = inventory(f"oci:{tmp_path / 'layout'}:latest")

    assert result.os is not None
    assert result.os.family == "debian"
    major = (root / "etc" / "debian_version").read_text().split(".")[0].strip()
    if major.isdigit():  # a stable release; testing says trixie/sid
        assert result.os == OperatingSystem("debian", major)
    found = {(p.name, p.version) for p in result.packages}
    assert found == expected
    assert {p.ecosystem for p in result.packages} == {f"Debian:{result.os.version}"}
    (layer,) = {p.layer for p in result.packages}
    assert layer.startswith("sha256:")
    libc = [p for p in result.packages if p.name == "libc6"]
    assert [p.source_name for p in libc] == ["glibc"]


def test_apt_sources_are_read_from_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src file:///srv/mirror/debian trixie main\n"
        "deb [arch=amd64] file:///srv/mirror/debian-security trixie-security main\n"
    )
    (tmp_path / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: file:///srv/mirror/debian\nSuites: trixie-updates\n\n"
        "Types: deb\nURIs: file:///srv/mirror/debian\nSuites: trixie trixie-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    source = apt_debian_source(tmp_path)
    assert (source.mirror, source.suite) == ("file:///srv/mirror/debian", "trixie")
    assert source.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"
    (tmp_path / "sources.list.d" / "a.sources").unlink()
    with pytest.raises(RuntimeError, match="no Debian archive found"):
        apt_debian_source(tmp_path)
