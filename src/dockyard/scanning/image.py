"""Read an image's filesystem without extracting it.

Two image sources are understood:

``oci:PATH[:TAG]``
    An OCI image layout (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``) as skopeo
    and buildah write it. ``TAG`` is matched against the
    ``org.opencontainers.image.ref.name`` annotation; without it the only (or first)
    image is read. Every blob read is checked against its digest and size.
``docker-archive:PATH[:REF]``
    The tarball ``docker save`` writes (``manifest.json``, a config and one tar per
    layer). ``REF`` picks an image by its ``RepoTags`` entry when the archive holds
    several.

Indexes and Docker manifest lists are resolved to the image for the requested platform
(``os/arch[/variant]``).

The filesystem is the layers applied in order, with whiteouts (``.wh.NAME``) and opaque
directories (``.wh..wh..opq``). Each layer is streamed once through :mod:`tarfile` in
stream mode; nothing is written to disk. Only the members a *selector* asks for are
kept, with their content (bounded per file), together with every symbolic link so that
paths can be resolved inside the image. Member paths are normalized lexically; a path
that leaves the image root is ignored and reported, links are only ever resolved within
the image, device files and fifos are ignored. Limits on the number of members, their
sizes and the content kept make a tar bomb or a malformed layer a :class:`ScanError`
rather than a crash or unbounded memory use.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import lzma
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import zstandard

MiB = 1024 * 1024
GiB = 1024 * MiB

MAX_JSON = 4 * MiB
"""Largest index, manifest or config document read."""
MAX_MEMBERS = 2_000_000
"""Most tar members in one image, all layers together."""
MAX_MEMBER_SIZE = 64 * GiB
"""A member claiming to be larger than this is taken as a sign of a forged archive."""
MAX_UNCOMPRESSED = 256 * GiB
"""Most uncompressed bytes read from all layers of one image."""
MAX_KEPT = 512 * MiB
"""Most file content kept in memory for the detectors, all versions together."""
MAX_LINKS = 500_000
"""Most symbolic links remembered for path resolution."""
MAX_EXTENDED_HEADER = MiB
"""Largest pax or GNU long-name header accepted."""
MAX_LINK_HOPS = 40
"""Symbolic links followed while resolving one path (Linux's ELOOP limit)."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}
_EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


class ScanError(Exception):
    """The image cannot be read; the message is one line, meant for the user."""


@dataclass(frozen=True, slots=True)
class Want:
    """What a selector asks for a path: keep its content, up to ``limit`` bytes."""

    limit: int
    head: bool = False
    """Keep the first ``limit`` bytes of a larger file instead of skipping it."""
    history: bool = False
    """Keep the file as every layer that changed it left it, not only the final copy."""


Selector = Callable[[str], "Want | None"]
"""Called with every normalized member path (no leading ``/``)."""


@dataclass(frozen=True, slots=True)
class LayerProgress:
    index: int
    """0-based position of the layer being read."""
    count: int
    digest: str
    done: int
    """Bytes of this layer read so far (as stored, i.e. compressed)."""
    size: int
    image_done: int
    """Bytes read so far over all layers."""
    image_size: int


Progress = Callable[[LayerProgress], None]


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    """The digest users know the layer by: the blob digest (OCI), the diff ID (Docker)."""
    size: int
    opener: Callable[[], IO[bytes]]
    verify: bool
    """Check the bytes read against ``digest`` and ``size``."""


@dataclass(slots=True)
class ImageSource:
    name: str
    digest: str
    """The manifest digest (OCI layout) or the image ID (Docker archive)."""
    config: dict[str, Any]
    layers: list[Layer]
    _close: Callable[[], None] = lambda: None

    def close(self) -> None:
        self._close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- paths -------------------------------------------------------------------------------


def normalize(name: str) -> str | None:
    """``name`` as a path relative to the image root, or None when it leaves the root.

    Leading ``/`` and ``./`` are dropped and ``..`` is resolved lexically; the root
    itself is ``""``.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


# -- the filesystem view ------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    """One kept member: a file with its content, a link, or something else at a path."""

    kind: str
    """``file``, ``symlink``, ``hardlink`` (target not read), ``large`` (content not
    kept: too large) or ``other`` (a directory, device, fifo hiding lower files)."""
    layer: int
    data: bytes | None = None
    target: str = ""
    """Symbolic link: the link text as written. Hard link: the normalized target."""
    want: Want | None = None


@dataclass(slots=True)
class FileView:
    """The files the selector asked for, as the image's layers leave them."""

    layers: list[str]
    """Layer digests, lowest first."""
    nodes: dict[str, Node] = field(default_factory=dict)
    history: dict[str, list[tuple[int, bytes | None]]] = field(default_factory=dict)
    """For paths wanted with history: (layer, content or None when absent) for every
    layer that changed the path, lowest first."""
    warnings: list[str] = field(default_factory=list)

    def resolve(self, path: str) -> str | None:
        """``path`` with every symbolic link resolved inside the image; None on a loop."""
        hops = 0
        todo = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/".join([*done, part])
            node = self.nodes.get(current)
            if node is not None and node.kind == "symlink":
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = node.target
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            done.append(part)
        return "/".join(done)

    def lookup(self, path: str) -> tuple[str, Node] | None:
        """The kept file at ``path`` (links resolved), with its real path."""
        real = self.resolve(path)
        if real is None:
            return None
        node = self.nodes.get(real)
        if node is None or node.kind != "file":
            return None
        return real, node

    def read(self, path: str) -> bytes | None:
        found = self.lookup(path)
        return None if found is None else found[1].data

    def layer_of(self, node: Node) -> str:
        return self.layers[node.layer] if 0 <= node.layer < len(self.layers) else ""

    def files(self) -> Iterator[tuple[str, Node]]:
        """Every kept regular file, by real path, in path order."""
        for path in sorted(self.nodes):
            node = self.nodes[path]
            if node.kind == "file":
                yield path, node

    def versions(self, path: str) -> list[tuple[int, bytes | None]]:
        """Every version of ``path`` the layers wrote (links resolved), lowest first."""
        real = self.resolve(path)
        return list(self.history.get(real, [])) if real is not None else []


class _Builder:
    """Applies layers one by one to a sparse index of the kept paths."""

    def __init__(self, selector: Selector, layers: list[str]) -> None:
        self.selector = selector
        self.view = FileView(layers=layers)
        self.members = 0
        self.uncompressed = 0
        self.kept = 0
        self.links = 0
        self._ancestors: set[str] = set()
        self._recorded: dict[str, Node | None] = {}

    # one layer

    def apply(self, index: int, tar: tarfile.TarFile, digest: str) -> None:
        upper: dict[str, Node] = {}
        deleted: list[str] = []
        opaque: list[str] = []
        hidden: list[str] = []  # non-directories in this layer over kept lower paths
        while True:
            member = tar.next()
            if member is None:
                break
            tar.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every member in stream mode otherwise
            self.members += 1
            if self.members > MAX_MEMBERS:
                raise ScanError(f"image has more than {MAX_MEMBERS} files: refusing to read on")
            if member.size < 0 or member.size > MAX_MEMBER_SIZE:
                raise ScanError(f"layer {digest}: member {member.name!r} has an absurd size")
            self.uncompressed += member.size
            if self.uncompressed > MAX_UNCOMPRESSED:
                raise ScanError(f"image has more than {MAX_UNCOMPRESSED // GiB} GiB of files")
            path = normalize(member.name)
            if path is None:
                self.view.warnings.append(
                    f"layer {_short(digest)}: ignored {member.name!r}: it leaves the image root"
                )
                continue
            if not path:
                continue
            directory, _, base = path.rpartition("/")
            if base == _OPAQUE:
                opaque.append(directory)
                continue
            if base.startswith(_WHITEOUT):
                name = base[len(_WHITEOUT) :]
                if name and name not in (".", ".."):
                    deleted.append(f"{directory}/{name}" if directory else name)
                continue
            if not member.isdir() and path in self._ancestors:
                hidden.append(path)
            node = self._member(index, tar, member, path, upper)
            if node is not None:
                upper[path] = node
            elif path in upper:
                del upper[path]
        self._merge(index, upper, deleted, opaque, hidden)

    def _member(
        self,
        index: int,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        path: str,
        upper: dict[str, Node],
    ) -> Node | None:
        if member.issym():
            self.links += 1
            if self.links > MAX_LINKS:
                raise ScanError(f"image has more than {MAX_LINKS} symbolic links")
            return Node("symlink", index, target=member.linkname, want=self.selector(path))
        want = self.selector(path)
        if want is None:
            # a directory or special file where a kept file was: it hides it
            return Node("other", index) if path in upper or path in self.view.nodes else None
        if member.islnk():
            target = normalize(member.linkname)
            if target is None:
                self.view.warnings.append(
                    f"layer {_short(self.view.layers[index])}: ignored hard link {path!r}: "
                    "its target leaves the image root"
                )
                return Node("other", index)
            source = upper.get(target) or self.view.nodes.get(target)
            if source is not None and source.kind in ("file", "symlink"):
                return Node(source.kind, index, source.data, source.target, want)
            return Node("hardlink", index, target=target, want=want)
        if not member.isreg():
            return Node("other", index)
        if member.size > want.limit and not want.head:
            self.view.warnings.append(
                f"skipped /{path}: {member.size} bytes, more than the {want.limit} read "
                "for such files"
            )
            return Node("large", index, want=want)
        stream = tar.extractfile(member)
        if stream is None:  # pragma: no cover - isreg() members always have content
            return Node("other", index)
        data = stream.read(min(member.size, want.limit))
        self.kept += len(data)
        if self.kept > MAX_KEPT:
            raise ScanError(
                f"the package records in this image exceed {MAX_KEPT // MiB} MiB: refusing "
                "to read on"
            )
        return Node("file", index, data, want=want)

    def _merge(
        self,
        index: int,
        upper: dict[str, Node],
        deleted: list[str],
        opaque: list[str],
        hidden: list[str],
    ) -> None:
        nodes = self.view.nodes
        for path in deleted:
            nodes.pop(path, None)
            if path in self._ancestors:
                self._drop_under(path)
        for path in hidden:
            self._drop_under(path)
        for directory in opaque:
            if not directory or directory in self._ancestors:
                self._drop_under(directory)
        nodes.update(upper)
        self._ancestors = {a for p in nodes for a in _ancestors(p)}
        self._record_history(index)

    def _drop_under(self, directory: str) -> None:
        prefix = f"{directory}/" if directory else ""
        for path in [p for p in self.view.nodes if p.startswith(prefix)]:
            del self.view.nodes[path]

    def _record_history(self, index: int) -> None:
        for path, node in self.view.nodes.items():
            if node.want is not None and node.want.history and path not in self._recorded:
                self._recorded[path] = None
        for path, last in self._recorded.items():
            current = self.view.nodes.get(path)
            if current is last:
                continue
            self._recorded[path] = current
            data = current.data if current is not None and current.kind == "file" else None
            self.view.history.setdefault(path, []).append((index, data))


def _ancestors(path: str) -> Iterator[str]:
    while "/" in path:
        path = _parent(path)
        yield path


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest


# -- reading layers ------------------------------------------------------------------------


class _Counting:
    """A read-only stream that counts, hashes and reports what passes through it."""

    def __init__(
        self,
        raw: IO[bytes],
        algorithm: str | None,
        report: Callable[[int], None],
    ) -> None:
        self.raw = raw
        self.hash = hashlib.new(algorithm) if algorithm else None
        self.count = 0
        self.report = report
        self._reported = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            if self.hash is not None:
                self.hash.update(data)
            if self.count - self._reported >= MiB:
                self._reported = self.count
                self.report(self.count)
        return data

    def close(self) -> None:
        """The underlying stream is closed by whoever opened it."""


class _Prefixed:
    """``head`` followed by the rest of ``raw``: undoes a peek at the magic bytes."""

    def __init__(self, head: bytes, raw: _Counting) -> None:
        self.head = head
        self.raw = raw

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.raw.read(n)

    def close(self) -> None:
        """Nothing to release."""


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses extended headers (pax, GNU long names) large enough to exhaust memory:
    tarfile reads them whole."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER:
            raise tarfile.HeaderError(f"extended header of {self.size} bytes")
        member: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member


def _decompressed(raw: _Counting) -> IO[bytes]:
    """``raw`` decompressed according to its magic bytes (gzip, zstd, bzip2, xz, none)."""
    head = raw.read(6)
    stream = _Prefixed(head, raw)
    readable = cast(IO[bytes], stream)
    if head.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=readable, mode="rb"))
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            readable, read_size=MiB, read_across_frames=True
        )
        return cast(IO[bytes], reader)
    if head.startswith(b"BZh"):
        return cast(IO[bytes], bz2.BZ2File(readable))
    if head.startswith(b"\xfd7zXZ\x00"):
        return cast(IO[bytes], lzma.LZMAFile(readable))
    return readable


