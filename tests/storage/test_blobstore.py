"""One contract suite for every BlobStore backend (filesystem and S3 via moto's server)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.storage.base import READ_CHUNK, BlobNotFound, BlobStore, UploadNotFound
from dockyard.storage.fs import FilesystemBlobStore
from dockyard.storage.s3 import S3BlobStore
from tests.fixtures.s3server import S3Server

MIB = 1024 * 1024
PREFIX = "dockyard/"


@dataclass
class Backend:
    kind: str
    store: BlobStore
    #: A new store instance over the same storage, as another server process would open.
    reopen: Callable[[], BlobStore]
    #: Everything stored outside the store's root (files, or objects outside the prefix).
    outside: Callable[[], dict[str, bytes]]


def _fs_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "root"
    # Neighbours a path trick would reach first.
    (tmp_path / "x").write_bytes(b"neighbour")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(b"root:x:0:0")

    def outside() -> dict[str, bytes]:
        return {
            str(p.relative_to(tmp_path)): p.read_bytes()
            for p in sorted(tmp_path.rglob("*"))
            if p.is_file() and root not in p.parents
        }

    def reopen() -> BlobStore:
        return FilesystemBlobStore(root, fsync=False)

    return Backend("fs", reopen(), reopen, outside)


def _s3_backend(server: S3Server) -> Backend:
    bucket = server.new_bucket_name()

    def reopen(*, redirect: bool = True, create_bucket: bool = False) -> S3BlobStore:
        return S3BlobStore(
            endpoint_url=server.endpoint_url,
            bucket=bucket,
            region=server.region,
            access_key=server.access_key,
            secret_key=server.secret_key,
            path_style=True,
            prefix=PREFIX,
            redirect=redirect,
            create_bucket=create_bucket,
        )

    store = reopen(create_bucket=True)
    client = store._client
    for key in ("x", "etc/passwd", "dockyard-other/blobs/x", "uploads/x/startedat"):
        client.put_object(Bucket=bucket, Key=key, Body=b"neighbour " + key.encode())

    def outside() -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.startswith(PREFIX):
                    found[key] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return found

    return Backend("s3", store, reopen, outside)


@pytest.fixture(params=["fs", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "fs":
        return _fs_backend(tmp_path)
    return _s3_backend(request.getfixturevalue("s3_server"))


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


@pytest.fixture
def s3_or_none(backend: Backend, request: pytest.FixtureRequest) -> S3Server | None:
    if backend.kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        return server
    return None


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def read_all(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


def rng(seed: int) -> random.Random:
    """Seeded, so a failing chunk pattern is reproducible (not for secrets)."""
    return random.Random(seed)  # noqa: S311


def payload(n: int, seed: int = 0) -> bytes:
    return rng(seed).randbytes(n)


# -- committed blobs -------------------------------------------------------------------


def test_put_stat_read_delete(store: BlobStore) -> None:
    data = b"hello, registry"
    digest = digest_of(data)
    assert store.stat(digest) is None
    store.put(digest, data)
    assert store.stat(digest) == len(data)
    assert read_all(store.read(digest)) == data
    assert store.delete(digest) is True
    assert store.stat(digest) is None
    assert store.delete(digest) is False


def test_put_empty_blob(store: BlobStore) -> None:
    digest = digest_of(b"")
    store.put(digest, b"")
    assert store.stat(digest) == 0
    assert read_all(store.read(digest)) == b""


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, 10), (1, 5), (5, None), (9, 10), (0, 1000), (3, 3), (7, 2), (10, None)],
)
def test_ranged_read(store: BlobStore, start: int, end: int | None) -> None:
    data = b"0123456789"
    digest = digest_of(data)
    store.put(digest, data)
    assert read_all(store.read(digest, start, end)) == data[start:end]


def test_read_streams_in_chunks(store: BlobStore) -> None:
    """A pull holds one piece at a time: none larger than READ_CHUNK (the server's
    memory under concurrent pulls grows with it)."""
    data = payload(3 * MIB + 123)
    digest = digest_of(data)
    store.put(digest, data)
    chunks = list(store.read(digest))
    assert len(chunks) >= (3 * MIB) // READ_CHUNK
    assert max(len(c) for c in chunks) <= READ_CHUNK
    assert b"".join(chunks) == data
    ranged = list(store.read(digest, MIB // 2, 2 * MIB + 7))
    assert b"".join(ranged) == data[MIB // 2 : 2 * MIB + 7]
    assert max(len(c) for c in ranged) <= READ_CHUNK


def test_missing_blob(store: BlobStore) -> None:
    digest = digest_of(b"never stored")
    assert store.stat(digest) is None
    # Raised by the call itself, before anything is iterated.
    with pytest.raises(BlobNotFound):
        store.read(digest)
    with pytest.raises(BlobNotFound):
        store.read(digest, 2, 5)
    with pytest.raises(BlobNotFound):
        store.read(digest, 3, 3)
    assert store.delete(digest) is False


def test_iter_blobs(store: BlobStore) -> None:
    assert list(store.iter_blobs()) == []
    blobs = {b"a": "sha256", b"bb": "sha256", b"ccc": "sha512", b"": "sha256"}
    expected = set()
    for data, algorithm in blobs.items():
        digest = digest_of(data, algorithm)
        store.put(digest, data)
        expected.add((digest, len(data)))
    # Uploads in progress are not blobs.
    store.upload_start("pending")
    with store.upload_writer("pending") as w:
        w.write(b"partial")
    assert set(store.iter_blobs()) == expected


def test_commit_onto_existing_blob(store: BlobStore) -> None:
    data = b"same bytes twice"
    digest = digest_of(data)
    store.put(digest, data)
    store.upload_start("again")
    with store.upload_writer("again") as w:
        w.write(data)
    assert store.upload_commit("again", digest) == len(data)
    assert read_all(store.read(digest)) == data


def test_commit_leaving_the_sync_to_the_caller(store: BlobStore) -> None:
    """``durable=False`` publishes at once (visible, readable); ``sync_blob`` then makes
    it durable (a no-op where publishing is durable by itself)."""
    data = b"published now, synced after the lock"
    digest = digest_of(data)
    store.upload_start("later")
    with store.upload_writer("later") as w:
        w.write(data)
    assert store.upload_commit("later", digest, durable=False) == len(data)
    assert read_all(store.read(digest)) == data
    store.sync_blob(digest)
    assert store.stat(digest) == len(data)


def test_filesystem_syncs_names_where_it_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder holding a new blob's name is fsynced at commit, or by ``sync_blob``
    when the commit left it to the caller; a new shard folder's own name too."""
    synced: list[str] = []
    monkeypatch.setattr("dockyard.storage.fs._fsync_dir", lambda path: synced.append(path.name))
    store = FilesystemBlobStore(tmp_path / "root")
    first, second = b"first blob", b"second blob"  # in shards "19" and "dd"
    # The first blob's commit makes "sha256/19": both new names, then the blob's name.
    # The second makes "sha256/dd" and leaves the blob's own name to sync_blob.
    expected = {"a": ["blobs", "sha256", "19"], "b": ["sha256"]}
    for upload_id, data, durable in (("a", first, True), ("b", second, False)):
        store.upload_start(upload_id)
        with store.upload_writer(upload_id) as w:
            w.write(data)
        synced.clear()
        store.upload_commit(upload_id, digest_of(data), durable=durable)
        assert synced == expected[upload_id]
    synced.clear()
    store.sync_blob(digest_of(second))
    assert synced == ["dd"]


