"""Scans in the registry, end to end: a real server with OSV records imported, images
pushed with skopeo, scans run by its job workers reading the blob store.

The image is the one the CLI tests build in Python (Debian 12 packages, a Python and an
npm package, gzip and zstd layers); its findings in the registry must equal what
``dockyard scan`` reports on the same OCI layout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.config import load_settings
from dockyard.scanning.report import as_json
from dockyard.scanning.scan import inventory
from dockyard.services import open_services
from tests.e2e.test_clients import _clients
from tests.fixtures.backends import all_backends
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, make_server
from tests.registry.helpers import (
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    dumps,
    push_blob,
    push_image,
    push_manifest,
)
from tests.scanning.images import (
    LayerBuilder,
    OciLayout,
    buildah_oci_image,
    debootstrap_tarball,
    dpkg_entry,
    dpkg_status,
    os_release,
)
from tests.scanning.registry_helpers import (
    finding_keys,
    push,
    scan_server,
    wait_scan,
    write_records,
)
from tests.scanning.test_cli import build_image, osv
from tests.webhooks.receiver import receiver, verify

pytestmark = pytest.mark.clients  # skopeo pushes, podman pulls

DOCKYARD = Path(sys.executable).with_name("dockyard")
SCAN = "/api/v1/repositories/library/app/tags/v1/scan"


def cli_report(server: DockyardServer, ref: str, *extra: str) -> dict[str, Any]:
    """``dockyard scan --format json`` of ``ref`` against the server's database."""
    out = subprocess.run(
        [str(DOCKYARD), "scan", "--format", "json", *extra, ref],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    report: dict[str, Any] = json.loads(out)
    return report


def scan_jobs(c: httpx.Client) -> list[dict[str, Any]]:
    r = c.get("/api/v1/jobs", params={"kind": "scans.scan"})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def settled(c: httpx.Client, kind: str, timeout: float = 30) -> None:
    """Wait until no job of ``kind`` is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = c.get("/api/v1/jobs", params={"kind": kind}).json()["items"]
        if jobs and all(j["state"] not in ("queued", "running") for j in jobs):
            return
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)


@all_backends
def test_a_pushed_image_is_scanned_and_its_findings_equal_the_cli(
    tmp_path: Path, backend_env: dict[str, str]
) -> None:
    with scan_server(tmp_path / "server", backend_env) as server, server.client() as c:
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")

        body = wait_scan(c, SCAN)
        expected = cli_report(server, f"oci:{tmp_path / 'layout'}:latest")
        assert body["status"] == "complete", body
        assert body["digest"] == digest
        # the version of the instance's vulnerability database the scan read
        assert body["database"] == c.get("/api/v1/vulndb").json()["version"]
        assert (
            body["summary"]
            == expected["summary"]
            == {
                "High": 1,
                "Medium": 3,
                "Low": 1,
                "Unknown": 1,
            }
        )
        assert finding_keys(body["vulnerabilities"]) == finding_keys(expected["vulnerabilities"])
        assert body["os"] == {"family": "debian", "version": "12"}
        assert body["packages"] == expected["packages"]
        assert body["artifact"] == {"name": f"library/app@{digest}", "digest": digest}
        assert body["matched_summary"] == body["summary"]
        assert [x["digest"] for x in body["layers"]] == sorted(
            {v["layer"] for v in expected["vulnerabilities"]},
            key=[x["digest"] for x in body["layers"]].index,
        )
        assert all(x["diff_id"].startswith("sha256:") for x in body["layers"])
        assert body["queued_at"] <= body["started_at"] <= body["finished_at"]

        # The tag listing carries the status and counts.
        tags = c.get("/api/v1/repositories/library/app/tags").json()["items"]
        assert tags[0]["scan"]["status"] == "complete"
        assert tags[0]["scan"]["summary"] == body["summary"]
        one = c.get("/api/v1/repositories/library/app/tags/v1").json()
        assert one["scan"]["url"].endswith(f"/manifests/{digest}/scan")

        # The same result by digest; an event told of it.
        by_digest = c.get(f"/api/v1/repositories/library/app/manifests/{digest}/scan").json()
        assert by_digest["finished_at"] == body["finished_at"]
        events = c.get("/api/v1/events", params={"type": "scan_completed"}).json()["items"]
        assert [e["digest"] for e in events] == [digest]
        assert events[0]["scan"]["summary"] == body["summary"]
        assert events[0]["scan"]["tags"] == ["v1"]
        assert len(scan_jobs(c)) == 1


def test_filters_paging_rescans_and_bad_input(tmp_path: Path) -> None:
    with scan_server(tmp_path / "server") as server, server.client() as c:
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        first = wait_scan(c, SCAN)

        def ids(**params: str) -> list[tuple[str, str]]:
            r = c.get(SCAN, params=params)
            assert r.status_code == 200, r.text
            return [(v["id"], v["package"]) for v in r.json()["vulnerabilities"]]

        assert ids(severity="high") == [("DSA-EPOCH-2", "epochpkg")]
        high = c.get(SCAN, params={"severity": "High"}).json()
        assert high["matched_summary"] == {"High": 1, "Medium": 0, "Low": 0, "Unknown": 0}
        assert high["summary"] == first["summary"]
        assert ids(severity="Low,High") == [("DSA-EPOCH-2", "epochpkg"), ("GHSA-py", "requests")]
        assert sorted(ids(fixable="true")) == [
            ("DSA-EPOCH-2", "epochpkg"),
            ("GHSA-npm", "lodash"),
            ("GHSA-py", "requests"),
        ]
        assert ids(package="lodash") == [("GHSA-npm", "lodash")]
        assert ids(package="lodash", severity="High") == []

        # Pages of two, walked with next.
        seen: list[str] = []
        url: str | None = f"{SCAN}?limit=2&severity=High,Medium,Low,Unknown"
        while url:
            page = c.get(url).json()
            assert len(page["vulnerabilities"]) <= 2
            assert page["matched"] == 6
            seen += [v["id"] + v["package"] for v in page["vulnerabilities"]]
            url = page.get("next")
        assert len(seen) == 6 == len(set(seen))

        for params, word in (
            ({"severity": "Critical"}, "severity"),
            ({"fixable": "maybe"}, "fixable"),
            ({"format": "xml"}, "format"),
            ({"after": "x"}, "after"),
            ({"limit": "0"}, "limit"),
        ):
            r = c.get(SCAN, params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert word in r.json()["detail"]
        assert c.get("/api/v1/repositories/library/app/tags/nope/scan").status_code == 404
        assert c.get("/api/v1/repositories/library/app/manifests/sha256:zz/scan").status_code == 400
        r = c.post(SCAN, json={"now": True})
        assert r.status_code == 400, r.text
        assert c.post("/api/v1/repositories/library/ghost/tags/v1/scan").status_code == 404

        # The same image in another repository: its result serves it, no new scan.
        push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "copy:latest")
        other = wait_scan(c, "/api/v1/repositories/library/copy/tags/latest/scan")
        assert other["finished_at"] == first["finished_at"]
        assert len(scan_jobs(c)) == 1

        # A scan on request runs again, and reports the same.
        r = c.post(SCAN)
        assert r.status_code == 202, r.text
        assert r.headers["Location"] == f"/api/v1/repositories/library/app/manifests/{digest}/scan"
        again = wait_scan(c, r.headers["Location"], ended=("complete",))
        deadline_jobs = [j for j in scan_jobs(c) if j["state"] == "succeeded"]
        assert len(deadline_jobs) >= 1
        assert again["summary"] == first["summary"]

        # Scans by outcome, their duration, the queue and the database's age.
        metrics = c.get("/metrics").text
        assert 'dockyard_scans_total{outcome="complete"}' in metrics
        assert "dockyard_scan_duration_seconds_bucket" in metrics
        assert 'dockyard_scan_results{status="complete"} 1.0' in metrics
        assert 'dockyard_jobs_queued{kind="scans.scan"}' in metrics
        assert "dockyard_vulndb_age_seconds" in metrics
        assert "dockyard_vulndb_age_seconds -1.0" not in metrics

        # Reading scans is audited only for writes: the POST is in the audit log.
        audit = c.get("/api/v1/audit").json()["items"]
        assert any(a["action"] == "cr:StartRepoTagScan" for a in audit)


def test_an_empty_database_says_so(tmp_path: Path) -> None:
    with scan_server(tmp_path / "server", records=False) as server, server.client() as c:
        build_image(tmp_path / "layout")
        push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        body = wait_scan(c, SCAN)
        assert body["status"] == "complete"
        assert body["database"] == "empty"
        assert len(body["packages"]) == 8
        assert body["vulnerabilities"] == []


def test_artifacts_are_unsupported_and_broken_images_fail_once(tmp_path: Path) -> None:
    with scan_server(tmp_path / "server") as server, server.client() as c:
        # A Helm-chart-like artifact: its config is no image config.
        config = dumps({"name": "chart", "version": "1.0.0"})
        layer = b"not really a chart"
        push_blob(c, "library/chart", config)
        push_blob(c, "library/chart", layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.cncf.helm.config.v1+json", config),
            "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", layer)],
        }
        push_manifest(c, "library/chart", "1.0.0", dumps(manifest), OCI_MANIFEST)
        chart = wait_scan(c, "/api/v1/repositories/library/chart/tags/1.0.0/scan")
        assert chart["status"] == "unsupported"
        assert "not a container image" in chart["reason"]

        # An image whose layer is no tar stream.
        push_image(c, "library/broken", "v1")
        broken = wait_scan(c, "/api/v1/repositories/library/broken/tags/v1/scan")
        assert broken["status"] == "failed"
        assert "not a readable tar stream" in broken["reason"]

        # A layer that claims more bytes than it has.
        data = LayerBuilder().file("etc/os-release", os_release("debian", "12")).tar()
        config = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}})
        push_blob(c, "library/liar", config)
        push_blob(c, "library/liar", data)
        lying = {**descriptor(OCI_LAYER, data), "size": len(data) + 10}
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [lying],
        }
        push_manifest(c, "library/liar", "v1", dumps(body), OCI_MANIFEST)
        liar = wait_scan(c, "/api/v1/repositories/library/liar/tags/v1/scan")
        assert liar["status"] == "failed"
        assert "descriptor says" in liar["reason"]

        # A config larger than the engine reads.
        huge = dumps({"architecture": "amd64", "os": "linux", "pad": "x" * (5 * 1024 * 1024)})
        push_blob(c, "library/huge", huge)
        push_blob(c, "library/huge", data)
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", huge),
            "layers": [descriptor(OCI_LAYER, data)],
        }
        push_manifest(c, "library/huge", "v1", dumps(body), OCI_MANIFEST)
        too_big = wait_scan(c, "/api/v1/repositories/library/huge/tags/v1/scan")
        assert too_big["status"] == "failed"
        assert "too large" in too_big["reason"]

        # Each ended with one attempt: no retry loop.
        jobs = scan_jobs(c)
        assert len(jobs) == 4
        assert {(j["state"], j["attempts"]) for j in jobs} == {("succeeded", 1)}


def _platform_image(layout: OciLayout, arch: str, packages: list[str]) -> dict[str, Any]:
    tar = (
        LayerBuilder()
        .file("etc/os-release", os_release("debian", "12"))
        .file("var/lib/dpkg/status", dpkg_status(*packages))
        .tar()
    )
    descriptor_, _ = layout.image([tar], os="linux", arch=arch)
    return descriptor_


def test_a_two_platform_index_has_one_result_per_platform(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "multi")
    amd64 = _platform_image(
        layout, "amd64", [dpkg_entry("epochpkg", "1:1.0-1"), dpkg_entry("lastpkg", "1.5-1")]
    )
    arm64 = _platform_image(layout, "arm64", [dpkg_entry("epochpkg", "1:1.0-1", arch="arm64")])
    index = layout.index([(amd64, "linux", "amd64"), (arm64, "linux", "arm64")])
    layout.tag(amd64, "amd64")
    layout.tag(index, "multi")
    with scan_server(tmp_path / "server") as server, server.client() as c:
        # One platform's image was pushed, and scanned, on its own first.
        push(server, tmp_path, f"oci:{layout.root}:amd64", "multi:amd64")
        alone = wait_scan(c, "/api/v1/repositories/library/multi/tags/amd64/scan")
        digest = push(server, tmp_path, f"oci:{layout.root}:multi", "multi:v1", all_images=True)
        assert digest == index["digest"]
        body = wait_scan(c, "/api/v1/repositories/library/multi/tags/v1/scan")
        assert body["status"] == "complete", body
        assert body["kind"] == "index"
        platforms = {p["platform"]: p for p in body["platforms"]}
        assert set(platforms) == {"linux/amd64", "linux/arm64"}
        assert platforms["linux/amd64"]["digest"] == amd64["digest"]
        assert platforms["linux/amd64"]["summary"] == {
            "High": 1,
            "Medium": 0,
            "Low": 0,
            "Unknown": 1,
        }
        assert platforms["linux/arm64"]["summary"]["High"] == 1
        assert platforms["linux/amd64"]["finished_at"] == alone["finished_at"]  # not again
        assert len(scan_jobs(c)) == 2
        assert body["summary"] == {"High": 2, "Medium": 0, "Low": 0, "Unknown": 1}
        by_platform = sorted((v["platform"], v["id"]) for v in body["vulnerabilities"])
        assert by_platform == [
            ("linux/amd64", "DSA-EPOCH-2"),
            ("linux/amd64", "DSA-LAST"),
            ("linux/arm64", "DSA-EPOCH-2"),
        ]
        for arch in ("amd64", "arm64"):
            expected = cli_report(server, f"oci:{layout.root}:multi", "--platform", f"linux/{arch}")
            child = c.get(platforms[f"linux/{arch}"]["url"]).json()
            assert finding_keys(child["vulnerabilities"]) == finding_keys(
                expected["vulnerabilities"]
            )
        tags = c.get("/api/v1/repositories/library/multi/tags").json()["items"]
        assert tags[0]["scan"]["summary"] == body["summary"]
        events = c.get("/api/v1/events", params={"type": "scan_completed"}).json()["items"]
        assert [e["digest"] for e in events] == [digest, amd64["digest"]]  # newest first


def test_scan_on_push_follows_namespace_and_repository_settings(tmp_path: Path) -> None:
    with scan_server(tmp_path / "server") as server, server.client() as c:
        r = c.get("/api/v1/namespaces/library/security")
        assert r.json() == {
            "scan_on_push": True,
            "block_pull_severity": "none",
            "block_unscanned": False,
            "allowlist": [],
        }
        r = c.put("/api/v1/namespaces/library/security", json={"scan_on_push": False})
        assert r.status_code == 200, r.text
        push_image(c, "library/off", "v1")
        # The repository turns it back on for itself.
        r = c.put("/api/v1/repositories/library/on/security", json={"scan_on_push": True})
        assert r.status_code == 404  # no such repository yet
        push_image(c, "library/on", "v0")
        settled(c, "events.fanout")  # the setting counts when the push's fan-out runs
        r = c.put("/api/v1/repositories/library/on/security", json={"scan_on_push": True})
        assert r.status_code == 200, r.text
        assert r.json()["effective_scan_on_push"] is True
        push_image(c, "library/on", "v1")
        wait_scan(c, "/api/v1/repositories/library/on/tags/v1/scan")
        assert c.get("/api/v1/repositories/library/off/tags/v1/scan").status_code == 404
        assert c.get("/api/v1/repositories/library/on/tags/v0/scan").status_code == 404
        tags = c.get("/api/v1/repositories/library/off/tags").json()["items"]
        assert tags[0]["scan"]["status"] == "none"

        for body, word in (
            ({"block_pull_severity": "critical"}, "block_pull_severity"),
            ({"scan_on_push": "yes"}, "scan_on_push"),
            ({"allowlist": "CVE-1"}, "allowlist"),
            ({"allowlist": [{"id": "CVE-1", "expires_at": "soon"}]}, "expires_at"),
            ({"allowlist": ["CVE-1", "CVE-1"]}, "twice"),
            ({"colour": "red"}, "colour"),
        ):
            r = c.put("/api/v1/namespaces/library/security", json=body)
            assert r.status_code == 400, (body, r.text)
            assert word in r.json()["detail"]
        assert c.get("/api/v1/namespaces/library/security").json()["scan_on_push"] is False
        assert c.get("/api/v1/namespaces/ghost/security").status_code == 404
        assert c.put("/api/v1/repositories/library/on/security", json={}).status_code == 400


def test_a_rescan_after_an_import_tells_a_webhook_what_is_new(tmp_path: Path) -> None:
    env = {"DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    with (
        receiver() as rx,
        scan_server(tmp_path / "server", env) as server,
        server.client() as c,
    ):
        r = c.post(
            "/api/v1/namespaces/library/webhooks",
            json={
                "name": "scans",
                "url": rx.url,
                "events": ["scan_completed"],
                "format": "cloudevents",
            },
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        first = wait_scan(c, SCAN)
        [delivery] = rx.wait_for(1)
        assert verify(secret, delivery.headers, delivery.body)
        event = delivery.json()
        assert event["type"] == "com.dockyard.scan.completed"
        assert event["subject"] == "library/app:v1"
        assert event["data"]["digest"] == digest
        assert event["data"]["scan"]["summary"] == first["summary"]
        assert event["data"]["scan"]["rescan"] is False

        # An image in a namespace that does not scan on push is not scanned by a rescan
        # either.
        assert c.post("/api/v1/namespaces", json={"name": "quiet"}).status_code == 201
        r = c.put("/api/v1/namespaces/quiet/security", json={"scan_on_push": False})
        assert r.status_code == 200, r.text
        push_image(c, "quiet/app", "v1")

        # A new record makes lodash High; the import (here by the CLI, on the instance's
        # database) queues the rescans of what was pushed within DOCKYARD_RESCAN_WINDOW.
        record = osv(
            "GHSA-new-high",
            "npm",
            "lodash",
            [{"introduced": "0"}, {"fixed": "4.17.21"}],
            database_specific={"severity": "CRITICAL"},
        )
        server.cli("vulndb", "import", str(write_records(tmp_path / "new", [record])))
        services = open_services(load_settings(environ=server.env))
        try:
            assert services.scans.rescan_recent(timedelta(days=30)) == 0  # already queued
        finally:
            services.close()
        deliveries = rx.wait_for(2, timeout=60)
        quiet = c.get("/api/v1/repositories/quiet/app/tags").json()["items"]
        assert quiet[0]["scan"]["status"] == "none"
        rescan = deliveries[1].json()["data"]["scan"]
        assert rescan["rescan"] is True
        assert rescan["new_high"] == ["GHSA-new-high"]
        assert rescan["summary"]["High"] == first["summary"]["High"] + 1
        after = c.get(SCAN).json()
        assert after["summary"] == rescan["summary"]
        assert after["database"] != first["database"]


def test_pull_blocking_with_podman_allowlist_expiry_head_and_unscanned(tmp_path: Path) -> None:
    with scan_server(tmp_path / "server") as server, server.client() as c:
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        wait_scan(c, SCAN)
        security = "/api/v1/namespaces/library/security"
        manifest = "/v2/library/app/manifests/v1"
        accept = {"Accept": OCI_MANIFEST}
        assert c.get(manifest, headers=accept).status_code == 200

        r = c.put(security, json={"block_pull_severity": "high"})
        assert r.status_code == 200, r.text
        r = c.get(manifest, headers=accept)
        assert r.status_code == 403, r.text
        [error] = r.json()["errors"]
        assert error["code"] == "DENIED"
        assert "1 High" in error["message"]
        assert f"/console/repositories/library/app/scans/{digest}" in error["message"]
        assert c.head(manifest, headers=accept).status_code == 403
        assert c.head(f"/v2/library/app/manifests/{digest}").status_code == 403

        clients_gen = _clients(server, tmp_path / "clients")
        clients = next(clients_gen)
        try:
            target = f"{server.host}/library/app:v1"
            clients.podman(
                "login", "--tls-verify=false", "-u", "admin", "-p", ADMIN_PASSWORD, server.host
            )
            code, _, err = clients.podman("pull", "--tls-verify=false", target, check=False)
            assert code != 0
            assert "refuses pulls of images with vulnerabilities of High severity" in err, err
            assert "1 High" in err

            # Allowlisted, the High finding no longer counts.
            r = c.put(security, json={"allowlist": [{"id": "DSA-EPOCH-2", "comment": "triaged"}]})
            assert r.status_code == 200, r.text
            clients.podman("pull", "--tls-verify=false", target)
            report = c.get(SCAN, params={"severity": "High"}).json()
            assert [v["allowlisted"] for v in report["vulnerabilities"]] == [True]

            # An expired entry counts for nothing.
            r = c.put(
                security,
                json={"allowlist": [{"id": "DSA-EPOCH-2", "expires_at": "2020-01-01T00:00:00Z"}]},
            )
            assert r.json()["allowlist"][0]["expires_at"] == "2020-01-01T00:00:00Z"
            code, _, err = clients.podman("pull", "--tls-verify=false", target, check=False)
            assert code != 0
            assert "1 High" in err
        finally:
            clients_gen.close()

        # Medium blocks on the three Medium findings even with the High one allowlisted.
        c.put(security, json={"block_pull_severity": "medium", "allowlist": ["DSA-EPOCH-2"]})
        r = c.get(manifest, headers=accept)
        assert r.status_code == 403
        assert "3 Medium" in r.json()["errors"][0]["message"]
        assert "High" not in r.json()["errors"][0]["message"].split("has ")[1]

        # Unscanned images are refused when asked; a scan lets them through.
        c.put(
            security,
            json={"block_pull_severity": "none", "block_unscanned": True, "scan_on_push": False},
        )
        assert c.get(manifest, headers=accept).status_code == 200
        pushed = push_image(c, "library/fresh", "v1")
        r = c.get("/v2/library/fresh/manifests/v1", headers=accept)
        assert r.status_code == 403
        assert "never scanned" in r.json()["errors"][0]["message"]
        assert c.post("/api/v1/repositories/library/fresh/tags/v1/scan").status_code == 202
        ended = wait_scan(c, "/api/v1/repositories/library/fresh/tags/v1/scan")
        assert ended["status"] == "failed"  # its layer is no tar: still no complete scan
        assert c.get(f"/v2/library/fresh/manifests/{pushed.digest}").status_code == 403


@pytest.mark.slow
def test_the_debootstrap_image_is_scanned_as_the_cli_scans_it(tmp_path: Path) -> None:
    """The real Debian image the engine tests build (cached), pushed with skopeo."""
    try:
        tarball, _ = debootstrap_tarball()
        buildah_oci_image(tarball, tmp_path / "layout")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    layout = f"oci:{tmp_path / 'layout'}:latest"
    inventory = cli_report_packages(layout)
    release = inventory["os"]["version"]
    records = [
        osv(
            "DSA-TEST-GLIBC",
            f"Debian:{release}",
            "glibc",
            [{"introduced": "0"}, {"fixed": "99:0"}],
            database_specific={"severity": "HIGH"},
        ),
        osv(
            "DSA-TEST-APT",
            f"Debian:{release}",
            "apt",
            [{"introduced": "0"}],
            database_specific={"severity": "LOW"},
        ),
    ]
    server = make_server(tmp_path / "server")
    server.cli("vulndb", "import", str(write_records(tmp_path / "records", records)))
    server.start()
    try:
        with server.client() as c:
            digest = push(server, tmp_path, layout, "debian:stable")
            body = wait_scan(
                c, "/api/v1/repositories/library/debian/tags/stable/scan?limit=1000", timeout=300
            )
            expected = cli_report(server, layout)
            assert body["status"] == "complete", body
            assert body["digest"] == digest
            assert body["packages"] == expected["packages"]
            assert len(body["packages"]) > 50
            assert finding_keys(body["vulnerabilities"]) == finding_keys(
                expected["vulnerabilities"]
            )
            assert {v["package"] for v in body["vulnerabilities"]} >= {"libc6", "apt"}
            assert body["summary"]["High"] >= 2  # libc6 and libc-bin, built from glibc
            [layer] = body["layers"]
            assert all(v["layer"] == layer["digest"] for v in body["vulnerabilities"])
            assert all(v["layer_created_by"] for v in body["vulnerabilities"])
    finally:
        server.stop()


def cli_report_packages(ref: str) -> dict[str, Any]:
    """The CLI's inventory of ``ref`` (its JSON report against an empty database)."""
    result = inventory(ref)
    return as_json(result)
