"""Blobs: pull (HEAD/GET, ranges), delete and cross-repository mount.

Mirrors the pull, push and content-management parts of the OCI distribution-spec
conformance suite; uploads in all their forms are in ``test_uploads.py``.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.registry.helpers import (
    assert_error,
    digest_of,
    push_blob,
    start_upload,
    unique,
)

DATA = bytes(range(256)) * 4  # 1024 bytes, every byte value


def test_head_and_get_blob(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, DATA)

    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.content == b""

    get = client.get(f"/v2/{repo}/blobs/{digest}")
    assert get.status_code == 200
    assert get.content == DATA
    assert get.headers["Content-Length"] == str(len(DATA))
    assert get.headers["Docker-Content-Digest"] == digest
    assert get.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_empty_blob(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, b"")
    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == "0"


def test_unknown_blob(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, b"something so the repository exists")
    missing = digest_of(b"never pushed")
    assert_error(client.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    assert_error(client.head(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")


def test_blob_of_another_repository_is_unknown_here(client: httpx.Client, repo: str) -> None:
    other = f"library/{unique()}"
    digest = push_blob(client, other, b"only in the other repository")
    push_blob(client, repo, b"this repository exists")
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=2-5", 2, 5),
        ("bytes=1000-", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),  # the last position is clamped to the size
        ("bytes=0-1023", 0, 1023),
        ("bytes=-10", 1014, 1023),  # suffix: the last 10 bytes
        ("bytes=-5000", 0, 1023),  # a suffix longer than the blob is the whole blob
    ],
)
def test_range_get(client: httpx.Client, repo: str, header: str, start: int, end: int) -> None:
    digest = push_blob(client, repo, DATA)
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["Content-Length"] == str(end - start + 1)
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.content == DATA[start : end + 1]

    head = client.head(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert head.status_code == 206
    assert head.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1024-",
        "bytes=5000-6000",
        "bytes=10-5",
        "bytes=-0",
        "bytes=-",
        "bytes=abc",
        "bytes=" + "9" * 5000 + "-",
        "bytes=-" + "9" * 5000,
        "bytes=0-" + "9" * 5000,
        "bytes=\u0661-",
    ],
)
def test_unsatisfiable_range(client: httpx.Client, repo: str, header: str) -> None:
    digest = push_blob(client, repo, DATA)
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header.encode()})
    assert r.status_code == 416, r.text
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["items=0-5", "bytes=0-1,5-6"])
def test_range_the_server_may_ignore(client: httpx.Client, repo: str, header: str) -> None:
    """RFC 9110 14.2: an unknown range unit MUST be ignored; multiple ranges MAY be."""
    digest = push_blob(client, repo, DATA)
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 200, r.text
    assert r.content == DATA


def test_delete_blob(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, b"to be deleted")
    r = client.delete(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 202
    assert_error(client.head(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_in_one_repository_keeps_it_in_another(client: httpx.Client, repo: str) -> None:
    other = f"library/{unique()}"
    data = os.urandom(64)
    digest = push_blob(client, repo, data)
    push_blob(client, other, data)
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    r = client.get(f"/v2/{other}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data


def test_repush_after_delete(client: httpx.Client, repo: str) -> None:
    data = os.urandom(32)
    digest = push_blob(client, repo, data)
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    push_blob(client, repo, data)
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_sha512_blob(client: httpx.Client, repo: str) -> None:
    data = os.urandom(300)
    digest = push_blob(client, repo, data, "sha512")
    assert digest.startswith("sha512:")
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Length"] == "300"
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
    # The same bytes are not known under their sha256 digest.
    assert_error(client.head(f"/v2/{repo}/blobs/{digest_of(data)}"), 404, "BLOB_UNKNOWN")


def test_sha512_chunked_upload(client: httpx.Client, repo: str) -> None:
    data = os.urandom(100)
    digest = digest_of(data, "sha512")
    location = start_upload(client, repo)
    r = client.patch(location, content=data[:60], headers={"Content-Range": "0-59"})
    assert r.status_code == 202
    r = client.put(r.headers["Location"], params={"digest": digest}, content=data[60:])
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


# -- cross-repository mount --------------------------------------------------------------


def test_mount_from_another_repository(client: httpx.Client, repo: str) -> None:
    source = f"library/{unique()}"
    data = os.urandom(128)
    digest = push_blob(client, source, data)

    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    # The mount created the repository (first push into it) and linked the blob.
    got = client.get(r.headers["Location"])
    assert got.status_code == 200
    assert got.content == data
    assert client.get(f"/v2/{repo}/tags/list").status_code == 200


def test_mount_into_an_existing_repository(client: httpx.Client, repo: str) -> None:
    source = f"library/{unique()}"
    push_blob(client, repo, b"the target exists already")
    digest = push_blob(client, source, b"mounted")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200


@pytest.mark.parametrize(
    "case", ["unknown-digest", "missing-source", "unknown-namespace", "invalid-source"]
)
def test_mount_not_possible_falls_back_to_an_upload(
    client: httpx.Client, repo: str, case: str
) -> None:
    source = f"library/{unique()}"
    data = os.urandom(40)
    digest = digest_of(data)
    if case == "unknown-digest":
        push_blob(client, source, b"the source exists but lacks the digest")
    elif case == "unknown-namespace":
        source = f"nosuchns/{unique()}"
    elif case == "invalid-source":
        source = "Not/A/Valid/Name"

    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    assert r.headers["Docker-Upload-UUID"]
    assert_error(client.head(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # The session it opened instead is a normal upload.
    done = client.put(location, params={"digest": digest}, content=data)
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_mount_without_from_opens_an_upload(client: httpx.Client, repo: str) -> None:
    source = f"library/{unique()}"
    digest = push_blob(client, source, b"somewhere")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 202
    assert r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")


def test_mount_with_a_malformed_digest(client: httpx.Client, repo: str) -> None:
    source = f"library/{unique()}"
    push_blob(client, source, b"x")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": "sha256:nope", "from": source})
    assert_error(r, 400, "DIGEST_INVALID")
