"""``dockyard gc`` and ``dockyard fsck`` against a real server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.fixtures.backends import all_backends
from tests.fixtures.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    assert_intact,
    descriptor,
    push_blob,
    push_image,
    put_manifest,
    sha256,
)
from tests.fixtures.server import DockyardServer, make_server

SIGNATURE = "application/vnd.example.signature"


def _blob_status(client: httpx.Client, name: str, digest: str) -> int:
    return client.head(f"/v2/{name}/blobs/{digest}").status_code


@all_backends
def test_gc_removes_only_unreachable(dockyard_server: DockyardServer) -> None:
    shared = b"shared layer" * 100
    with dockyard_server.client() as c:
        kept = push_image(c, "library/app", "stable", shared=[shared])
        doomed = push_image(c, "library/app", "old", shared=[shared])
        signature = push_image(
            c,
            "library/app",
            None,
            layers=1,
            subject=kept,
            artifact_type="application/vnd.example.signature",
        )
        child = push_image(c, "library/multi", None)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(
                    OCI_MANIFEST, child.manifest, platform={"architecture": "amd64", "os": "linux"}
                )
            ],
        }
        assert put_manifest(c, "library/multi", "latest", index, OCI_INDEX).status_code == 201
        assert c.delete(f"/v2/library/app/manifests/{doomed.digest}").status_code == 202
        untagged = push_image(c, "library/app", None)

        dry = dockyard_server.cli("gc", "--dry-run", "--grace", "0", "-v").stdout
        assert untagged.digest in dry
        assert "would free" in dry
        # A dry run removes nothing.
        assert c.get(f"/v2/library/app/manifests/{untagged.digest}").status_code == 200

        out = dockyard_server.cli("gc", "--grace", "0", "-v").stdout
        assert f"library/app@{untagged.digest}" in out
        assert "freed" in out
        assert c.get(f"/v2/library/app/manifests/{untagged.digest}").status_code == 404
        unique_doomed = [d for d in doomed.blobs if d not in kept.blobs]
        for digest in unique_doomed + list(untagged.blobs):
            assert _blob_status(c, "library/app", digest) == 404
            assert digest in out
        # Tagged images, their referrers and index children all survive.
        assert_intact(c, kept, "stable")
        assert_intact(c, signature)
        assert_intact(c, child)
    assert "clean" in dockyard_server.cli("fsck").stdout


def _push_index(c: httpx.Client, name: str, children: list[Image], tag: str | None) -> Image:
    """An index of ``children`` (image manifests or indexes), by ``tag`` or by digest."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(
                OCI_INDEX if json.loads(child.manifest)["mediaType"] == OCI_INDEX else OCI_MANIFEST,
                child.manifest,
                platform={"architecture": f"arch{i}", "os": "linux"},
            )
            for i, child in enumerate(children)
        ],
    }
    body = json.dumps(index).encode()
    digest = sha256(body)
    assert put_manifest(c, name, tag or digest, index, OCI_INDEX).status_code == 201
    return Image(name, digest, body)


@all_backends
def test_gc_reaches_beyond_one_hop_from_a_tag(dockyard_server: DockyardServer) -> None:
    """Reachability is transitive: an index inside a tagged index keeps its children, a
    signature on an index's child lives as long as the child, and a signature on that
    signature too. Only the tag is a root; every other manifest here is untagged."""
    name = "library/deep"
    with dockyard_server.client() as c:
        leaf = push_image(c, name, None)
        inner = _push_index(c, name, [leaf], None)
        _push_index(c, name, [inner], "nested")  # tag -> index -> index -> image
        child = push_image(c, name, None)
        _push_index(c, name, [child], "multi")  # tag -> index -> image <- signature
        signature = push_image(c, name, None, layers=1, subject=child, artifact_type=SIGNATURE)
        countersigned = push_image(
            c, name, None, layers=1, subject=signature, artifact_type=SIGNATURE
        )
        garbage = push_image(c, name, None)  # the control: gc does remove what is loose

        out = dockyard_server.cli("gc", "--grace", "0", "-v").stdout
        assert f"{name}@{garbage.digest}" in out
        assert c.get(f"/v2/{name}/manifests/{garbage.digest}").status_code == 404
        for image in (leaf, inner, child, signature, countersigned):
            assert image.digest not in out
            assert_intact(c, image)
    assert "clean" in dockyard_server.cli("fsck").stdout


@all_backends
def test_gc_grace_period_spares_recent_content(dockyard_server: DockyardServer) -> None:
    with dockyard_server.client() as c:
        image = push_image(c, "library/recent", None)
        loose = push_blob(c, "library/recent", b"uploaded, not yet referenced")
        dry = dockyard_server.cli("gc", "--dry-run").stdout  # default grace: an hour
        assert "would free 0 bytes: 0 manifests, 0 blobs" in dry
        # It says what the grace period spared: the untagged image, the loose blob (the
        # image's own blobs are referenced by it).
        assert (
            "the grace period (3600 s) spared 1 unreachable manifest and 1 unreferenced blob" in dry
        )
        out = dockyard_server.cli("gc").stdout
        assert "0 manifests, 0 blobs" in out
        assert "spared 1 unreachable manifest and 1 unreferenced blob" in out
        assert_intact(c, image)
        assert _blob_status(c, "library/recent", loose) == 200


