"""The vulnerability database in a running server: uploads through ``/api/v1/vulndb``
run as jobs in the worker processes, ``dockyard vulndb sync`` from a folder and from a
loopback HTTP source, the periodic refresh, and ``dockyard scan`` against the instance's
database — on SQLite with the filesystem and on PostgreSQL with S3."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.backends import all_backends
from tests.fixtures.server import DockyardServer, make_server, running_server
from tests.scanning.images import (
    LayerBuilder,
    dpkg_entry,
    dpkg_status,
    oci_image,
    os_release,
    python_metadata,
)
from tests.scanning.osv import INVALID_RECORD, many_records, osv_record, write_zip
from tests.scanning.osv_server import osv_http_server
from tests.scanning.registry_helpers import push, wait_scan
from tests.scanning.test_cli import RECORDS, STATUS, build_image

PROBLEM = "application/problem+json"
ZIP = {"Content-Type": "application/zip"}


def wait_import(client: httpx.Client, location: str, timeout: float = 60) -> dict[str, Any]:
    """The import at ``location`` once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(location).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"the import did not end: {body}"
        time.sleep(0.2)


def zipped(records: list[Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return buffer.getvalue()


@all_backends
def test_uploads_are_imported_by_the_workers_and_shared_by_every_process(
    dockyard_server: DockyardServer, tmp_path: Path
) -> None:
    with dockyard_server.client() as admin:
        empty = admin.get("/api/v1/vulndb").json()
        assert (empty["version"], empty["empty"], empty["records"]) == ("", True, 0)
        assert empty["last_import_at"] is None

        r = admin.post("/api/v1/vulndb/imports?filename=all.zip", content=zipped(RECORDS))
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "queued"
        assert r.json()["filename"] == "all.zip"
        first = wait_import(admin, r.headers["location"])
        assert first["state"] == "succeeded", first
        assert (first["imported"], first["skipped"], first["invalid"]) == (len(RECORDS), 0, 0)
        assert first["progress"] == {"done": len(RECORDS), "total": len(RECORDS), "percent": 100}
        assert first["version"] == "1"

        newer = osv_record("PYSEC-9", "PyPI", "flask", "2.0")
        document = json.dumps([newer, INVALID_RECORD]).encode()
        r = admin.post(
            "/api/v1/vulndb/imports",
            files={"file": ("more.json", document, "application/json")},
        )
        assert r.status_code == 202, r.text
        second = wait_import(admin, r.headers["location"])
        assert (second["state"], second["added"], second["invalid"]) == ("succeeded", 1, 1)
        assert second["filename"] == "more.json"
        assert second["errors"][0]["record"] == "BAD-1"
        assert "modified" in second["errors"][0]["reason"]

        status = admin.get("/api/v1/vulndb").json()
        assert status["version"] == "2"
        assert status["records"] == len(RECORDS) + 1
        assert {e["ecosystem"]: e["records"] for e in status["ecosystems"]} == {
            "Debian": 8,
            "PyPI": 2,
            "npm": 1,
        }
        assert status["last_import"]["id"] == second["id"]
        assert status["age_seconds"] is not None

        history = admin.get("/api/v1/vulndb/imports").json()["items"]
        assert [i["id"] for i in history] == [second["id"], first["id"]]
        audit = admin.get("/api/v1/audit", params={"action": "cr:ImportVulnDB"}).json()
        assert [(a["actor"], a["status"]) for a in audit["items"]] == [("admin", 202)] * 2

        metrics = admin.get("/metrics").text
        assert re.search(r"^dockyard_vulndb_records(\{[^}]*\})? 11\.0$", metrics, re.M), metrics
        assert re.search(r'^dockyard_vulndb_imports\{outcome="succeeded"\} 2\.0$', metrics, re.M)
        age = re.search(r"^dockyard_vulndb_age_seconds(?:\{[^}]*\})? (\S+)$", metrics, re.M)
        assert age is not None
        assert 0 <= float(age.group(1)) < 600

    # Another process (the CLI) reads the same database, and its scan finds what the
    # engine finds with a database file of the same records.
    status_out = dockyard_server.cli("vulndb", "status").stdout
    assert re.search(r"^Debian\s+8\s", status_out, re.M), status_out
    layout = tmp_path / "layout"
    build_image(layout)
    shared = json.loads(dockyard_server.cli("scan", "--format", "json", f"oci:{layout}").stdout)
    records = tmp_path / "records"
    records.mkdir()
    for record in RECORDS:
        (records / f"{record['id']}.json").write_text(json.dumps(record))
    dockyard_server.cli("vulndb", "import", "--db", str(tmp_path / "file"), str(records))
    alone = json.loads(
        dockyard_server.cli(
            "scan", "--db", str(tmp_path / "file"), "--format", "json", f"oci:{layout}"
        ).stdout
    )
    assert shared["vulnerabilities"] == alone["vulnerabilities"]
    assert len(shared["vulnerabilities"]) == 6


@pytest.fixture
def small_limit_server(tmp_path: Path) -> Iterator[DockyardServer]:
    with running_server(tmp_path, {"DOCKYARD_VULNDB_UPLOAD_LIMIT": "1"}) as server:
        yield server


def test_bad_uploads_are_refused_and_leave_nothing_behind(
    small_limit_server: DockyardServer,
) -> None:
    server = small_limit_server
    big = b"[" + b" " * (2 * 1024 * 1024) + b"]"

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with server.client() as admin:
        for response in (
            admin.post("/api/v1/vulndb/imports", content=big),
            admin.post("/api/v1/vulndb/imports", content=chunked()),
            admin.post("/api/v1/vulndb/imports", files={"file": ("big.json", big)}),
        ):
            assert response.status_code == 413, response.text
            assert response.headers["content-type"] == PROBLEM
            assert "at most 1048576 bytes" in response.json()["detail"]
    with server.client() as admin:
        r = admin.post("/api/v1/vulndb/imports", content=b"")
        assert (r.status_code, r.headers["content-type"]) == (400, PROBLEM)
        assert "empty" in r.json()["detail"]
        r = admin.post("/api/v1/vulndb/imports", content=b"\x7fELF binary", headers=ZIP)
        assert (r.status_code, r.headers["content-type"]) == (415, PROBLEM)
        assert "neither a zip archive nor JSON" in r.json()["detail"]
        r = admin.post("/api/v1/vulndb/imports", files={"note": (None, "no file")})
        assert r.status_code == 400, r.text
        assert admin.get("/api/v1/vulndb/imports").json()["items"] == []

    server.cli("account", "create", "initech", "--password", "initech-pw")
    with server.client(auth=("initech", "initech-pw")) as root:
        for response in (
            root.post("/api/v1/vulndb/imports", content=b"[]"),
            root.get("/api/v1/vulndb"),
            root.get("/api/v1/vulndb/imports/1"),
        ):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"] == PROBLEM
    with server.client(auth=None) as anonymous:
        assert anonymous.post("/api/v1/vulndb/imports", content=b"[]").status_code == 401
    with server.client() as admin:
        assert admin.get("/api/v1/vulndb/imports").json()["items"] == []
        assert admin.get("/api/v1/vulndb/imports/999").status_code == 404
        refused = admin.get("/api/v1/audit", params={"action": "cr:ImportVulnDB"}).json()
        assert {(a["actor"], a["decision"]) for a in refused["items"]} >= {("initech", "denied")}
    uploads = server.data_dir / "storage" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def _osv_folder(root: Path) -> Path:
    write_zip(root / "Debian" / "all.zip", many_records(20))
    write_zip(root / "PyPI" / "all.zip", many_records(5, "PyPI", "PYSEC"))
    (root / "ecosystems.txt").write_text("Debian\nPyPI\n")
    return root


@all_backends
def test_sync_from_a_loopback_http_source_downloads_only_what_changed(
    tmp_path: Path, backend_env: dict[str, str]
) -> None:
    server = make_server(tmp_path / "instance", backend_env)  # the instance's database
    folder = _osv_folder(tmp_path / "osv")
    with osv_http_server(folder) as osv:
        first = server.cli("vulndb", "sync", "--source", osv.url)
        assert "imported 25 records (25 added, 0 updated)" in first.stdout, first.stdout
        assert sorted(osv.downloads()) == ["/Debian/all.zip", "/PyPI/all.zip"]

        again = server.cli("vulndb", "sync", "--source", osv.url)
        assert "nothing changed at the source" in again.stdout
        assert sorted(osv.downloads()) == ["/Debian/all.zip", "/PyPI/all.zip"]  # no more
        conditional = [(p, s) for p, s, sent in osv.log[-3:] if sent]
        assert sorted(conditional) == [("/Debian/all.zip", 304), ("/PyPI/all.zip", 304)]

        changed = osv_record("PYSEC-0", "PyPI", "pkg0", "3.0", modified="2025-01-01T00:00:00Z")
        write_zip(folder / "PyPI" / "all.zip", [changed, *many_records(5, "PyPI", "PYSEC")[1:]])
        third = server.cli("vulndb", "sync", "--source", osv.url)
        assert "imported 1 records (0 added, 1 updated), 4 kept" in third.stdout, third.stdout
        assert osv.downloads()[-1] == "/PyPI/all.zip"
        assert osv.downloads().count("/Debian/all.zip") == 1

        # DOCKYARD_VULNDB_ECOSYSTEMS narrows a sync while no image says what is used.
        osv.log.clear()
        narrowed = server.env | {"DOCKYARD_VULNDB_ECOSYSTEMS": "PyPI,Go"}
        server.env = narrowed
        result = server.cli("vulndb", "sync", "--source", osv.url)
        assert [p for p, _, _ in osv.log] == ["/PyPI/all.zip", "/Go/all.zip"]  # no listing
        assert "the source has no Go" in result.stderr

    status = server.cli("vulndb", "status").stdout
    assert re.search(r"^Debian\s+20\s", status, re.M), status
    assert re.search(r"^PyPI\s+5\s", status, re.M), status
    broken = server.cli("vulndb", "sync", "--source", "http://127.0.0.1:9/osv", check=False)
    assert broken.returncode == 2
    assert broken.stderr.startswith("dockyard vulndb sync: error: cannot fetch http://127.0.0.1:9/")


def test_a_sync_fetches_only_the_ecosystems_that_scanned_images_use(tmp_path: Path) -> None:
    """The scan service tells the sync which ecosystems stored images use: after a scan
    of a Debian image, only Debian's archive is fetched (no listing asked, PyPI left);
    once an image with a Python package is scanned too, PyPI's as well."""
    folder = _osv_folder(tmp_path / "osv")
    debian = LayerBuilder().file("etc/os-release", os_release("debian", "12"))
    debian.file(STATUS, dpkg_status(dpkg_entry("pkg0", "1.0-1"), dpkg_entry("pkg1", "1.0-1")))
    oci_image(tmp_path / "debian", [debian.tar()])
    python = LayerBuilder().file(
        "usr/lib/python3/dist-packages/pkg0-1.0.dist-info/METADATA", python_metadata("pkg0", "1.0")
    )
    oci_image(tmp_path / "python", [python.tar()])
    with (
        osv_http_server(folder) as osv,
        running_server(tmp_path / "instance") as server,
        server.client() as admin,
    ):
        push(server, tmp_path, f"oci:{tmp_path / 'debian'}:latest", "deb:v1")
        scan = wait_scan(admin, "/api/v1/repositories/library/deb/tags/v1/scan")
        assert scan["status"] == "complete", scan
        assert {p["ecosystem"] for p in scan["packages"]} == {"Debian:12"}

        first = server.cli("vulndb", "sync", "--source", osv.url)
        assert [path for path, _, _ in osv.log] == ["/Debian/all.zip"], osv.log
        assert "imported 20 records (20 added, 0 updated)" in first.stdout, first.stdout
        status = admin.get("/api/v1/vulndb").json()
        assert {e["ecosystem"] for e in status["ecosystems"]} == {"Debian"}

        push(server, tmp_path, f"oci:{tmp_path / 'python'}:latest", "py:v1")
        scan = wait_scan(admin, "/api/v1/repositories/library/py/tags/v1/scan")
        assert {p["ecosystem"] for p in scan["packages"]} == {"PyPI"}, scan
        osv.log.clear()
        second = server.cli("vulndb", "sync", "--source", osv.url)
        assert sorted((path, code) for path, code, _ in osv.log) == [
            ("/Debian/all.zip", 304),
            ("/PyPI/all.zip", 200),
        ]
        assert "imported 5 records" in second.stdout, second.stdout


def test_sync_from_a_folder_and_from_a_file(tmp_path: Path) -> None:
    server = make_server(tmp_path / "instance")
    folder = _osv_folder(tmp_path / "osv")
    env = server.env | {"DOCKYARD_VULNDB_SOURCE": str(folder)}
    server.env = env
    assert "imported 25 records" in server.cli("vulndb", "sync").stdout
    assert "nothing changed at the source" in server.cli("vulndb", "sync").stdout
    single = write_zip(tmp_path / "one.zip", [osv_record("GO-1", "Go", "example.com/m", "1.2")])
    assert "imported 1 records" in server.cli("vulndb", "sync", "--source", str(single)).stdout
    again = server.cli("vulndb", "sync", "--source", str(single)).stdout
    assert "nothing changed" in again
    missing = server.cli("vulndb", "sync", "--source", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 2
    assert "is no URL, folder or file that exists" in missing.stderr


def test_the_refresh_job_runs_on_a_worker_and_its_schedule_survives_a_restart(
    tmp_path: Path,
) -> None:
    folder = _osv_folder(tmp_path / "osv")
    with osv_http_server(folder) as osv:
        env = {"DOCKYARD_VULNDB_SOURCE": osv.url, "DOCKYARD_VULNDB_REFRESH": "24"}
        with running_server(tmp_path / "instance", env) as server, server.client() as admin:
            deadline = time.monotonic() + 60
            while admin.get("/api/v1/vulndb").json()["records"] < 25:
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.3)
            status = admin.get("/api/v1/vulndb").json()
            assert status["source"] == osv.url
            assert status["refresh_hours"] == 24
            assert status["last_import"]["source"] == f"sync {osv.url}"
            due = status["next_refresh_at"]
            assert due is not None
            jobs = admin.get("/api/v1/jobs", params={"kind": "vulndb.sync"}).json()["items"]
            assert [j["state"] for j in jobs] == ["succeeded"]

            server.restart()
            time.sleep(3)  # the workers' housekeeping looks at the schedule when they start
            jobs = admin.get("/api/v1/jobs", params={"kind": "vulndb.sync"}).json()["items"]
            assert len(jobs) == 1, jobs  # not due: no second sync
            assert admin.get("/api/v1/vulndb").json()["next_refresh_at"] == due
        assert sorted(osv.downloads()) == ["/Debian/all.zip", "/PyPI/all.zip"]
