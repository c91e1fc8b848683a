"""Scan reports in every format and SBOMs through the API, end to end: a real server with
OSV records imported, images pushed with skopeo and scanned by its job workers, each
format fetched over HTTP and validated as ``test_formats`` validates the renderers'
output (published schemas where they exist, the library validators otherwise)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dockyard.scanning.formats import REPORT_FORMATS, SBOM_FORMATS
from tests.fixtures.server import DockyardServer
from tests.registry.helpers import push_image
from tests.scanning.images import OciLayout, dpkg_entry
from tests.scanning.registry_helpers import push, scan_server, wait_scan
from tests.scanning.test_cli import build_image
from tests.scanning.test_formats import (
    HARBOR_SCHEMA,
    TRIVY_SCHEMA,
    assert_matches,
    assert_valid_cyclonedx,
    assert_valid_sarif,
    assert_valid_spdx,
)
from tests.scanning.test_registry_scans import _platform_image

pytestmark = pytest.mark.clients  # skopeo pushes

REPO = "/api/v1/repositories/library/app"
MULTI = "/api/v1/repositories/library/multi"
PROBLEM = "application/problem+json"
STRANGER = ("formats-stranger", "formats-stranger-password")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with an image (``library/app:v1``), a two-platform index
    (``library/multi:v1``) and an image whose scan failed (``library/broken:v1``), all
    scanned; and an account with no permission on any of them."""
    tmp = tmp_path_factory.mktemp("formats")
    layout = OciLayout(tmp / "multi")
    amd64 = _platform_image(layout, "amd64", [dpkg_entry("epochpkg", "1:1.0-1")])
    arm64 = _platform_image(layout, "arm64", [dpkg_entry("lastpkg", "1.5-1", arch="arm64")])
    index = layout.index([(amd64, "linux", "amd64"), (arm64, "linux", "arm64")])
    layout.tag(index, "multi")
    build_image(tmp / "layout")
    with scan_server(tmp / "server") as server, server.client() as c:
        digest = push(server, tmp, f"oci:{tmp / 'layout'}:latest", "app:v1")
        push(server, tmp, f"oci:{layout.root}:multi", "multi:v1", all_images=True)
        push_image(c, "library/broken", "v1")
        image = wait_scan(c, f"{REPO}/tags/v1/scan")
        multi = wait_scan(c, f"{MULTI}/tags/v1/scan")
        broken = wait_scan(c, "/api/v1/repositories/library/broken/tags/v1/scan")
        assert image["status"] == multi["status"] == "complete"
        assert broken["status"] == "failed", broken
        r = c.post("/api/v1/accounts", json={"name": STRANGER[0], "password": STRANGER[1]})
        assert r.status_code == 201, r.text
        yield {
            "server": server,
            "client": c,
            "digest": digest,
            "image": image,
            "index": index["digest"],
            "broken": broken["digest"],
        }


def _get(c: httpx.Client, path: str, **params: str) -> httpx.Response:
    return c.get(path, params=params)