_LAYER_ERRORS = (
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    zstandard.ZstdError,
    lzma.LZMAError,
    ValueError,
    UnicodeError,
    RecursionError,
)


def read_filesystem(
    image: ImageSource,
    selector: Selector,
    progress: Progress | None = None,
    paths: Iterable[str] = (),
) -> FileView:
    """Stream every layer of ``image`` once and keep what ``selector`` asks for.

    ``paths`` are the fixed paths the caller will look up: when one of them (or a kept
    path) turns out to lead through a link to a file that was not kept (a hard link to
    another name, a directory that is a symbolic link), the layers are read a second
    time with those targets added; that is rare and happens at most once.
    """
    view = _read_all(image, selector, progress)
    missing = _unresolved(view, selector, paths)
    if not missing:
        return view
    extra = dict(missing)

    def wider(path: str) -> Want | None:
        return selector(path) or extra.get(path)

    second = _read_all(image, wider, progress)
    for path, node in second.nodes.items():
        if node.kind == "hardlink":
            second.warnings.append(f"could not read /{path}: its hard link target is missing")
    return second


def _unresolved(view: FileView, selector: Selector, paths: Iterable[str]) -> list[tuple[str, Want]]:
    """Targets of links among the kept or looked-up paths that the selector did not ask
    for (had it asked, and the target existed, it would be kept)."""
    out = []
    candidates: list[tuple[str, Want]] = []
    for path in paths:
        real = view.resolve(path)
        want = selector(path)
        if real is not None and want is not None and real != path:
            candidates.append((real, want))
    for path, node in view.nodes.items():
        if node.want is None:
            continue
        if node.kind == "hardlink":
            candidates.append((node.target, node.want))
        elif node.kind == "symlink":
            real = view.resolve(path)
            if real is not None:
                candidates.append((real, node.want))
    for real, want in candidates:
        if real not in view.nodes and selector(real) is None:
            out.append((real, want))
    return out


