"""``dockyard scan`` and ``dockyard vulndb`` end to end: an image built in Python, OSV
records written by the test, exact findings, exit codes and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dockyard.cli.main import main
from tests.scanning.images import (
    Built,
    LayerBuilder,
    docker_archive,
    dpkg_entry,
    dpkg_status,
    oci_image,
    os_release,
    package_json,
    python_metadata,
)

STATUS = "var/lib/dpkg/status"
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
LOW = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"  # 3.1
DOCKYARD = Path(sys.executable).with_name("dockyard")

BASE_PACKAGES = [
    dpkg_entry("epochpkg", "1:1.0-1"),
    dpkg_entry("libbin1", "1.2-3+b1", source="binsrc (1.2-3)"),
    dpkg_entry("bin-utils", "1.2-3+b1", source="binsrc (1.2-3)"),
    dpkg_entry("openssl", "3.0.11-1~deb12u2"),
    dpkg_entry("lastpkg", "1.5-1"),
    dpkg_entry("newpkg", "3.0-1"),
]


def osv(
    record_id: str, ecosystem: str, name: str, events: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    range_type = "SEMVER" if ecosystem == "npm" else "ECOSYSTEM"
    record = {
        "schema_version": "1.6.0",
        "id": record_id,
        "modified": "2024-03-01T12:00:00Z",
        "summary": f"{record_id} summary",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": range_type, "events": events}],
            }
        ],
    }
    record.update(extra)
    return record


RECORDS = [
    # an epoch makes the installed 1:1.0-1 newer than 2.0-1: not affected
    osv("DSA-EPOCH-1", "Debian:12", "epochpkg", [{"introduced": "0"}, {"fixed": "2.0-1"}]),
    osv(
        "DSA-EPOCH-2",
        "Debian:12",
        "epochpkg",
        [{"introduced": "0"}, {"fixed": "1:1.1-1"}],
        severity=[{"type": "CVSS_V3", "score": CRITICAL}],
        aliases=["CVE-2024-0001"],
    ),
    # the record names the source; the binNMU binaries (+b1) are reported
    osv(
        "DSA-BINNMU",
        "Debian:12",
        "binsrc",
        [{"introduced": "0"}, {"last_affected": "1.2-3"}],
        database_specific={"severity": "MODERATE"},
    ),
    # another release: never matches a Debian 12 image
    osv(
        "DSA-OTHER-RELEASE",
        "Debian:11",
        "openssl",
        [{"introduced": "0"}, {"fixed": "99"}],
        database_specific={"severity": "HIGH"},
    ),
    # removed in a later layer
    osv("DSA-OLD", "Debian:12", "oldpkg", [{"introduced": "0"}, {"fixed": "2.0-1"}]),
    osv("DSA-LAST", "Debian:12", "lastpkg", [{"introduced": "0"}, {"last_affected": "1.5-1"}]),
    osv(
        "DSA-LAST-OLDER", "Debian:12", "lastpkg", [{"introduced": "0"}, {"last_affected": "1.4-1"}]
    ),
    # the fix is older than what is installed
    osv("DSA-NEW", "Debian:12", "newpkg", [{"introduced": "0"}, {"fixed": "2.0-1"}]),
    osv(
        "GHSA-py",
        "PyPI",
        "Requests",
        [{"introduced": "0"}, {"fixed": "2.31.0"}],
        severity=[{"type": "CVSS_V3", "score": LOW}],
        aliases=["CVE-2023-32681"],
    ),
    osv(
        "GHSA-npm",
        "npm",
        "lodash",
        [{"introduced": "0"}, {"fixed": "4.17.21"}],
        database_specific={"severity": "MODERATE"},
    ),
]


def build_image(root: Path) -> Built:
    base = (
        LayerBuilder()
        .file("etc/os-release", os_release("debian", "12"))
        .file(STATUS, dpkg_status(*BASE_PACKAGES, dpkg_entry("oldpkg", "1.0-1")))
        .tar()
    )
    apps = (
        LayerBuilder()
        .file(STATUS, dpkg_status(*BASE_PACKAGES))
        .file(
            "usr/lib/python3/dist-packages/requests-2.0.0.dist-info/METADATA",
            python_metadata("requests", "2.0.0"),
        )
        .file("app/node_modules/lodash/package.json", package_json("lodash", "4.17.20"))
        .tar()
    )
    return oci_image(root, [base, apps], ["gzip", "zstd"])


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Built]:
    """(database dir, OCI layout, what was built), the records imported."""
    records = tmp_path / "records"
    records.mkdir()
    for record in RECORDS:
        (records / f"{record['id']}.json").write_text(json.dumps(record))
    db = tmp_path / "db"
    result = invoke("vulndb", "import", "--db", str(db), str(records))
    assert result.exit_code == 0, result.output
    built = build_image(tmp_path / "layout")
    return db, tmp_path / "layout", built


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def expected_findings(built: Built) -> list[dict[str, Any]]:
    base, apps = built.layers

    def finding(
        record_id: str,
        package: str,
        ecosystem: str,
        installed: str,
        fixed: str,
        severity: str,
        source: str,
        layer: str,
        aliases: list[str] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": record_id,
            "aliases": aliases or [],
            "package": package,
            "ecosystem": ecosystem,
            "installed_version": installed,
            "fixed_version": fixed,
            "severity": severity,
            "source_name": source,
            "layer": layer,
            "summary": f"{record_id} summary",
        }

    return [
        finding(
            "DSA-EPOCH-2",
            "epochpkg",
            "Debian:12",
            "1:1.0-1",
            "1:1.1-1",
            "High",
            "epochpkg",
            base,
            ["CVE-2024-0001"],
        ),
        finding("DSA-BINNMU", "bin-utils", "Debian:12", "1.2-3+b1", "", "Medium", "binsrc", base),
        finding("DSA-BINNMU", "libbin1", "Debian:12", "1.2-3+b1", "", "Medium", "binsrc", base),
        finding("GHSA-npm", "lodash", "npm", "4.17.20", "4.17.21", "Medium", "", apps),
        finding(
            "GHSA-py", "requests", "PyPI", "2.0.0", "2.31.0", "Low", "", apps, ["CVE-2023-32681"]
        ),
        finding("DSA-LAST", "lastpkg", "Debian:12", "1.5-1", "", "Unknown", "lastpkg", base),
    ]


def test_json_report_has_exact_findings(setup: tuple[Path, Path, Built]) -> None:
    db, layout, built = setup
    result = invoke("scan", "--db", str(db), f"oci:{layout}:latest")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # json: stdout is not a terminal
    assert report["artifact"] == {"name": f"oci:{layout}:latest", "digest": built.manifest}
    assert report["os"] == {"family": "debian", "version": "12"}
    assert report["vulnerabilities"] == expected_findings(built)
    assert report["summary"] == {"High": 1, "Medium": 3, "Low": 1, "Unknown": 1}
    base, apps = built.layers
    assert report["packages"] == [
        {
            "name": "bin-utils",
            "version": "1.2-3+b1",
            "ecosystem": "Debian:12",
            "source_name": "binsrc",
            "source_version": "1.2-3",
            "layer": base,
        },
        {
            "name": "epochpkg",
            "version": "1:1.0-1",
            "ecosystem": "Debian:12",
            "source_name": "epochpkg",
            "source_version": "1:1.0-1",
            "layer": base,
        },
        {
            "name": "lastpkg",
            "version": "1.5-1",
            "ecosystem": "Debian:12",
            "source_name": "lastpkg",
            "source_version": "1.5-1",
            "layer": base,
        },
        {
            "name": "libbin1",
            "version": "1.2-3+b1",
            "ecosystem": "Debian:12",
            "source_name": "binsrc",
            "source_version": "1.2-3",
            "layer": base,
        },
        {
            "name": "newpkg",
            "version": "3.0-1",
            "ecosystem": "Debian:12",
            "source_name": "newpkg",
            "source_version": "3.0-1",
            "layer": base,
        },
        {
            "name": "openssl",
            "version": "3.0.11-1~deb12u2",
            "ecosystem": "Debian:12",
            "source_name": "openssl",
            "source_version": "3.0.11-1~deb12u2",
            "layer": base,
        },
        {
            "name": "requests",
            "version": "2.0.0",
            "ecosystem": "PyPI",
            "source_name": "",
            "source_version": "",
            "layer": apps,
        },
        {
            "name": "lodash",
            "version": "4.17.20",
            "ecosystem": "npm",
            "source_name": "",
            "source_version": "",
            "layer": apps,
        },
    ]


def test_table_report(setup: tuple[Path, Path, Built]) -> None:
    db, layout, built = setup
    result = invoke("scan", "--db", str(db), "--format", "table", f"oci:{layout}")
    assert result.exit_code == 0, result.output
    base, apps = (d[7:19] for d in built.layers)
    assert result.stdout == (
        f"oci:{layout} ({built.manifest[7:19]}, debian 12, 8 packages)\n"
        + "High: 1  Medium: 3  Low: 1  Unknown: 1\n"
        + "\n"
        + "LEVEL    ID           PACKAGE    INSTALLED  FIXED    LAYER\n"
        + f"High     DSA-EPOCH-2  epochpkg   1:1.0-1    1:1.1-1  {base}\n"
        + f"Medium   DSA-BINNMU   bin-utils  1.2-3+b1   -        {base}\n"
        + f"Medium   DSA-BINNMU   libbin1    1.2-3+b1   -        {base}\n"
        + f"Medium   GHSA-npm     lodash     4.17.20    4.17.21  {apps}\n"
        + f"Low      GHSA-py      requests   2.0.0      2.31.0   {apps}\n"
        + f"Unknown  DSA-LAST     lastpkg    1.5-1      -        {base}\n"
    )


def test_severity_filter_and_exit_code(setup: tuple[Path, Path, Built]) -> None:
    db, layout, _ = setup
    ref = f"oci:{layout}"
    high = invoke("scan", "--db", str(db), "--severity", "high", "--exit-code", "5", ref)
    assert high.exit_code == 5
    report = json.loads(high.stdout)
    assert [v["id"] for v in report["vulnerabilities"]] == ["DSA-EPOCH-2"]
    assert report["summary"] == {"High": 1, "Medium": 0, "Low": 0, "Unknown": 0}

    low = invoke("scan", "--db", str(db), "--severity", "Medium,Low", "--exit-code", "3", ref)
    assert low.exit_code == 3
    assert [v["severity"] for v in json.loads(low.stdout)["vulnerabilities"]] == [
        "Medium",
        "Medium",
        "Medium",
        "Low",
    ]
    assert invoke("scan", "--db", str(db), ref).exit_code == 0  # findings, no --exit-code


def test_exit_code_is_zero_below_the_threshold(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps(RECORDS[8]))  # GHSA-py: Low
    assert (
        invoke("vulndb", "import", "--db", str(tmp_path / "db"), str(tmp_path / "r.json")).exit_code
        == 0
    )
    build_image(tmp_path / "layout")
    ref = f"oci:{tmp_path / 'layout'}"
    args = ["scan", "--db", str(tmp_path / "db"), "--exit-code", "4", ref]
    assert invoke(*args, "--severity", "High,Medium").exit_code == 0
    assert invoke(*args, "--severity", "Low").exit_code == 4
    assert invoke(*args, "--severity", "Unknown").exit_code == 4  # Low is above Unknown


def test_docker_archive_and_default_database_under_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps(RECORDS[1]))
    data = tmp_path / "data"
    imported = invoke("--data-dir", str(data), "vulndb", "import", str(tmp_path / "r.json"))
    assert imported.exit_code == 0, imported.output
    assert (data / "vulndb" / "osv.sqlite").is_file()
    layer = (
        LayerBuilder()
        .file("etc/os-release", os_release("debian", "12"))
        .file(STATUS, dpkg_status(*BASE_PACKAGES))
        .tar()
    )
    built = docker_archive(tmp_path / "app.tar", [layer], "gzip")
    result = invoke(
        "scan", f"docker-archive:{tmp_path / 'app.tar'}", env={"DOCKYARD_DATA_DIR": str(data)}
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["artifact"]["digest"] == built.manifest
    assert [(v["id"], v["package"], v["layer"]) for v in report["vulnerabilities"]] == [
        ("DSA-EPOCH-2", "epochpkg", built.layers[0])
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["oci:/nonexistent/layout"],
            "/nonexistent/layout is not an OCI image layout (no index.json)",
        ),
        (
            ["--severity", "Critical", "oci:x"],
            "--severity: unknown severity 'Critical' (use High, Medium, Low, Unknown)",
        ),
        (["--platform", "linux", "oci:LAYOUT"], "platform 'linux' is not os/arch[/variant]"),
        (["oci:LAYOUT:v9"], "no image tagged 'v9' in LAYOUT (tags: latest)"),
    ],
)
def test_errors_exit_2_with_one_line(
    setup: tuple[Path, Path, Built], args: list[str], message: str
) -> None:
    db, layout, _ = setup
    args = [a.replace("LAYOUT", str(layout)) for a in args]
    result = invoke("scan", "--db", str(db), *args)
    assert result.exit_code == 2
    assert result.stderr == f"dockyard scan: error: {message.replace('LAYOUT', str(layout))}\n"
    assert result.stdout == ""


def test_missing_database_is_an_error(tmp_path: Path) -> None:
    result = invoke("scan", "--db", str(tmp_path / "none"), "oci:x")
    assert result.exit_code == 2
    assert result.stderr == (
        f"dockyard scan: error: no vulnerability database in {tmp_path / 'none'} (import OSV "
        "records with `dockyard vulndb import`, or give --db)\n"
    )


def test_broken_layer_is_an_error_not_a_crash(setup: tuple[Path, Path, Built]) -> None:
    db, layout, built = setup
    blob = layout / "blobs" / "sha256" / built.layers[1].partition(":")[2]
    blob.write_bytes(blob.read_bytes()[:100])
    result = invoke("scan", "--db", str(db), f"oci:{layout}")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"dockyard scan: error: layer {built.layers[1]} ")
    assert result.stderr.count("\n") == 1


def test_import_reports_invalid_records_and_status(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    (records / "good.json").write_text(json.dumps(RECORDS[0]))
    bad = dict(
        RECORDS[1],
        affected=[{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": "nope"}],
    )
    (records / "bad.json").write_text(json.dumps(bad))
    (records / "npm.json").write_text(json.dumps(RECORDS[9]))
    db = tmp_path / "db"
    result = invoke("vulndb", "import", "--db", str(db), str(records))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "imported 2 records (2 added, 0 updated), 0 kept (newer already stored), "
        "1 invalid skipped, in "
    )
    assert result.stderr.startswith("dockyard vulndb import: skipped invalid record DSA-EPOCH-2: ")
    assert result.stderr.count("\n") == 1

    again = invoke("vulndb", "import", "--db", str(db), str(records / "good.json"))
    assert again.stdout.startswith("imported 1 records (0 added, 1 updated)")

    status = invoke("vulndb", "status", "--db", str(db))
    assert status.exit_code == 0, status.output
    assert status.stdout == (
        "ECOSYSTEM  RECORDS  NEWEST MODIFIED\n"
        "Debian           1  2024-03-01T12:00:00Z\n"
        "npm              1  2024-03-01T12:00:00Z\n"
    )
    missing = invoke("vulndb", "import", "--db", str(db), str(tmp_path / "missing.json"))
    assert missing.exit_code == 2
    assert missing.stderr == (
        f"dockyard vulndb import: error: no such file or directory: {tmp_path / 'missing.json'}\n"
    )


def test_installed_command(setup: tuple[Path, Path, Built]) -> None:
    """The real entry point: JSON on a pipe, exit codes, errors on stderr."""
    db, layout, built = setup
    run = subprocess.run(
        [str(DOCKYARD), "scan", "--db", str(db), "--exit-code", "9", f"oci:{layout}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 9, run.stderr
    assert run.stderr == ""  # no progress bar: stderr is not a terminal
    assert json.loads(run.stdout)["vulnerabilities"] == expected_findings(built)
    failed = subprocess.run(
        [str(DOCKYARD), "scan", "--db", str(db), "docker-archive:/nonexistent.tar"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2
    assert failed.stderr == "dockyard scan: error: /nonexistent.tar: no such file\n"
