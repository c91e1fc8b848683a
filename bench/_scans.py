"""The registry section of the scan benchmark: scans on the job queue of a real server.

It runs on a Dockyard server of its own (a fresh data directory, its default job
workers), with the generated OSV records imported through ``POST /api/v1/vulndb/imports``.
The images are the debootstrap image with one small layer of its own added: each is
distinct (its own manifest, config and layer), and all share the big base layer, pushed
to each repository once before anything is timed.

1. Overhead: images pushed over HTTP, 8 at a time, into a namespace with scan on push
   and into one without; rounds alternate and the queue is left to empty (every scan
   done) before the next round. The figure is images/s with scans over images/s
   without (target ≥ 0.95: scanning is off the request path).
2. Burst: 50 images pushed at once into a namespace with scan on push; the time from
   the first push until every scan is complete, against 50 x the CLI's time on one.
3. Rescan: ``--rescans`` more images pushed (and scanned); then one OSV record that
   matches a package they hold is imported, which queues the rescans of every image
   scanned so far (these and the earlier phases'); the time from the import until every
   one's result carries the new database version, in images per minute.
4. Peak memory of each job worker process (VmHWM) over the whole section.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _phases import OCI_CONFIG, OCI_MANIFEST, Blob, Image, Session, parallel
from _servers import BenchError, Registry, _is_job_worker, peak_rss_kib, process_tree
from _webhooks import Api, _wait

CONCURRENCY = 8
REPOS = 4


def say(text: str) -> None:
    print(f"[bench] scans in the registry: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Base:
    """The debootstrap image's layers and config, read from its OCI layout."""

    layers: list[Blob]
    layer_types: list[str]
    config: dict[str, Any]

    @classmethod
    def read(cls, layout: Path) -> Base:
        def blob(digest: str) -> bytes:
            return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        layers = [Blob.of(blob(d["digest"])) for d in manifest["layers"]]
        types = [str(d["mediaType"]) for d in manifest["layers"]]
        return cls(layers, types, json.loads(blob(manifest["config"]["digest"])))

    def derive(self, name: str) -> Image:
        """The base with one more small layer, ``/etc/dockyard-bench`` saying ``name``."""
        data = f"{name}\n".encode()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("etc/dockyard-bench")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
        diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
        layer = Blob.of(gzip.compress(raw.getvalue(), mtime=0))
        config = json.loads(json.dumps(self.config))
        config["rootfs"]["diff_ids"].append(diff_id)
        config.setdefault("history", []).append({"created_by": f"COPY {name} /etc/"})
        config_blob = Blob.of(json.dumps(config, separators=(",", ":")).encode())
        layers = [
            {"mediaType": kind, "digest": b.digest, "size": b.size}
            for kind, b in zip(self.layer_types, self.layers, strict=True)
        ]
        layers.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer.digest,
                "size": layer.size,
            }
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": config_blob.digest,
                "size": config_blob.size,
            },
            "layers": layers,
        }
        return Image(config_blob, layer, json.dumps(manifest).encode())


