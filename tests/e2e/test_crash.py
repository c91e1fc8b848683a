"""``kill -9`` in the middle of many pushes loses nothing that was acknowledged.

Sixteen clients push at once over plain HTTP (monolithic, two-step and chunked blob
uploads, then a tagged manifest). When six pushes have had their manifest acknowledged
with ``201 Created``, the server is killed with SIGKILL. A few "straggler" pushes are
parked mid-upload until that moment, so the kill always lands on work in progress.
After a restart every acknowledged push must be intact, the interrupted uploads must be
resumable from where the server says they stopped, and ``dockyard fsck`` must find no
problem (``note:`` lines, such as bytes stored by a publish the crash cut short, are
allowed: they are what gc cleans up).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.backends import all_backends
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer

PUSHES = 16
KILL_AFTER = 6
STRAGGLERS = frozenset({3, 8, 13})
"""Pushes that stop after their first chunk and wait for the kill."""
CHUNK = 256 * 1024
MIN_BLOB, MAX_BLOB = 64 * 1024, 2 * 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Push:
    index: int
    config: bytes
    layers: list[bytes]
    completed: bool = False
    error: str | None = None
    error_before_kill: bool = False
    resume: tuple[str, bytes] | None = None
    """A straggler's upload in progress: its Location and the blob it was sending."""

    @property
    def repo(self) -> str:
        return f"library/crash-{self.index % 4}"

    @property
    def tag(self) -> str:
        return f"push-{self.index}"

    @property
    def mode(self) -> str:
        if self.index in STRAGGLERS:
            return "straggler"
        return ("monolithic", "two-step", "chunked")[self.index % 3]

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha256(b): b for b in [self.config, *self.layers]}

    @property
    def manifest(self) -> bytes:
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _desc(OCI_CONFIG, self.config),
            "layers": [_desc(OCI_LAYER, layer) for layer in self.layers],
        }
        return json.dumps(doc).encode()


def _desc(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def make_push(index: int) -> Push:
    count = 2 + index % 2
    sizes = [
        MIN_BLOB + ((index * 7 + j * 13 + 1) * 104_729) % (MAX_BLOB - MIN_BLOB)
        for j in range(count)
    ]
    if index in STRAGGLERS:
        sizes[0] = MAX_BLOB // 2  # several chunks: the straggler parks after the first
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(os.urandom(8)) for _ in sizes]},
            "push": index,
        }
    ).encode()
    return Push(index, config, [os.urandom(size) for size in sizes])


class Run:
    """The shared state of one crash run."""

    def __init__(self, server: DockyardServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.completed: list[int] = []
        self.enough = threading.Event()
        self.killed = threading.Event()
        self.dead = threading.Event()
        """Set once the server process is gone: stragglers go on only then (woken by
        ``killed``, which is set just before the kill, one could reach the server
        before it dies and add a chunk nobody expects)."""
        self.start = threading.Barrier(PUSHES)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, auth=("admin", ADMIN_PASSWORD), timeout=30)

    def push(self, push: Push) -> None:
        self.start.wait(timeout=30)
        try:
            with self.client() as c:
                for data in [push.config, *push.layers]:
                    self.upload(c, push, data)
                r = c.put(
                    f"/v2/{push.repo}/manifests/{push.tag}",
                    content=push.manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                _expect(r, 201)
                assert r.headers["Docker-Content-Digest"] == sha256(push.manifest)
        except (httpx.HTTPError, AssertionError) as exc:
            push.error = f"{type(exc).__name__}: {exc}"
            push.error_before_kill = not self.killed.is_set()
            return
        with self.lock:
            push.completed = True
            self.completed.append(push.index)
            if len(self.completed) >= KILL_AFTER:
                self.enough.set()

    def upload(self, c: httpx.Client, push: Push, data: bytes) -> None:
        digest = sha256(data)
        name = push.repo
        if push.mode == "monolithic":
            _expect(
                c.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data),
                201,
            )
            return
        r = c.post(f"/v2/{name}/blobs/uploads/")
        _expect(r, 202)
        location = r.headers["Location"]
        if push.mode == "two-step":
            _expect(c.put(location, params={"digest": digest}, content=data), 201)
            return
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + CHUNK]
            r = c.patch(
                location,
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
            )
            _expect(r, 202)
            location = r.headers["Location"]
            offset += len(chunk)
            if push.mode == "straggler" and push.resume is None and offset < len(data):
                push.resume = (location, data)
                self.dead.wait(timeout=60)
            else:
                time.sleep(0.005)
        _expect(c.put(location, params={"digest": digest}), 201)