def test_ping(store: BlobStore) -> None:
    store.ping()


def test_ping_fails_when_backend_is_gone(backend: Backend, s3_or_none: S3Server | None) -> None:
    broken: BlobStore
    if s3_or_none is None:
        assert isinstance(backend.store, FilesystemBlobStore)
        broken = backend.store
        (broken.root / "blobs").rename(broken.root / "elsewhere")
    else:
        broken = S3BlobStore(
            endpoint_url=s3_or_none.endpoint_url,
            bucket="no-such-bucket-anywhere",
            region=s3_or_none.region,
            access_key=s3_or_none.access_key,
            secret_key=s3_or_none.secret_key,
            path_style=True,
        )
    with pytest.raises((OSError, ClientError)):
        broken.ping()


# -- redirects ---------------------------------------------------------------------------


def test_redirect_url(backend: Backend, s3_or_none: S3Server | None) -> None:
    data = payload(100_000, seed=7)
    digest = digest_of(data)
    backend.store.put(digest, data)
    url = backend.store.redirect_url(digest, expires_in=60)
    if s3_or_none is None:
        assert url is None
        return
    assert url is not None
    assert url.startswith(s3_or_none.endpoint_url + "/")
    with httpx.Client(trust_env=False) as client:
        resp = client.get(url)
    assert resp.status_code == 200
    assert resp.content == data
    # Configured without redirect, the S3 store serves the bytes itself.
    assert isinstance(backend.store, S3BlobStore)
    no_redirect = S3BlobStore(
        endpoint_url=s3_or_none.endpoint_url,
        bucket=backend.store.bucket,
        region=s3_or_none.region,
        access_key=s3_or_none.access_key,
        secret_key=s3_or_none.secret_key,
        path_style=True,
        prefix=PREFIX,
    )
    assert no_redirect.redirect_url(digest) is None


