"""Real container clients against a real Dockyard: skopeo, buildah and podman.

Every image is made on disk without the network (see ``tests/e2e/images.py``), pushed
to Dockyard with a client, pulled back with a client, and compared byte for byte with
what went in. Each test gets its own server and its own client state (storage root,
run root, auth file, temporary directory) under ``tmp_path``.

``podman run`` is not exercised: in this sandbox crun cannot start containers (it may
not set RLIMIT_NOFILE / RLIMIT_NPROC, and the cgroup hierarchy is hybrid v1/v2, which
crun refuses). The podman test checks the pulled image's digests and reads its files
through ``podman image mount`` instead; buildah's ``RUN`` steps (chroot isolation) do
execute a program from the image.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    Layout,
    build_image,
    build_index,
    canonical,
    client_env,
    descriptor,
    read_dir,
    read_layer,
    run,
    sample_files,
    sha256,
    tool,
    write_dir,
)
from tests.fixtures.backends import all_backends
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer

pytestmark = pytest.mark.clients

CREDS = f"admin:{ADMIN_PASSWORD}"
SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"
ALL_MANIFESTS = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


@dataclass
class Clients:
    """The container tools, configured for one test and one Dockyard."""

    server: DockyardServer
    tmp: Path
    env: dict[str, str]
    policy: Path
    short: Path
    """A directory with a short path: podman refuses a run root longer than 50 characters."""

    @property
    def registry(self) -> str:
        return f"docker://{self.server.host}/library"

    def skopeo(self, *args: str, timeout: float = 60) -> str:
        cmd = [tool("skopeo"), "--policy", str(self.policy), *args]
        return run(cmd, env=self.env, timeout=timeout).stdout

    def push(self, source: str, name: str, *, all_images: bool = False) -> str:
        """``skopeo copy`` ``source`` to ``library/name``; the digest skopeo pushed."""
        digest_file = self.tmp / f"pushed-{name.replace(':', '-')}"
        self.skopeo(
            "copy",
            *(["--all"] if all_images else []),
            "--preserve-digests",
            "--digestfile",
            str(digest_file),
            "--dest-creds",
            CREDS,
            "--dest-tls-verify=false",
            source,
            f"{self.registry}/{name}",
        )
        return digest_file.read_text().strip()

    def pull(
        self, name: str, dest: str, *, all_images: bool = False, preserve: bool = True
    ) -> None:
        """``skopeo copy`` ``library/name`` out to ``dest``."""
        self.skopeo(
            "copy",
            *(["--all"] if all_images else []),
            *(["--preserve-digests"] if preserve else []),
            "--src-creds",
            CREDS,
            "--src-tls-verify=false",
            f"{self.registry}/{name}",
            dest,
        )

    def inspect(self, name: str, *extra: str) -> dict[str, Any]:
        out = self.skopeo("inspect", "--creds", CREDS, "--tls-verify=false", *extra, name)
        found: dict[str, Any] = json.loads(out)
        return found

    def storage(self, name: str) -> list[str]:
        """Global options giving ``name`` (buildah or podman) a storage of its own."""
        return [
            "--root",
            str(self.tmp / f"{name}-root"),
            "--runroot",
            str(self.short / name),
            "--storage-driver",
            "vfs",
        ]

    def buildah(self, *args: str, timeout: float = 60) -> str:
        cmd = [tool("buildah"), *self.storage("buildah"), *args]
        return run(cmd, env=self.env, timeout=timeout).stdout

    def podman(self, *args: str, check: bool = True, timeout: float = 60) -> tuple[int, str, str]:
        cmd = [tool("podman"), *self.storage("podman"), *args]
        result = run(cmd, env=self.env, timeout=timeout, check=check)
        return result.returncode, result.stdout, result.stderr


def _clients(server: DockyardServer, tmp: Path) -> Iterator[Clients]:
    tmp.mkdir(parents=True, exist_ok=True)
    policy = tmp / "policy.json"
    policy.write_text(json.dumps(_POLICY))
    short = Path(tempfile.mkdtemp(prefix="dyc-", dir="/tmp"))
    try:
        yield Clients(server, tmp, client_env(tmp), policy, short)
    finally:
        # buildah and podman leave root-owned, sometimes read-only, trees behind
        shutil.rmtree(short, ignore_errors=True)
        for name in ("buildah", "podman"):
            shutil.rmtree(tmp / f"{name}-root", ignore_errors=True)


@pytest.fixture
def clients(dockyard_server: DockyardServer, tmp_path: Path) -> Iterator[Clients]:
    yield from _clients(dockyard_server, tmp_path / "clients")


@pytest.fixture
def shared_clients(registry: DockyardServer, tmp_path: Path) -> Iterator[Clients]:
    """Clients on the module's server, for tests that change nothing in it."""
    yield from _clients(registry, tmp_path / "clients")


