"""``oci.describe``: what a manifest is, read from JSON that any client may have pushed."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.oci import describe
from dockyard.oci import mediatypes as mt


def _manifest(config_type: str, *layer_types: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [
            {"mediaType": t, "digest": "sha256:" + "b" * 64, "size": 10} for t in layer_types
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("doc", "media_type", "kind"),
    [
        (
            _manifest(mt.OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip"),
            mt.OCI_MANIFEST,
            describe.IMAGE,
        ),
        (_manifest(mt.DOCKER_CONFIG, "x/y"), mt.DOCKER_MANIFEST, describe.IMAGE),
        ({"manifests": []}, mt.OCI_INDEX, describe.INDEX),
        (
            {"manifests": [], "artifactType": "application/x-bundle"},
            mt.OCI_INDEX,
            describe.ARTIFACT_INDEX,
        ),
        (
            _manifest(describe.HELM_CONFIG, "application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
            mt.OCI_MANIFEST,
            describe.HELM,
        ),
        (
            _manifest("application/vnd.wasm.config.v0+json", "application/wasm"),
            mt.OCI_MANIFEST,
            describe.WASM,
        ),
        (
            _manifest(mt.OCI_CONFIG, "application/vnd.wasm.content.layer.v1+wasm"),
            mt.OCI_MANIFEST,
            describe.WASM,
        ),
        # cosign's tag-schema signature: an image config, a simplesigning layer.
        (
            _manifest(mt.OCI_CONFIG, describe.COSIGN_SIGNATURE_LAYER),
            mt.OCI_MANIFEST,
            describe.SIGNATURE,
        ),
        (
            _manifest(mt.OCI_EMPTY, "x/y", artifactType="application/vnd.cncf.notary.signature"),
            mt.OCI_MANIFEST,
            describe.SIGNATURE,
        ),
        (
            _manifest(mt.OCI_EMPTY, "x/y", artifactType="application/spdx+json"),
            mt.OCI_MANIFEST,
            describe.SBOM,
        ),
        (
            _manifest(mt.OCI_EMPTY, "x/y", artifactType="application/vnd.cyclonedx+json"),
            mt.OCI_MANIFEST,
            describe.SBOM,
        ),
        (
            _manifest(mt.OCI_EMPTY, "x/y", artifactType="application/vnd.in-toto+json"),
            mt.OCI_MANIFEST,
            describe.ATTESTATION,
        ),
        # An image config but an artifactType: an artifact, not an image.
        (
            _manifest(mt.OCI_CONFIG, "x/y", artifactType="application/x-thing"),
            mt.OCI_MANIFEST,
            describe.ARTIFACT,
        ),
        (_manifest("application/x-config", "x/y"), mt.OCI_MANIFEST, describe.ARTIFACT),
        # Nonsense where objects belong is no crash.
        ({"config": "nope", "layers": "nope"}, mt.OCI_MANIFEST, describe.ARTIFACT),
    ],
)
def test_classify(doc: dict[str, Any], media_type: str, kind: describe.Kind) -> None:
    assert describe.classify(doc, media_type) == kind


def test_history_pairs_steps_with_layers() -> None:
    layers = [{"digest": f"sha256:{n}"} for n in "abc"]
    config = {
        "history": [
            {"created_by": "ADD /", "created": "2026-01-01T00:00:00Z"},
            {"created_by": "ENV X=1", "empty_layer": True},
            {"created_by": "RUN make"},
            "not a step",
        ]
    }
    steps = describe.history(config, layers)
    assert [(s["created_by"], s["empty_layer"], s["layer"]) for s in steps] == [
        ("ADD /", False, layers[0]),
        ("ENV X=1", True, None),
        ("RUN make", False, layers[1]),
        # A layer with no step left is shown on its own.
        (None, False, layers[2]),
    ]
    assert describe.history({"history": "nope"}, layers[:1])[0]["layer"] == layers[0]


def test_image_config_reads_only_well_typed_fields() -> None:
    found = describe.image_config(
        {
            "created": "2026-01-01T00:00:00Z",
            "architecture": "arm64",
            "variant": "v8",
            "config": {
                "Entrypoint": "/bin/app",
                "Cmd": ["a", 1, "b"],
                "Env": None,
                "ExposedPorts": {"443/tcp": {}, "80/tcp": {}},
                "Labels": {"a": "b", "n": 1},
                "User": 0,
            },
        }
    )
    assert found["entrypoint"] == ["/bin/app"]
    assert found["cmd"] == ["a", "b"]
    assert found["env"] == []
    assert found["exposed_ports"] == ["443/tcp", "80/tcp"]
    assert found["labels"] == {"a": "b"}
    assert found["user"] is None
    assert (found["architecture"], found["variant"]) == ("arm64", "v8")
    assert describe.image_config({"config": []})["cmd"] == []


def test_platforms_mark_what_rides_along() -> None:
    entries = describe.platforms(
        {
            "manifests": [
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": "sha256:" + "1" * 64,
                    "size": 500,
                    "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
                },
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": "sha256:" + "2" * 64,
                    "size": 300,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {describe.DOCKER_REFERENCE_TYPE: "attestation-manifest"},
                },
                "junk",
            ]
        }
    )
    assert [(e["os"], e["architecture"], e["variant"], e["role"]) for e in entries] == [
        ("linux", "arm", "v7", "image"),
        ("unknown", "unknown", None, "attestation-manifest"),
    ]
    assert entries[0]["size"] == 500