def _read_all(image: ImageSource, selector: Selector, progress: Progress | None) -> FileView:
    digests = [layer.digest for layer in image.layers]
    builder = _Builder(selector, digests)
    total = sum(layer.size for layer in image.layers)
    before = 0
    for index, layer in enumerate(image.layers):

        def report(done: int, index: int = index, layer: Layer = layer, base: int = before) -> None:
            if progress is not None:
                progress(
                    LayerProgress(
                        index, len(image.layers), layer.digest, done, layer.size, base + done, total
                    )
                )

        _read_layer(builder, index, layer, report)
        report(layer.size)
        before += layer.size
    return builder.view


def _read_layer(builder: _Builder, index: int, layer: Layer, report: Callable[[int], None]) -> None:
    where = f"layer {layer.digest}"
    try:
        raw = layer.opener()
    except OSError as exc:
        raise ScanError(f"{where}: cannot open: {exc.strerror or exc}") from exc
    with contextlib.closing(raw):
        algorithm = layer.digest.partition(":")[0] if layer.verify else None
        counting = _Counting(raw, algorithm, report)
        try:
            decoded = _decompressed(counting)
            # tarfile's stream re-joins its whole buffer on every header read: 64 KiB
            # reads fast; 1 MiB is twice as slow on a Debian base image.
            with tarfile.open(
                fileobj=decoded, mode="r|", bufsize=64 * 1024, tarinfo=_BoundedTarInfo
            ) as tar:
                builder.apply(index, tar, layer.digest)
            if layer.verify:
                while counting.read(MiB):
                    if counting.count > layer.size:
                        break
        except ScanError:
            raise
        except _LAYER_ERRORS as exc:
            if layer.verify and counting.count > layer.size:
                raise ScanError(f"{where} is larger than its descriptor says") from exc
            raise ScanError(f"{where} is not a readable tar stream: {_reason(exc)}") from exc
    if layer.verify:
        assert counting.hash is not None
        actual = f"{algorithm}:{counting.hash.hexdigest()}"
        if counting.count != layer.size:
            raise ScanError(
                f"{where} has {counting.count} bytes where its descriptor says {layer.size}"
            )
        if actual != layer.digest:
            raise ScanError(f"{where} does not match its digest (the blob hashes to {actual})")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- opening images ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ScanError(f"platform {text!r} is not os/arch[/variant]")
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else "")

    def matches(self, spec: dict[str, Any]) -> bool:
        os_ = str(spec.get("os", "")).lower()
        arch = str(spec.get("architecture", "")).lower()
        arch = _ARCH_ALIASES.get(arch, arch)
        if os_ != self.os or arch != self.architecture:
            return False
        if not self.variant:
            return True
        variant = str(spec.get("variant", "")).lower()
        if not variant and arch == "arm64":
            variant = "v8"
        return variant == self.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def open_image(ref: str, platform: str = "linux/amd64") -> ImageSource:
    """Open ``oci:PATH[:TAG]`` or ``docker-archive:PATH[:REF]``."""
    wanted = Platform.parse(platform)
    transport, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise ScanError(f"{ref!r}: expected oci:PATH[:TAG] or docker-archive:PATH")
    if transport == "oci":
        path, tag = _split_path(rest, directory=True)
        return _open_oci(ref, Path(path), tag, wanted)
    if transport == "docker-archive":
        path, tag = _split_path(rest, directory=False)
        return _open_docker_archive(ref, Path(path), tag)
    raise ScanError(f"{ref!r}: unknown transport {transport!r} (use oci: or docker-archive:)")


