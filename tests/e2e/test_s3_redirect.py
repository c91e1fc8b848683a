"""Scaled-out mode with blob GETs redirected to presigned S3 URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.oci import push_image
from tests.fixtures.server import BackendEnv, DockyardServer, make_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def redirecting_server(tmp_path: Path, backend_postgres_s3: BackendEnv) -> Iterator[DockyardServer]:
    server = make_server(
        tmp_path, {**backend_postgres_s3(tmp_path), "DOCKYARD_S3_REDIRECT": "true"}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_blob_get_redirects_to_a_working_presigned_url(redirecting_server: DockyardServer) -> None:
    with redirecting_server.client() as c:
        image = push_image(c, "library/far", "v1", layers=1, layer_size=300_000)
        for digest, data in image.blobs.items():
            r = c.get(f"/v2/library/far/blobs/{digest}")
            assert r.status_code == 307
            location = r.headers["Location"]
            assert location.startswith("http://127.0.0.1:")
            assert "Signature" in location or "X-Amz-Signature" in location
            fetched = httpx.get(location, timeout=30)
            assert fetched.status_code == 200
            assert fetched.content == data
            # HEAD and ranged GETs are answered by Dockyard itself.
            head = c.head(f"/v2/library/far/blobs/{digest}")
            assert head.status_code == 200
            assert head.headers["Content-Length"] == str(len(data))
            part = c.get(f"/v2/library/far/blobs/{digest}", headers={"Range": "bytes=0-9"})
            assert part.status_code == 206
            assert part.content == data[:10]
