"""The workload: the same pushes, pulls and reads, run against one registry at a time.

Throughput phases use httpx from a thread pool (one shared, pooled client per phase);
read-latency phases use wrk and hey. Each phase is measured with :class:`Meter`: wall
time, the load generator's CPU time (this process, plus wrk or hey once they are reaped)
and the server's CPU time (the registry process and its workers, from /proc).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import _loadgen
import httpx
from _servers import ADMIN_PASSWORD, ADMIN_USER, NAMESPACE, BenchError, Registry

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCTETS = "application/octet-stream"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does."""

    small_count: int = 64
    small_size: int = 1 * MiB
    small_concurrency: int = 4
    large_count: int = 4
    large_size: int = 64 * MiB
    large_concurrency: int = 1
    chunked_size: int = 64 * MiB
    chunk_size: int = 8 * MiB
    pull_concurrency: tuple[int, int] = (1, 8)
    verify_every: int = 4
    manifest_seconds: int = 10
    manifest_connections: int = 64
    wrk_threads: int = 2
    images: int = 200
    image_repos: int = 4
    image_concurrency: int = 8
    config_size: int = 1024
    layer_size: int = 4096
    tags: int = 1000
    tag_concurrency: int = 8
    tags_seconds: int = 5
    tags_connections: int = 8
    manifest_puts: int = 1000
    put_concurrency: int = 8
    catalog_repos: int = 1000
    catalog_hidden: int = 100
    catalog_concurrency: int = 8
    catalog_seconds: int = 5
    catalog_connections: int = 8
    # The webhooks section (bench/_webhooks.py); its pushes are phase 6's images.
    webhook_rounds: int = 3
    webhook_hooks: int = 3
    latency_rate: int = 50
    latency_seconds: int = 10
    drain_hooks: int = 10
    drain_tags: int = 1000


FULL = Sizes()
QUICK = replace(
    FULL,
    small_count=16,
    large_count=2,
    large_size=16 * MiB,
    chunked_size=16 * MiB,
    chunk_size=4 * MiB,
    manifest_seconds=2,
    images=40,
    tags=200,
    tags_seconds=2,
    manifest_puts=200,
    catalog_repos=200,
    catalog_hidden=20,
    catalog_seconds=2,
    webhook_rounds=1,
    latency_seconds=3,
    drain_tags=100,
)


# -- data --------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    digest: str

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(data, sha256(data))

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Image:
    config: Blob
    layer: Blob
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def make_image(config_size: int, layer_size: int) -> Image:
    """A unique small image: a JSON config padded to about ``config_size`` and a layer."""
    layer = Blob.of(os.urandom(layer_size))
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created_by": "dockyard bench"}],
    }
    padding = max(0, config_size - len(json.dumps(config)) - 40)
    config["config"]["Labels"] = {"bench.padding": os.urandom(padding // 2 + 1).hex()[:padding]}
    config_blob = Blob.of(json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.size}],
    }
    return Image(config_blob, layer, json.dumps(manifest, indent=2).encode())


@dataclass(frozen=True)
class Data:
    """Everything pushed, made once with os.urandom and pushed to every registry."""

    small: list[Blob]
    large: list[Blob]
    chunked: Blob
    manifest_image: Image
    images: list[Image]
    tags_image: Image
    puts_image: Image
    puts: list[bytes]
    """Distinct manifests over ``puts_image``'s config and layer (phase 6b)."""
    catalog_image: Image

    @classmethod
    def generate(cls, sizes: Sizes) -> Data:
        puts_image = make_image(sizes.config_size, sizes.layer_size)
        return cls(
            small=[Blob.of(os.urandom(sizes.small_size)) for _ in range(sizes.small_count)],
            large=[Blob.of(os.urandom(sizes.large_size)) for _ in range(sizes.large_count)],
            chunked=Blob.of(os.urandom(sizes.chunked_size)),
            manifest_image=make_image(sizes.config_size, sizes.layer_size),
            images=[make_image(sizes.config_size, sizes.layer_size) for _ in range(sizes.images)],
            tags_image=make_image(sizes.config_size, sizes.layer_size),
            puts_image=puts_image,
            puts=[annotated(puts_image, n) for n in range(sizes.manifest_puts)],
            catalog_image=make_image(sizes.config_size, sizes.layer_size),
        )


