"""Manifests: push and pull of every supported type, Accept negotiation, deletion by
digest and by tag, and every way to push a bad one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.registry.helpers import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Pushed,
    assert_error,
    descriptor,
    digest_of,
    dumps,
    index_body,
    push_blob,
    push_image,
    push_manifest,
    put_manifest,
    unique,
)


def _assert_pull(c: httpx.Client, repo: str, reference: str, pushed: Pushed) -> None:
    for method in ("GET", "HEAD"):
        r = c.request(method, f"/v2/{repo}/manifests/{reference}")
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == pushed.media_type
        assert r.headers["Docker-Content-Digest"] == pushed.digest
        assert r.headers["Content-Length"] == str(pushed.size)
        assert r.content == (pushed.body if method == "GET" else b"")


def _tags(c: httpx.Client, repo: str) -> list[str]:
    r = c.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    tags: list[str] = r.json()["tags"]
    return tags


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_push_and_pull_image_manifest_by_tag(client: httpx.Client, repo: str, docker: bool) -> None:
    pushed = push_image(client, repo, "v1", docker=docker)
    assert pushed.media_type == (DOCKER_MANIFEST if docker else OCI_MANIFEST)
    _assert_pull(client, repo, "v1", pushed)
    _assert_pull(client, repo, pushed.digest, pushed)
    assert _tags(client, repo) == ["v1"]


def test_put_response_headers(client: httpx.Client, repo: str) -> None:
    config, layer = b'{"os":"linux"}', b"layer"
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    r = put_manifest(client, repo, "latest", body, OCI_MANIFEST)
    assert r.status_code == 201
    digest = digest_of(body)
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"] == f"/v2/{repo}/manifests/{digest}"
    assert "OCI-Subject" not in r.headers


def test_push_by_digest_creates_no_tag(client: httpx.Client, repo: str) -> None:
    pushed = push_image(client, repo)  # by digest
    _assert_pull(client, repo, pushed.digest, pushed)
    assert _tags(client, repo) == []
    assert _events(client, repo) == [("manifest_push", None, pushed.digest)]


def _image_body(c: httpx.Client, repo: str) -> bytes:
    """An image manifest whose blobs are in ``repo``, not pushed itself."""
    config, layer = dumps({"seed": unique()}), unique("layer").encode()
    push_blob(c, repo, config)
    push_blob(c, repo, layer)
    return dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )


def _events(c: httpx.Client, repo: str) -> list[tuple[str, str | None, str]]:
    """``repo``'s image events, oldest first: (type, tag, digest); not the scans' (the
    workers scan each push when they get to it)."""
    r = c.get("/api/v1/events", params={"repository": repo})
    assert r.status_code == 200, r.text
    items = [e for e in r.json()["items"] if e["type"] != "scan_completed"]
    return [(e["type"], e["tag"], e["digest"]) for e in reversed(items) if e["digest"]]


def test_push_by_digest_with_tags(client: httpx.Client, repo: str) -> None:
    """The spec's next release: each ``tag`` parameter tags the manifest, and the answer
    has one ``OCI-Tag`` header per tag applied (a repeated one counts once)."""
    old = push_image(client, repo, "b")
    body = _image_body(client, repo)
    digest = digest_of(body)
    r = client.put(
        f"/v2/{repo}/manifests/{digest}",
        params=[("tag", "a"), ("tag", "b"), ("tag", "a"), ("tag", "v1.0")],
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers.get_list("OCI-Tag") == ["a", "b", "v1.0"]
    assert _tags(client, repo) == ["a", "b", "v1.0"]
    pushed = Pushed(digest, body, OCI_MANIFEST, len(body))
    for tag in ("a", "b", "v1.0"):  # "b" moved from the old image
        _assert_pull(client, repo, tag, pushed)
    # One push event per tag, in the order asked, and no manifest_push.
    assert _events(client, repo) == [
        ("push", "b", old.digest),
        ("push", "a", digest),
        ("push", "b", digest),
        ("push", "v1.0", digest),
    ]


def test_push_by_digest_with_a_bad_tag_applies_nothing(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "keep")
    body = _image_body(client, repo)
    digest = digest_of(body)
    r = client.put(
        f"/v2/{repo}/manifests/{digest}",
        params=[("tag", "good"), ("tag", "keep"), ("tag", "-bad")],
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    error = assert_error(r, 400, "MANIFEST_INVALID")
    assert error["detail"] == {"tag": "-bad"}
    assert "OCI-Tag" not in r.headers
    # All or nothing: neither the manifest nor any tag, and "keep" did not move.
    assert _tags(client, repo) == ["keep"]
    assert_error(client.head(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert [e[0] for e in _events(client, repo)] == ["push"]


def test_push_by_digest_with_too_many_tags(client: httpx.Client, repo: str) -> None:
    body = _image_body(client, repo)
    r = client.put(
        f"/v2/{repo}/manifests/{digest_of(body)}",
        params=[("tag", f"t{i}") for i in range(101)],
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(r, 400, "MANIFEST_INVALID")
    assert _tags(client, repo) == []


def test_push_by_tag_ignores_tag_parameters(client: httpx.Client, repo: str) -> None:
    """``tag`` parameters go with a push by digest; a push by tag moves its own alone."""
    body = _image_body(client, repo)
    r = client.put(
        f"/v2/{repo}/manifests/latest",
        params={"tag": "other"},
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201, r.text
    assert "OCI-Tag" not in r.headers
    assert _tags(client, repo) == ["latest"]


def test_bytes_are_kept_exactly(client: httpx.Client, repo: str) -> None:
    """The digest is of the bytes pushed, whitespace and key order included."""
    config, layer = b"{}", b"l"
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    doc = {
        "layers": [descriptor(OCI_LAYER, layer)],
        "config": descriptor(OCI_CONFIG, config),
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
    }
    body = json.dumps(doc, indent=3).encode() + b"\n\n"
    pushed = push_manifest(client, repo, "pretty", body, OCI_MANIFEST)
    _assert_pull(client, repo, "pretty", pushed)


def test_manifest_without_media_type_field(client: httpx.Client, repo: str) -> None:
    """An OCI manifest may omit ``mediaType``; the Content-Type names it."""
    config, layer = b"{}", b"l2"
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = dumps(
        {
            "schemaVersion": 2,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    pushed = push_manifest(client, repo, "nomt", body, OCI_MANIFEST)
    _assert_pull(client, repo, "nomt", pushed)


def test_content_type_with_parameters(client: httpx.Client, repo: str) -> None:
    config = b"{}"
    push_blob(client, repo, config)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
        }
    )
    r = put_manifest(client, repo, "params", body, f"{OCI_MANIFEST}; charset=utf-8")
    assert r.status_code == 201, r.text
    assert client.head(f"/v2/{repo}/manifests/params").headers["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-list"])
def test_push_and_pull_index(client: httpx.Client, repo: str, docker: bool) -> None:
    children = [push_image(client, repo, docker=docker) for _ in range(2)]
    body = index_body(children, docker=docker)
    media_type = DOCKER_LIST if docker else OCI_INDEX
    pushed = push_manifest(client, repo, "multi", body, media_type)
    _assert_pull(client, repo, "multi", pushed)
    _assert_pull(client, repo, pushed.digest, pushed)
    # The children are still addressable by digest.
    for child in children:
        _assert_pull(client, repo, child.digest, child)


def test_index_by_digest(client: httpx.Client, repo: str) -> None:
    child = push_image(client, repo)
    body = index_body([child])
    pushed = push_manifest(client, repo, digest_of(body), body, OCI_INDEX)
    _assert_pull(client, repo, pushed.digest, pushed)


def test_empty_index(client: httpx.Client, repo: str) -> None:
    body = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    pushed = push_manifest(client, repo, "empty", body, OCI_INDEX)
    _assert_pull(client, repo, "empty", pushed)


def test_push_by_sha512_digest(client: httpx.Client, repo: str) -> None:
    config = b"{}"
    push_blob(client, repo, config)
    body = dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config)}
    )
    digest = digest_of(body, "sha512")
    r = put_manifest(client, repo, digest, body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    got = client.get(f"/v2/{repo}/manifests/{digest}")
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["Docker-Content-Digest"] == digest


def test_retag_and_move_tag(client: httpx.Client, repo: str) -> None:
    a = push_image(client, repo, "a")
    push_manifest(client, repo, "b", a.body, a.media_type)
    assert _tags(client, repo) == ["a", "b"]
    other = push_image(client, repo)
    push_manifest(client, repo, "a", other.body, other.media_type)
    assert client.head(f"/v2/{repo}/manifests/a").headers["Docker-Content-Digest"] == other.digest
    assert client.head(f"/v2/{repo}/manifests/b").headers["Docker-Content-Digest"] == a.digest


def test_unknown_manifest(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "exists")
    assert_error(client.get(f"/v2/{repo}/manifests/missing"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.head(f"/v2/{repo}/manifests/missing"), 404, "MANIFEST_UNKNOWN")
    unknown = digest_of(b"no such manifest")
    assert_error(client.get(f"/v2/{repo}/manifests/{unknown}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/{unknown}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/missing"), 404, "MANIFEST_UNKNOWN")


def test_manifest_of_another_repository_is_unknown_here(client: httpx.Client, repo: str) -> None:
    other = f"library/{unique()}"
    pushed = push_image(client, other, "t")
    push_image(client, repo, "mine")
    assert_error(client.get(f"/v2/{repo}/manifests/{pushed.digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/t"), 404, "MANIFEST_UNKNOWN")


# -- Accept negotiation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("*/*", True),
        (DOCKER_MANIFEST, True),
        (f"{OCI_MANIFEST}, {DOCKER_MANIFEST}", True),
        (f"{OCI_MANIFEST};q=0.9, {DOCKER_MANIFEST};q=0.5", True),
        ("application/json", True),  # names no manifest type: the client takes anything
        (OCI_MANIFEST, False),
        (f"{OCI_MANIFEST}, {OCI_INDEX}", False),
    ],
)
def test_accept_negotiation(client: httpx.Client, repo: str, accept: str | None, ok: bool) -> None:
    pushed = push_image(client, repo, "d", docker=True)
    headers = {"Accept": accept} if accept else {}
    for reference in ("d", pushed.digest):
        r = client.get(f"/v2/{repo}/manifests/{reference}", headers=headers)
        if ok:
            assert r.status_code == 200, r.text
            assert r.headers["Content-Type"] == DOCKER_MANIFEST
        else:
            assert_error(r, 404, "MANIFEST_UNKNOWN")


def test_accept_negotiation_for_an_index(client: httpx.Client, repo: str) -> None:
    child = push_image(client, repo)
    push_manifest(client, repo, "idx", index_body([child]), OCI_INDEX)
    r = client.get(f"/v2/{repo}/manifests/idx", headers={"Accept": OCI_MANIFEST})
    assert_error(r, 404, "MANIFEST_UNKNOWN")
    r = client.get(f"/v2/{repo}/manifests/idx", headers={"Accept": f"{OCI_MANIFEST},{OCI_INDEX}"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX


# -- deletion ----------------------------------------------------------------------------


def test_delete_by_digest_removes_its_tags(client: httpx.Client, repo: str) -> None:
    pushed = push_image(client, repo, "one")
    push_manifest(client, repo, "two", pushed.body, pushed.media_type)
    keep = push_image(client, repo, "keep")

    r = client.delete(f"/v2/{repo}/manifests/{pushed.digest}")
    assert r.status_code == 202
    for reference in (pushed.digest, "one", "two"):
        assert_error(client.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert _tags(client, repo) == ["keep"]
    _assert_pull(client, repo, "keep", keep)
    assert_error(client.delete(f"/v2/{repo}/manifests/{pushed.digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_by_tag_removes_only_the_tag(client: httpx.Client, repo: str) -> None:
    pushed = push_image(client, repo, "one")
    push_manifest(client, repo, "two", pushed.body, pushed.media_type)

    r = client.delete(f"/v2/{repo}/manifests/one")
    assert r.status_code == 202
    assert_error(client.get(f"/v2/{repo}/manifests/one"), 404, "MANIFEST_UNKNOWN")
    _assert_pull(client, repo, "two", pushed)
    _assert_pull(client, repo, pushed.digest, pushed)
    assert _tags(client, repo) == ["two"]
    assert_error(client.delete(f"/v2/{repo}/manifests/one"), 404, "MANIFEST_UNKNOWN")


def test_repush_after_delete(client: httpx.Client, repo: str) -> None:
    pushed = push_image(client, repo, "again")
    assert client.delete(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 202
    push_manifest(client, repo, "again", pushed.body, pushed.media_type)
    _assert_pull(client, repo, "again", pushed)


# -- references that must exist ----------------------------------------------------------


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_missing_blob(client: httpx.Client, repo: str, missing: str) -> None:
    config, layer = b'{"x":1}', b"present layer"
    if missing != "config":
        push_blob(client, repo, config)
    if missing != "layer":
        push_blob(client, repo, layer)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    r = put_manifest(client, repo, "broken", body, OCI_MANIFEST)
    error = assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digest"] == digest_of(config if missing == "config" else layer)
    assert_error(client.get(f"/v2/{repo}/manifests/broken"), 404, "MANIFEST_UNKNOWN")


def test_blob_in_another_repository_does_not_count(client: httpx.Client, repo: str) -> None:
    other = f"library/{unique()}"
    config = b'{"elsewhere":true}'
    push_blob(client, other, config)
    body = dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config)}
    )
    assert_error(put_manifest(client, repo, "x", body, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_foreign_layer_need_not_exist(client: httpx.Client, repo: str) -> None:
    config = b'{"os":"windows"}'
    push_blob(client, repo, config)
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": digest_of(b"windows base layer"),
        "size": 18,
        "urls": ["https://example.invalid/layer"],
    }
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, config),
            "layers": [foreign],
        }
    )
    assert put_manifest(client, repo, "win", body, DOCKER_MANIFEST).status_code == 201


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-list"])
def test_index_with_a_missing_child(client: httpx.Client, repo: str, docker: bool) -> None:
    present = push_image(client, repo, docker=docker)
    ghost = Pushed(digest_of(b"ghost"), b"ghost", present.media_type, 5)
    body = index_body([present, ghost], docker=docker)
    r = put_manifest(client, repo, "idx", body, DOCKER_LIST if docker else OCI_INDEX)
    error = assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digest"] == ghost.digest


# -- malformed manifests -----------------------------------------------------------------

_CONFIG = b'{"architecture":"arm64"}'


def _valid(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, _CONFIG),
        "layers": [],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


BAD_MANIFESTS: dict[str, tuple[bytes, str | None]] = {
    "not-json": (b"{this is not json", OCI_MANIFEST),
    "truncated": (dumps(_valid())[:-3], OCI_MANIFEST),
    "not-utf8": (b'{"schemaVersion":2,"x":"\xff\xfe"}', OCI_MANIFEST),
    "empty-body": (b"", OCI_MANIFEST),
    "json-array": (b"[1, 2, 3]", OCI_MANIFEST),
    "json-string": (b'"manifest"', OCI_MANIFEST),
    "json-null": (b"null", OCI_MANIFEST),
    "deeply-nested": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, OCI_MANIFEST),
    "deeply-nested-array": (b"[" * 200_000, OCI_MANIFEST),
    "no-schema-version": (dumps(_valid(schemaVersion=None)), OCI_MANIFEST),
    "schema-version-3": (dumps(_valid(schemaVersion=3)), OCI_MANIFEST),
    "schema-version-string": (dumps(_valid(schemaVersion="2")), OCI_MANIFEST),
    "schema-version-float": (dumps(_valid(schemaVersion=2.0)), OCI_MANIFEST),
    "schema-version-true": (dumps(_valid(schemaVersion=True)), OCI_MANIFEST),
    "media-type-mismatch": (dumps(_valid()), DOCKER_MANIFEST),
    "index-body-as-manifest": (
        dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        OCI_MANIFEST,
    ),
    "unknown-content-type": (dumps(_valid(mediaType=None)), "application/vnd.example+json"),
    "unknown-media-type": (
        dumps(_valid(mediaType="application/vnd.example+json")),
        "application/vnd.example+json",
    ),
    "media-type-not-string": (dumps(_valid(mediaType=7)), OCI_MANIFEST),
    "no-config": (dumps(_valid(config=None)), OCI_MANIFEST),
    "config-not-object": (dumps(_valid(config="sha256:abc")), OCI_MANIFEST),
    "bad-config-digest": (
        dumps(_valid(config={"mediaType": OCI_CONFIG, "digest": "sha256:xyz", "size": 2})),
        OCI_MANIFEST,
    ),
    "negative-size": (
        dumps(_valid(config={**descriptor(OCI_CONFIG, _CONFIG), "size": -1})),
        OCI_MANIFEST,
    ),
    "size-as-string": (
        dumps(_valid(config={**descriptor(OCI_CONFIG, _CONFIG), "size": "24"})),
        OCI_MANIFEST,
    ),
    "bad-descriptor-media-type": (
        dumps(_valid(config={**descriptor(OCI_CONFIG, _CONFIG), "mediaType": "nonsense"})),
        OCI_MANIFEST,
    ),
    "layers-not-list": (dumps(_valid(layers={"a": 1})), OCI_MANIFEST),
    "layer-not-object": (dumps(_valid(layers=[1])), OCI_MANIFEST),
    "annotations-not-strings": (dumps(_valid(annotations={"a": 1})), OCI_MANIFEST),
    "subject-not-descriptor": (dumps(_valid(subject="sha256:abc")), OCI_MANIFEST),
    "artifact-type-not-media-type": (dumps(_valid(artifactType="sbom")), OCI_MANIFEST),
    "docker-without-media-type": (dumps(_valid(mediaType=None)), DOCKER_MANIFEST),
    "docker-without-layers": (
        dumps(
            _valid(mediaType=DOCKER_MANIFEST, config=descriptor(DOCKER_CONFIG, _CONFIG), layers=[])
        ),
        DOCKER_MANIFEST,
    ),
    "index-manifests-not-list": (
        dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"}),
        OCI_INDEX,
    ),
    "index-with-layers": (
        dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "layers": []}),
        OCI_INDEX,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_malformed_manifest(client: httpx.Client, repo: str, case: str) -> None:
    push_blob(client, repo, _CONFIG)
    body, content_type = BAD_MANIFESTS[case]
    r = put_manifest(client, repo, "bad", body, content_type)
    assert_error(r, 400, "MANIFEST_INVALID")
    assert_error(client.head(f"/v2/{repo}/manifests/bad"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1_SIGNED, None])
def test_docker_schema1_is_refused_clearly(
    client: httpx.Client, repo: str, content_type: str | None
) -> None:
    body = dumps(
        {
            "schemaVersion": 1,
            "name": repo,
            "tag": "old",
            "architecture": "amd64",
            "fsLayers": [],
            "history": [],
            "signatures": [],
        }
    )
    error = assert_error(
        put_manifest(client, repo, "old", body, content_type), 400, "MANIFEST_INVALID"
    )
    assert "schema 1" in error["message"]


def test_manifest_too_large(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, _CONFIG)
    padding = "x" * (4 * 1024 * 1024)
    body = dumps(_valid(annotations={"padding": padding}))
    r = put_manifest(client, repo, "huge", body, OCI_MANIFEST)
    assert r.status_code in (400, 413)
    assert_error(r, r.status_code, "MANIFEST_INVALID")


def test_manifest_too_large_streamed(client: httpx.Client, repo: str) -> None:
    """Without a Content-Length the limit is enforced while reading."""
    body = dumps(_valid(annotations={"padding": "y" * (4 * 1024 * 1024)}))

    def stream() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = client.put(
        f"/v2/{repo}/manifests/huge",
        content=stream(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code in (400, 413)
    assert_error(r, r.status_code, "MANIFEST_INVALID")


def test_put_by_digest_with_other_content(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, _CONFIG)
    body = dumps(_valid())
    claimed = digest_of(body + b" ")
    r = put_manifest(client, repo, claimed, body, OCI_MANIFEST)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(client.head(f"/v2/{repo}/manifests/{claimed}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.head(f"/v2/{repo}/manifests/{digest_of(body)}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "tag", ["-leading-dash", ".leading-dot", "a" * 129, "has space", "semi;colon", "ta%09g"]
)
def test_invalid_tag(client: httpx.Client, repo: str, tag: str) -> None:
    push_blob(client, repo, _CONFIG)
    r = put_manifest(client, repo, tag, dumps(_valid()), OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")
    assert _tags(client, repo) == []


@pytest.mark.parametrize(
    "reference", ["-leading-dash", "a" * 129, "has space", "sha256:abc", "sha256:" + "A" * 64]
)
def test_pull_by_a_malformed_reference_is_unknown(
    client: httpx.Client, image_repo: tuple[str, Pushed], reference: str
) -> None:
    """GET and HEAD answer only 404 in the spec; PUT and DELETE refuse with 400."""
    repo = image_repo[0]
    error = assert_error(client.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert error["detail"] == {"reference": reference}
    assert_error(client.head(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    code = "DIGEST_INVALID" if ":" in reference else "MANIFEST_INVALID"
    assert_error(client.delete(f"/v2/{repo}/manifests/{reference}"), 400, code)
    body = image_repo[1]
    r = put_manifest(client, repo, reference, body.body, body.media_type)
    assert_error(r, 400, code)


def test_newline_in_a_tag_is_not_routed(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, _CONFIG)
    r = put_manifest(client, repo, "latest%0A", dumps(_valid()), OCI_MANIFEST)
    assert r.status_code in (400, 404)
    assert _tags(client, repo) == []


def test_longest_valid_tag(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, _CONFIG)
    tag = "_" + "A.b-9" * 25 + "xy"
    assert len(tag) == 128
    assert put_manifest(client, repo, tag, dumps(_valid()), OCI_MANIFEST).status_code == 201
    assert _tags(client, repo) == [tag]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_method_not_allowed(client: httpx.Client, repo: str, method: str) -> None:
    push_image(client, repo, "t")
    assert_error(client.request(method, f"/v2/{repo}/manifests/t"), 405, "UNSUPPORTED")


# -- artifacts and subjects --------------------------------------------------------------


def test_artifact_with_empty_config_and_subject(client: httpx.Client, repo: str) -> None:
    subject = push_image(client, repo, "app")
    push_blob(client, repo, EMPTY_JSON)
    payload = b'{"spdxVersion":"SPDX-2.3"}'
    push_blob(client, repo, payload)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [descriptor("application/spdx+json", payload)],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        }
    )
    r = put_manifest(client, repo, digest_of(body), body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == subject.digest
    got = client.get(f"/v2/{repo}/manifests/{digest_of(body)}")
    assert got.content == body


def test_artifact_with_empty_layer(client: httpx.Client, repo: str) -> None:
    """The image-spec's "empty" artifact: the empty descriptor as config and layer."""
    push_blob(client, repo, EMPTY_JSON)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signal",
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [descriptor(OCI_EMPTY, EMPTY_JSON)],
        }
    )
    r = put_manifest(client, repo, "signal", body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert "OCI-Subject" not in r.headers


def test_subject_need_not_exist(client: httpx.Client, repo: str) -> None:
    """Distribution spec v1.1: a manifest whose subject is missing is still accepted."""
    push_blob(client, repo, EMPTY_JSON)
    ghost = digest_of(b"a manifest pushed later, or never")
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": ghost, "size": 123},
        }
    )
    r = put_manifest(client, repo, digest_of(body), body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == ghost


def test_index_with_subject(client: httpx.Client, repo: str) -> None:
    subject = push_image(client, repo)
    child = push_image(client, repo)
    body = index_body(
        [child],
        artifactType="application/vnd.example.bundle",
        subject={"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.size},
    )
    r = put_manifest(client, repo, digest_of(body), body, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == subject.digest
