"""Blob uploads: monolithic, POST+PUT, chunked, streamed, status, cancel, and every way
to get one wrong (digest mismatch, out-of-order and overlapping chunks, bad ranges,
unknown or foreign upload ids)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.registry.helpers import (
    Pushed,
    assert_error,
    digest_of,
    push_blob,
    start_upload,
    unique,
)

DATA = os.urandom(3000)


def _assert_upload_headers(r: httpx.Response, repo: str, size: int | None) -> str:
    location = r.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    upload_id = r.headers["Docker-Upload-UUID"]
    assert location.endswith(upload_id)
    if size is not None:
        assert r.headers["Range"] == f"0-{size - 1}"
    return location


def test_monolithic_post(client: httpx.Client, repo: str) -> None:
    digest = digest_of(DATA)
    r = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=DATA,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.get(r.headers["Location"]).content == DATA


def test_post_without_trailing_slash(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads")
    assert r.status_code == 202
    _assert_upload_headers(r, repo, None)


def test_post_then_put(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["Content-Length"] == "0"
    location = _assert_upload_headers(r, repo, None)
    digest = digest_of(DATA)
    r = client.put(
        location,
        params={"digest": digest},
        content=DATA,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == DATA
    # The session is over.
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_chunked_upload(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    chunks = [DATA[:1000], DATA[1000:2500], DATA[2500:]]
    offset = 0
    for chunk in chunks:
        r = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert r.status_code == 202, r.text
        offset += len(chunk)
        location = _assert_upload_headers(r, repo, offset)
    digest = digest_of(DATA)
    r = client.put(location, params={"digest": digest})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == DATA


def test_content_range_with_bytes_prefix(client: httpx.Client, repo: str) -> None:
    """Some clients send the RFC form ``bytes 0-9`` (docker sends ``0-9``)."""
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[:10], headers={"Content-Range": "bytes 0-9"})
    assert r.status_code == 202
    assert r.headers["Range"] == "0-9"


def test_put_with_the_final_chunk(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[:2000], headers={"Content-Range": "0-1999"})
    assert r.status_code == 202
    digest = digest_of(DATA)
    r = client.put(
        r.headers["Location"],
        params={"digest": digest},
        content=DATA[2000:],
        headers={"Content-Range": f"2000-{len(DATA) - 1}"},
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == DATA


def test_streamed_patch_without_content_range(client: httpx.Client, repo: str) -> None:
    def stream() -> Iterator[bytes]:
        for i in range(0, len(DATA), 700):
            yield DATA[i : i + 700]

    location = start_upload(client, repo)
    r = client.patch(location, content=stream())  # chunked transfer encoding, no length
    assert r.status_code == 202, r.text
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    location = _assert_upload_headers(r, repo, len(DATA))
    r = client.put(location, params={"digest": digest_of(DATA)})
    assert r.status_code == 201
    assert client.get(r.headers["Location"]).content == DATA


def test_large_blob_in_two_streamed_chunks(client: httpx.Client, repo: str) -> None:
    """Bigger than the server's write buffer, so several writes per request."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    location = start_upload(client, repo)
    r = client.patch(location, content=data[: 2 * 1024 * 1024])
    assert r.status_code == 202
    r = client.patch(r.headers["Location"], content=data[2 * 1024 * 1024 :])
    assert r.status_code == 202
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    digest = digest_of(data)
    assert client.put(r.headers["Location"], params={"digest": digest}).status_code == 201
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.headers["Content-Length"] == str(len(data))
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_upload_status(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    r = client.get(location)
    assert r.status_code == 204
    _assert_upload_headers(r, repo, None)
    assert r.headers["Range"].startswith("0-")

    client.patch(location, content=DATA[:100], headers={"Content-Range": "0-99"})
    r = client.get(location)
    assert r.status_code == 204
    assert r.content == b""
    assert _assert_upload_headers(r, repo, 100) == location


def test_cancel_upload(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    client.patch(location, content=DATA[:10], headers={"Content-Range": "0-9"})
    r = client.delete(location)
    assert r.status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        client.put(location, params={"digest": digest_of(DATA[:10])}), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_uploads_of_the_same_content_in_parallel_sessions(client: httpx.Client, repo: str) -> None:
    a, b = start_upload(client, repo), start_upload(client, repo)
    assert a != b
    digest = digest_of(DATA)
    assert client.put(a, params={"digest": digest}, content=DATA).status_code == 201
    assert client.put(b, params={"digest": digest}, content=DATA).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == DATA


# -- wrong on purpose --------------------------------------------------------------------


def test_put_with_the_wrong_digest_discards_the_upload(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    client.patch(location, content=DATA, headers={"Content-Range": f"0-{len(DATA) - 1}"})
    claimed = digest_of(b"something else")
    r = client.put(location, params={"digest": claimed})
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(client.head(f"/v2/{repo}/blobs/{claimed}"), 404, "BLOB_UNKNOWN")
    assert_error(client.head(f"/v2/{repo}/blobs/{digest_of(DATA)}"), 404, "BLOB_UNKNOWN")
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_monolithic_post_with_the_wrong_digest(client: httpx.Client, repo: str) -> None:
    claimed = digest_of(b"not these bytes")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=DATA)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(client.head(f"/v2/{repo}/blobs/{claimed}"), 404, "BLOB_UNKNOWN")
    assert_error(client.head(f"/v2/{repo}/blobs/{digest_of(DATA)}"), 404, "BLOB_UNKNOWN")


def test_wrong_sha512_digest(client: httpx.Client, repo: str) -> None:
    claimed = digest_of(b"other", "sha512")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=DATA)
    assert_error(r, 400, "DIGEST_INVALID")


def test_put_without_a_digest(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    assert_error(client.put(location, content=DATA), 400, "DIGEST_INVALID")
    # The session survives a request that could not be acted on.
    assert client.get(location).status_code == 204


def test_out_of_order_chunk(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[:10], headers={"Content-Range": "0-9"})
    assert r.status_code == 202
    r = client.patch(location, content=DATA[20:30], headers={"Content-Range": "20-29"})
    assert_error(r, 416, "RANGE_INVALID")
    assert r.headers["Range"] == "0-9"
    assert r.headers["Location"] == location
    # Nothing was written; the right chunk still goes on.
    r = client.patch(location, content=DATA[10:30], headers={"Content-Range": "10-29"})
    assert r.status_code == 202
    assert r.headers["Range"] == "0-29"
    r = client.put(location, params={"digest": digest_of(DATA[:30])})
    assert r.status_code == 201


def test_first_chunk_not_at_zero(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[5:10], headers={"Content-Range": "5-9"})
    assert_error(r, 416, "RANGE_INVALID")
    assert r.headers["Range"] == "0-0"
    assert client.get(location).status_code == 204


def test_overlapping_chunk(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    client.patch(location, content=DATA[:10], headers={"Content-Range": "0-9"})
    r = client.patch(location, content=DATA[5:15], headers={"Content-Range": "5-14"})
    assert_error(r, 416, "RANGE_INVALID")
    assert r.headers["Range"] == "0-9"
    assert client.get(location).headers["Range"] == "0-9"


def test_out_of_order_final_chunk_on_put(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    client.patch(location, content=DATA[:10], headers={"Content-Range": "0-9"})
    r = client.put(
        location,
        params={"digest": digest_of(DATA[:20])},
        content=DATA[15:20],
        headers={"Content-Range": "15-19"},
    )
    assert_error(r, 416, "RANGE_INVALID")
    assert client.get(location).headers["Range"] == "0-9"


@pytest.mark.parametrize("content_range", ["0-9", "0-2"])
def test_content_range_and_length_disagree(
    client: httpx.Client, repo: str, content_range: str
) -> None:
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[:5], headers={"Content-Range": content_range})
    assert_error(r, 416, "RANGE_INVALID")
    # Nothing of the rejected chunk was kept.
    assert client.get(location).headers["Range"] == "0-0"
    r = client.patch(location, content=DATA[:5], headers={"Content-Range": "0-4"})
    assert r.status_code == 202


@pytest.mark.parametrize(
    "content_range",
    ["abc", "9-0", "bytes=", "-5", "0-", "1-2-3", "0-" + "9" * 5000, "9" * 5000 + "-0"],
)
def test_malformed_content_range(client: httpx.Client, repo: str, content_range: str) -> None:
    location = start_upload(client, repo)
    r = client.patch(location, content=DATA[:5], headers={"Content-Range": content_range})
    assert_error(r, 416, "RANGE_INVALID")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "upload_id", [str(uuid.uuid4()), "not-an-upload", "x" * 64, "x" * 200, "a%2e%2eb"]
)
def test_unknown_upload_id(
    client: httpx.Client, image_repo: tuple[str, Pushed], method: str, upload_id: str
) -> None:
    repo = image_repo[0]
    r = client.request(
        method,
        f"/v2/{repo}/blobs/uploads/{upload_id}",
        params={"digest": digest_of(b"x")} if method == "PUT" else None,
        content=b"x" if method in ("PATCH", "PUT") else None,
    )
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_id_in_an_unknown_repository(client: httpx.Client) -> None:
    r = client.get(f"/v2/library/{unique()}/blobs/uploads/{uuid.uuid4()}")
    assert r.status_code == 404
    assert error_code_in(r, {"BLOB_UPLOAD_UNKNOWN", "NAME_UNKNOWN"})


def error_code_in(r: httpx.Response, codes: set[str]) -> bool:
    return bool({e["code"] for e in r.json()["errors"]} & codes)


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_upload_id_from_another_repository(client: httpx.Client, repo: str, method: str) -> None:
    other = f"library/{unique()}"
    push_blob(client, other, b"the other repository exists")
    location = start_upload(client, repo)
    client.patch(location, content=DATA[:10], headers={"Content-Range": "0-9"})
    upload_id = location.rsplit("/", 1)[1]

    r = client.request(
        method,
        f"/v2/{other}/blobs/uploads/{upload_id}",
        params={"digest": digest_of(DATA[:10])} if method == "PUT" else None,
        content=b"more" if method == "PATCH" else None,
    )
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.head(f"/v2/{other}/blobs/{digest_of(DATA[:10])}"), 404, "BLOB_UNKNOWN")
    # The upload in its own repository is untouched.
    assert client.get(location).headers["Range"] == "0-9"
    assert client.put(location, params={"digest": digest_of(DATA[:10])}).status_code == 201


def test_method_not_allowed_on_uploads(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/blobs/uploads/"), 405, "UNSUPPORTED")
    assert_error(client.put(f"/v2/{repo}/blobs/uploads/"), 405, "UNSUPPORTED")
    location = start_upload(client, repo)
    assert_error(client.post(location), 405, "UNSUPPORTED")
    assert_error(client.post(f"/v2/{repo}/blobs/{digest_of(b'x')}"), 405, "UNSUPPORTED")