def annotated(image: Image, number: int) -> bytes:
    """``image``'s manifest with an annotation of its own: another manifest (another
    digest, so another row or file to write) over the same, already pushed blobs."""
    manifest = json.loads(image.manifest)
    manifest["annotations"] = {"org.dockyard.bench.put": str(number)}
    return json.dumps(manifest, indent=2).encode()


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Cost:
    """One phase's wall time and the CPU seconds the client and the server spent in it."""

    tool: str
    wall: float
    client_cpu: float
    server_cpu: float
    machine_cpu: float

    @property
    def other_cores(self) -> float:
        """CPU that neither side used: other processes on the machine, the kernel's own."""
        other = self.machine_cpu - self.client_cpu - self.server_cpu
        return max(0.0, other / self.wall) if self.wall else 0.0

    @property
    def client_cores(self) -> float:
        return self.client_cpu / self.wall if self.wall else 0.0

    @property
    def server_cores(self) -> float:
        return self.server_cpu / self.wall if self.wall else 0.0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat, without idle/iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


class Meter:
    """Times a block and charges CPU to the load generator and to the server."""

    def __init__(self, registry: Registry, tool: str):
        self.registry = registry
        self.tool = tool
        self._cost: Cost | None = None

    def __enter__(self) -> Meter:
        # A server started inside the block (the webhook drain) has used nothing yet.
        self._server = self.registry.cpu_seconds() if self.registry.proc is not None else 0.0
        self._self = _cpu(resource.RUSAGE_SELF)
        self._children = _cpu(resource.RUSAGE_CHILDREN)
        self._machine = machine_busy_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._start
        client = _cpu(resource.RUSAGE_SELF) - self._self
        client += _cpu(resource.RUSAGE_CHILDREN) - self._children
        server = self.registry.cpu_seconds() - self._server
        machine = machine_busy_seconds() - self._machine
        self._cost = Cost(self.tool, wall, client, server, machine)

    @property
    def cost(self) -> Cost:
        if self._cost is None:
            raise BenchError("Meter read before its block ended")
        return self._cost

    @property
    def wall(self) -> float:
        return self.cost.wall


@dataclass
class Outcome:
    """What one registry scored: figures by metric id, costs by phase, notes."""

    figures: dict[str, float] = field(default_factory=dict)
    costs: dict[str, Cost] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- HTTP --------------------------------------------------------------------------------


def _loopback_only(request: httpx.Request) -> None:
    if request.url.host not in _LOOPBACK_HOSTS:
        raise BenchError(f"refusing to contact {request.url.host}: the benchmark stays on loopback")