# -- uploads -----------------------------------------------------------------------------


def test_upload_many_small_writes_across_writers(backend: Backend) -> None:
    store = backend.store
    data = payload(50_000, seed=1)
    digest = digest_of(data)
    sizes = rng(2)
    store.upload_start("u1")
    assert store.upload_size("u1") == 0
    pos = 0
    writers = 0
    while pos < len(data):
        # Alternate between store instances, as successive PATCHes may hit other servers.
        current = store if writers % 2 == 0 else backend.reopen()
        writers += 1
        with current.upload_writer("u1") as w:
            for _ in range(sizes.randint(1, 20)):
                n = sizes.randint(1, 700)
                w.write(data[pos : pos + n])
                pos += n
        assert store.upload_size("u1") == min(pos, len(data))
    assert writers > 3
    assert read_all(store.upload_read("u1")) == data
    assert store.stat(digest) is None  # not a blob until committed

    assert backend.reopen().upload_commit("u1", digest) == len(data)
    assert store.stat(digest) == len(data)
    assert read_all(store.read(digest)) == data
    with pytest.raises(UploadNotFound):
        store.upload_size("u1")
    with pytest.raises(UploadNotFound):
        store.upload_writer("u1")
    assert [u.upload_id for u in store.iter_uploads()] == []


def test_empty_upload_commit(store: BlobStore) -> None:
    store.upload_start("empty")
    with store.upload_writer("empty"):
        pass
    digest = digest_of(b"")
    assert store.upload_commit("empty", digest) == 0
    assert store.stat(digest) == 0
    assert read_all(store.read(digest)) == b""


def _uneven(total: int, seed: int) -> list[int]:
    choose = rng(seed)
    sizes = []
    while total > 0:
        n = min(total, choose.choice([1, 17, 4096, 65_537, MIB - 3, 3 * MIB + 5, 9 * MIB + 1]))
        sizes.append(n)
        total -= n
    return sizes


# Each plan: per writer, the sizes of its writes.
LARGE_PLANS = {
    # Many writers with chunks of every size: mostly re-buffered parts.
    "uneven": [_uneven(5 * MIB + 11, 1), _uneven(9 * MIB + 1, 2), _uneven(4 * MIB + 7, 3)],
    # One big write first (whole part objects to copy), then a small tail.
    "big-then-small": [[20 * MIB + 3], [100], [1, 2, 3]],
    # Small pieces, then a big write whose parts could be copied if nothing were pending.
    "small-then-big": [[3 * MIB], [6 * MIB + 5], [2 * MIB, 12 * MIB]],
}


