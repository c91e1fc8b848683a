"""The S3 blob store (AWS S3 or any S3-compatible object store).

Layout under the bucket and the configured prefix::

    blobs/<algorithm>/<first two hex>/<hex>       committed blobs
    uploads/<upload id>/startedat                 marker: the upload exists (ISO 8601)
    uploads/<upload id>/part-<offset:020d>        bytes received, one object per flush

An upload keeps no state in memory between calls: each writer appends part objects named
by the offset it starts at, so any server process can continue any upload, and the
upload's size is the sum of its parts. Committing assembles the parts into the blob in
one ``put_object`` (small uploads) or one multipart upload (large ones), both of which
make the object visible only once it is complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from dockyard.storage.base import (
    READ_CHUNK,
    SAFE_UPLOAD_ID,
    BlobNotFound,
    BlobStore,
    UploadInfo,
    UploadNotFound,
    UploadWriter,
    check_digest,
    check_upload_id,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_MIB = 1024 * 1024
#: A writer stores its buffer as a part object once this much has accumulated, so the
#: parts of a large upload are big enough to be copied server-side when committing.
_WRITER_FLUSH = 8 * _MIB
#: Uploads smaller than this are committed by reading them and one ``put_object``.
_SINGLE_PUT_LIMIT = 8 * _MIB
#: S3's smallest allowed multipart part (except the last one).
_MIN_PART = 5 * _MIB
#: S3's largest allowed multipart part and its limit on the number of parts.
_MAX_PART = 5 * 1024 * _MIB
_MAX_PARTS = 10_000
#: Size of the parts a commit assembles from re-buffered small part objects.
_TARGET_PART = 8 * _MIB
#: ``delete_objects`` takes at most this many keys per call.
_DELETE_BATCH = 1000

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: ClientError) -> bool:
    return _error_code(exc) in _NOT_FOUND_CODES


@dataclass(frozen=True, slots=True)
class _Part:
    offset: int
    key: str
    size: int


class _S3Writer(UploadWriter):
    """Buffers writes and stores them as part objects at offsets from ``start``."""

    def __init__(self, store: S3BlobStore, upload_id: str, start: int) -> None:
        self._store = store
        self._upload_id = upload_id
        self._offset = start
        self._buffer = bytearray()
        self._written: list[str] = []
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("write to a closed upload writer")
        self._buffer += data
        while len(self._buffer) >= _WRITER_FLUSH:
            self._flush(_WRITER_FLUSH)

    def _flush(self, n: int) -> None:
        key = self._store._part_key(self._upload_id, self._offset)
        chunk = bytes(self._buffer[:n])
        self._store._client.put_object(Bucket=self._store.bucket, Key=key, Body=chunk)
        self._written.append(key)
        self._offset += len(chunk)
        del self._buffer[:n]

    def close(self) -> None:
        if self._done:
            return
        if self._buffer:
            self._flush(len(self._buffer))
        self._done = True

    def abort(self) -> None:
        self._done = True
        self._buffer.clear()
        # Newest first, so a failure part-way leaves a shorter but gapless upload.
        for key in reversed(self._written):
            self._store._client.delete_object(Bucket=self._store.bucket, Key=key)
        self._written.clear()


class S3BlobStore(BlobStore):
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        bucket: str,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        path_style: bool = False,
        prefix: str = "",
        redirect: bool = False,
        create_bucket: bool = False,
    ) -> None:
        self.bucket = bucket
        self.region = region
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.redirect = redirect
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 5},
            # Many S3-compatible stores do not accept the default trailing checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        self._client: S3Client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        if create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
        else:
            return
        try:
            if self.region == "us-east-1":
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    # -- keys ------------------------------------------------------------------------

    def _blob_key(self, digest: str) -> str:
        algorithm, hexpart = check_digest(digest)
        return f"{self.prefix}blobs/{algorithm}/{hexpart[:2]}/{hexpart}"

    def _upload_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{check_upload_id(upload_id)}/"

    def _part_key(self, upload_id: str, offset: int) -> str:
        return f"{self._upload_prefix(upload_id)}part-{offset:020d}"

    def _marker_key(self, upload_id: str) -> str:
        return f"{self._upload_prefix(upload_id)}startedat"

    # -- committed blobs -------------------------------------------------------------

    def stat(self, digest: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._blob_key(digest))
        except BlobNotFound:
            return None
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        return head["ContentLength"]

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        key = self._blob_key(digest)
        if start < 0:
            raise ValueError(f"read start {start} is negative")
        if end is not None and end <= start:
            # Nothing to fetch, but a missing blob must still be reported.
            if self.stat(digest) is None:
                raise BlobNotFound(digest)
            return iter(())
        if start == 0 and end is None:
            range_header = ""
        else:
            last = "" if end is None else str(end - 1)
            range_header = f"bytes={start}-{last}"
        try:
            if range_header:
                resp = self._client.get_object(Bucket=self.bucket, Key=key, Range=range_header)
            else:
                resp = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(digest) from exc
            if _error_code(exc) == "InvalidRange":  # start is at or past the end
                return iter(())
            raise
        return self._iter_body(resp["Body"])

    @staticmethod
    def _iter_body(body: StreamingBody) -> Iterator[bytes]:
        try:
            for chunk in body.iter_chunks(READ_CHUNK):
                if chunk:
                    yield chunk
        finally:
            body.close()

    def redirect_url(self, digest: str, expires_in: int = 900) -> str | None:
        if not self.redirect:
            return None
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=expires_in,
        )

    def put(self, digest: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._blob_key(digest), Body=data)

    def delete(self, digest: str) -> bool:
        if self.stat(digest) is None:
            return False
        self._client.delete_object(Bucket=self.bucket, Key=self._blob_key(digest))
        return True

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        base = f"{self.prefix}blobs/"
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                rest = obj.get("Key", "")[len(base) :]
                algorithm, _, tail = rest.partition("/")
                fanout, _, hexpart = tail.partition("/")
                digest = f"{algorithm}:{hexpart}"
                try:
                    check_digest(digest)
                except BlobNotFound:
                    continue  # not ours (a stray object under the prefix)
                if fanout != hexpart[:2]:
                    continue
                yield digest, obj.get("Size", 0)

    # -- uploads ---------------------------------------------------------------------

    def _list_upload(self, upload_id: str) -> tuple[list[_Part], bool]:
        """The upload's parts in offset order and whether its marker exists."""
        base = self._upload_prefix(upload_id)
        parts: list[_Part] = []
        marker = False
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                key = obj.get("Key", "")
                name = key[len(base) :]
                if name == "startedat":
                    marker = True
                elif name.startswith("part-") and name[5:].isdigit():
                    parts.append(_Part(int(name[5:]), key, obj.get("Size", 0)))
        parts.sort(key=lambda p: p.offset)
        return parts, marker

    def _parts(self, upload_id: str) -> list[_Part]:
        """The upload's parts, checked to be gapless; raises :class:`UploadNotFound`."""
        parts, marker = self._list_upload(upload_id)
        if not marker:
            raise UploadNotFound(upload_id)
        expected = 0
        for part in parts:
            if part.offset != expected:
                raise RuntimeError(
                    f"upload {upload_id} is inconsistent: a part starts at {part.offset}, "
                    f"expected {expected} (were two writers appending at once?)"
                )
            expected += part.size
        return parts

    def upload_start(self, upload_id: str) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=self._marker_key(upload_id),
            Body=datetime.now(UTC).isoformat().encode(),
        )

    def upload_size(self, upload_id: str) -> int:
        return sum(p.size for p in self._parts(upload_id))

    def upload_writer(self, upload_id: str) -> UploadWriter:
        return _S3Writer(self, upload_id, self.upload_size(upload_id))

    def upload_read(self, upload_id: str) -> Iterator[bytes]:
        parts = self._parts(upload_id)
        return self._iter_parts(parts)

    def _iter_parts(self, parts: list[_Part]) -> Iterator[bytes]:
        for part in parts:
            resp = self._client.get_object(Bucket=self.bucket, Key=part.key)
            yield from self._iter_body(resp["Body"])

    def sync_blob(self, digest: str) -> None:
        """A completed PUT or multipart upload is durable: nothing to do."""

    def upload_commit(self, upload_id: str, digest: str, *, durable: bool = True) -> int:
        parts = self._parts(upload_id)
        key = self._blob_key(digest)
        total = sum(p.size for p in parts)
        if total < _SINGLE_PUT_LIMIT:
            data = b"".join(self._iter_parts(parts))
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        else:
            self._multipart_commit(parts, key, total)
        self._delete_upload(upload_id, parts)
        return total

    def _multipart_commit(self, parts: list[_Part], key: str, total: int) -> None:
        # Every part but the last is at least _MIN_PART, so while the blob is below this
        # size the part count stays within S3's limit; past it, copying is given up and
        # the re-buffered parts grow instead.
        may_copy = total <= _MIN_PART * (_MAX_PARTS - 1)
        target = min(_MAX_PART, max(_TARGET_PART, -(-total // (_MAX_PARTS - 1))))
        mpu = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        mpu_id = mpu["UploadId"]
        done: list[CompletedPartTypeDef] = []
        pending = bytearray()

        def send(data: bytes) -> None:
            number = len(done) + 1
            resp = self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=mpu_id, PartNumber=number, Body=data
            )
            done.append({"ETag": resp["ETag"], "PartNumber": number})

        def copy(source: str) -> None:
            number = len(done) + 1
            resp = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=mpu_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
            done.append({"ETag": resp["CopyPartResult"]["ETag"], "PartNumber": number})

        try:
            for part in parts:
                if may_copy and _MIN_PART <= part.size <= _MAX_PART:
                    if len(pending) >= _MIN_PART:
                        send(bytes(pending))
                        pending.clear()
                    if not pending:
                        copy(part.key)
                        continue
                for chunk in self._iter_parts([part]):
                    pending += chunk
                    if len(pending) >= target:
                        send(bytes(pending[:target]))
                        del pending[:target]
            if pending or not done:
                send(bytes(pending))
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=mpu_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            with contextlib.suppress(ClientError):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=mpu_id)
            raise

    def _delete_upload(self, upload_id: str, parts: list[_Part]) -> None:
        # Parts first and the marker last: an upload never lingers unlisted as orphans.
        keys = [p.key for p in parts]
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = keys[i : i + _DELETE_BATCH]
            resp = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = resp.get("Errors", [])
            if errors:
                raise OSError(f"could not delete parts of upload {upload_id}: {errors[:3]}")
        self._client.delete_object(Bucket=self.bucket, Key=self._marker_key(upload_id))

    def upload_abort(self, upload_id: str) -> None:
        try:
            parts, marker = self._list_upload(upload_id)
        except UploadNotFound:
            return
        if parts or marker:
            self._delete_upload(upload_id, parts)

    def iter_uploads(self) -> Iterator[UploadInfo]:
        base = f"{self.prefix}uploads/"
        paginator = self._client.get_paginator("list_objects_v2")
        current: str | None = None
        size = 0
        started: datetime | None = None
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                upload_id, _, name = obj.get("Key", "")[len(base) :].partition("/")
                if not SAFE_UPLOAD_ID.fullmatch(upload_id):
                    continue
                if upload_id != current:
                    if current is not None and started is not None:
                        yield UploadInfo(current, size, started)
                    current, size, started = upload_id, 0, None
                if name == "startedat":
                    # The store's clock, the same for every server process.
                    started = obj.get("LastModified")
                elif name.startswith("part-"):
                    size += obj.get("Size", 0)
        if current is not None and started is not None:
            yield UploadInfo(current, size, started)

    # -- health ----------------------------------------------------------------------

    def ping(self) -> None:
        self._client.head_bucket(Bucket=self.bucket)
