"""Images on disk for the client tests: OCI image layouts written and read by hand.

Nothing here touches the network or Dockyard's own code: layers are tar files made with
:mod:`tarfile`, manifests are JSON written the way the image spec describes them, and an
``oci:`` layout is the directory the image-layout spec describes (``oci-layout``,
``index.json``, ``blobs/sha256/...``). The container tools read and write these
layouts, so a test can build an image here, move it through Dockyard with a real client
and compare what comes back byte for byte.

Also: :func:`run` (a subprocess that fails the test with its output) and :func:`tool`
(the path of a required binary, failing the test clearly when it is missing).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    sha256,
)

REF_NAME = "org.opencontainers.image.ref.name"

_FIXED_TIME = 1_700_000_000  # tar and gzip timestamps: the same bytes on every run


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=False).encode()


# -- tools -------------------------------------------------------------------------------


def tool(name: str) -> str:
    """The path of ``name``; fails (never skips) the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed, and the client tests need it: run "
            "`make system-test-deps` (as root) or apt-get install buildah skopeo podman "
            "busybox-static",
            pytrace=False,
        )
    return path


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client; on failure (when ``check``) fail the test with its whole output."""
    result = subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


def client_env(tmp: Path) -> dict[str, str]:
    """Environment for skopeo/buildah/podman that keeps their state inside ``tmp``."""
    home = tmp / "home"
    runtime = tmp / "xdg-runtime"
    for d in (home, runtime, tmp / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    auth = tmp / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}')  # buildah refuses an auth file that is missing
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "REGISTRY_AUTH_FILE": str(auth),
        "TMPDIR": str(tmp / "tmp"),
        "NO_PROXY": "*",
        "no_proxy": "*",
    }


# -- layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    tar: bytes
    """The uncompressed tar: its digest is the config's ``diff_id``."""
    blob: bytes
    """The gzip'd tar, as stored in the registry."""

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.blob)


def make_tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A tar with ``files`` (path → content) and their parent directories."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = _FIXED_TIME
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mode = mode
            info.mtime = _FIXED_TIME
            tar.addfile(info, io.BytesIO(files[path]))
    return out.getvalue()


def make_layer(files: dict[str, bytes], mode: int = 0o644) -> Layer:
    tar = make_tar(files, mode)
    return Layer(tar=tar, blob=gzip.compress(tar, mtime=0))


def read_layer(blob: bytes) -> dict[str, bytes | None]:
    """path → content (None for directories and other non-files) of a (gzip'd) tar."""
    data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./").rstrip("/")
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                found[name] = f.read()
            else:
                found[name] = None
    return found


# -- images ------------------------------------------------------------------------------


@dataclass
class Image:
    """One single-platform image: its manifest and every blob it references."""

    manifest: bytes
    media_type: str
    config: bytes
    layers: list[Layer]
    arch: str

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        found = {sha256(self.config): self.config}
        found.update({layer.digest: layer.blob for layer in self.layers})
        return found

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return descriptor(self.media_type, self.manifest, **extra)


def build_image(
    files_per_layer: list[dict[str, bytes]],
    *,
    arch: str = "amd64",
    docker: bool = False,
    labels: dict[str, str] | None = None,
) -> Image:
    """An image with one gzip'd layer per entry of ``files_per_layer``.

    OCI media types by default; ``docker=True`` gives a Docker schema 2 image.
    """
    layers = [make_layer(files) for files in files_per_layer]
    config_doc: dict[str, Any] = {
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": labels or {},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": f"dockyard-tests layer {i}"}
            for i in range(len(layers))
        ],
    }
    if arch == "arm64":
        config_doc["variant"] = "v8"
    config = canonical(config_doc)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [
            descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer.blob) for layer in layers
        ],
    }
    return Image(canonical(manifest), media_type, config, layers, arch)


def platform(arch: str) -> dict[str, str]:
    found = {"architecture": arch, "os": "linux"}
    if arch == "arm64":
        found["variant"] = "v8"
    return found


def build_index(images: list[Image], *, docker: bool = False) -> bytes:
    """An OCI image index (or a Docker manifest list) of ``images``, one per platform."""
    media_type = DOCKER_LIST if docker else OCI_INDEX
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [img.descriptor(platform=platform(img.arch)) for img in images],
        }
    )


def sample_files(tag: str, layers: int = 3) -> list[dict[str, bytes]]:
    """A few files per layer, one of them random so that every image is new."""
    return [
        {
            f"etc/dockyard/{tag}/layer{i}.txt": f"layer {i} of {tag}\n".encode(),
            f"opt/data{i}/random.bin": os.urandom(4096 + 1000 * i),
            f"opt/data{i}/nested/dir/note": f"note {i}\n".encode() * 50,
        }
        for i in range(layers)
    ]


