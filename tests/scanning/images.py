"""Build test images in Python: tar layers, OCI layouts, Docker archives, package
databases (dpkg, apk, rpm sqlite with real header blobs), Python and npm metadata."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"

Compression = Literal["gzip", "zstd", "none"]


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


# -- layers --------------------------------------------------------------------------------


class LayerBuilder:
    """An uncompressed tar layer, member by member, in the order written."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(  # noqa: SIM115 - closed by tar()
            fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT
        )

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> LayerBuilder:
        info.mtime = 1_700_000_000
        if data is not None:
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        else:
            self._tar.addfile(info)
        return self

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.mode = mode
        return self._add(info, data.encode() if isinstance(data, str) else data)

    def dir(self, path: str) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        return self._add(info)

    def symlink(self, path: str, target: str) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        return self._add(info)

    def hardlink(self, path: str, target: str) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.type = tarfile.LNKTYPE
        info.linkname = target
        return self._add(info)

    def device(self, path: str) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        return self._add(info)

    def fifo(self, path: str) -> LayerBuilder:
        info = tarfile.TarInfo(path)
        info.type = tarfile.FIFOTYPE
        return self._add(info)

    def whiteout(self, path: str) -> LayerBuilder:
        directory, _, name = path.rpartition("/")
        return self.file(f"{directory}/.wh.{name}" if directory else f".wh.{name}", b"")

    def opaque(self, directory: str) -> LayerBuilder:
        return self.file(f"{directory}/.wh..wh..opq", b"")

    def tar(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


# -- images --------------------------------------------------------------------------------


@dataclass
class Built:
    """What was written: the digests a scan should report."""

    manifest: str
    """Manifest digest (OCI) or image ID (Docker archive)."""
    layers: list[str]
    """Layer digests as the scanner reports them, lowest first."""
    config: dict[str, Any] = field(default_factory=dict)


def image_config(tars: Sequence[bytes], os: str = "linux", arch: str = "amd64") -> dict[str, Any]:
    return {
        "architecture": arch,
        "os": os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
    }


class OciLayout:
    """An OCI image layout directory being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.manifests: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = sha256(data)
        (self.root / "blobs" / "sha256" / digest.partition(":")[2]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(
        self,
        tars: Sequence[bytes],
        compression: Compression | Sequence[Compression] = "gzip",
        *,
        os: str = "linux",
        arch: str = "amd64",
    ) -> tuple[dict[str, Any], Built]:
        """Write the blobs of one image; its manifest descriptor (not yet listed)."""
        kinds = [compression] * len(tars) if isinstance(compression, str) else compression
        layers = []
        for data, kind in zip(tars, kinds, strict=True):
            suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[kind]
            layers.append(self.blob(compress(data, kind), OCI_LAYER + suffix))
        config = image_config(tars, os, arch)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(json.dumps(config).encode(), OCI_CONFIG),
            "layers": layers,
        }
        descriptor = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        return descriptor, Built(descriptor["digest"], [d["digest"] for d in layers], config)

    def index(self, entries: Iterable[tuple[dict[str, Any], str, str]]) -> dict[str, Any]:
        """An image index blob listing (descriptor, os, arch) entries."""
        manifests = [{**d, "platform": {"os": o, "architecture": a}} for d, o, a in entries]
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.blob(json.dumps(doc).encode(), OCI_INDEX)

    def tag(self, descriptor: dict[str, Any], tag: str | None) -> None:
        annotations = {REF_NAME: tag} if tag else {}
        self.manifests.append({**descriptor, **({"annotations": annotations} if tag else {})})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.manifests}
        (self.root / "index.json").write_text(json.dumps(index))


def oci_image(
    root: Path,
    tars: Sequence[bytes],
    compression: Compression | Sequence[Compression] = "gzip",
    tag: str | None = "latest",
) -> Built:
    """A layout holding one single-platform image; ``oci:ROOT:TAG`` opens it."""
    layout = OciLayout(root)
    descriptor, built = layout.image(tars, compression)
    layout.tag(descriptor, tag)
    return built


def docker_archive(
    path: Path,
    tars: Sequence[bytes],
    compression: Compression = "none",
    tags: Sequence[str] = ("example/app:latest",),
) -> Built:
    """A ``docker save`` style archive (legacy layout: ``<id>/layer.tar``)."""
    config = image_config(tars)
    config_bytes = json.dumps(config).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    members: list[tuple[str, bytes]] = [(config_name, config_bytes)]
    names = []
    for data in tars:
        name = f"{hashlib.sha256(data).hexdigest()}/layer.tar"
        names.append(name)
        members.append((name, compress(data, compression)))
    manifest = [{"Config": config_name, "RepoTags": list(tags), "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Built(sha256(config_bytes), [sha256(t) for t in tars], config)


# -- package databases -----------------------------------------------------------------------


def os_release(os_id: str, version_id: str, name: str = "") -> str:
    return (
        f'PRETTY_NAME="{name or os_id} {version_id}"\n'
        f'NAME="{name or os_id}"\nID={os_id}\nVERSION_ID="{version_id}"\n'
    )


def dpkg_entry(
    name: str,
    version: str,
    source: str = "",
    status: str = "install ok installed",
    arch: str = "amd64",
) -> str:
    lines = [f"Package: {name}"]
    if status:
        lines.append(f"Status: {status}")
    lines += ["Priority: optional", "Section: libs", "Installed-Size: 100"]
    lines += ["Maintainer: Someone <someone@example.org>", f"Architecture: {arch}"]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", "Depends: libc6 (>= 2.34)"]
    lines += [f"Description: the {name} package", " A longer description.", " ."]
    return "\n".join(lines) + "\n"


def dpkg_status(*entries: str) -> str:
    return "\n".join(entries)


def apk_entry(name: str, version: str, origin: str = "") -> str:
    lines = ["C:Q1abcdefabcdefabcdefabcdefabcd=", f"P:{name}", f"V:{version}", "A:x86_64"]
    lines += ["S:1000", "I:2000", f"T:the {name} package", "U:https://example.org"]
    lines += [f"o:{origin or name}", "m:Someone <someone@example.org>", "F:usr/bin", f"R:{name}"]
    return "\n".join(lines) + "\n"


def apk_installed(*entries: str) -> str:
    return "\n".join(entries) + "\n"


RPM_INT32 = 4
RPM_STRING = 6
RPM_STRING_ARRAY = 8
RPM_HEADERIMMUTABLE = 63
RPM_BIN = 7


def rpm_header(
    name: str,
    version: str,
    release: str,
    epoch: int | None = None,
    sourcerpm: str | None = None,
    extra: Sequence[tuple[int, int, bytes]] = (),
) -> bytes:
    """An rpm database header blob: entry count and data length (big-endian int32), the
    16-byte index entries (tag, type, offset, count), then the data."""
    values: list[tuple[int, int, bytes, int]] = [
        (1000, RPM_STRING, name.encode() + b"\0", 1),
        (1001, RPM_STRING, version.encode() + b"\0", 1),
        (1002, RPM_STRING, release.encode() + b"\0", 1),
        (1004, RPM_STRING_ARRAY, b"a summary\0second\0", 2),
    ]
    if epoch is not None:
        values.append((1003, RPM_INT32, struct.pack(">I", epoch), 1))
    if sourcerpm is not None:
        values.append((1044, RPM_STRING, sourcerpm.encode() + b"\0", 1))
    values += [(tag, kind, data, 1) for tag, kind, data in extra]
    entries = []
    data = bytearray()
    # a region tag first, as rpm writes it (its data is a trailer the parser ignores)
    trailer = struct.pack(">iIiI", RPM_HEADERIMMUTABLE, RPM_BIN, -16 * (len(values) + 1), 16)
    for tag, kind, value, count in sorted(values):
        if kind == RPM_INT32:
            data.extend(b"\0" * (-len(data) % 4))
        entries.append(struct.pack(">iIiI", tag, kind, len(data), count))
        data.extend(value)
    entries.insert(0, struct.pack(">iIiI", RPM_HEADERIMMUTABLE, RPM_BIN, len(data), 16))
    data.extend(trailer)
    return struct.pack(">II", len(entries), len(data)) + b"".join(entries) + bytes(data)


def rpmdb_sqlite(headers: Sequence[bytes]) -> bytes:
    """An ``rpmdb.sqlite`` file: table Packages(hnum, blob) plus an index table, in WAL
    mode like rpm leaves it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
        )
        conn.execute("CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL)")
        for i, header in enumerate(headers, 1):
            conn.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (i, header))
        conn.commit()
        data = bytearray(conn.serialize())
    finally:
        conn.close()
    data[18:20] = b"\x02\x02"  # the header of a database in WAL mode
    return bytes(data)