def _problem(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    detail: str = r.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


def _ids(image: dict[str, Any]) -> set[str]:
    return {v["id"] for v in image["vulnerabilities"]}


def test_every_report_format_of_a_tag_and_a_digest(scanned: dict[str, Any]) -> None:
    c: httpx.Client = scanned["client"]
    expected = _ids(scanned["image"])
    assert expected  # the image has findings: the formats must carry them
    for base in (f"{REPO}/tags/v1/scan", f"{REPO}/manifests/{scanned['digest']}/scan"):
        for fmt, media_type in REPORT_FORMATS.items():
            r = _get(c, base, format=fmt)
            assert r.status_code == 200, (fmt, r.text)
            assert r.headers["content-type"] == media_type, fmt
            doc = json.loads(r.content)
            if fmt == "dockyard":  # the default, unchanged: the API's report
                assert doc == _get(c, base).json()
                assert _ids(doc) == expected
            elif fmt == "harbor":
                assert_matches(HARBOR_SCHEMA, doc)
                assert doc["artifact"]["digest"] == scanned["digest"]
                assert doc["artifact"]["repository"] == "library/app"
                assert doc["artifact"]["mime_type"] == "application/vnd.oci.image.manifest.v1+json"
                assert ("tag" in doc["artifact"]) == ("/tags/" in base)
                assert {v["id"] for v in doc["vulnerabilities"]} == expected
            elif fmt == "trivy":
                assert_matches(TRIVY_SCHEMA, doc)
                found = {
                    v["VulnerabilityID"]
                    for result in doc["Results"]
                    for v in result.get("Vulnerabilities", [])
                }
                assert found == expected
                layers = {
                    v["Layer"]["Digest"]
                    for res in doc["Results"]
                    for v in res.get("Vulnerabilities", [])
                }
                assert layers <= {x["digest"] for x in scanned["image"]["layers"]}
            elif fmt == "sarif":
                assert_valid_sarif(doc)
                assert {r["ruleId"] for r in doc["runs"][0]["results"]} == expected
            else:
                assert_valid_cyclonedx(r.text)
                assert {v["id"] for v in doc["vulnerabilities"]} == expected


def test_sboms_in_both_formats(scanned: dict[str, Any]) -> None:
    c: httpx.Client = scanned["client"]
    path = f"{REPO}/manifests/{scanned['digest']}/sbom"
    packages = {(p["name"], p["version"]) for p in scanned["image"]["packages"]}
    r = _get(c, path)  # CycloneDX by default
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == SBOM_FORMATS["cyclonedx"]
    assert_valid_cyclonedx(r.text)
    bom = r.json()
    assert "vulnerabilities" not in bom or bom["vulnerabilities"] == []
    listed = {(x["name"], x.get("version")) for x in bom["components"] if "purl" in x}
    assert packages <= listed
    assert all(x["purl"].startswith("pkg:") for x in bom["components"] if "purl" in x)
    assert _get(c, path, format="cyclonedx").content == r.content

    r = _get(c, path, format="spdx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == SBOM_FORMATS["spdx"]
    doc = r.json()
    assert_valid_spdx(doc)
    assert packages <= {(p["name"], p.get("versionInfo")) for p in doc["packages"]}


def test_an_index_combines_platforms_where_the_format_can(scanned: dict[str, Any]) -> None:
    c: httpx.Client = scanned["client"]
    scan = f"{MULTI}/tags/v1/scan"
    trivy = _get(c, scan, format="trivy")
    assert trivy.status_code == 200, trivy.text
    doc = trivy.json()
    assert_matches(TRIVY_SCHEMA, doc)
    assert doc["Metadata"]["RepoDigests"] == [f"library/multi@{scanned['index']}"]
    targets = [result["Target"] for result in doc["Results"]]
    assert any(t.endswith("(linux/amd64)") for t in targets), targets
    assert any(t.endswith("(linux/arm64)") for t in targets), targets
    sarif = _get(c, scan, format="sarif").json()
    assert_valid_sarif(sarif)
    assert sorted(run["properties"]["platform"] for run in sarif["runs"]) == [
        "linux/amd64",
        "linux/arm64",
    ]
    # Harbor's report and a CycloneDX document describe one image: name a platform.
    for fmt in ("harbor", "cyclonedx"):
        _problem(_get(c, scan, format=fmt), 400, "platform=", "linux/amd64", "linux/arm64")
    harbor = _get(c, scan, format="harbor", platform="linux/arm64")
    assert harbor.status_code == 200, harbor.text
    assert_matches(HARBOR_SCHEMA, harbor.json())
    assert [v["package"] for v in harbor.json()["vulnerabilities"]] == ["lastpkg"]
    cyclonedx = _get(c, scan, format="cyclonedx", platform="linux/amd64")
    assert_valid_cyclonedx(cyclonedx.text)
    _problem(_get(c, scan, format="harbor", platform="linux/s390x"), 400, "linux/s390x")
    # The engine's shape of one platform, as that platform's own result reads.
    one = _get(c, scan, platform="linux/arm64").json()
    assert one["platform"] == "linux/arm64"
    assert one == c.get(f"{MULTI}/manifests/{one['digest']}/scan").json()
    # The SBOM of one platform.
    sbom = f"{MULTI}/manifests/{scanned['index']}/sbom"
    _problem(_get(c, sbom), 400, "platform=")
    spdx = _get(c, sbom, format="spdx", platform="linux/amd64")
    assert spdx.status_code == 200, spdx.text
    assert_valid_spdx(spdx.json())
    assert "epochpkg" in {p["name"] for p in spdx.json()["packages"]}


def test_bad_formats_incomplete_scans_and_strangers(scanned: dict[str, Any]) -> None:
    c: httpx.Client = scanned["client"]
    server: DockyardServer = scanned["server"]
    scan = f"{REPO}/tags/v1/scan"
    sbom = f"{REPO}/manifests/{scanned['digest']}/sbom"
    detail = _problem(_get(c, scan, format="grype"), 400, "'grype'")
    for name in REPORT_FORMATS:
        assert name in detail
    _problem(_get(c, sbom, format="harbor"), 400, "'harbor'", "cyclonedx", "spdx")
    # A scan that failed has no result to render: 409, saying why.
    broken = f"/api/v1/repositories/library/broken/manifests/{scanned['broken']}"
    for path, fmt in ((f"{broken}/scan", "sarif"), (f"{broken}/sbom", "spdx")):
        r = _get(c, path, format=fmt)
        _problem(r, 409, "failed", "no complete result")
        assert r.json()["code"] == "ScanNotComplete"
    # Nothing scanned under this digest: 404, as for the engine's format.
    missing = "sha256:" + "0" * 64
    _problem(_get(c, f"{REPO}/manifests/{missing}/sbom"), 404, missing)
    # No permission: 403 before anything is read or rendered; no login: 401.
    with server.client(auth=STRANGER) as stranger:
        _problem(_get(stranger, scan, format="trivy"), 403, "cr:GetRepoTagScanResult")
        _problem(_get(stranger, sbom, format="spdx"), 403, "cr:GetRepoTagScanResult")
    with server.client(auth=None) as anonymous:
        assert _get(anonymous, sbom).status_code == 401
