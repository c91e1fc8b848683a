"""Scaled-out mode: two replicas on one PostgreSQL database and one S3 bucket behave as
one registry: a token from one works on the other, and an upload may hop between them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.oci import assert_intact, push_image
from tests.fixtures.server import ADMIN_PASSWORD, BackendEnv, DockyardServer, running_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicas(
    tmp_path: Path, backend_postgres_s3: BackendEnv
) -> Iterator[tuple[DockyardServer, DockyardServer]]:
    shared = backend_postgres_s3(tmp_path)
    with (
        running_server(tmp_path / "a", shared) as first,
        running_server(
            tmp_path / "b", {**shared, "DOCKYARD_ADMIN_PASSWORD": "ignored"}, namespace=None
        ) as second,
    ):
        yield first, second


def test_replicas_share_tokens_uploads_and_content(
    replicas: tuple[DockyardServer, DockyardServer],
) -> None:
    a, b = replicas
    # The second replica found the administrator the first created, password and all.
    token = httpx.get(
        f"{a.url}/auth/token",
        params={"service": "dockyard", "scope": "repository:library/spread:pull,push"},
        auth=("admin", ADMIN_PASSWORD),
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    parts = [os.urandom(700_000), os.urandom(500_000), os.urandom(300_000)]
    digest = "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    with httpx.Client(headers=bearer, timeout=60) as c:
        location = c.post(f"{a.url}/v2/library/spread/blobs/uploads/").headers["Location"]
        offset = 0
        for i, part in enumerate(parts):
            base = (a, b)[i % 2].url  # chunks alternate between the replicas
            r = c.patch(
                base + location,
                content=part,
                headers={"Content-Range": f"{offset}-{offset + len(part) - 1}"},
            )
            assert r.status_code == 202, r.text
            offset += len(part)
            location = r.headers["Location"]
        r = c.get(b.url + location)
        assert r.headers["Range"] == f"0-{offset - 1}"
        r = c.put(a.url + location, params={"digest": digest})
        assert r.status_code == 201, r.text
        pulled = c.get(f"{b.url}/v2/library/spread/blobs/{digest}", follow_redirects=True)
        assert pulled.content == b"".join(parts)
    with a.client() as ca, b.client() as cb:
        image = push_image(ca, "library/spread", "v1")
        assert_intact(cb, image, "v1")
        assert cb.delete(f"/v2/library/spread/manifests/{image.digest}").status_code == 202
        assert ca.get(f"/v2/library/spread/manifests/{image.digest}").status_code == 404
