"""``GET /api/v1/repositories/{namespace}/{repository}/manifests/{reference}``: a manifest
explained (kind, platforms, config, history beside the layers, referrers), on every
backend, for images, an index, and artifacts that are not images.

Content is pushed over /v2 with manifests written by hand here, so that what the route
says is checked against what was pushed, not against the server's own parsing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.backends import all_backends_module
from tests.fixtures.oci import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_manifest,
    put_manifest,
    sha256,
)
from tests.fixtures.server import DockyardServer

pytestmark = all_backends_module

PROBLEM = "application/problem+json"
OWNER = ("details-owner", "details-owner-password")
STRANGER = ("details-stranger", "details-stranger-password")
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SPDX = "application/spdx+json"


@pytest.fixture(scope="module")
def server(registry: DockyardServer) -> DockyardServer:
    with registry.client() as admin:
        for name, password in (OWNER, STRANGER):
            r = admin.post("/api/v1/accounts", json={"name": name, "password": password})
            assert r.status_code == 201, r.text
    with registry.client(auth=OWNER) as owner:
        r = owner.put("/api/v1/me/registry-password", json={"password": OWNER[1]})
        assert r.status_code == 204, r.text
        assert owner.post("/api/v1/namespaces", json={"name": "details"}).status_code == 201
    return registry


@pytest.fixture
def owner(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=OWNER) as client:
        yield client


def _problem(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"], r.json()["detail"]


def _image_config(arch: str = "amd64") -> bytes:
    return json.dumps(
        {
            "created": "2026-11-30T10:00:00Z",
            "author": "Dockyard tests <tests@example.invalid>",
            "architecture": arch,
            "os": "linux",
            "config": {
                "Entrypoint": ["/usr/bin/app", "--serve"],
                "Cmd": ["--port", "8080"],
                "Env": ["PATH=/usr/bin", "MODE=production"],
                "ExposedPorts": {"8080/tcp": {}, "9090/udp": {}},
                "Labels": {"org.opencontainers.image.title": "app", "team": "tools"},
                "WorkingDir": "/srv/app",
                "User": "app:app",
            },
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [
                {"created": "2026-11-30T09:00:00Z", "created_by": "ADD rootfs.tar /"},
                {"created_by": 'ENV MODE="production"', "empty_layer": True},
                {"created_by": "COPY app /usr/bin/app", "comment": "buildkit"},
                {"created_by": 'CMD ["--port", "8080"]', "empty_layer": True},
            ],
            "nonce": os.urandom(8).hex(),
        }
    ).encode()


def _layers(count: int = 2) -> list[tuple[str, bytes]]:
    return [(OCI_LAYER, os.urandom(1000 + 100 * i)) for i in range(count)]


def test_an_image_by_tag_and_by_digest(owner: httpx.Client) -> None:
    config, layers = _image_config(), _layers()
    digest, manifest = push_manifest(owner, "details/app", "v1", (OCI_CONFIG, config), layers)
    r = owner.get("/api/v1/repositories/details/app/manifests/v1")
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["digest"] == digest
    assert found["media_type"] == OCI_MANIFEST
    assert found["kind"] == "image"
    assert found["kind_label"] == "Container image"
    assert json.loads(found["raw"]) == manifest
    assert found["size"] == len(found["raw"].encode())
    assert found["config"]["digest"] == sha256(config)
    assert found["config"]["size"] == len(config)
    assert found["total_size"] == found["size"] + len(config) + sum(len(d) for _, d in layers)
    tag = owner.get("/api/v1/repositories/details/app/tags/v1").json()
    assert found["total_size"] == tag["size"]
    image = found["image"]
    assert image["created"] == "2026-11-30T10:00:00Z"
    assert image["author"] == "Dockyard tests <tests@example.invalid>"
    assert (image["os"], image["architecture"]) == ("linux", "amd64")
    assert image["entrypoint"] == ["/usr/bin/app", "--serve"]
    assert image["cmd"] == ["--port", "8080"]
    assert image["env"] == ["PATH=/usr/bin", "MODE=production"]
    assert image["exposed_ports"] == ["8080/tcp", "9090/udp"]
    assert image["labels"] == {"org.opencontainers.image.title": "app", "team": "tools"}
    assert image["working_dir"] == "/srv/app"
    assert image["user"] == "app:app"
    # Each step beside the layer it made; ENV and CMD made none.
    steps = [(h["created_by"], h["empty_layer"], h["layer"]) for h in found["history"]]
    assert [(by, empty) for by, empty, _ in steps] == [
        ("ADD rootfs.tar /", False),
        ('ENV MODE="production"', True),
        ("COPY app /usr/bin/app", False),
        ('CMD ["--port", "8080"]', True),
    ]
    assert [layer and layer["digest"] for _, _, layer in steps] == [
        sha256(layers[0][1]),
        None,
        sha256(layers[1][1]),
        None,
    ]
    assert steps[2][2]["size"] == len(layers[1][1])
    assert found["history"][2]["comment"] == "buildkit"
    assert found["referrers"] == []
    assert found["subject"] is None

    by_digest = owner.get(f"/api/v1/repositories/details/app/manifests/{digest}")
    assert by_digest.status_code == 200, by_digest.text
    assert by_digest.json() == found


def test_an_index_lists_its_platforms(owner: httpx.Client) -> None:
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        config, layers = _image_config(arch), _layers(1)
        _, manifest = push_manifest(
            owner, "details/multi", digest_ref(), (OCI_CONFIG, config), layers
        )
        body = json.dumps(manifest).encode()
        platform = {
            "os": "linux",
            "architecture": arch,
            **({"variant": variant} if variant else {}),
        }
        total = len(body) + len(config) + len(layers[0][1])
        children.append((descriptor(OCI_MANIFEST, body, platform=platform), total))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [c for c, _ in children]}
    r = put_manifest(owner, "details/multi", "latest", index, OCI_INDEX)
    assert r.status_code == 201, r.text

    found = owner.get("/api/v1/repositories/details/multi/manifests/latest").json()
    assert found["kind"] == "index"
    tag = owner.get("/api/v1/repositories/details/multi/tags/latest").json()
    assert found["total_size"] == tag["size"] == found["size"] + sum(t for _, t in children)
    assert found["kind_label"] == "Multi-platform image"
    assert "history" not in found
    platforms = found["platforms"]
    assert [(p["os"], p["architecture"], p["variant"]) for p in platforms] == [
        ("linux", "amd64", None),
        ("linux", "arm64", "v8"),
    ]
    for entry, (child, total) in zip(platforms, children, strict=True):
        assert entry["digest"] == child["digest"]
        assert entry["size"] == child["size"]
        assert entry["total_size"] == total
        assert entry["present"] is True
        assert entry["kind"] == "image"
        assert entry["role"] == "image"
        # Each platform's own details, by digest.
        one = owner.get(f"/api/v1/repositories/details/multi/manifests/{entry['digest']}")
        assert one.json()["image"]["architecture"] == entry["architecture"]


def digest_ref() -> str:
    """A tag of its own for each platform image pushed before its index."""
    return f"part-{os.urandom(4).hex()}"


def test_referrers_and_artifacts_are_shown_as_what_they_are(owner: httpx.Client) -> None:
    digest, manifest = push_manifest(
        owner, "details/signed", "v1", (OCI_CONFIG, _image_config()), _layers(1)
    )
    subject = descriptor(OCI_MANIFEST, json.dumps(manifest).encode())
    empty = (OCI_EMPTY, b"{}")
    signature = (COSIGN_SIG, os.urandom(64))
    sig_digest, _ = push_manifest(
        owner,
        "details/signed",
        digest_ref(),
        empty,
        [signature],
        artifactType=COSIGN_SIG,
        subject=subject,
        annotations={"dev.sigstore.cosign/signer": "tests"},
    )
    sbom_digest, _ = push_manifest(
        owner,
        "details/signed",
        digest_ref(),
        empty,
        [(SPDX, b'{"spdxVersion": "SPDX-2.3"}')],
        artifactType=SPDX,
        subject=subject,
    )
    found = owner.get("/api/v1/repositories/details/signed/manifests/v1").json()
    referrers = {r["digest"]: r for r in found["referrers"]}
    assert set(referrers) == {sig_digest, sbom_digest}
    assert referrers[sig_digest]["kind"] == "signature"
    assert referrers[sig_digest]["artifact_type"] == COSIGN_SIG
    assert referrers[sig_digest]["annotations"] == {"dev.sigstore.cosign/signer": "tests"}
    assert referrers[sig_digest]["media_type"] == OCI_MANIFEST
    assert referrers[sbom_digest]["kind"] == "sbom"
    assert referrers[sbom_digest]["kind_label"] == "SBOM"

    # The signature itself: a signature, its subject named, no image history.
    sig = owner.get(f"/api/v1/repositories/details/signed/manifests/{sig_digest}").json()
    assert sig["kind"] == "signature"
    assert sig["subject"]["digest"] == digest
    assert sig["image"] is None
    assert sig["history"] is None
    assert [layer["media_type"] for layer in sig["layers"]] == [COSIGN_SIG]


def test_a_helm_chart_and_a_wasm_module(owner: httpx.Client) -> None:
    chart = json.dumps({"name": "tools", "version": "1.2.3", "apiVersion": "v2"}).encode()
    push_manifest(
        owner, "details/charts", "1.2.3", (HELM_CONFIG, chart), [(HELM_LAYER, os.urandom(300))]
    )
    found = owner.get("/api/v1/repositories/details/charts/manifests/1.2.3").json()
    assert found["kind"] == "helm-chart"
    assert found["kind_label"] == "Helm chart"
    assert found["config"]["media_type"] == HELM_CONFIG
    assert found["config_content"] == {"name": "tools", "version": "1.2.3", "apiVersion": "v2"}
    assert [layer["media_type"] for layer in found["layers"]] == [HELM_LAYER]
    assert found["image"] is None

    module = (WASM_LAYER, b"\0asm\1\0\0\0" + os.urandom(100))
    push_manifest(owner, "details/wasm", "v1", (WASM_CONFIG, b'{"architecture": "wasm"}'), [module])
    wasm = owner.get("/api/v1/repositories/details/wasm/manifests/v1").json()
    assert wasm["kind"] == "wasm"
    assert wasm["kind_label"] == "WebAssembly module"
    assert wasm["history"] is None


def test_bad_references_and_who_may_read(server: DockyardServer, owner: httpx.Client) -> None:
    push_manifest(owner, "details/private", "v1", (OCI_CONFIG, _image_config()), _layers(1))
    base = "/api/v1/repositories/details/private/manifests"
    _problem(owner.get(f"{base}/nope"), 404, "tag 'nope' does not exist in details/private")
    missing = "sha256:" + "0" * 64
    _problem(owner.get(f"{base}/{missing}"), 404, f"manifest '{missing}' does not exist")
    _problem(owner.get(f"{base}/sha256:zz"), 400, "manifest 'sha256:zz'")
    _problem(owner.get(f"{base}/-bad"), 400, "tag '-bad'")
    _problem(
        owner.get("/api/v1/repositories/details/absent/manifests/v1"),
        404,
        "repository details/absent does not exist",
    )
    with server.client(auth=None) as anonymous:
        _problem(anonymous.get(f"{base}/v1"), 401, "log in first")
    with server.client(auth=STRANGER) as stranger:
        _problem(stranger.get(f"{base}/v1"), 403, "cr:PullRepository")