def _split_path(rest: str, *, directory: bool) -> tuple[str, str]:
    """PATH[:REF]: the longest prefix that names an existing path (a file name may hold a
    colon, and a Docker reference does: ``app:1``); else split at the last colon."""

    def exists(candidate: str) -> bool:
        path = Path(candidate)
        return path.is_dir() if directory else path.is_file()

    if exists(rest) or ":" not in rest:
        return rest, ""
    cut = len(rest)
    while (cut := rest.rfind(":", 0, cut)) > 0:
        if exists(rest[:cut]):
            return rest[:cut], rest[cut + 1 :]
    path, _, tag = rest.rpartition(":")
    return path, tag


def _read_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeError) as exc:
        raise ScanError(f"{what} is not valid JSON: {_reason(exc)}") from exc
    if not isinstance(doc, dict):
        raise ScanError(f"{what} is not a JSON object")
    return doc


class _OciLayout:
    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, digest: str) -> Path:
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ScanError(f"{self.root}: invalid digest {digest!r}")
        algorithm, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algorithm / hexpart

    def read_blob(self, descriptor: dict[str, Any], what: str) -> bytes:
        digest = descriptor.get("digest", "")
        path = self.blob_path(digest)
        size = descriptor.get("size")
        if not isinstance(size, int) or size < 0:
            raise ScanError(f"{what} {digest}: descriptor has no valid size")
        if size > MAX_JSON:
            raise ScanError(f"{what} {digest} is {size} bytes: too large")
        try:
            with path.open("rb") as f:
                data = f.read(size + 1)
        except FileNotFoundError as exc:
            raise ScanError(f"{what} {digest} is missing from {self.root}") from exc
        except OSError as exc:
            raise ScanError(f"cannot read {path}: {exc.strerror or exc}") from exc
        algorithm = digest.partition(":")[0]
        if len(data) != size or f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}" != (
            digest
        ):
            raise ScanError(f"{what} {digest} in {self.root} does not match its digest or size")
        return data

    def opener(self, digest: str) -> Callable[[], IO[bytes]]:
        path = self.blob_path(digest)

        def open_blob() -> IO[bytes]:
            if not path.is_file():
                raise ScanError(f"layer {digest} is missing from {self.root}")
            return path.open("rb")

        return open_blob