# -- OCI image layouts -------------------------------------------------------------------


@dataclass
class Layout:
    """An OCI image layout directory, readable and writable."""

    root: Path
    manifests: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> Layout:
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        layout = cls(root)
        layout.save()
        return layout

    @classmethod
    def open(cls, root: Path) -> Layout:
        assert json.loads((root / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
        index = json.loads((root / "index.json").read_text())
        return cls(root, list(index.get("manifests", [])))

    def save(self) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.manifests}
        (self.root / "index.json").write_bytes(canonical(index))

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hex_ = digest.partition(":")
        return self.root / "blobs" / algorithm / hex_

    def add_blob(self, data: bytes) -> str:
        digest = sha256(data)
        self.blob_path(digest).write_bytes(data)
        return digest

    def blob(self, digest: str) -> bytes:
        data = self.blob_path(digest).read_bytes()
        assert sha256(data) == digest, f"layout blob {digest} does not match its digest"
        return data

    def add_image(self, image: Image, tag: str | None = None) -> None:
        for data in image.blobs.values():
            self.add_blob(data)
        self.add_blob(image.manifest)
        if tag is not None:
            self.tag(image.descriptor(), tag)

    def add_index(self, images: list[Image], tag: str, *, docker: bool = False) -> bytes:
        for image in images:
            self.add_image(image)
        index = build_index(images, docker=docker)
        self.add_blob(index)
        self.tag(descriptor(DOCKER_LIST if docker else OCI_INDEX, index), tag)
        return index

    def tag(self, desc: dict[str, Any], tag: str) -> None:
        self.manifests = [
            m for m in self.manifests if m.get("annotations", {}).get(REF_NAME) != tag
        ]
        self.manifests.append({**desc, "annotations": {REF_NAME: tag}})
        self.save()

    def resolve(self, tag: str) -> dict[str, Any]:
        """The descriptor ``index.json`` gives for ``tag``."""
        for desc in self.manifests:
            if desc.get("annotations", {}).get(REF_NAME) == tag:
                return desc
        raise AssertionError(f"{self.root}: no manifest tagged {tag!r} in {self.manifests}")

    def closure(self, digest: str) -> dict[str, bytes]:
        """Every blob reachable from the manifest or index ``digest`` (itself included)."""
        found: dict[str, bytes] = {}
        pending = [digest]
        while pending:
            current = pending.pop()
            if current in found:
                continue
            data = self.blob(current)
            found[current] = data
            doc = json.loads(data)
            if "manifests" in doc:
                pending.extend(m["digest"] for m in doc["manifests"])
            if "config" in doc:
                found[doc["config"]["digest"]] = self.blob(doc["config"]["digest"])
            for layer in doc.get("layers", []):
                found[layer["digest"]] = self.blob(layer["digest"])
        return found


# -- dir: directories --------------------------------------------------------------------

_DIR_VERSION = "Directory Transport Version: 1.1\n"


def write_dir(root: Path, top: bytes, images: list[Image]) -> None:
    """A ``dir:`` directory (containers/image's own format) holding ``top``.

    ``top`` is a manifest list (or one image's manifest); ``images`` are its instances.
    Skopeo's ``oci:`` transport only reads OCI media types, so Docker schema 2 images
    and manifest lists travel through this format instead.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "version").write_text(_DIR_VERSION)
    (root / "manifest.json").write_bytes(top)
    for image in images:
        if image.manifest != top:
            name = image.digest.removeprefix("sha256:") + ".manifest.json"
            (root / name).write_bytes(image.manifest)
        for digest, data in image.blobs.items():
            (root / digest.removeprefix("sha256:")).write_bytes(data)


def read_dir(root: Path) -> dict[str, bytes]:
    """Every manifest (top-level first) and blob of a ``dir:`` directory, by digest."""
    assert (root / "version").read_text() == _DIR_VERSION
    found = {sha256(top := (root / "manifest.json").read_bytes()): top}
    for path in sorted(root.iterdir()):
        if path.name in ("version", "manifest.json"):
            continue
        data = path.read_bytes()
        digest = "sha256:" + path.name.removesuffix(".manifest.json")
        assert sha256(data) == digest, f"{path} does not match its digest"
        found[digest] = data
    return found


__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "EMPTY_JSON",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "Image",
    "Layer",
    "Layout",
    "build_image",
    "build_index",
    "client_env",
    "descriptor",
    "make_layer",
    "read_dir",
    "read_layer",
    "run",
    "sample_files",
    "sha256",
    "tool",
    "write_dir",
]