@pytest.mark.parametrize("plan", LARGE_PLANS.values(), ids=LARGE_PLANS.keys())
def test_large_upload(backend: Backend, plan: list[list[int]]) -> None:
    store = backend.store
    total = sum(sum(w) for w in plan)
    assert total > 16 * MIB
    data = payload(total, seed=total)
    digest = digest_of(data)
    store.upload_start("large")
    pos = 0
    for i, sizes in enumerate(plan):
        writer_store = store if i % 2 == 0 else backend.reopen()
        with writer_store.upload_writer("large") as w:
            for n in sizes:
                w.write(data[pos : pos + n])
                pos += n
        assert store.upload_size("large") == pos
    assert hashlib.sha256(read_all(store.upload_read("large"))).hexdigest() == digest[7:]
    assert store.stat(digest) is None

    calls: list[str] = []
    if isinstance(store, S3BlobStore):
        store._client.meta.events.register(
            "before-call.s3.*", lambda model, **_: calls.append(model.name)
        )
    assert store.upload_commit("large", digest) == total
    assert store.stat(digest) == total
    assert hashlib.sha256(read_all(store.read(digest))).hexdigest() == digest[7:]
    start, end = 16 * MIB - 5, 16 * MIB + 5
    assert read_all(store.read(digest, start, end)) == data[start:end]
    with pytest.raises(UploadNotFound):
        store.upload_size("large")
    if isinstance(store, S3BlobStore):
        assert "CreateMultipartUpload" in calls
        assert "CompleteMultipartUpload" in calls
        assert "PutObject" not in calls
        if plan[0][0] >= 2 * 8 * MIB:
            # Whole part objects of at least 5 MiB are copied inside S3, not re-sent.
            assert calls.count("UploadPartCopy") == 2
        # A multipart object's ETag is "<md5 of part md5s>-<part count>".
        head = store._client.head_object(Bucket=store.bucket, Key=store._blob_key(digest))
        assert "-" in head["ETag"]
        leftovers = store._client.list_objects_v2(Bucket=store.bucket, Prefix=PREFIX + "uploads/")
        assert leftovers.get("KeyCount", 0) == 0
        assert store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_upload_abort(store: BlobStore) -> None:
    store.upload_start("gone")
    with store.upload_writer("gone") as w:
        w.write(b"some bytes")
    store.upload_abort("gone")
    with pytest.raises(UploadNotFound):
        store.upload_size("gone")
    with pytest.raises(UploadNotFound):
        store.upload_read("gone")
    assert list(store.iter_uploads()) == []
    store.upload_abort("gone")  # already gone: no error
    store.upload_abort("never-started")


class _BoomError(Exception):
    pass


@pytest.mark.parametrize("failing_write", [5, 9 * MIB + 3], ids=["small", "flushed"])
def test_writer_abort_on_exception(store: BlobStore, failing_write: int) -> None:
    store.upload_start("w")
    with store.upload_writer("w") as w:
        w.write(b"kept")

    def fail_midway() -> None:
        with store.upload_writer("w") as w:
            w.write(b"x" * failing_write)
            raise _BoomError

    with pytest.raises(_BoomError):
        fail_midway()
    assert store.upload_size("w") == 4
    assert read_all(store.upload_read("w")) == b"kept"
    # The upload goes on from where it was.
    with store.upload_writer("w") as w:
        w.write(b" and more")
    assert read_all(store.upload_read("w")) == b"kept and more"
    digest = digest_of(b"kept and more")
    assert store.upload_commit("w", digest) == 13
    assert read_all(store.read(digest)) == b"kept and more"


def test_explicit_writer_abort(store: BlobStore) -> None:
    store.upload_start("e")
    w = store.upload_writer("e")
    w.write(b"forget me")
    w.abort()
    assert store.upload_size("e") == 0