def _open_oci(ref: str, root: Path, tag: str, platform: Platform) -> ImageSource:
    index_path = root / "index.json"
    if not index_path.is_file():
        raise ScanError(f"{root} is not an OCI image layout (no index.json)")
    try:
        with index_path.open("rb") as f:
            raw = f.read(MAX_JSON + 1)
    except OSError as exc:
        raise ScanError(f"cannot read {index_path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_JSON:
        raise ScanError(f"{index_path} is too large")
    index = _read_json(raw, str(index_path))
    manifests = _descriptors(index, str(index_path))
    if tag:
        candidates = [
            d for d in manifests if (d.get("annotations") or {}).get(REF_NAME) in (tag, ref)
        ]
        if not candidates:
            names = sorted({str((d.get("annotations") or {}).get(REF_NAME)) for d in manifests})
            raise ScanError(f"no image tagged {tag!r} in {root} (tags: {', '.join(names)})")
    else:
        candidates = manifests
    if not candidates:
        raise ScanError(f"{root} holds no image")
    layout = _OciLayout(root)
    if len(candidates) > 1 and any("platform" in d for d in candidates):
        descriptor = _pick_platform(candidates, platform, str(index_path))
    else:
        descriptor = candidates[0]
    for _ in range(4):
        media_type = descriptor.get("mediaType", "")
        data = layout.read_blob(descriptor, "manifest")
        doc = _read_json(data, f"manifest {descriptor.get('digest')}")
        media_type = doc.get("mediaType") or media_type
        if media_type in (OCI_INDEX, DOCKER_LIST) or ("manifests" in doc and "layers" not in doc):
            descriptor = _pick_platform(
                _descriptors(doc, f"index {descriptor.get('digest')}"), platform, ref
            )
            continue
        return _oci_image(ref, layout, descriptor["digest"], doc)
    raise ScanError(f"{ref}: indexes nested too deeply")


def _descriptors(doc: dict[str, Any], what: str) -> list[dict[str, Any]]:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(d, dict) for d in manifests):
        raise ScanError(f"{what} has no valid manifests list")
    return manifests