@dataclass
class ScanFigures:
    off_ips: float = 0.0
    on_ips: float = 0.0
    burst_images: int = 0
    burst_seconds: float = 0.0
    rescan_images: int = 0
    rescan_seconds: float = 0.0
    worker_peaks_mb: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RegistryScans:
    def __init__(
        self,
        workdir: Path,
        layout: Path,
        archive: Path,
        package: tuple[str, str],
        *,
        images: int,
        rounds: int,
        burst: int,
        rescans: int,
    ) -> None:
        self.workdir = workdir
        self.base = Base.read(layout)
        self.archive = archive
        self.package = package
        """(ecosystem, source package name) the rescan's new record matches."""
        self.images = images
        self.rounds = rounds
        self.burst = burst
        self.rescans = rescans
        self.server = Registry("dockyard", "dockyard", workdir / "server")
        self.figures = ScanFigures()
        self._peaks: dict[int, int] = {}
        self._count = 0
        self._scanned: list[str] = []
        """The repositories whose images are scanned on push (an import rescans them all)."""

    # -- helpers -------------------------------------------------------------------------

    def _images(self, count: int) -> list[Image]:
        self._count += count
        return [self.base.derive(f"image-{self._count - i}") for i in range(count)]

    def _watch_workers(self) -> None:
        for pid in process_tree(self.server.pid):
            if _is_job_worker(pid):
                self._peaks[pid] = max(self._peaks.get(pid, 0), peak_rss_kib(pid))

    def _alive(self) -> Callable[[], None]:
        def check() -> None:
            self.server.check_alive()
            self._watch_workers()

        return check

    def _push(self, repos: list[str], images: list[Image], prefix: str) -> float:
        """Push ``images`` round-robin into ``repos``, 8 at a time; the wall time."""
        jobs = [
            (repos[i % len(repos)], image, f"{prefix}-{i:04d}") for i, image in enumerate(images)
        ]
        with Session(self.server, repos, CONCURRENCY) as s:
            started = time.monotonic()
            parallel(lambda job: s.push_image(*job), jobs, CONCURRENCY)
            return time.monotonic() - started

    def _seed(self, repos: list[str]) -> None:
        """The base layers into each repository (untimed)."""
        with Session(self.server, repos, 2) as s:
            for repo in repos:
                for layer in self.base.layers:
                    s.push_blob(repo, layer)

    def _scans(self, api: Api, repo: str) -> dict[str, dict[str, Any]]:
        namespace, name = repo.split("/")
        found: dict[str, dict[str, Any]] = {}
        after = ""
        while True:
            page = api.call(
                "GET", f"/api/v1/repositories/{namespace}/{name}/tags", limit=1000, after=after
            )
            for tag in page["items"]:
                found[tag["name"]] = tag.get("scan") or {}
            if "next" not in page:
                return found
            after = page["items"][-1]["name"]

    def _all_scanned(self, api: Api, repos: list[str], version: str = "") -> bool:
        """Whether every image in ``repos`` has a complete scan (made with ``version``).
        A listing of every tag is no small request: when the answer is no, it waits a
        second before the next look, so that looking does not slow the scans."""
        if self._scanned_in(api, repos, version):
            return True
        time.sleep(1.0)
        return False

    def _scanned_in(self, api: Api, repos: list[str], version: str) -> bool:
        for repo in repos:
            for scan in self._scans(api, repo).values():
                if scan.get("status") != "complete":
                    return False
                if version and scan.get("database") != version:
                    return False
        return True

    def _namespace(self, api: Api, name: str, *, scan_on_push: bool) -> list[str]:
        api.namespace(name)
        api.call("PUT", f"/api/v1/namespaces/{name}/security", {"scan_on_push": scan_on_push})
        repos = [f"{name}/images-{n}" for n in range(REPOS)]
        self._seed(repos)
        if scan_on_push:
            self._scanned += repos
        return repos

    # -- the section ---------------------------------------------------------------------

    def run(self) -> ScanFigures:
        self.server.start()
        self.server.wait_ready(timeout=120.0)
        with Api(self.server) as api:
            self._import(api)
            self.overhead(api)
            self.burst_phase(api)
            self.rescan(api)
            api.check_no_failures()
        self._watch_workers()
        self.figures.worker_peaks_mb = [kib / 1024 for kib in self._peaks.values()]
        return self.figures

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()

    def _import(self, api: Api, body: bytes | None = None) -> str:
        """Import the archive (or ``body``, JSON) and wait for it; the new version."""
        data = body if body is not None else self.archive.read_bytes()
        kind = "application/json" if body is not None else "application/zip"
        response = api.http.post(
            "/api/v1/vulndb/imports", content=data, headers={"Content-Type": kind}
        )
        if response.status_code != 202:
            raise BenchError(f"vulndb import: {response.status_code} {response.text[:300]}")
        url = f"/api/v1/vulndb/imports/{response.json()['id']}"
        state: dict[str, Any] = {}

        def done() -> bool:
            state.update(api.call("GET", url))
            return state["state"] in ("succeeded", "failed")

        _wait(done, 600.0, "the vulnerability database import", self._alive())
        if state["state"] != "succeeded":
            raise BenchError(f"vulndb import failed: {state.get('error')}")
        return str(api.call("GET", "/api/v1/vulndb")["version"])

    def overhead(self, api: Api) -> None:
        spaces = {
            "off": self._namespace(api, "scanbench-off", scan_on_push=False),
            "on": self._namespace(api, "scanbench-on", scan_on_push=True),
        }
        walls: dict[str, list[float]] = {"off": [], "on": []}
        alive = self._alive()
        for r in range(self.rounds):
            for cfg in ("off", "on") if r % 2 == 0 else ("on", "off"):
                say(f"round {r + 1}/{self.rounds}: {self.images} images, scan on push {cfg}")
                images = self._images(self.images)
                walls[cfg].append(self._push(spaces[cfg], images, f"r{r}"))
                _wait(api.idle, 900.0, "the scans of the round", alive)
        if not self._all_scanned(api, spaces["on"]):
            raise BenchError("an image pushed with scan on push has no complete scan")
        total = self.images * self.rounds
        self.figures.off_ips = total / sum(walls["off"])
        self.figures.on_ips = total / sum(walls["on"])
        spread = ", ".join(
            f"{cfg} {' / '.join(f'{self.images / w:.1f}' for w in walls[cfg])}" for cfg in walls
        )
        self.figures.notes.append(f"overhead rounds, images/s per round: {spread}")

    def burst_phase(self, api: Api) -> None:
        repos = self._namespace(api, "scanbench-burst", scan_on_push=True)
        say(f"burst: {self.burst} images at once")
        images = self._images(self.burst)
        started = time.monotonic()
        self._push(repos, images, "burst")
        _wait(lambda: self._all_scanned(api, repos), 900.0, "the burst's scans", self._alive())
        self.figures.burst_images = self.burst
        self.figures.burst_seconds = time.monotonic() - started

    def rescan(self, api: Api) -> None:
        repos = self._namespace(api, "scanbench-rescan", scan_on_push=True)
        say(f"rescan: pushing {self.rescans} images and waiting for their scans (untimed)")
        self._push(repos, self._images(self.rescans), "stored")
        _wait(lambda: self._all_scanned(api, repos), 3600.0, "the first scans", self._alive())
        ecosystem, name = self.package
        record = {
            "id": "DOCKYARD-BENCH-RESCAN",
            "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": "a new advisory, imported after the images were scanned",
            "affected": [
                {
                    "package": {"ecosystem": ecosystem, "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
            ],
        }
        say("rescan: importing one new record")
        started = time.monotonic()
        version = self._import(api, json.dumps([record]).encode())
        # Every image scanned before is rescanned: this phase's and the earlier ones'.
        _wait(
            lambda: self._all_scanned(api, self._scanned, version),
            3600.0,
            "the rescans",
            self._alive(),
        )
        self.figures.rescan_images = sum(len(self._scans(api, repo)) for repo in self._scanned)
        self.figures.rescan_seconds = time.monotonic() - started