def _http_manifest(server: DockyardServer, name: str, reference: str) -> httpx.Response:
    with server.client() as c:
        r = c.get(f"/v2/library/{name}/manifests/{reference}", headers={"Accept": ALL_MANIFESTS})
    assert r.status_code == 200, r.text
    return r


def _assert_same_closure(source: Layout, out: Layout, digest: str) -> None:
    """Every manifest and blob reachable from ``digest`` is in ``out``, byte for byte."""
    expected = source.closure(digest)
    actual = out.closure(digest)
    assert sorted(actual) == sorted(expected)
    for d, data in expected.items():
        assert actual[d] == data, f"{d} differs after the round trip"


def _files(layout: Layout, manifest_digest: str) -> dict[str, bytes | None]:
    """The union of the files of an image's layers, later layers winning."""
    manifest = json.loads(layout.blob(manifest_digest))
    files: dict[str, bytes | None] = {}
    for layer in manifest["layers"]:
        files.update(read_layer(layout.blob(layer["digest"])))
    return files


# -- 1. skopeo ---------------------------------------------------------------------------


@all_backends
def test_skopeo_oci_layout_round_trip(clients: Clients) -> None:
    """oci: → Dockyard → oci: keeps the manifest and every blob byte for byte."""
    image = build_image(sample_files("skopeo", layers=3))
    source = Layout.create(clients.tmp / "source")
    source.add_image(image, "v1")

    pushed = clients.push(f"oci:{source.root}:v1", "skopeo-rt:v1")
    assert pushed == image.digest

    r = _http_manifest(clients.server, "skopeo-rt", "v1")
    assert r.content == image.manifest
    assert r.headers["Docker-Content-Digest"] == image.digest
    assert r.headers["Content-Type"] == OCI_MANIFEST

    # back out, once insisting on identical digests and once letting skopeo choose
    for dest, preserve in (("preserved", True), ("plain", False)):
        clients.pull("skopeo-rt:v1", f"oci:{clients.tmp / dest}:v1", preserve=preserve)
        out = Layout.open(clients.tmp / dest)
        desc = out.resolve("v1")
        assert desc["digest"] == image.digest
        assert desc["mediaType"] == OCI_MANIFEST
        assert desc["size"] == len(image.manifest)
        assert out.blob(image.digest) == image.manifest
        _assert_same_closure(source, out, image.digest)

    ref = f"{clients.registry}/skopeo-rt:v1"
    info = clients.inspect(ref)
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert info["RepoTags"] == ["v1"]
    raw = clients.skopeo("inspect", "--raw", "--creds", CREDS, "--tls-verify=false", ref)
    assert raw.encode() == image.manifest
    config = clients.skopeo(
        "inspect", "--config", "--raw", "--creds", CREDS, "--tls-verify=false", ref
    )
    assert config.encode() == image.config

    # a second tag for the same image, and one for another image
    other = build_image(sample_files("skopeo-other", layers=1))
    source.add_image(other, "other")
    assert clients.push(f"oci:{source.root}:v1", "skopeo-rt:latest") == image.digest
    assert clients.push(f"oci:{source.root}:other", "skopeo-rt:v0.9") == other.digest
    listed = json.loads(
        clients.skopeo(
            "list-tags", "--creds", CREDS, "--tls-verify=false", f"{clients.registry}/skopeo-rt"
        )
    )
    assert listed["Repository"] == f"{clients.server.host}/library/skopeo-rt"
    assert sorted(listed["Tags"]) == ["latest", "v0.9", "v1"]


# -- 2. buildah --------------------------------------------------------------------------

_CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /srv/dockyard && \
echo built by buildah > /srv/dockyard/hello.txt"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox seq 1 500 > /srv/dockyard/numbers && \
/bin/busybox ln -s hello.txt /srv/dockyard/link && /bin/busybox rm /srv/dockyard/hello.txt && \
echo rewritten > /srv/dockyard/hello.txt"]
LABEL org.example.built-by=dockyard-tests
"""


@all_backends
def test_buildah_build_push_and_pull_back(clients: Clients) -> None:
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.fail("/bin/busybox is missing: apt-get install busybox-static", pytrace=False)
    context = clients.tmp / "context"
    context.mkdir()
    shutil.copy2(busybox, context / "busybox")
    (context / "Containerfile").write_text(_CONTAINERFILE)

    clients.buildah(
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--format",
        "oci",
        "-t",
        "localhost/buildah-test:v1",
        str(context),
    )
    digest_file = clients.tmp / "buildah-digest"
    clients.buildah(
        "push",
        "--creds",
        CREDS,
        "--tls-verify=false",
        "--digestfile",
        str(digest_file),
        "localhost/buildah-test:v1",
        f"{clients.registry}/buildah-test:v1",
    )
    pushed = digest_file.read_text().strip()

    clients.pull("buildah-test:v1", f"oci:{clients.tmp / 'out'}:v1")
    out = Layout.open(clients.tmp / "out")
    assert out.resolve("v1")["digest"] == pushed
    manifest = json.loads(out.blob(pushed))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert len(manifest["layers"]) == 3  # COPY and two RUNs
    config = json.loads(out.blob(manifest["config"]["digest"]))
    assert config["config"]["Labels"]["org.example.built-by"] == "dockyard-tests"
    assert len(config["rootfs"]["diff_ids"]) == 3

    files = _files(out, pushed)
    assert files["bin/busybox"] == busybox.read_bytes()
    assert files["srv/dockyard/hello.txt"] == b"rewritten\n"
    assert files["srv/dockyard/numbers"] == "".join(f"{i}\n" for i in range(1, 501)).encode()
    assert "srv/dockyard/link" in files

    # what Dockyard serves over HTTP is what skopeo wrote
    r = _http_manifest(clients.server, "buildah-test", "v1")
    assert r.headers["Docker-Content-Digest"] == pushed
    assert r.content == out.blob(pushed)


# -- 3. podman ---------------------------------------------------------------------------


@all_backends
def test_podman_login_push_pull(clients: Clients) -> None:
    host = clients.server.host
    image = build_image(sample_files("podman", layers=2))
    source = Layout.create(clients.tmp / "source")
    source.add_image(image, "v1")
    image_id = sha256(image.config).removeprefix("sha256:")
    target = f"{host}/library/podman-test:v1"

    _, out, _ = clients.podman(
        "login", "--tls-verify=false", "-u", "admin", "-p", ADMIN_PASSWORD, host
    )
    assert "Login Succeeded" in out
    auth = json.loads(Path(clients.env["REGISTRY_AUTH_FILE"]).read_text())
    assert base64.b64decode(auth["auths"][host]["auth"]).decode() == CREDS

    clients.podman("pull", "-q", f"oci:{source.root}:v1")
    clients.podman("tag", image_id, target)
    digest_file = clients.tmp / "podman-digest"
    clients.podman("push", "--tls-verify=false", "--digestfile", str(digest_file), target)
    pushed = digest_file.read_text().strip()

    clients.podman("rmi", "--force", "--all")
    _, listed, _ = clients.podman("images", "-q")
    assert listed.strip() == ""

    clients.podman("pull", "--tls-verify=false", target)
    _, inspected, _ = clients.podman("image", "inspect", target)
    [info] = json.loads(inspected)
    assert info["Id"] == image_id  # the config came back unchanged
    assert info["Digest"] == pushed
    assert f"{host}/library/podman-test@{pushed}" in info["RepoDigests"]
    assert info["Architecture"] == "amd64"

    # Dockyard serves the manifest podman pushed, and it describes the same image
    r = _http_manifest(clients.server, "podman-test", "v1")
    assert r.headers["Docker-Content-Digest"] == pushed
    served = json.loads(r.content)
    assert served["config"]["digest"] == sha256(image.config)
    assert len(served["layers"]) == len(image.layers)

    # the pulled image's files are the ones that went in
    _, mount, _ = clients.podman("image", "mount", target)
    rootfs = Path(mount.strip())
    try:
        for files in sample_files("podman", layers=2):
            for path, data in files.items():
                if not path.endswith("random.bin"):
                    assert (rootfs / path).read_bytes() == data
        assert (rootfs / "opt/data1/random.bin").stat().st_size == 5096
    finally:
        clients.podman("image", "unmount", target)

    _, out, _ = clients.podman("logout", host)
    assert "Removed login credentials" in out


def test_podman_login_wrong_password_fails(shared_clients: Clients) -> None:
    host = shared_clients.server.host
    code, out, err = shared_clients.podman(
        "login", "--tls-verify=false", "-u", "admin", "-p", "not-the-password", host, check=False
    )
    assert code != 0, out
    assert "invalid username/password" in err or "unauthorized" in err.lower(), err
    auth_file = Path(shared_clients.env["REGISTRY_AUTH_FILE"])
    assert not auth_file.exists() or host not in auth_file.read_text()


# -- 4. multi-architecture images --------------------------------------------------------


def _two_arches(tag: str, *, docker: bool = False) -> list[Image]:
    return [
        build_image(sample_files(f"{tag}-{arch}", layers=2), arch=arch, docker=docker)
        for arch in ("amd64", "arm64")
    ]


def _check_index_served(
    server: DockyardServer, name: str, tag: str, index: bytes, images: list[Image], kind: str
) -> None:
    r = _http_manifest(server, name, tag)
    assert r.content == index
    assert r.headers["Content-Type"] == kind
    assert r.headers["Docker-Content-Digest"] == sha256(index)
    with server.client() as c:
        for img in images:
            child = c.get(
                f"/v2/library/{name}/manifests/{img.digest}", headers={"Accept": ALL_MANIFESTS}
            )
            assert child.status_code == 200, child.text
            assert child.content == img.manifest
            assert child.headers["Content-Type"] == img.media_type
            for digest, data in img.blobs.items():
                blob = c.get(f"/v2/library/{name}/blobs/{digest}")
                assert blob.status_code == 200, blob.text
                assert blob.content == data


@all_backends
def test_multi_arch_oci_index(clients: Clients) -> None:
    images = _two_arches("oci-multi")
    source = Layout.create(clients.tmp / "source")
    index = source.add_index(images, "multi")

    assert clients.push(f"oci:{source.root}:multi", "multi:multi", all_images=True) == sha256(index)
    _check_index_served(clients.server, "multi", "multi", index, images, OCI_INDEX)

    clients.pull("multi:multi", f"oci:{clients.tmp / 'out'}:multi", all_images=True)
    out = Layout.open(clients.tmp / "out")
    assert out.resolve("multi")["digest"] == sha256(index)
    _assert_same_closure(source, out, sha256(index))

    ref = f"{clients.registry}/multi:multi"
    for img in images:
        info = clients.inspect(ref, "--override-arch", img.arch, "--override-os", "linux")
        assert info["Architecture"] == img.arch
        assert info["Layers"] == [layer.digest for layer in img.layers]


@all_backends
def test_multi_arch_docker_manifest_list(clients: Clients) -> None:
    images = _two_arches("docker-multi", docker=True)
    manifest_list = build_index(images, docker=True)
    # skopeo's oci: transport only reads OCI media types; dir: carries Docker ones
    write_dir(clients.tmp / "source", manifest_list, images)

    pushed = clients.push(f"dir:{clients.tmp / 'source'}", "dmulti:multi", all_images=True)
    assert pushed == sha256(manifest_list)
    _check_index_served(clients.server, "dmulti", "multi", manifest_list, images, DOCKER_LIST)

    clients.pull("dmulti:multi", f"dir:{clients.tmp / 'out'}", all_images=True)
    assert read_dir(clients.tmp / "out") == read_dir(clients.tmp / "source")

    ref = f"{clients.registry}/dmulti:multi"
    info = clients.inspect(ref, "--override-arch", "arm64", "--override-os", "linux")
    assert info["Architecture"] == "arm64"
    assert info["Layers"] == [layer.digest for layer in images[1].layers]


# -- 5. artifacts, subject and the referrers API -----------------------------------------


def _push_blob(c: httpx.Client, name: str, data: bytes) -> str:
    digest = sha256(data)
    r = c.post(f"/v2/library/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def _artifact(
    subject: Image, artifact_type: str | None, layer: bytes, layer_type: str, **extra: Any
) -> bytes:
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = extra.pop(
        "config",
        descriptor(OCI_EMPTY, EMPTY_JSON, data=base64.b64encode(EMPTY_JSON).decode()),
    )
    manifest["layers"] = [descriptor(layer_type, layer)]
    manifest["subject"] = subject.descriptor()
    manifest.update(extra)
    return canonical(manifest)


@all_backends
def test_artifact_subject_and_referrers(clients: Clients) -> None:
    name = "with-referrers"
    image = build_image(sample_files("referred", layers=1))
    source = Layout.create(clients.tmp / "source")
    source.add_image(image, "v1")
    assert clients.push(f"oci:{source.root}:v1", f"{name}:v1") == image.digest

    sbom_layer = json.dumps({"spdxVersion": "SPDX-2.3", "name": "image"}).encode()
    sig_layer = b"not really a signature"
    config_blob = b'{"kind": "scan"}'
    sbom = _artifact(
        image,
        SBOM,
        sbom_layer,
        "application/spdx+json",
        annotations={"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
    )
    signature = _artifact(image, SIGNATURE, sig_layer, "application/octet-stream")
    # no artifactType: the referrers API reports the config's media type instead
    scan = _artifact(
        image,
        None,
        b"scan results",
        "text/plain",
        config=descriptor("application/vnd.example.scan.config.v1+json", config_blob),
    )

    with clients.server.client() as c:
        for blob in (EMPTY_JSON, sbom_layer, sig_layer, config_blob, b"scan results"):
            _push_blob(c, name, blob)
        for body in (sbom, signature, scan):
            r = c.put(
                f"/v2/library/{name}/manifests/{sha256(body)}",
                content=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert r.status_code == 201, r.text
            assert r.headers["Docker-Content-Digest"] == sha256(body)
            assert r.headers.get("OCI-Subject") == image.digest

        base = f"/v2/library/{name}/referrers/{image.digest}"
        r = c.get(base)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == OCI_INDEX
        assert "OCI-Filters-Applied" not in r.headers
        listing = r.json()
        assert listing["schemaVersion"] == 2
        assert listing["mediaType"] == OCI_INDEX
        by_digest = {d["digest"]: d for d in listing["manifests"]}
        assert by_digest == {
            sha256(sbom): {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(sbom),
                "size": len(sbom),
                "artifactType": SBOM,
                "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
            },
            sha256(signature): {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(signature),
                "size": len(signature),
                "artifactType": SIGNATURE,
            },
            sha256(scan): {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(scan),
                "size": len(scan),
                "artifactType": "application/vnd.example.scan.config.v1+json",
            },
        }

        r = c.get(base, params={"artifactType": SBOM})
        assert r.status_code == 200, r.text
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"
        assert [d["digest"] for d in r.json()["manifests"]] == [sha256(sbom)]
        assert r.json()["manifests"][0]["artifactType"] == SBOM

        r = c.get(base, params={"artifactType": "application/vnd.example.other.v1"})
        assert r.status_code == 200, r.text
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"
        assert r.json()["manifests"] == []

        # a manifest nothing refers to has an empty (not missing) list of referrers
        r = c.get(f"/v2/library/{name}/referrers/{sha256(sbom)}")
        assert r.status_code == 200, r.text
        assert r.json()["manifests"] == []

        # the artifact itself is a manifest like any other
        r = c.get(f"/v2/library/{name}/manifests/{sha256(sbom)}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200, r.text
        assert r.content == sbom

    # and a client still sees just the image under its tag
    assert clients.inspect(f"{clients.registry}/{name}:v1")["Digest"] == image.digest


# -- what Go clients send ----------------------------------------------------------------

# containers/image (skopeo, podman, buildah) asks for a manifest with one Accept header
# field per media type, in this order; RFC 9110 §5.3 makes repeated fields one list.
_GO_CLIENT_ACCEPT = [
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    DOCKER_LIST,
    OCI_INDEX,
]


def test_repeated_accept_header_fields_are_one_list(registry: DockyardServer) -> None:
    """The request skopeo/podman send to pull an index or a Docker image: every Accept
    field counts, not only the first (the bug behind the multi-arch failures above)."""
    images = _two_arches("accept")
    docker_image = build_image(sample_files("accept-docker", layers=1), docker=True)
    index = build_index(images)
    with registry.client() as c:
        for img in [*images, docker_image]:
            for data in img.blobs.values():
                _push_blob(c, "accept", data)
            r = c.put(
                f"/v2/library/accept/manifests/{img.digest}",
                content=img.manifest,
                headers={"Content-Type": img.media_type},
            )
            assert r.status_code == 201, r.text
        for reference, body, media_type in (
            ("index", index, OCI_INDEX),
            ("docker", docker_image.manifest, DOCKER_MANIFEST),
        ):
            r = c.put(
                f"/v2/library/accept/manifests/{reference}",
                content=body,
                headers={"Content-Type": media_type},
            )
            assert r.status_code == 201, r.text
            accept = httpx.Headers([("Accept", t) for t in _GO_CLIENT_ACCEPT])
            for method in ("HEAD", "GET"):
                r = c.request(method, f"/v2/library/accept/manifests/{reference}", headers=accept)
                assert r.status_code == 200, (method, reference, r.text)
                assert r.headers["Content-Type"] == media_type
                assert r.headers["Docker-Content-Digest"] == sha256(body)