def _pick_platform(
    descriptors: list[dict[str, Any]], platform: Platform, what: str
) -> dict[str, Any]:
    for descriptor in descriptors:
        spec = descriptor.get("platform")
        if isinstance(spec, dict) and platform.matches(spec):
            return descriptor
    available = sorted(
        {
            "/".join(
                str(p.get(k))
                for k in ("os", "architecture", "variant")
                if isinstance(p := d.get("platform"), dict) and p.get(k)
            )
            for d in descriptors
        }
        - {""}
    )
    raise ScanError(
        f"{what}: no image for {platform} (available: {', '.join(available) or 'none'})"
    )


def _oci_image(ref: str, layout: _OciLayout, digest: str, manifest: dict[str, Any]) -> ImageSource:
    config_descriptor = manifest.get("config")
    if not isinstance(config_descriptor, dict):
        raise ScanError(f"manifest {digest} has no config")
    config = _read_json(layout.read_blob(config_descriptor, "config"), "image config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ScanError(f"manifest {digest} has no layers list")
    out = []
    for descriptor in layers:
        if not isinstance(descriptor, dict):
            raise ScanError(f"manifest {digest} has an invalid layer descriptor")
        layer_digest = descriptor.get("digest", "")
        size = descriptor.get("size")
        if not isinstance(size, int) or size < 0:
            raise ScanError(f"manifest {digest}: layer {layer_digest} has no valid size")
        out.append(Layer(layer_digest, size, layout.opener(layer_digest), verify=True))
    return ImageSource(ref, digest, config, out)


def _open_docker_archive(ref: str, path: Path, wanted: str) -> ImageSource:
    if not path.is_file():
        raise ScanError(f"{path}: no such file")
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise ScanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zXZ")):
        raise ScanError(f"{path} is compressed: decompress it first (docker save writes a tar)")
    try:
        archive = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by the ImageSource
    except (tarfile.TarError, OSError) as exc:
        raise ScanError(f"{path} is not a Docker archive: {_reason(exc)}") from exc
    try:
        return _docker_image(ref, path, archive, wanted)
    except BaseException:
        archive.close()
        raise


def _docker_image(ref: str, path: Path, archive: tarfile.TarFile, wanted: str) -> ImageSource:
    members: dict[str, tarfile.TarInfo] = {}
    try:
        for count, member in enumerate(archive, 1):
            if count > 100_000:
                raise ScanError(f"{path} has too many members to be a Docker archive")
            name = normalize(member.name)
            if name:
                members[name] = member
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ScanError(f"{path} is not a readable tar archive: {_reason(exc)}") from exc

    def read_member(name: str, what: str) -> bytes:
        member = members.get(normalize(name) or "")
        if member is None:
            raise ScanError(f"{path}: {what} {name!r} is missing")
        if member.size > MAX_JSON:
            raise ScanError(f"{path}: {what} {name!r} is too large")
        stream = archive.extractfile(member)
        if stream is None:
            raise ScanError(f"{path}: {what} {name!r} is not a file")
        return stream.read()

    entries = json.loads(read_member("manifest.json", "manifest.json") or b"null")
    if (
        not isinstance(entries, list)
        or not entries
        or not all(isinstance(e, dict) for e in entries)
    ):
        raise ScanError(f"{path}: manifest.json does not list any image")
    entry = entries[0]
    if wanted:
        tagged = [e for e in entries if wanted in (e.get("RepoTags") or [])]
        if not tagged:
            raise ScanError(f"{path}: no image tagged {wanted!r}")
        entry = tagged[0]
    config_name = entry.get("Config")
    layer_names = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ScanError(f"{path}: manifest.json entry has no Config or Layers")
    config_bytes = read_member(config_name, "config")
    config = _read_json(config_bytes, f"{path}: config")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids", []) if isinstance(rootfs, dict) else []
    layers = []
    for i, name in enumerate(layer_names):
        layer_member = members.get(normalize(str(name)) or "")
        if layer_member is None:
            raise ScanError(f"{path}: layer {name!r} is missing")
        digest = ""
        if i < len(diff_ids) and isinstance(diff_ids[i], str):
            digest = diff_ids[i]
        elif (m := re.search(r"([a-f0-9]{64})", str(name))) is not None:
            digest = f"sha256:{m.group(1)}"
        layers.append(
            Layer(digest, layer_member.size, _member_opener(archive, layer_member), verify=False)
        )
    image_id = f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
    return ImageSource(ref, image_id, config, layers, archive.close)


def _member_opener(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        try:
            stream = archive.extractfile(member)
        except (tarfile.TarError, KeyError) as exc:
            raise ScanError(f"cannot read layer {member.name!r}: {_reason(exc)}") from exc
        if stream is None:
            raise ScanError(f"layer {member.name!r} is not a file")
        return stream

    return open_member
