"""Open an image stored in the registry for the scan engine, straight from the blob store.

A scan never pulls over HTTP: the manifest comes from the database, the config and the
layers from the blob store (filesystem or S3) through :class:`BlobStream`, which the
engine reads layer by layer (each blob is checked against its digest and size as it
streams, as for an OCI layout). What is not a container image — an artifact whose config
is not an image config, a manifest without layers — is :class:`Unsupported`, which ends
the scan ``unsupported`` rather than ``failed``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from dockyard.oci import mediatypes as mt
from dockyard.scanning.formats.common import LayerInfo
from dockyard.scanning.image import MAX_JSON, ImageSource, Layer, ScanError
from dockyard.storage.base import BlobNotFound, BlobStore

IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})
"""Config media types of container images; any other config makes an artifact."""


class Unsupported(ScanError):
    """The manifest is not a container image (a Helm chart, a signature, wasm, …)."""


class BlobStream(io.RawIOBase):
    """A readable stream over the chunks the blob store yields."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(view), len(self._buffer))
        view[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        closer = getattr(self._chunks, "close", None)
        if callable(closer):
            closer()
        super().close()


def _opener(store: BlobStore, digest: str) -> Callable[[], IO[bytes]]:
    def open_blob() -> IO[bytes]:
        try:
            path = store.local_path(digest)
            if path is not None:
                return open(path, "rb")
            return io.BufferedReader(BlobStream(store.read(digest)), 1024 * 1024)
        except (BlobNotFound, FileNotFoundError) as exc:
            raise ScanError(f"layer {digest} is missing from the blob store") from exc

    return open_blob


def read_json_blob(store: BlobStore, descriptor: dict[str, Any], what: str) -> dict[str, Any]:
    """A small JSON blob (a config), checked against its descriptor's digest and size."""
    digest = descriptor.get("digest")
    size = descriptor.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
        raise ScanError(f"the {what} descriptor has no valid digest or size")
    if size > MAX_JSON:
        raise ScanError(f"the {what} {digest} is {size} bytes: too large")
    data = bytearray()
    try:
        for chunk in store.read(digest):
            data += chunk
            if len(data) > size:
                break
    except BlobNotFound as exc:
        raise ScanError(f"the {what} {digest} is missing from the blob store") from exc
    algorithm = digest.partition(":")[0]
    if algorithm not in ("sha256", "sha512"):
        raise ScanError(f"the {what} has an unsupported digest {digest}")
    actual = f"{algorithm}:{hashlib.new(algorithm, bytes(data)).hexdigest()}"
    if len(data) != size or actual != digest:
        raise ScanError(f"the {what} {digest} does not match its digest or size")
    try:
        doc = json.loads(bytes(data))
    except (ValueError, UnicodeError) as exc:
        raise ScanError(f"the {what} {digest} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise ScanError(f"the {what} {digest} is not a JSON object")
    return doc


def open_stored_image(
    store: BlobStore, name: str, digest: str, manifest: dict[str, Any]
) -> tuple[ImageSource, list[LayerInfo]]:
    """The image of a stored image manifest, and its layers' facts.

    Raises :class:`Unsupported` for artifacts that are not images and
    :class:`ScanError` for images that cannot be read.
    """
    if "manifests" in manifest:
        raise ScanError(f"manifest {digest} is an index, not an image")
    config_descriptor = manifest.get("config")
    if not isinstance(config_descriptor, dict):
        raise ScanError(f"manifest {digest} has no config")
    artifact = manifest.get("artifactType")
    config_type = config_descriptor.get("mediaType")
    if config_type not in IMAGE_CONFIGS:
        kind = artifact or config_type or "unknown"
        raise Unsupported(f"the artifact ({kind}) is not a container image")
    if isinstance(artifact, str) and artifact:
        raise Unsupported(f"the artifact ({artifact}) is not a container image")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ScanError(f"manifest {digest} has no layers list")
    if not layers:
        raise Unsupported("the manifest has no layers: there is no filesystem to scan")
    config = read_json_blob(store, config_descriptor, "image config")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids", []) if isinstance(rootfs, dict) else []
    history = [
        h for h in (config.get("history") or []) if isinstance(h, dict) and not h.get("empty_layer")
    ]
    out: list[Layer] = []
    infos: list[LayerInfo] = []
    for i, descriptor in enumerate(layers):
        if not isinstance(descriptor, dict):
            raise ScanError(f"manifest {digest} has an invalid layer descriptor")
        layer_digest = descriptor.get("digest")
        size = descriptor.get("size")
        if not isinstance(layer_digest, str) or not isinstance(size, int) or size < 0:
            raise ScanError(f"manifest {digest}: layer {i} has no valid digest or size")
        out.append(Layer(layer_digest, size, _opener(store, layer_digest), verify=True))
        diff_id = diff_ids[i] if i < len(diff_ids) and isinstance(diff_ids[i], str) else ""
        step = history[i] if i < len(history) else {}
        infos.append(
            LayerInfo(
                digest=layer_digest,
                diff_id=diff_id,
                size=size,
                media_type=str(descriptor.get("mediaType", "")),
                created_by=str(step.get("created_by", "")),
            )
        )
    return ImageSource(name, digest, config, out), infos
