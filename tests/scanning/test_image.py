"""Reading images: layouts, archives, layers, whiteouts and hostile tar streams."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from dockyard.scanning import image as image_module
from dockyard.scanning.image import (
    FileView,
    LayerProgress,
    ScanError,
    Selector,
    Want,
    normalize,
    open_image,
    read_filesystem,
)
from tests.scanning.images import (
    LayerBuilder,
    OciLayout,
    compress,
    docker_archive,
    oci_image,
    sha256,
)

EVERYTHING = Want(1024 * 1024)


def everything(path: str) -> Want | None:
    return EVERYTHING


def read(ref: str, selector: Selector = everything, platform: str = "linux/amd64") -> FileView:
    with open_image(ref, platform) as source:
        return read_filesystem(source, selector)


def files(view: FileView) -> dict[str, bytes | None]:
    return {path: node.data for path, node in view.files()}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("etc/passwd", "etc/passwd"),
        ("/etc/passwd", "etc/passwd"),
        ("./etc//passwd", "etc/passwd"),
        ("usr/lib/../share/./x", "usr/share/x"),
        ("./", ""),
        ("../etc/passwd", None),
        ("a/../../b", None),
        ("/..", None),
    ],
)
def test_normalize(name: str, expected: str | None) -> None:
    assert normalize(name) == expected


def test_layers_apply_in_order_with_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    base = (
        LayerBuilder()
        .dir("etc")
        .file("etc/keep", "base")
        .file("etc/gone", "base")
        .file("etc/replaced", "v1")
        .dir("opt/tree")
        .file("opt/tree/a", "a")
        .file("opt/tree/sub/b", "b")
        .file("srv/old/x", "x")
        .file("srv/old/y", "y")
        .tar()
    )
    middle = (
        LayerBuilder()
        .whiteout("etc/gone")
        .file("etc/replaced", "v2")
        .whiteout("opt/tree")
        .opaque("srv/old")
        .file("srv/old/z", "z, same layer as the opaque marker")
        .tar()
    )
    top = LayerBuilder().file("opt/tree/new", "back").file("etc/gone", "again").tar()
    built = oci_image(tmp_path / "layout", [base, middle, top], ["gzip", "zstd", "none"])

    view = read(f"oci:{tmp_path / 'layout'}:latest")

    assert files(view) == {
        "etc/keep": b"base",
        "etc/gone": b"again",
        "etc/replaced": b"v2",
        "opt/tree/new": b"back",
        "srv/old/z": b"z, same layer as the opaque marker",
    }
    assert view.layers == built.layers
    assert view.layer_of(view.nodes["etc/replaced"]) == built.layers[1]
    assert view.layer_of(view.nodes["etc/keep"]) == built.layers[0]
    assert view.warnings == []


def test_history_keeps_every_version_of_a_database(tmp_path: Path) -> None:
    layers = [
        LayerBuilder().file("db", "one").tar(),
        LayerBuilder().file("other", "x").tar(),
        LayerBuilder().file("db", "two").tar(),
        LayerBuilder().whiteout("db").tar(),
        LayerBuilder().file("db", "three").tar(),
    ]
    oci_image(tmp_path / "l", layers)
    with open_image(f"oci:{tmp_path / 'l'}") as source:
        view = read_filesystem(source, lambda p: Want(100, history=True) if p == "db" else None)
    assert view.versions("db") == [(0, b"one"), (2, b"two"), (3, None), (4, b"three")]
    assert view.read("db") == b"three"


def test_tag_selection_and_missing_tag(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l")
    first, _ = layout.image([LayerBuilder().file("which", "v1").tar()])
    second, built = layout.image([LayerBuilder().file("which", "v2").tar()])
    layout.tag(first, "v1")
    layout.tag(second, "v2")
    assert read(f"oci:{tmp_path / 'l'}:v2").read("which") == b"v2"
    assert read(f"oci:{tmp_path / 'l'}").read("which") == b"v1"  # the first one
    with open_image(f"oci:{tmp_path / 'l'}:v2") as source:
        assert source.digest == built.manifest
    with pytest.raises(ScanError, match=r"no image tagged 'v3' in .* \(tags: v1, v2\)"):
        open_image(f"oci:{tmp_path / 'l'}:v3")


def test_platform_is_picked_from_an_index(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l")
    amd, amd_built = layout.image([LayerBuilder().file("arch", "amd64").tar()])
    arm, _ = layout.image([LayerBuilder().file("arch", "arm64").tar()], "zstd", arch="arm64")
    layout.tag(layout.index([(amd, "linux", "amd64"), (arm, "linux", "arm64")]), "multi")

    ref = f"oci:{tmp_path / 'l'}:multi"
    assert read(ref).read("arch") == b"amd64"
    assert read(ref, platform="linux/arm64").read("arch") == b"arm64"
    assert read(ref, platform="linux/arm64/v8").read("arch") == b"arm64"
    assert read(ref, platform="linux/x86_64").read("arch") == b"amd64"
    with open_image(ref) as source:
        assert source.digest == amd_built.manifest
    with pytest.raises(ScanError, match=r"no image for linux/s390x \(available: linux/amd64, li"):
        open_image(ref, "linux/s390x")
    with pytest.raises(ScanError, match="not os/arch"):
        open_image(ref, "amd64")


def test_layer_digest_and_size_are_verified(tmp_path: Path) -> None:
    built = oci_image(tmp_path / "l", [LayerBuilder().file("a", "data").tar()], "none")
    blob = tmp_path / "l" / "blobs" / "sha256" / built.layers[0].partition(":")[2]
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b"data", b"evil"))
    with pytest.raises(ScanError, match="does not match its digest"):
        read(f"oci:{tmp_path / 'l'}")
    blob.write_bytes(original + b"\0" * 1024)
    with pytest.raises(ScanError, match="bytes where its descriptor says"):
        read(f"oci:{tmp_path / 'l'}")
    blob.unlink()
    with pytest.raises(ScanError, match="is missing"):
        read(f"oci:{tmp_path / 'l'}")


def test_manifest_digest_is_verified(tmp_path: Path) -> None:
    built = oci_image(tmp_path / "l", [LayerBuilder().file("a", "data").tar()])
    manifest = tmp_path / "l" / "blobs" / "sha256" / built.manifest.partition(":")[2]
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":2'))
    with pytest.raises(ScanError, match="does not match its digest or size"):
        open_image(f"oci:{tmp_path / 'l'}")


def test_docker_archive(tmp_path: Path) -> None:
    tars = [
        LayerBuilder().file("etc/a", "1").tar(),
        LayerBuilder().file("etc/b", "2").whiteout("etc/a").tar(),
    ]
    built = docker_archive(tmp_path / "app.tar", tars, "gzip", tags=["app:1", "app:latest"])
    with open_image(f"docker-archive:{tmp_path / 'app.tar'}") as source:
        assert source.digest == built.manifest
        assert [layer.digest for layer in source.layers] == built.layers
        view = read_filesystem(source, everything)
    assert files(view) == {"etc/b": b"2"}
    assert read(f"docker-archive:{tmp_path / 'app.tar'}:app:1").read("etc/b") == b"2"
    with pytest.raises(ScanError, match="no image tagged 'app:2'"):
        open_image(f"docker-archive:{tmp_path / 'app.tar'}:app:2")


def test_bad_references(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="expected oci:PATH"):
        open_image("just-a-name")
    with pytest.raises(ScanError, match="unknown transport 'docker'"):
        open_image("docker://example/app")
    with pytest.raises(ScanError, match="is not an OCI image layout"):
        open_image(f"oci:{tmp_path}")
    with pytest.raises(ScanError, match="no such file"):
        open_image(f"docker-archive:{tmp_path / 'missing.tar'}")
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar archive at all" * 40)
    with pytest.raises(ScanError, match=r"junk\.tar is not a Docker archive: invalid header"):
        open_image(f"docker-archive:{tmp_path / 'junk.tar'}")
    (tmp_path / "index.json").write_text("[1, 2")
    with pytest.raises(ScanError, match=r"index\.json is not valid JSON"):
        open_image(f"oci:{tmp_path}")


def test_paths_never_leave_the_image(tmp_path: Path) -> None:
    hostile = (
        LayerBuilder()
        .file("../../../../tmp/escaped", "outside")
        .file("a/../../escaped-too", "outside")
        .file("/etc/absolute", "inside, at etc/absolute")
        .symlink("etc/os-release", "/../../../../usr/lib/os-release")
        .symlink("etc/loop", "loop2")
        .symlink("etc/loop2", "loop")
        .symlink("etc/up", "../../../../../../etc/absolute")
        .hardlink("etc/hard", "../../../etc/shadow")
        .device("var/lib/dpkg/status")
        .fifo("etc/fifo")
        .file("usr/lib/os-release", "ID=debian\n")
        .tar()
    )
    oci_image(tmp_path / "l", [hostile])
    view = read(f"oci:{tmp_path / 'l'}")
    assert files(view) == {
        "etc/absolute": b"inside, at etc/absolute",
        "usr/lib/os-release": b"ID=debian\n",
    }
    assert view.read("etc/os-release") == b"ID=debian\n"  # absolute link, resolved in the image
    assert view.read("etc/up") == b"inside, at etc/absolute"
    assert view.resolve("etc/loop") is None
    assert view.read("etc/loop") is None
    assert view.read("var/lib/dpkg/status") is None
    assert view.read("etc/hard") is None
    warnings = "\n".join(view.warnings)
    assert "ignored '../../../../tmp/escaped': it leaves the image root" in warnings
    assert "ignored 'a/../../escaped-too'" in warnings
    assert "ignored hard link 'etc/hard'" in warnings
    assert not (tmp_path / "escaped").exists()
    assert not Path("/tmp/escaped").exists()


def test_hard_links_resolve_to_their_target_in_the_image(tmp_path: Path) -> None:
    lower = LayerBuilder().file("srv/data/real-metadata", "from the lower layer").tar()
    upper = (
        LayerBuilder()
        .file("opt/original", "same layer")
        .hardlink("opt/wanted-same-layer", "opt/original")
        .hardlink("opt/wanted-lower-layer", "srv/data/real-metadata")
        .tar()
    )
    built = oci_image(tmp_path / "l", [lower, upper])
    wanted = {"opt/wanted-same-layer", "opt/wanted-lower-layer"}
    view = read(f"oci:{tmp_path / 'l'}", lambda p: EVERYTHING if p in wanted else None)
    assert view.read("opt/wanted-same-layer") == b"same layer"
    assert view.read("opt/wanted-lower-layer") == b"from the lower layer"
    # the link is the upper layer's file, whatever layer its target came from
    assert view.layer_of(view.nodes["opt/wanted-lower-layer"]) == built.layers[1]


def test_symlinked_directories_are_followed_inside_the_image(tmp_path: Path) -> None:
    layer = (
        LayerBuilder()
        .file("usr/lib/sysimage/rpm/rpmdb.sqlite", "db")
        .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
        .file("data/elsewhere/status", "moved")
        .symlink("var/lib/dpkg", "/data/elsewhere")
        .tar()
    )
    oci_image(tmp_path / "l", [layer])
    wanted = {"var/lib/rpm/rpmdb.sqlite", "var/lib/dpkg/status"}
    with open_image(f"oci:{tmp_path / 'l'}") as source:
        view = read_filesystem(
            source, lambda p: EVERYTHING if p in wanted else None, paths=sorted(wanted)
        )
    assert view.read("var/lib/dpkg/status") == b"moved"  # found by the second pass
    assert view.resolve("var/lib/rpm/rpmdb.sqlite") == "usr/lib/sysimage/rpm/rpmdb.sqlite"


def test_large_files_are_skipped_or_cut(tmp_path: Path) -> None:
    layer = LayerBuilder().file("big", b"x" * 5000).file("head", b"y" * 5000).tar()
    oci_image(tmp_path / "l", [layer])
    wants = {"big": Want(1000), "head": Want(1000, head=True)}
    view = read(f"oci:{tmp_path / 'l'}", wants.get)
    assert view.read("big") is None
    assert view.read("head") == b"y" * 1000
    assert view.warnings == ["skipped /big: 5000 bytes, more than the 1000 read for such files"]


def test_progress_reports_bytes_per_layer(tmp_path: Path) -> None:
    tars = [LayerBuilder().file(f"f{i}", b"z" * 3_000_000).tar() for i in range(2)]
    oci_image(tmp_path / "l", tars, "none")
    seen: list[LayerProgress] = []
    with open_image(f"oci:{tmp_path / 'l'}") as source:
        read_filesystem(source, everything, seen.append)
        sizes = [layer.size for layer in source.layers]
    assert seen[-1].image_done == seen[-1].image_size == sum(sizes)
    assert [p.index for p in seen if p.done == p.size] == [0, 1]
    assert all(p.count == 2 for p in seen)
    assert [p.image_done for p in seen] == sorted(p.image_done for p in seen)


def test_tar_bomb_member_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "MAX_MEMBERS", 100)
    builder = LayerBuilder()
    for i in range(150):
        builder.file(f"f/{i}", b"")
    oci_image(tmp_path / "l", [builder.tar()])
    with pytest.raises(ScanError, match="more than 100 files"):
        read(f"oci:{tmp_path / 'l'}")


def test_absurd_member_size(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("huge")
        info.size = 2**40
        tar.addfile(info)  # the header alone: the content never follows
    oci_image(tmp_path / "l", [buf.getvalue()])
    with pytest.raises(ScanError, match="'huge' has an absurd size"):
        read(f"oci:{tmp_path / 'l'}")


def test_oversized_extended_header(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("file")
        info.pax_headers = {"comment": "c" * (2 * 1024 * 1024)}
        tar.addfile(info, io.BytesIO(b""))
    oci_image(tmp_path / "l", [buf.getvalue()], "gzip")
    with pytest.raises(ScanError, match="not a readable tar stream: extended header"):
        read(f"oci:{tmp_path / 'l'}")


def test_kept_content_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "MAX_KEPT", 10_000)
    builder = LayerBuilder()
    for i in range(20):
        builder.file(f"meta/{i}", b"m" * 1000)
    oci_image(tmp_path / "l", [builder.tar()])
    with pytest.raises(ScanError, match="exceed 0 MiB"):
        read(f"oci:{tmp_path / 'l'}")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_truncated_layer(tmp_path: Path, compression: str) -> None:
    tar = LayerBuilder().file("a", b"a" * 200_000).file("b", b"b" * 200_000).tar()
    blob = compress(tar, compression)  # type: ignore[arg-type]
    docker_archive(tmp_path / "app.tar", [tar])
    # a Docker archive is not verified by digest: the tar reader meets the truncation
    with tarfile.open(tmp_path / "app.tar") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]
    layer_name = next(n for n in members if n.endswith("layer.tar"))
    members[layer_name] = blob[: len(blob) // 3]
    with tarfile.open(tmp_path / "cut.tar", "w") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    with pytest.raises(ScanError, match=r"is not a readable tar stream"):
        read(f"docker-archive:{tmp_path / 'cut.tar'}")


def test_garbage_layer(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l")
    layer = layout.blob(b"\x1f\x8b" + b"not really gzip" * 100, "application/octet-stream")
    config = layout.blob(json.dumps({"rootfs": {"diff_ids": []}}).encode(), "x")
    manifest = {"schemaVersion": 2, "config": config, "layers": [layer]}
    layout.tag(layout.blob(json.dumps(manifest).encode(), image_module.OCI_MANIFEST), "x")
    with pytest.raises(ScanError, match=f"layer {layer['digest']} is not a readable tar"):
        read(f"oci:{tmp_path / 'l'}:x")


def test_layer_without_members(tmp_path: Path) -> None:
    oci_image(tmp_path / "l", [LayerBuilder().tar()], "zstd")
    view = read(f"oci:{tmp_path / 'l'}")
    assert view.nodes == {}
    assert view.layers == [sha256(compress(LayerBuilder().tar(), "zstd"))]


class _Zeros:
    """``size`` zero bytes, produced on demand."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_large_layers_are_streamed_not_held(tmp_path: Path) -> None:
    """Reading 192 MiB of layer keeps a few MiB in memory: only what is asked for."""
    layout = OciLayout(tmp_path / "l")
    blob_path = tmp_path / "layer.tar"
    with blob_path.open("wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
        for i in range(3):
            info = tarfile.TarInfo(f"data/big-{i}")
            info.size = 64 * 1024 * 1024
            tar.addfile(info, _Zeros(info.size))  # type: ignore[arg-type]
        small = b"ID=debian\nVERSION_ID=12\n"
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(small)
        tar.addfile(info, io.BytesIO(small))
    digest = hashlib.sha256()
    with blob_path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    name = digest.hexdigest()
    blob_path.rename(tmp_path / "l" / "blobs" / "sha256" / name)
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{name}"}
    layer["size"] = (tmp_path / "l" / "blobs" / "sha256" / name).stat().st_size
    config = layout.blob(json.dumps({"rootfs": {"diff_ids": []}}).encode(), "x")
    manifest = {"schemaVersion": 2, "config": config, "layers": [layer]}
    layout.tag(layout.blob(json.dumps(manifest).encode(), image_module.OCI_MANIFEST), "big")

    tracemalloc.start()
    try:
        view = read(
            f"oci:{tmp_path / 'l'}:big", lambda p: Want(4096) if "os-release" in p else None
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert view.read("etc/os-release") == small
    assert peak < 8 * 1024 * 1024
