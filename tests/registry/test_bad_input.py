"""Bad input on purpose: names, namespaces, digests and paths. Every answer is the spec's
error code and status, and never a 5xx (the client fixtures fail the test on one)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer
from tests.registry.helpers import (
    Pushed,
    assert_error,
    digest_of,
    push_blob,
    raw_request,
    start_upload,
    unique,
)

ENDPOINTS = [
    ("GET", "manifests/latest"),
    ("PUT", "manifests/latest"),
    ("DELETE", "manifests/latest"),
    ("GET", "blobs/" + digest_of(b"x")),
    ("DELETE", "blobs/" + digest_of(b"x")),
    ("POST", "blobs/uploads/"),
    ("GET", "blobs/uploads/0f2bb2b8-4d8e-4f6d-9a0e-2f6f1c1c7a11"),
    ("GET", "tags/list"),
    ("GET", "referrers/" + digest_of(b"x")),
]

BAD_NAMES = [
    "Library/app",  # upper case
    "library/App",
    "library/app-",  # separator at the end
    "library/-app",
    "library/app..x",  # two dots
    "library/a___b",  # three underscores
    "library/a.-b",
    "library//app",  # empty component
    "library/a/b",  # three components
    "app",  # one component
    "library/" + "a" * 300,  # too long
    "library/a b",
    "library/a%20b",
    "library/%2e%2e",
    "%2e%2e/app",
    "library/app%09",  # a tab
    "library/caf%C3%A9",  # non-ASCII
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_name(client: httpx.Client, name: str) -> None:
    for method, endpoint in ENDPOINTS:
        r = client.request(method, f"/v2/{name}/{endpoint}")
        assert_error(r, 400, "NAME_INVALID")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/library/../x/tags/list",
        "/v2/../v2/library/x/tags/list",
        "/v2/library/./x/tags/list",
        "/v2/library/x/../y/tags/list",
        "/v2/library/%2e%2e/tags/list",
        "/v2/library/%2E%2E/manifests/latest",
        "/v2/%2e%2e/%2e%2e/blobs/uploads/",
        "/v2/library/x%2f..%2f..%2fy/tags/list",
    ],
)
def test_dot_segments_are_not_resolved(registry: DockyardServer, path: str) -> None:
    """Sent byte for byte: ``..`` is a name that breaks the grammar, never a way out."""
    status, headers, body = raw_request(registry.url, "GET", path, ("admin", ADMIN_PASSWORD))
    assert status == 400, (status, body[:300])
    assert headers["docker-distribution-api-version"] == "registry/2.0"
    assert "NAME_INVALID" in [e["code"] for e in json.loads(body)["errors"]]


def test_name_invalid_before_authentication(anon: httpx.Client) -> None:
    """A malformed name is refused as such; there is nothing to authorize."""
    assert_error(anon.get("/v2/Library/x/tags/list"), 400, "NAME_INVALID")


def test_longest_valid_name(client: httpx.Client) -> None:
    name = "library/" + "a" * (255 - len("library/"))
    assert len(name) == 255
    assert client.post(f"/v2/{name}/blobs/uploads/").status_code == 202
    assert_error(client.post(f"/v2/{name}a/blobs/uploads/"), 400, "NAME_INVALID")


@pytest.mark.parametrize("name", ["library/a__b", "library/a.b-c_d", "library/a--b", "library/0"])
def test_unusual_but_valid_names(client: httpx.Client, name: str) -> None:
    full = f"{name}-{unique()}" if not name.endswith("0") else f"{name}{unique()[2:]}"
    digest = push_blob(client, full, b"valid")
    assert client.head(f"/v2/{full}/blobs/{digest}").status_code == 200


INDEX = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'

# -- unknown namespaces and repositories -------------------------------------------------


@pytest.mark.parametrize(("method", "endpoint"), ENDPOINTS)
def test_unknown_namespace(client: httpx.Client, method: str, endpoint: str) -> None:
    name = f"nosuchns/{unique()}"
    r = client.request(
        method,
        f"/v2/{name}/{endpoint}",
        content=b"{}" if method == "PUT" else None,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    if endpoint.startswith("blobs/uploads/0f2bb2b8"):
        # The upload id is unknown whatever the repository.
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
        return
    if method == "PUT":
        # The body is checked before the repository is created.
        assert_error(r, 400, "MANIFEST_INVALID")
        return
    if endpoint.startswith("referrers/"):  # never 404: it would say "no referrers API"
        assert r.status_code == 200
        assert r.json()["manifests"] == []
        return
    error = assert_error(r, 404, "NAME_UNKNOWN")
    assert "namespace" in error["message"]
    assert "does not exist" in error["message"]
    assert error["detail"] == {"name": name}


def test_unknown_namespace_for_a_valid_manifest(client: httpx.Client, repo: str) -> None:
    index = INDEX
    r = client.put(
        f"/v2/nosuchns/{unique()}/manifests/latest",
        content=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    error = assert_error(r, 404, "NAME_UNKNOWN")
    assert "namespace 'nosuchns' does not exist" in error["message"]


def test_unknown_namespace_for_a_monolithic_push(client: httpx.Client) -> None:
    r = client.post(
        f"/v2/nosuchns/{unique()}/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x"
    )
    error = assert_error(r, 404, "NAME_UNKNOWN")
    assert "does not exist" in error["message"]


@pytest.mark.parametrize(
    ("method", "endpoint"),
    [
        e
        for e in ENDPOINTS
        if e[0] in ("GET", "DELETE") and "uploads" not in e[1] and "referrers" not in e[1]
    ],
)
def test_unknown_repository_in_an_existing_namespace(
    client: httpx.Client, repo: str, method: str, endpoint: str
) -> None:
    error = assert_error(client.request(method, f"/v2/{repo}/{endpoint}"), 404, "NAME_UNKNOWN")
    assert "does not exist" in error["message"]


def test_push_creates_the_repository(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    start_upload(client, repo)
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": []}
    catalog = client.get("/v2/_catalog").json()["repositories"]
    assert repo in catalog


def test_namespace_that_does_not_create_repositories(
    client: httpx.Client, registry: DockyardServer
) -> None:
    namespace = "fixed" + unique()[2:8]
    registry.cli("namespace", "create", namespace, "--no-auto-create")
    repo = f"{namespace}/{unique()}"
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    error = assert_error(r, 404, "NAME_UNKNOWN")
    assert "does not create repositories on push" in error["message"]
    r = client.put(
        f"/v2/{repo}/manifests/latest",
        content=INDEX,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert_error(r, 404, "NAME_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


def test_manifest_push_creates_the_repository(client: httpx.Client, repo: str) -> None:
    index = INDEX
    r = client.put(
        f"/v2/{repo}/manifests/v1",
        content=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.status_code == 201
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]


# -- malformed digests, wherever a digest goes -------------------------------------------

BAD_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "A" * 64,  # upper case
    "sha256:" + "g" * 64,
    "SHA256:" + "a" * 64,
    "md5:d41d8cd98f00b204e9800998ecf8427e",  # well formed, unsupported
    "sha1:" + "a" * 40,
    "sha512:" + "a" * 64,  # sha512 needs 128
    "sha256:",
    ":" + "a" * 64,
    "sha256",
    "sha256:" + "a" * 5000,  # very long
    "sha256:..",
    "sha256:....etc....passwd",
    "sha256:%2e%2e%5cetc",
    "sha256:" + "a" * 32 + "%00" + "a" * 31,
    "sha256: " + "a" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digest_in_the_path(
    client: httpx.Client, image_repo: tuple[str, Pushed], digest: str
) -> None:
    repo = image_repo[0]
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, f"/v2/{repo}/blobs/{digest}")
        assert_error(r, 400, "DIGEST_INVALID")
    for method in ("GET", "HEAD"):
        # A pull answers only 404 in the spec: a malformed reference names no manifest.
        r = client.request(method, f"/v2/{repo}/manifests/{digest}")
        assert_error(r, 404, "MANIFEST_UNKNOWN")
    r = client.delete(f"/v2/{repo}/manifests/{digest}")
    if ":" in digest:
        assert_error(r, 400, "DIGEST_INVALID")
    else:  # no colon: a tag, and no such tag
        assert_error(r, 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/referrers/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize(
    "digest", [*BAD_DIGESTS, "sha256:../../etc/passwd", "sha256:" + "a" * 64 + "\n"]
)
def test_malformed_digest_in_the_query(client: httpx.Client, repo: str, digest: str) -> None:
    data = b"some bytes"
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert_error(r, 400, "DIGEST_INVALID")
    location = start_upload(client, repo)
    r = client.put(location, params={"digest": digest}, content=data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert client.get(location).status_code == 204  # the session is still usable
    assert_error(
        client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": repo}),
        400,
        "DIGEST_INVALID",
    )
    assert_error(client.head(f"/v2/{repo}/blobs/{digest_of(data)}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/library/x/blobs/sha256:../../etc/passwd",
        "/v2/library/x/blobs/sha256:..%2f..%2fetc%2fpasswd",
        "/v2/library/x/manifests/sha256:../../../etc/passwd",
        "/v2/library/x/blobs/uploads/../../../../etc/passwd",
    ],
)
def test_digest_path_tricks(registry: DockyardServer, path: str) -> None:
    """Slashes in a digest make a path that is no /v2/ endpoint; nothing is read."""
    status, _, body = raw_request(registry.url, "GET", path, ("admin", ADMIN_PASSWORD))
    assert status in (400, 404), (status, body[:300])
    assert b"root:" not in body
    codes = [e["code"] for e in json.loads(body)["errors"]]
    assert codes[0] in {"NAME_INVALID", "DIGEST_INVALID", "BLOB_UPLOAD_UNKNOWN", "UNSUPPORTED"}


def test_manifest_descriptor_with_a_malformed_digest(client: httpx.Client, repo: str) -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "a" * 63 + "\n",
                "size": 2,
            },
        }
    ).encode()
    r = client.put(
        f"/v2/{repo}/manifests/x",
        content=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert_error(r, 400, "MANIFEST_INVALID")


# -- unknown endpoints and methods -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v2/library/x/nothing/here",
        "/v2/library/x/manifests/",
        "/v2/library/x/blobs/",
        "/v2/library/x/tags/",
        "/v2/library/x/tags/list/extra",
        "/v2/library/x/referrers/",
        "/v2/library/x",
        "/v2/_catalog/extra",
    ],
)
def test_unknown_endpoint(client: httpx.Client, path: str) -> None:
    assert_error(client.get(path), 404, "UNSUPPORTED")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/library/x/manifests/latest"),
        ("PATCH", "/v2/library/x/manifests/latest"),
        ("PUT", "/v2/library/x/blobs/" + digest_of(b"x")),
        ("PATCH", "/v2/library/x/blobs/" + digest_of(b"x")),
        ("PUT", "/v2/library/x/tags/list"),
        ("POST", "/v2/library/x/referrers/" + digest_of(b"x")),
    ],
)
def test_method_not_allowed(client: httpx.Client, method: str, path: str) -> None:
    push_blob(client, "library/x", b"so that library/x exists")
    assert_error(client.request(method, path), 405, "UNSUPPORTED")
