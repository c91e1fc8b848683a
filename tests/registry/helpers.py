"""Small helpers shared by the /v2/ HTTP tests: digests, pushes and error assertions."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
)
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_SCHEMA1_SIGNED",
    "EMPTY_JSON",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "descriptor",
    "digest_of",
]

ADMIN = ("admin", ADMIN_PASSWORD)
_TLS = ssl.create_default_context()


def never_5xx(response: httpx.Response) -> None:
    """Event hook: any 5xx answer fails the test, whatever the test expected."""
    if response.status_code >= 500:
        response.read()
        raise AssertionError(
            f"{response.request.method} {str(response.request.url)[:300]} answered "
            f"{response.status_code}: {response.text[:500]}"
        )


def connect(
    server: DockyardServer,
    auth: tuple[str, str] | None = ADMIN,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    """A client of ``server`` that fails the test on a 5xx answer.

    The TLS context is built once (the registry is plain HTTP anyway): building one per
    client, with the CA bundle, costs ~40 ms of CPU each.
    """
    client = httpx.Client(base_url=server.url, auth=auth, headers=headers, timeout=60, verify=_TLS)
    client.event_hooks["response"].append(never_5xx)
    return client


def unique(prefix: str = "r") -> str:
    """A fresh repository name component."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert isinstance(body, dict), body
    errors = body["errors"]
    assert isinstance(errors, list), body
    assert errors, body
    for error in errors:
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)
    return [e["code"] for e in errors]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with ``code`` among its spec-shaped errors; return it."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    assert code in error_codes(response), response.text[:500]
    found: dict[str, Any] = next(e for e in response.json()["errors"] if e["code"] == code)
    return found


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer", header
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link.strip())
    assert match, link
    return match.group(1)


def push_blob(c: httpx.Client, repo: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = digest_of(data, algorithm)
    r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    return digest


def start_upload(c: httpx.Client, repo: str) -> str:
    """Open an upload session; return its Location."""
    r = c.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    assert location
    return location


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Pushed:
    digest: str
    body: bytes
    media_type: str
    size: int


def put_manifest(
    c: httpx.Client, repo: str, reference: str, body: bytes, media_type: str | None
) -> httpx.Response:
    headers = {"Content-Type": media_type} if media_type else {}
    return c.put(f"/v2/{repo}/manifests/{reference}", content=body, headers=headers)


def push_manifest(
    c: httpx.Client, repo: str, reference: str, body: bytes, media_type: str
) -> Pushed:
    r = put_manifest(c, repo, reference, body, media_type)
    assert r.status_code == 201, r.text
    digest = digest_of(body)
    assert r.headers["Docker-Content-Digest"] == digest
    return Pushed(digest, body, media_type, len(body))


def push_image(
    c: httpx.Client,
    repo: str,
    reference: str | None = None,
    *,
    seed: str = "",
    docker: bool = False,
    extra: dict[str, Any] | None = None,
) -> Pushed:
    """Push a config, one layer and an image manifest (OCI, or Docker schema 2)."""
    seed = seed or uuid.uuid4().hex
    config = dumps({"architecture": "amd64", "os": "linux", "seed": seed})
    layer = f"layer for {seed}".encode()
    push_blob(c, repo, config)
    push_blob(c, repo, layer)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer)],
        **(extra or {}),
    }
    body = dumps(doc)
    return push_manifest(c, repo, reference or digest_of(body), body, media_type)


def index_body(children: list[Pushed], *, docker: bool = False, **extra: Any) -> bytes:
    media_type = DOCKER_LIST if docker else OCI_INDEX
    return dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": child.size,
                    "platform": {"architecture": f"arch{i}", "os": "linux"},
                }
                for i, child in enumerate(children)
            ],
            **extra,
        }
    )


def raw_request(
    url: str, method: str, path: str, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send ``path`` byte for byte (httpx would normalise ``..`` segments away)."""
    import base64

    host = httpx.URL(url)
    conn = http.client.HTTPConnection(host.host, host.port, timeout=30)
    headers = {}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()