def python_metadata(name: str, version: str) -> str:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Summary: a package\nLicense: MIT\n\nLong description.\nName: not-this\n"
    )


def package_json(name: str | None, version: str | None) -> str:
    doc: dict[str, Any] = {"description": "a module", "main": "index.js"}
    if name is not None:
        doc["name"] = name
    if version is not None:
        doc["version"] = version
    return json.dumps(doc)


# -- a real Debian image ---------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    """The first Debian archive (not security, not updates) the machine's apt uses."""

    mirror: str
    suite: str
    keyring: str | None


def _apt_entries(root: Path) -> Iterator[tuple[list[str], str, list[str], str | None]]:
    """(types, URI, suites, signed-by) of every apt source, one-line and deb822 styles."""
    files = [root / "sources.list"] if (root / "sources.list").is_file() else []
    parts = root / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[0] in " \t":
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
                    continue
                for uri in fields["uris"].split():
                    yield (
                        fields.get("types", "").split(),
                        uri,
                        fields.get("suites", "").split(),
                        fields.get("signed-by"),
                    )
        else:
            for raw in text.splitlines():
                entry = re.sub(r"#.*", "", raw).strip()
                options = re.search(r"\[([^\]]*)\]", entry)
                signed = None
                if options:
                    found = re.search(r"signed-by=(\S+)", options.group(1))
                    signed = found.group(1) if found else None
                    entry = entry.replace(options.group(0), " ")
                words = entry.split()
                if len(words) >= 3:
                    yield [words[0]], words[1], [words[2]], signed