@all_backends
def test_gc_purges_abandoned_uploads(dockyard_server: DockyardServer) -> None:
    with dockyard_server.client() as c:
        r = c.post("/v2/library/up/blobs/uploads/")
        assert r.status_code == 202
        location = r.headers["Location"]
        assert c.patch(location, content=b"partial").status_code == 202
    dockyard_server.env["DOCKYARD_UPLOAD_PURGE_AGE"] = "0"
    out = dockyard_server.cli("gc").stdout
    assert "1 abandoned upload;" in out
    with dockyard_server.client() as c:
        assert c.get(location).status_code == 404


@all_backends
def test_gc_during_pushes_never_breaks_a_pushed_image(dockyard_server: DockyardServer) -> None:
    """GC with no grace at all, in a loop, while eight clients push: every manifest
    the registry accepted must stay whole, and fsck must find nothing wrong."""
    accepted: list[Image] = []
    refusals: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def pusher(n: int) -> None:
        with dockyard_server.client() as c:
            for i in range(12):
                try:
                    image = push_image(c, f"library/race{n % 3}", f"t{n}-{i}", layers=2)
                except AssertionError as exc:
                    # GC with no grace may take a blob between its upload and the
                    # manifest; the registry must then refuse the manifest, not accept it.
                    with lock:
                        refusals.append(str(exc))
                    continue
                with lock:
                    accepted.append(image)

    def collector() -> None:
        while not stop.is_set():
            dockyard_server.cli("gc", "--grace", "0")
            time.sleep(0.05)

    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    gc_thread.join(timeout=120)
    assert all("MANIFEST_BLOB_UNKNOWN" in message for message in refusals), refusals
    assert len(accepted) + len(refusals) == 96
    assert accepted
    with dockyard_server.client() as c:
        for image in accepted:
            assert_intact(c, image)
    result = dockyard_server.cli("fsck")
    assert "clean" in result.stdout, result.stdout


def test_fsck_reports_corruption(dockyard_server: DockyardServer) -> None:
    with dockyard_server.client() as c:
        image = push_image(c, "library/fragile", "v1", layers=1, layer_size=4096)
    layer = next(d for d, data in image.blobs.items() if len(data) == 4096)
    hexpart = layer.split(":")[1]
    path = Path(dockyard_server.data_dir) / "storage" / "blobs" / "sha256" / hexpart[:2] / hexpart
    path.write_bytes(b"x" * 4096)
    result = dockyard_server.cli("fsck", check=False)
    assert result.returncode == 1
    assert f"blob {layer} is corrupt" in result.stdout
    path.unlink()
    result = dockyard_server.cli("fsck", check=False)
    assert result.returncode == 1
    assert f"blob {layer} is recorded but its bytes are missing" in result.stdout
    assert result.stdout.rstrip().endswith("1 problem"), result.stdout


def test_gc_help_names_the_real_defaults(tmp_path: Path) -> None:
    help_text = make_server(tmp_path, namespace=None).cli("gc", "--help").stdout
    assert "default 3600" in help_text
    assert "default 604800 seconds" in help_text


@all_backends
def test_gc_deletes_what_holds_before_what_is_held(dockyard_server: DockyardServer) -> None:
    """Unreachable content goes in one run however deep (an index of an index, a
    signature on an index child), and a manifest still held by something gc spares (an
    untagged index younger than the grace period) is spared with its signature."""
    with dockyard_server.client() as c:
        # Old and unreachable, three levels deep: outer index → inner index → child,
        # with a signature on the child.
        child = push_image(c, "library/deep", None)
        signature = push_image(c, "library/deep", None, layers=1, subject=child)
        inner = _push_index(c, "library/deep", [child], None)
        outer = _push_index(c, "library/deep", [inner], None)
        inner_digest, outer_digest = inner.digest, outer.digest
        # Old, and held by an index pushed after the grace period began.
        held = push_image(c, "library/held", None)
        held_signature = push_image(c, "library/held", None, layers=1, subject=held)
        time.sleep(3)
        young_digest = _push_index(c, "library/held", [held], None).digest

        out = dockyard_server.cli("gc", "--grace", "2", "-v").stdout
        for gone in (child.digest, signature.digest, inner_digest, outer_digest):
            assert f"library/deep@{gone}" in out, out
            assert c.get(f"/v2/library/deep/manifests/{gone}").status_code == 404
        assert "library/held@" not in out, out
        assert_intact(c, held)
        assert_intact(c, held_signature)
        assert c.get(f"/v2/library/held/manifests/{young_digest}").status_code == 200
    assert "clean" in dockyard_server.cli("fsck").stdout