def parallel(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """``fn`` over ``items`` on ``concurrency`` threads; the first failure stops the rest."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench")
    try:
        futures = [pool.submit(fn, item) for item in items]
        results = [future.result() for future in futures]
    except BaseException:
        # Don't wait for requests in flight: stopping the servers next ends them.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        body = response.read()[:400].decode(errors="replace")
        raise BenchError(
            f"{what}: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {body}"
        )
    return response


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


class Session:
    """A pooled httpx client for one registry, with its credentials."""

    def __init__(
        self, registry: Registry, repositories: list[str], pool: int, *, basic: bool = False
    ):
        """``basic``: the administrator's Basic credentials on every request instead of
        a token naming ``repositories`` (set-up over more repositories than one token's
        scope list can name)."""
        self.registry = registry
        self.http = httpx.Client(
            base_url=registry.base_url,
            headers={} if basic else registry.auth_headers(repositories),
            auth=(ADMIN_USER, ADMIN_PASSWORD) if basic and registry.needs_auth else None,
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            event_hooks={"request": [_loopback_only]},
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _start_upload(self, repo: str) -> str:
        started = self.http.post(f"/v2/{repo}/blobs/uploads/")
        _expect(started, 202, f"start upload to {repo}")
        location = started.headers.get("Location")
        if not location:
            raise BenchError(f"{self.registry.label}: upload start has no Location header")
        return location

    def _finish(self, response: httpx.Response, blob: Blob, what: str) -> None:
        _expect(response, 201, what)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != blob.digest:
            raise BenchError(f"{what}: registry says {answered}, pushed {blob.digest}")

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Monolithic push: POST an upload, PUT the whole body with the digest."""
        location = self._start_upload(repo)
        done = self.http.put(
            _with_digest(location, blob.digest),
            content=blob.data,
            headers={"Content-Type": OCTETS},
        )
        self._finish(done, blob, f"push {blob.digest[:19]} to {repo}")

    def push_chunked(self, repo: str, blob: Blob, chunk_size: int) -> None:
        """Chunked push: POST, PATCH each chunk (following Location), PUT with the digest."""
        location = self._start_upload(repo)
        for start in range(0, blob.size, chunk_size):
            chunk = blob.data[start : start + chunk_size]
            patched = self.http.patch(
                location,
                content=chunk,
                headers={
                    "Content-Type": OCTETS,
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                },
            )
            _expect(patched, 202, f"PATCH {start}-{start + len(chunk) - 1} to {repo}")
            location = patched.headers.get("Location") or location
        done = self.http.put(_with_digest(location, blob.digest), content=b"")
        self._finish(done, blob, f"close chunked upload to {repo}")

    def pull_blob(self, repo: str, blob: Blob, *, verify: bool) -> int:
        """GET a blob (following redirects); check its length, and its digest if ``verify``."""
        hasher = hashlib.sha256() if verify else None
        received = 0
        with self.http.stream("GET", f"/v2/{repo}/blobs/{blob.digest}", follow_redirects=True) as r:
            _expect(r, 200, f"pull {blob.digest[:19]} from {repo}")
            for chunk in r.iter_raw():
                received += len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
        if received != blob.size:
            raise BenchError(f"pull {blob.digest} from {repo}: {received} bytes, not {blob.size}")
        if hasher is not None and "sha256:" + hasher.hexdigest() != blob.digest:
            raise BenchError(f"pull {blob.digest} from {repo}: the bytes hash to something else")
        return received

    def put_manifest(self, repo: str, reference: str, manifest: bytes) -> None:
        done = self.http.put(
            f"/v2/{repo}/manifests/{reference}",
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        _expect(done, 201, f"PUT manifest {repo}:{reference}")
        answered = done.headers.get("Docker-Content-Digest")
        if answered and answered != sha256(manifest):
            raise BenchError(f"PUT manifest {repo}:{reference}: registry says {answered}")

    def push_image(self, repo: str, image: Image, tag: str) -> None:
        self.push_blob(repo, image.config)
        self.push_blob(repo, image.layer)
        self.put_manifest(repo, tag, image.manifest)

    def list_tags(self, repo: str) -> tuple[list[str], int]:
        """All tags of ``repo`` following Link pagination, and the number of pages read."""
        return self.walk(f"/v2/{repo}/tags/list", "tags", f"tags list of {repo}")

    def walk(self, url: str | None, key: str, what: str) -> tuple[list[str], int]:
        """The ``key`` lists of ``url`` and the pages its Link headers lead to, joined,
        and the number of pages read."""
        items: list[str] = []
        pages = 0
        while url and pages < 1000:
            page = _expect(self.http.get(url), 200, what)
            items += page.json().get(key) or []
            pages += 1
            link = page.headers.get("Link", "")
            url = link[link.index("<") + 1 : link.index(">")] if "<" in link else None
        return items, pages


# -- phases ------------------------------------------------------------------------------

REPO_SMALL = "bench/blobs-small"
REPO_LARGE = "bench/blobs-large"
REPO_CHUNKED = "bench/blobs-chunked"
REPO_MANIFEST = "bench/manifest"
REPO_TAGS = "bench/tags"
REPO_PUTS = "bench/puts"
CATALOG_NAMESPACE = "catalog"
HIDDEN_NAMESPACES = ("secret", "private")
"""Phase 7b's namespaces the RAM user may not see: a Deny beats its Allow on the
first; it has no Allow on the second."""
BLOB_REPOS = [REPO_SMALL, REPO_LARGE, REPO_CHUNKED]


def image_repos(sizes: Sizes) -> list[str]:
    return [f"bench/images-{n}" for n in range(sizes.image_repos)]


class Workload:
    """The phases against one registry, one method each, run in :data:`STEPS` order.

    The caller runs every registry through a step before any starts the next, so that
    both see the same background load on the machine; the order of the steps matters
    (pulls read what the pushes wrote).
    """

    def __init__(self, registry: Registry, data: Data, sizes: Sizes):
        self.registry = registry
        self.data = data
        self.sizes = sizes
        self.out = Outcome()

    def _say(self, text: str) -> None:
        print(f"[bench] {self.registry.label}: {text}", file=sys.stderr, flush=True)

    def _record(self, phase: str, meter: Meter) -> None:
        self.out.costs[phase] = meter.cost
        self.registry.check_alive()

    def push_small(self) -> None:
        """1. Monolithic pushes of many 1 MiB blobs."""
        sizes, blobs = self.sizes, self.data.small
        self._say(f"push {len(blobs)} x {sizes.small_size // MiB} MiB")
        with (
            Session(self.registry, BLOB_REPOS, sizes.small_concurrency) as s,
            Meter(self.registry, "httpx") as m,
        ):
            parallel(lambda b: s.push_blob(REPO_SMALL, b), blobs, sizes.small_concurrency)
        self.out.figures["push_small_mibs"] = sum(b.size for b in blobs) / MiB / m.wall
        self.out.figures["push_small_blobs"] = len(blobs) / m.wall
        self._record("push_small", m)

    def push_large(self) -> None:
        """2. Monolithic pushes of a few large blobs."""
        sizes, blobs = self.sizes, self.data.large
        self._say(f"push {len(blobs)} x {sizes.large_size // MiB} MiB")
        with (
            Session(self.registry, BLOB_REPOS, sizes.large_concurrency) as s,
            Meter(self.registry, "httpx") as m,
        ):
            parallel(lambda b: s.push_blob(REPO_LARGE, b), blobs, sizes.large_concurrency)
        self.out.figures["push_large_mibs"] = sum(b.size for b in blobs) / MiB / m.wall
        self._record("push_large", m)

    def push_chunked(self) -> None:
        """3. One blob pushed in chunks."""
        blob = self.data.chunked
        self._say(f"chunked push of {blob.size // MiB} MiB")
        with (
            Session(self.registry, BLOB_REPOS, 1) as s,
            Meter(self.registry, "httpx") as m,
        ):
            s.push_chunked(REPO_CHUNKED, blob, self.sizes.chunk_size)
        self.out.figures["push_chunked_mibs"] = blob.size / MiB / m.wall
        self._record("push_chunked", m)

    def _pull(self, number: int) -> None:
        """4. Pull every blob pushed so far, largest first, at one concurrency."""
        concurrency = self.sizes.pull_concurrency[number]
        work = [(REPO_LARGE, b) for b in self.data.large] + [(REPO_CHUNKED, self.data.chunked)]
        work += [(REPO_SMALL, b) for b in self.data.small]
        total = sum(b.size for _, b in work)
        self._say(f"pull {total // MiB} MiB at concurrency {concurrency}")
        # A different sample of blobs has its digest checked in each pass.
        every = self.sizes.verify_every
        sample = {i for i in range(len(work)) if (i + number) % every == 0}
        with Session(self.registry, BLOB_REPOS, concurrency) as s:

            def pull(job: tuple[int, tuple[str, Blob]]) -> int:
                index, (repo, blob) = job
                return s.pull_blob(repo, blob, verify=index in sample)

            with Meter(self.registry, "httpx") as m:
                received = sum(parallel(pull, list(enumerate(work)), concurrency))
        self.out.figures[f"pull_c{concurrency}_mibs"] = received / MiB / m.wall
        self._record(f"pull_c{concurrency}", m)
        note = (
            f"pulls: every blob's length checked; sha256 of the bytes checked for 1 blob in "
            f"{every} per pass ({len(work)} blobs, {total // MiB} MiB per pass)"
        )
        if note not in self.out.notes:
            self.out.notes.append(note)

    def pull_first(self) -> None:
        self._pull(0)

    def pull_second(self) -> None:
        self._pull(1)

    def manifests(self) -> None:
        """5. Manifest GET (wrk) and HEAD (hey) by tag, many connections."""
        sizes, image = self.sizes, self.data.manifest_image
        self._say(f"manifest GET and HEAD, {sizes.manifest_seconds}s each")
        path = f"/v2/{REPO_MANIFEST}/manifests/latest"
        accept = {"Accept": OCI_MANIFEST}
        with Session(self.registry, [REPO_MANIFEST], 1) as s:
            s.push_image(REPO_MANIFEST, image, "latest")
            auth = s.http.headers.get("Authorization")
            got = _expect(s.http.get(path, headers=accept), 200, "GET manifest")
            if sha256(got.content) != image.digest:
                raise BenchError(f"{self.registry.label}: GET manifest returned other bytes")
            head = _expect(s.http.head(path, headers=accept), 200, "HEAD manifest")
            if head.headers.get("Docker-Content-Digest") not in (None, image.digest):
                raise BenchError(f"{self.registry.label}: HEAD manifest names another digest")
        headers = {**accept, **({"Authorization": auth} if auth else {})}
        url = self.registry.base_url + path
        with Meter(self.registry, "wrk") as m:
            got_load = _loadgen.wrk(
                url,
                threads=sizes.wrk_threads,
                connections=sizes.manifest_connections,
                seconds=sizes.manifest_seconds,
                headers=headers,
                what="manifest GET",
            )
        self._record("manifest_get", m)
        with Meter(self.registry, "hey") as m:
            head_load = _loadgen.hey(
                url,
                method="HEAD",
                connections=sizes.manifest_connections,
                seconds=sizes.manifest_seconds,
                headers=headers,
                what="manifest HEAD",
            )
        self._record("manifest_head", m)
        for key, load in (("get", got_load), ("head", head_load)):
            self.out.figures[f"manifest_{key}_rps"] = load.rps
            self.out.figures[f"manifest_{key}_p50"] = load.p50_ms
            self.out.figures[f"manifest_{key}_p99"] = load.p99_ms
            if load.errors:
                self.out.notes.append(f"manifest {key.upper()} ({load.tool}) errors: {load.errors}")
        # Always 0 here: any non-2xx response has already failed the run.
        self.out.figures["manifest_non2xx"] = got_load.non_2xx + head_load.non_2xx

    def policies(self) -> None:
        """5b. Dockyard only: the manifest GET of phase 5 as a RAM user whose access comes
        from policies (custom ones, a group's, a namespace permission), next to the
        administrator, with a bearer token and with Basic credentials on every request."""
        if not self.registry.needs_auth:
            return
        sizes = self.sizes
        self._say(f"manifest GET with policies, {sizes.manifest_seconds}s per figure")
        user = _policy_user(self.registry)
        path = f"/v2/{REPO_MANIFEST}/manifests/latest"
        url = self.registry.base_url + path
        accept = {"Accept": OCI_MANIFEST}
        admin = (ADMIN_USER, ADMIN_PASSWORD)
        cases = {
            "policy_token_rps": {
                **accept,
                **_token(self.registry, user, f"repository:{REPO_MANIFEST}:pull"),
            },
            "admin_basic_rps": {**accept, "Authorization": _basic(*admin)},
            "policy_basic_rps": {**accept, "Authorization": _basic(*user)},
        }
        for key, headers in cases.items():
            with httpx.Client(timeout=30.0) as http:
                _expect(http.get(url, headers=headers), 200, f"GET manifest ({key})")
            load = _loadgen.wrk(
                url,
                threads=sizes.wrk_threads,
                connections=sizes.manifest_connections,
                seconds=sizes.manifest_seconds,
                headers=headers,
                what=f"manifest GET ({key})",
            )
            self.out.figures[key] = load.rps

    def images(self) -> None:
        """6. Many small images, each a unique config, layer and tagged manifest."""
        sizes, images = self.sizes, self.data.images
        repos = image_repos(sizes)
        self._say(f"push {len(images)} small images into {len(repos)} repositories")
        jobs = [(repos[i % len(repos)], img, f"img-{i:04d}") for i, img in enumerate(images)]
        with (
            Session(self.registry, repos, sizes.image_concurrency) as s,
            Meter(self.registry, "httpx") as m,
        ):
            parallel(lambda job: s.push_image(*job), jobs, sizes.image_concurrency)
        # Untimed: every image landed under its tag.
        with Session(self.registry, repos, 1) as s:
            listed = sum(len(s.list_tags(repo)[0]) for repo in repos)
        if listed != len(images):
            raise BenchError(f"{self.registry.label}: pushed {len(images)} tags, listed {listed}")
        self.out.figures["images_per_s"] = len(images) / m.wall
        self._record("images", m)

    def tags(self) -> None:
        """7. Tags list of a repository with many tags (the tagging itself is not timed)."""
        sizes = self.sizes
        self._say(f"tag one manifest {sizes.tags} times, then list tags")
        expected = [f"t{n:04d}" for n in range(sizes.tags)]
        manifest = self.data.tags_image.manifest
        with Session(self.registry, [REPO_TAGS], sizes.tag_concurrency) as s:
            s.push_image(REPO_TAGS, self.data.tags_image, expected[0])
            parallel(
                lambda tag: s.put_manifest(REPO_TAGS, tag, manifest),
                expected[1:],
                sizes.tag_concurrency,
            )
            listed, pages = s.list_tags(REPO_TAGS)
            auth = s.http.headers.get("Authorization")
        if sorted(listed) != expected:
            raise BenchError(
                f"{self.registry.label}: tags list has {len(listed)} tags, not {len(expected)}"
            )
        self._time_listing(
            "tags",
            f"/v2/{REPO_TAGS}/tags/list",
            {"Authorization": auth} if auth else {},
            pages=pages,
            seconds=sizes.tags_seconds,
            connections=sizes.tags_connections,
        )

    def _time_listing(
        self,
        phase: str,
        path: str,
        headers: dict[str, str],
        *,
        pages: int,
        seconds: int,
        connections: int,
    ) -> None:
        """Time GETs of a listing with wrk; when the untimed walk took ``pages`` > 1
        (the registry paginates), each connection follows the Link headers and a
        complete walk counts as one listing."""
        what = "tags list" if phase == "tags" else "_catalog"
        paginated = pages > 1
        if paginated:
            self.out.notes.append(
                f"{what}: paginated into {pages} pages; timed with one connection per wrk "
                "thread following Link headers; listings/s counts complete walks, p50 is per page"
            )
        with Meter(self.registry, "wrk") as m:
            load = _loadgen.wrk(
                self.registry.base_url + path,
                threads=connections if paginated else self.sizes.wrk_threads,
                connections=connections,
                seconds=seconds,
                headers=headers,
                follow_links=paginated,
                what=what,
            )
        self.out.figures[f"{phase}_rps"] = load.listings_per_s
        self.out.figures[f"{phase}_p50"] = load.p50_ms
        if load.errors:
            self.out.notes.append(f"{what} (wrk) socket errors: {load.errors}")
        self._record(phase, m)

    def manifest_puts(self) -> None:
        """6b. Manifest PUT alone: distinct manifests (one annotation apart) over a config
        and a layer pushed beforehand, each under a tag of its own. Only the PUTs are
        timed."""
        sizes, image, manifests = self.sizes, self.data.puts_image, self.data.puts
        self._say(f"PUT {len(manifests)} distinct manifests under distinct tags")
        tags = [f"m{n:04d}" for n in range(len(manifests))]
        with Session(self.registry, [REPO_PUTS], sizes.put_concurrency) as s:
            s.push_blob(REPO_PUTS, image.config)
            s.push_blob(REPO_PUTS, image.layer)
            with Meter(self.registry, "httpx") as m:
                parallel(
                    lambda job: s.put_manifest(REPO_PUTS, *job),
                    list(zip(tags, manifests, strict=True)),
                    sizes.put_concurrency,
                )
            listed, _ = s.list_tags(REPO_PUTS)
        if sorted(listed) != tags:
            raise BenchError(
                f"{self.registry.label}: PUT {len(tags)} tags, the tags list has {len(listed)}"
            )
        self.out.figures["puts_per_s"] = len(manifests) / m.wall
        self._record("puts", m)

    def catalog(self) -> None:
        """7b. ``_catalog`` over many repositories, each holding one small image (the
        pushes are set-up, untimed). Dockyard lists as a RAM user whose policies let it
        see the ``catalog`` namespace only, with more repositories in namespaces it may
        not see; distribution has no users and lists everything."""
        sizes, image = self.sizes, self.data.catalog_image
        expected = [f"{CATALOG_NAMESPACE}/r{n:04d}" for n in range(sizes.catalog_repos)]
        hidden: list[str] = []
        if self.registry.needs_auth:
            with _admin_api(self.registry) as call:
                for namespace in (CATALOG_NAMESPACE, *HIDDEN_NAMESPACES):
                    call("POST", "/api/v1/namespaces", {"name": namespace})
            share = -(-sizes.catalog_hidden // len(HIDDEN_NAMESPACES))
            hidden = [f"{ns}/h{n:04d}" for ns in HIDDEN_NAMESPACES for n in range(share)]
        self._say(
            f"push one image into each of {len(expected)} repositories (+{len(hidden)} hidden), "
            "then list the catalog"
        )
        with Session(self.registry, [], sizes.catalog_concurrency, basic=True) as s:
            parallel(
                lambda repo: s.push_image(repo, image, "latest"),
                expected + hidden,
                sizes.catalog_concurrency,
            )
        headers = {}
        if self.registry.needs_auth:
            user = _catalog_user(self.registry)
            headers = _token(self.registry, user, "registry:catalog:*")
        with Session(self.registry, [], 1) as s:
            s.http.headers.update(headers)
            listed, pages = s.walk("/v2/_catalog", "repositories", "_catalog")
        # Untimed: the listing names every repository the caller may see, once, and
        # nothing it may not; distribution also lists the earlier phases' repositories.
        mine = [name for name in listed if name.startswith(f"{CATALOG_NAMESPACE}/")]
        if mine != expected or set(hidden) & set(listed) or len(set(listed)) != len(listed):
            raise BenchError(
                f"{self.registry.label}: _catalog lists {len(mine)} of the {len(expected)} "
                f"repositories and {len(set(hidden) & set(listed))} hidden ones"
            )
        if self.registry.needs_auth and len(listed) != len(expected):
            raise BenchError(
                f"{self.registry.label}: the RAM user's _catalog lists {len(listed)} "
                f"repositories, not {len(expected)}"
            )
        self._time_listing(
            "catalog",
            "/v2/_catalog",
            headers,
            pages=pages,
            seconds=sizes.catalog_seconds,
            connections=sizes.catalog_connections,
        )

    def memory(self) -> None:
        """8. Peak resident memory of the server and its workers."""
        self.out.figures["peak_rss_mib"] = self.registry.peak_rss_mib()
        pss = self.registry.peak_pss_mib()
        if pss is not None:
            self.out.figures["peak_pss_mib"] = pss


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _token(registry: Registry, auth: tuple[str, str], scope: str) -> dict[str, str]:
    """A bearer token for ``scope`` (``repository:NAME:pull``, ``registry:catalog:*``)."""
    response = httpx.get(
        f"{registry.base_url}/auth/token",
        params={"service": "dockyard", "scope": scope},
        auth=auth,
        timeout=30.0,
    )
    token = _expect(response, 200, "token for the RAM user").json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _policy_user(registry: Registry) -> tuple[str, str]:
    """A RAM user of the administrator's account that may pull from the bench namespace
    only through its policies: two custom ones (an Allow with a condition, a Deny on
    another namespace), a group's read-only policy and a namespace permission."""
    password = "bench-ram-user-pw"  # noqa: S105 -- a throwaway server on loopback
    with _admin_api(registry) as call:
        call("POST", "/api/v1/ram/users", {"name": "bencher", "password": password})
        call("PUT", "/api/v1/ram/users/bencher/registry-password", {"password": password})
        allow = {
            "Effect": "Allow",
            "Action": ["cr:Get*", "cr:PullRepository"],
            "Resource": "acs:cr:*:*:repository/bench/*",
            "Condition": {"IpAddress": {"acs:SourceIp": ["127.0.0.0/8", "::1"]}},
        }
        deny = {"Effect": "Deny", "Action": "cr:*", "Resource": "acs:cr:*:*:repository/secret/*"}
        for name, statement in (("bench-allow", allow), ("bench-deny", deny)):
            document = {"Version": "1", "Statement": [statement]}
            call("POST", "/api/v1/ram/policies", {"name": name, "document": document})
            call("PUT", f"/api/v1/ram/users/bencher/policies/{name}")
        call("POST", "/api/v1/ram/groups", {"name": "bench-readers"})
        call("PUT", "/api/v1/ram/groups/bench-readers/members/bencher")
        call(
            "PUT", "/api/v1/ram/groups/bench-readers/policies/AliyunContainerRegistryReadOnlyAccess"
        )
        call("PUT", f"/api/v1/namespaces/{NAMESPACE}/permissions/bencher", {"role": "read-only"})
    return f"bencher@{ADMIN_USER}", password


def _catalog_user(registry: Registry) -> tuple[str, str]:
    """A RAM user of the administrator's account that may list the catalog and pull from
    the ``catalog`` namespace only: an Allow of ``cr:ListRepository``; an Allow of pulls
    (with a condition) on ``catalog`` and on ``secret``, where a Deny beats it; nothing on
    ``private`` or anywhere else; and a namespace permission on ``catalog``."""
    password = "bench-lister-pw"  # noqa: S105 -- a throwaway server on loopback
    secret, _private = HIDDEN_NAMESPACES
    loopback = {"IpAddress": {"acs:SourceIp": ["127.0.0.0/8", "::1"]}}
    documents = {
        "lister-list": {
            "Effect": "Allow",
            "Action": "cr:ListRepository",
            "Resource": "acs:cr:*:*:repository/*",
        },
        "lister-pull": {
            "Effect": "Allow",
            "Action": ["cr:Get*", "cr:PullRepository"],
            "Resource": [
                f"acs:cr:*:*:repository/{CATALOG_NAMESPACE}/*",
                f"acs:cr:*:*:repository/{secret}/*",
            ],
            "Condition": loopback,
        },
        "lister-deny": {
            "Effect": "Deny",
            "Action": "cr:*",
            "Resource": f"acs:cr:*:*:repository/{secret}/*",
        },
    }
    with _admin_api(registry) as call:
        call("POST", "/api/v1/ram/users", {"name": "lister", "password": password})
        call("PUT", "/api/v1/ram/users/lister/registry-password", {"password": password})
        for name, statement in documents.items():
            document = {"Version": "1", "Statement": [statement]}
            call("POST", "/api/v1/ram/policies", {"name": name, "document": document})
            call("PUT", f"/api/v1/ram/users/lister/policies/{name}")
        call(
            "PUT",
            f"/api/v1/namespaces/{CATALOG_NAMESPACE}/permissions/lister",
            {"role": "read-only"},
        )
    return f"lister@{ADMIN_USER}", password


@contextlib.contextmanager
def _admin_api(registry: Registry) -> Iterator[Callable[..., None]]:
    """``call(method, path, body)`` on the management API as the administrator; any
    answer other than 2xx fails the benchmark."""
    with httpx.Client(
        base_url=registry.base_url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=30.0
    ) as api:

        def call(method: str, path: str, body: Any = None) -> None:
            response = api.request(method, path, json=body)
            if response.status_code >= 300:
                raise BenchError(f"{method} {path}: {response.status_code} {response.text[:300]}")

        yield call


STEPS: list[Callable[[Workload], None]] = [
    Workload.push_small,
    Workload.push_large,
    Workload.push_chunked,
    Workload.pull_first,
    Workload.pull_second,
    Workload.manifests,
    Workload.policies,
    Workload.images,
    Workload.manifest_puts,
    Workload.tags,
    Workload.catalog,
    Workload.memory,
]