def apt_debian_source(root: Path = Path("/etc/apt")) -> AptSource:
    """Read from the apt configuration at run time: no host name lives in the tests."""
    for types, uri, suites, signed in _apt_entries(root):
        if "deb" not in types or "security" in uri:
            continue
        for suite in suites:
            if "-" in suite or "/" in suite:  # bookworm-updates, bookworm-security, …
                continue
            keyring = signed if signed and signed.startswith("/") else None
            return AptSource(uri, suite, keyring)
    raise RuntimeError(f"no Debian archive found in the apt sources under {root}")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "dockyard-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result.stdout


def debootstrap_tarball() -> tuple[Path, AptSource]:
    """A ``debootstrap --variant=minbase`` root file system as a tar, built once per suite
    and architecture and kept in the cache directory."""
    source = apt_debian_source()
    arch = _run(["dpkg", "--print-architecture"], timeout=30).strip()
    tarball = cache_dir() / f"debootstrap-minbase-{source.suite}-{arch}.tar"
    if tarball.is_file():
        return tarball, source
    tool = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    work = Path(tempfile.mkdtemp(prefix="dockyard-debootstrap-", dir=cache_dir()))
    try:
        keyring = [f"--keyring={source.keyring}"] if source.keyring else []
        _run(
            [tool, "--variant=minbase", *keyring, source.suite, str(work / "root"), source.mirror],
            timeout=1800,
        )
        partial = work / "root.tar"
        _run(["tar", "-C", str(work / "root"), "-cf", str(partial), "."], timeout=600)
        os.replace(partial, tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball, source


def buildah_oci_image(tarball: Path, layout: Path, tag: str = "latest") -> None:
    """Turn a root file system tarball into a one-layer image in the OCI layout ``layout``
    with buildah (vfs storage in a temporary directory)."""
    tool = shutil.which("buildah")
    if tool is None:
        raise RuntimeError("buildah is not installed: run `make system-test-deps`")
    state = Path(tempfile.mkdtemp(prefix="dyb-", dir="/tmp"))
    try:
        for d in ("home", "run", "tmp"):
            (state / d).mkdir()
        (state / "run").chmod(0o700)
        (state / "auth.json").write_text('{"auths": {}}')
        env = {
            **os.environ,
            "HOME": str(state / "home"),
            "XDG_RUNTIME_DIR": str(state / "run"),
            "TMPDIR": str(state / "tmp"),
            "REGISTRY_AUTH_FILE": str(state / "auth.json"),
        }
        storage = ["--root", str(state / "root"), "--runroot", str(state / "rr")]
        storage += ["--storage-driver", "vfs"]
        container = _run([tool, *storage, "from", "scratch"], timeout=120, env=env).strip()
        _run([tool, *storage, "add", container, str(tarball), "/"], timeout=600, env=env)
        _run(
            [tool, *storage, "commit", "-q", container, f"oci:{layout}:{tag}"],
            timeout=600,
            env=env,
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