def _expect(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise AssertionError(f"{r.request.method} {r.request.url} → {r.status_code}: {r.text}")


def _assert_intact(c: httpx.Client, push: Push) -> None:
    r = c.get(f"/v2/{push.repo}/manifests/{push.tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, (push.index, r.text)
    assert r.headers["Docker-Content-Digest"] == sha256(push.manifest)
    assert r.content == push.manifest
    for digest, data in push.blobs.items():
        b = c.get(f"/v2/{push.repo}/blobs/{digest}")
        assert b.status_code == 200, (push.index, digest, b.text)
        assert sha256(b.content) == digest
        assert b.content == data


def _fsck(server: DockyardServer) -> str:
    result = server.cli("fsck", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dockyard fsck exited {result.returncode}:\n{output}"
    problems = [line for line in output.splitlines() if line.startswith("problem")]
    assert problems == [], output
    return output


@all_backends
def test_sigkill_during_concurrent_pushes(dockyard_server: DockyardServer) -> None:
    pushes = [make_push(i) for i in range(PUSHES)]
    state = Run(dockyard_server)
    threads = [
        threading.Thread(target=state.push, args=(p,), name=f"push-{p.index}", daemon=True)
        for p in pushes
    ]
    for thread in threads:
        thread.start()
    enough = state.enough.wait(timeout=40)
    early = [f"{p.index}: {p.error}" for p in pushes if p.error_before_kill]
    assert enough, f"only {state.completed} completed before the deadline; errors: {early}"
    state.killed.set()
    dockyard_server.kill()
    state.dead.set()
    for thread in threads:
        thread.join(timeout=40)
        assert not thread.is_alive(), f"{thread.name} is stuck after the kill"

    completed = [p for p in pushes if p.completed]
    interrupted = [p for p in pushes if not p.completed]
    early = [f"{p.index}: {p.error}" for p in pushes if p.error_before_kill]
    assert early == [], f"pushes failed before the kill: {early}"
    assert len(completed) >= KILL_AFTER
    assert interrupted, "every push finished before the kill; the crash hit nothing"
    assert all(p.index in {i.index for i in interrupted} for p in pushes if p.resume)

    dockyard_server.start()
    with dockyard_server.client() as c:
        for push in completed:
            _assert_intact(c, push)
        for push in interrupted:
            # Never half there: either unknown, or (when the server committed but the
            # reply was lost to the kill) the whole image.
            r = c.get(f"/v2/{push.repo}/manifests/{push.tag}", headers={"Accept": OCI_MANIFEST})
            if r.status_code == 200:
                _assert_intact(c, push)
            else:
                assert r.status_code == 404, (push.index, r.status_code, r.text)
                assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    _fsck(dockyard_server)

    # The stragglers' uploads survived the crash: resume each one where the server says
    # it stopped, then finish every interrupted push from scratch.
    with dockyard_server.client() as c:
        for push in pushes:
            if push.resume is None:
                continue
            location, data = push.resume
            status = c.get(location)
            assert status.status_code == 204, (push.index, status.text)
            # the chunk acknowledged with 202 before the kill is still there
            assert status.headers["Range"] == f"0-{CHUNK - 1}", (push.index, status.headers)
            r = c.put(
                location,
                params={"digest": sha256(data)},
                content=data[CHUNK:],
                headers={"Content-Range": f"{CHUNK}-{len(data) - 1}"},
            )
            assert r.status_code == 201, (push.index, r.text)
        state.killed.set()
        state.dead.set()
        for push in interrupted:
            push.error = None
            state.start = threading.Barrier(1)
            state.push(push)
            assert push.completed, (push.index, push.error)
        for push in pushes:
            _assert_intact(c, push)
    _fsck(dockyard_server)