def test_iter_uploads(store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    store.upload_start("alpha")
    store.upload_start("beta")
    with store.upload_writer("beta") as w:
        w.write(b"12345")
    after = datetime.now(UTC) + timedelta(seconds=2)
    infos = sorted(store.iter_uploads(), key=lambda u: u.upload_id)
    assert [(u.upload_id, u.size) for u in infos] == [("alpha", 0), ("beta", 5)]
    for info in infos:
        assert info.started_at.tzinfo is not None
        assert before <= info.started_at <= after


def test_unknown_upload(store: BlobStore) -> None:
    with pytest.raises(UploadNotFound):
        store.upload_size("nope")
    with pytest.raises(UploadNotFound):
        store.upload_writer("nope")
    with pytest.raises(UploadNotFound):
        store.upload_read("nope")
    with pytest.raises(UploadNotFound):
        store.upload_commit("nope", digest_of(b""))


# -- path tricks -------------------------------------------------------------------------

BAD_IDS = ["../x", "..", ".", "a/b", "../../etc", "", "x" * 129, "ok\n", "a\\b", "/etc"]
HEX = "a" * 64
BAD_DIGESTS = [
    "sha256:../../etc",
    "../x",
    "sha256:../../../x",
    f"sha256:{HEX}/../../x",
    f"sha256:{HEX}\n",
    f"sha256:{HEX.upper()}",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256:",
    f"../sha256:{HEX}",
]


def test_path_tricks_touch_nothing_outside(backend: Backend) -> None:
    store = backend.store
    before = backend.outside()
    assert before  # the neighbours exist

    for upload_id in BAD_IDS:
        with pytest.raises(UploadNotFound):
            store.upload_start(upload_id)
        with pytest.raises(UploadNotFound):
            store.upload_size(upload_id)
        with pytest.raises(UploadNotFound):
            store.upload_writer(upload_id)
        with pytest.raises(UploadNotFound):
            store.upload_read(upload_id)
        with pytest.raises(UploadNotFound):
            store.upload_commit(upload_id, digest_of(b""))
        store.upload_abort(upload_id)

    store.upload_start("fine")
    with store.upload_writer("fine") as w:
        w.write(b"data")
    for digest in BAD_DIGESTS:
        assert store.stat(digest) is None
        with pytest.raises(BlobNotFound):
            store.read(digest)
        with pytest.raises(BlobNotFound):
            store.put(digest, b"evil")
        assert store.delete(digest) is False
        with pytest.raises(BlobNotFound):
            store.upload_commit("fine", digest)
    assert store.upload_size("fine") == 4

    assert backend.outside() == before
    assert list(store.iter_blobs()) == []
    assert [u.upload_id for u in store.iter_uploads()] == ["fine"]


def test_s3_ignores_stray_objects(s3_server: S3Server) -> None:
    store = _s3_backend(s3_server).store
    assert isinstance(store, S3BlobStore)
    for key in ("blobs/junk", f"blobs/sha256/zz/{HEX}", "blobs/sha256/aa/../x", "uploads/a.b/x"):
        store._client.put_object(Bucket=store.bucket, Key=PREFIX + key, Body=b"?")
    assert list(store.iter_blobs()) == []
    assert list(store.iter_uploads()) == []


@pytest.mark.parametrize("fsync", [True, False])
def test_filesystem_uploads_start_writeback_as_they_go_and_fsync_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    """A durable upload hands each 8 MiB written to the kernel to write out (the stretch
    since the last one, starting where the request began) and fsyncs when the request
    ends; with ``fsync=False`` neither happens."""
    from dockyard.storage import fs

    handed: list[tuple[int, int]] = []
    synced: list[int] = []
    real_writeback = fs.start_writeback

    def writeback(fd: int, offset: int, length: int) -> None:
        handed.append((offset, length))
        real_writeback(fd, offset, length)  # the real call too: it must accept these

    monkeypatch.setattr(fs, "start_writeback", writeback)
    real_fsync = fs.os.fsync
    monkeypatch.setattr(fs.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store = FilesystemBlobStore(tmp_path / "root", fsync=fsync)
    mib = 1024 * 1024
    piece = bytes(range(256)) * (3 * mib // 256)
    store.upload_start("u")
    with store.upload_writer("u") as w:  # one request: 3 MiB
        w.write(piece)
    synced_after_first = len(synced)
    with store.upload_writer("u") as w:  # the next: 7 pieces of 3 MiB, from offset 3 MiB
        for _ in range(7):
            w.write(piece)
    if fsync:
        assert synced_after_first == 1
        assert len(synced) == 2
        # 3 + 9 = 12 MiB: the first 9 MiB of this request; 3 + 18: the next 9.
        assert handed == [(3 * mib, 9 * mib), (12 * mib, 9 * mib)]
    else:
        assert synced == []
        assert handed == []
    data = piece * 8
    assert store.upload_commit("u", digest_of(data), durable=fsync) == len(data)
    assert read_all(store.read(digest_of(data))) == data
