"""Package detectors: what each database yields, which layer a package is from, and that
packages removed in a later layer are not reported."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dockyard.scanning.detectors import (
    RpmHeaderError,
    normalize_pypi,
    os_ecosystem,
    parse_apk_installed,
    parse_dpkg_status,
    parse_os_release,
    parse_rpm_header,
    parse_rpmdb_sqlite,
    select,
    srpm_name,
)
from dockyard.scanning.model import OperatingSystem, Package
from dockyard.scanning.scan import inventory
from tests.scanning.images import (
    LayerBuilder,
    apk_entry,
    apk_installed,
    docker_archive,
    dpkg_entry,
    dpkg_status,
    oci_image,
    os_release,
    package_json,
    python_metadata,
    rpm_header,
    rpmdb_sqlite,
)

STATUS = "var/lib/dpkg/status"


def scan(tmp_path: Path, layers: list[bytes]) -> tuple[list[Package], list[str], list[str]]:
    """Packages found, the layer digests, and the warnings."""
    built = oci_image(tmp_path / "layout", layers)
    warnings: list[str] = []
    result = inventory(f"oci:{tmp_path / 'layout'}", on_warning=warnings.append)
    return result.packages, built.layers, warnings


def summary(packages: list[Package]) -> set[tuple[str, str, str, str, str]]:
    return {(p.ecosystem, p.name, p.version, p.source_name, p.source_version) for p in packages}


# -- dpkg ----------------------------------------------------------------------------------


def test_dpkg_status_fields() -> None:
    data = dpkg_status(
        dpkg_entry("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_entry("libbin1", "1.2-3+b1", source="binsrc (1.2-3)"),
        dpkg_entry("tzdata", "1:2024a-0+deb12u1"),
        dpkg_entry("removed", "1.0-1", status="deinstall ok config-files"),
        dpkg_entry("half", "1.0-1", status="install ok half-installed"),
        dpkg_entry("held", "2.0-1", status="hold ok installed"),
        dpkg_entry("nostatus", "1.0-1", status=""),
    ).encode()
    records = {
        (r.name, r.version, r.source_name, r.source_version) for r in parse_dpkg_status(data)
    }
    assert records == {
        ("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
        ("libbin1", "1.2-3+b1", "binsrc", "1.2-3"),
        ("tzdata", "1:2024a-0+deb12u1", "tzdata", "1:2024a-0+deb12u1"),
        ("held", "2.0-1", "held", "2.0-1"),
    }


def test_dpkg_packages_are_attributed_to_the_layer_that_introduced_them(tmp_path: Path) -> None:
    base = (
        LayerBuilder()
        .file("etc/os-release", os_release("debian", "12"))
        .file(STATUS, dpkg_status(dpkg_entry("a", "1.0-1"), dpkg_entry("b", "1.0-1")))
        .tar()
    )
    upgrade = (
        LayerBuilder()
        .file(
            STATUS,
            dpkg_status(dpkg_entry("a", "1.0-1"), dpkg_entry("b", "2.0-1"), dpkg_entry("c", "1")),
        )
        .tar()
    )
    remove = (
        LayerBuilder()
        .file(STATUS, dpkg_status(dpkg_entry("a", "1.0-1"), dpkg_entry("b", "2.0-1")))
        .file("unrelated", "x")
        .tar()
    )
    packages, layers, warnings = scan(tmp_path, [base, upgrade, remove])
    assert {(p.name, p.version, p.layer) for p in packages} == {
        ("a", "1.0-1", layers[0]),
        ("b", "2.0-1", layers[1]),
    }
    assert {p.ecosystem for p in packages} == {"Debian:12"}
    assert {p.path for p in packages} == {"/var/lib/dpkg/status"}
    assert warnings == []


def test_dpkg_reinstalled_package_belongs_to_the_layer_that_put_it_back(tmp_path: Path) -> None:
    one = dpkg_status(dpkg_entry("a", "1"), dpkg_entry("b", "1"))
    layers_in = [
        LayerBuilder().file(STATUS, one).file("etc/os-release", os_release("debian", "12")).tar(),
        LayerBuilder().file(STATUS, dpkg_status(dpkg_entry("a", "1"))).tar(),
        LayerBuilder().file(STATUS, one).tar(),
    ]
    packages, layers, _ = scan(tmp_path, layers_in)
    assert {(p.name, p.layer) for p in packages} == {("a", layers[0]), ("b", layers[2])}


def test_dpkg_status_d_and_whiteouts(tmp_path: Path) -> None:
    distroless = (
        LayerBuilder()
        .file("etc/os-release", os_release("debian", "12"))
        .file("var/lib/dpkg/status.d/base", dpkg_entry("base-files", "12.4", status=""))
        .file("var/lib/dpkg/status.d/base.md5sums", "0123  etc/debian_version\n")
        .file("var/lib/dpkg/status.d/libssl3", dpkg_entry("libssl3", "3.0.11-1", "openssl"))
        .file("var/lib/dpkg/status.d/zlib1g", dpkg_entry("zlib1g", "1:1.2.13", "zlib"))
        .tar()
    )
    later = LayerBuilder().whiteout("var/lib/dpkg/status.d/zlib1g").tar()
    packages, layers, _ = scan(tmp_path, [distroless, later])
    assert summary(packages) == {
        ("Debian:12", "base-files", "12.4", "base-files", "12.4"),
        ("Debian:12", "libssl3", "3.0.11-1", "openssl", "3.0.11-1"),
    }
    assert {p.layer for p in packages} == {layers[0]}
    assert {p.path for p in packages} == {
        "/var/lib/dpkg/status.d/base",
        "/var/lib/dpkg/status.d/libssl3",
    }


def test_whited_out_database_reports_nothing(tmp_path: Path) -> None:
    base = (
        LayerBuilder()
        .file("etc/os-release", os_release("ubuntu", "22.04"))
        .file(STATUS, dpkg_status(dpkg_entry("a", "1")))
        .tar()
    )
    packages, _, _ = scan(tmp_path, [base, LayerBuilder().opaque("var/lib/dpkg").tar()])
    assert packages == []


# -- apk -----------------------------------------------------------------------------------


def test_apk_database(tmp_path: Path) -> None:
    db = "lib/apk/db/installed"
    base = (
        LayerBuilder()
        .file("etc/os-release", os_release("alpine", "3.18.4"))
        .file(
            db,
            apk_installed(
                apk_entry("musl", "1.2.4-r2"), apk_entry("libcrypto3", "3.1.4-r0", "openssl")
            ),
        )
        .tar()
    )
    added = (
        LayerBuilder()
        .file(
            db,
            apk_installed(
                apk_entry("musl", "1.2.4-r2"),
                apk_entry("libcrypto3", "3.1.4-r1", "openssl"),
                apk_entry("busybox", "1.36.1-r5"),
            ),
        )
        .tar()
    )
    packages, layers, _ = scan(tmp_path, [base, added])
    assert {
        (p.ecosystem, p.name, p.version, p.source_name, p.source_version, p.layer) for p in packages
    } == {
        ("Alpine:v3.18", "musl", "1.2.4-r2", "musl", "1.2.4-r2", layers[0]),
        ("Alpine:v3.18", "libcrypto3", "3.1.4-r1", "openssl", "3.1.4-r1", layers[1]),
        ("Alpine:v3.18", "busybox", "1.36.1-r5", "busybox", "1.36.1-r5", layers[1]),
    }


def test_apk_parser_ignores_incomplete_stanzas() -> None:
    data = b"P:ok\nV:1-r0\n\nP:noversion\n\nV:2\n\n\n"
    assert [(r.name, r.version) for r in parse_apk_installed(data)] == [("ok", "1-r0")]


# -- rpm -----------------------------------------------------------------------------------


def test_rpm_header_parser() -> None:
    tags = parse_rpm_header(
        rpm_header("bash", "5.1.8", "6.el9", epoch=2, sourcerpm="bash-5.1.8-6.el9.src.rpm")
    )
    assert tags == {
        1000: "bash",
        1001: "5.1.8",
        1002: "6.el9",
        1003: 2,
        1044: "bash-5.1.8-6.el9.src.rpm",
    }


def _entry(tag: int, kind: int, offset: int, count: int) -> bytes:
    return struct.pack(">iIiI", tag, kind, offset, count)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\0\0\0", "shorter than its intro"),
        (struct.pack(">II", 0, 0), "implausible header sizes"),
        (struct.pack(">II", 0x10000, 0), "implausible header sizes"),
        (struct.pack(">II", 1, 0x10000000), "implausible header sizes"),
        (struct.pack(">II", 2, 10) + _entry(1000, 6, 0, 1), "truncated"),
        (struct.pack(">II", 1, 4) + _entry(1000, 6, 4, 1) + b"abc\0", "outside the data"),
        (struct.pack(">II", 1, 4) + _entry(1000, 6, -1, 1) + b"abc\0", "outside the data"),
        (struct.pack(">II", 1, 4) + _entry(1000, 6, 0, 1) + b"abcd", "unterminated string"),
        (struct.pack(">II", 1, 4) + _entry(1003, 4, 2, 1) + b"\0\0\0\1", "value outside the data"),
        (struct.pack(">II", 1, 4) + _entry(1000, 7, 0, 4) + b"abcd", "unexpected type 7"),
    ],
)
def test_rpm_header_bounds(blob: bytes, message: str) -> None:
    with pytest.raises(RpmHeaderError, match=message):
        parse_rpm_header(blob)


def test_srpm_names() -> None:
    assert srpm_name("glibc-2.34-60.el9.src.rpm") == ("glibc", "2.34-60.el9")
    assert srpm_name("python3-foo-bar-1.0-1.nosrc.rpm") == ("python3-foo-bar", "1.0-1")
    assert srpm_name("(none)") == ("", "")
    assert srpm_name("bad.src.rpm") == ("", "")


def test_rpm_sqlite_database(tmp_path: Path) -> None:
    sqlite = rpmdb_sqlite(
        [
            rpm_header("glibc", "2.34", "60.el9", sourcerpm="glibc-2.34-60.el9.src.rpm"),
            rpm_header("glibc-common", "2.34", "60.el9", sourcerpm="glibc-2.34-60.el9.src.rpm"),
            rpm_header("tzdata", "2023c", "1.el9", epoch=0, sourcerpm="tzdata-2023c-1.el9.src.rpm"),
            rpm_header(
                "perl-libs", "5.32.1", "480.el9", epoch=4, sourcerpm="perl-5.32.1-480.el9.src.rpm"
            ),
            rpm_header("gpg-pubkey", "fd431d51", "4ae0493b"),
            b"\0\0\0\1\0\0\0\4garbage",
        ]
    )
    layer = (
        LayerBuilder()
        .file("etc/os-release", os_release("rocky", "9.3"))
        .file("usr/lib/sysimage/rpm/rpmdb.sqlite", sqlite)
        .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
        .tar()
    )
    packages, layers, warnings = scan(tmp_path, [layer])
    assert summary(packages) == {
        ("Rocky Linux:9", "glibc", "2.34-60.el9", "glibc", "2.34-60.el9"),
        ("Rocky Linux:9", "glibc-common", "2.34-60.el9", "glibc", "2.34-60.el9"),
        ("Rocky Linux:9", "tzdata", "0:2023c-1.el9", "tzdata", "0:2023c-1.el9"),
        ("Rocky Linux:9", "perl-libs", "4:5.32.1-480.el9", "perl", "4:5.32.1-480.el9"),
        ("Rocky Linux:9", "gpg-pubkey", "fd431d51-4ae0493b", "", ""),
    }
    assert {p.layer for p in packages} == {layers[0]}
    assert {p.path for p in packages} == {"/usr/lib/sysimage/rpm/rpmdb.sqlite"}
    assert warnings == ["/usr/lib/sysimage/rpm/rpmdb.sqlite: rpm header 6: header truncated"]


def test_rpm_database_that_is_not_sqlite() -> None:
    records, problems = parse_rpmdb_sqlite(b"not a database" * 100)
    assert records == []
    assert problems == ["the rpm database cannot be read: file is not a database"]


def test_berkeley_db_rpm_database_is_reported(tmp_path: Path) -> None:
    layer = (
        LayerBuilder()
        .file("etc/os-release", os_release("almalinux", "8.9"))
        .file("var/lib/rpm/Packages", b"\0" * 4096)
        .tar()
    )
    packages, _, warnings = scan(tmp_path, [layer])
    assert packages == []
    assert warnings == [
        "/var/lib/rpm/Packages: Berkeley DB and ndb rpm databases are not read; packages missed"
    ]


# -- language packages -----------------------------------------------------------------------


def test_python_and_npm_packages(tmp_path: Path) -> None:
    site = "usr/lib/python3/dist-packages"
    app = "srv/app/node_modules"
    layer = (
        LayerBuilder()
        .file(f"{site}/Foo_Bar.Baz-1.0.dist-info/METADATA", python_metadata("Foo_Bar.Baz", "1.0"))
        .file(f"{site}/requests-2.0.0.dist-info/METADATA", python_metadata("requests", "2.0.0"))
        .file(f"{site}/old.egg-info/PKG-INFO", python_metadata("Old-Style", "0.9"))
        .file(f"{site}/single-1.2.egg-info", python_metadata("single", "1.2"))
        .file(f"{site}/broken.dist-info/METADATA", "Metadata-Version: 2.1\nName: broken\n")
        .file(f"{site}/notmeta/METADATA", python_metadata("nope", "1"))
        .file(f"{app}/lodash/package.json", package_json("lodash", "4.17.20"))
        .file(f"{app}/@babel/core/package.json", package_json("@babel/core", "7.0.0"))
        .file(f"{app}/a/node_modules/b/package.json", package_json("b", "2.0.0"))
        .file(f"{app}/lodash/fp/package.json", package_json("lodash-fp", "9"))
        .file(f"{app}/noversion/package.json", package_json("noversion", None))
        .file(f"{app}/bad/package.json", "{not json")
        .file("srv/app/package.json", package_json("the-app", "1.0.0"))
        .tar()
    )
    removal = (
        LayerBuilder()
        .whiteout(f"{site}/requests-2.0.0.dist-info")
        .opaque(f"{app}/a/node_modules")
        .tar()
    )
    packages, layers, warnings = scan(tmp_path, [layer, removal])
    assert {(p.ecosystem, p.name, p.version, p.path) for p in packages} == {
        ("PyPI", "foo-bar-baz", "1.0", f"/{site}/Foo_Bar.Baz-1.0.dist-info/METADATA"),
        ("PyPI", "old-style", "0.9", f"/{site}/old.egg-info/PKG-INFO"),
        ("PyPI", "single", "1.2", f"/{site}/single-1.2.egg-info"),
        ("npm", "lodash", "4.17.20", f"/{app}/lodash/package.json"),
        ("npm", "@babel/core", "7.0.0", f"/{app}/@babel/core/package.json"),
    }
    assert {p.layer for p in packages} == {layers[0]}
    assert warnings == []


def test_package_names() -> None:
    assert normalize_pypi("Foo__Bar-.baz") == "foo-bar-baz"
    assert select("x/node_modules/a/package.json") is not None
    assert select("x/node_modules/@s/a/package.json") is not None
    assert select("x/node_modules/a/lib/package.json") is None
    assert select("x/a.dist-info/METADATA") is not None
    assert select("x/a/METADATA") is None
    assert select("usr/lib/apk/db/installed") is not None  # /lib may be a link to usr/lib
    assert select("usr/bin/bash") is None


# -- operating system ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "version", "ecosystem"),
    [
        ("debian", "12", "Debian:12"),
        ("debian", "", "Debian"),
        ("ubuntu", "22.04", "Ubuntu:22.04"),
        ("alpine", "3.18.4", "Alpine:v3.18"),
        ("alpine", "3.19_alpha20230901", "Alpine:v3.19"),
        ("rocky", "9.3", "Rocky Linux:9"),
        ("almalinux", "9", "AlmaLinux:9"),
        ("rhel", "9.3", "Red Hat"),
        ("wolfi", "20230201", "Wolfi"),
        ("gentoo", "2.14", ""),
    ],
)
def test_os_ecosystems(family: str, version: str, ecosystem: str) -> None:
    assert os_ecosystem(OperatingSystem(family, version)) == ecosystem


def test_os_release_parsing() -> None:
    data = b'# comment\nNAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nX=\'a b\'\nBROKEN="x\n'
    assert parse_os_release(data) == {
        "NAME": "Debian GNU/Linux",
        "ID": "debian",
        "VERSION_ID": "12",
        "X": "a b",
        "BROKEN": "x",
    }


def test_os_release_link_and_fallback(tmp_path: Path) -> None:
    linked = (
        LayerBuilder()
        .file("usr/lib/os-release", os_release("ubuntu", "22.04"))
        .symlink("etc/os-release", "../usr/lib/os-release")
        .tar()
    )
    oci_image(tmp_path / "a", [linked])
    assert inventory(f"oci:{tmp_path / 'a'}").os == OperatingSystem("ubuntu", "22.04")
    only_usr = LayerBuilder().file("usr/lib/os-release", os_release("alpine", "3.19.1")).tar()
    docker_archive(tmp_path / "b.tar", [only_usr])
    assert inventory(f"docker-archive:{tmp_path / 'b.tar'}").os == OperatingSystem(
        "alpine", "3.19.1"
    )
    oci_image(tmp_path / "c", [LayerBuilder().file("bin/x", "").tar()])
    assert inventory(f"oci:{tmp_path / 'c'}").os is None


def test_os_packages_without_a_known_ecosystem_are_listed_with_a_warning(tmp_path: Path) -> None:
    layer = (
        LayerBuilder()
        .file("etc/os-release", os_release("linuxmint", "21"))
        .file(STATUS, dpkg_status(dpkg_entry("a", "1")))
        .tar()
    )
    packages, _, warnings = scan(tmp_path, [layer])
    assert summary(packages) == {("", "a", "1", "a", "1")}
    assert warnings == [
        "no vulnerability data ecosystem is known for linuxmint 21: OS packages not matched"
    ]
