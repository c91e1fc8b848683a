"""Helpers for the build tests: a Dockyard that may build from loopback git sources,
sources and rules made through the API, hooks signed the way GitHub signs them (with
this module's own HMAC, not Dockyard's code), waiting for builds, and reading a built
image back with podman.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.images import client_env, run, tool
from tests.fixtures.gitserver import GitRepo, GitServer
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server

BUSYBOX = Path("/bin/busybox").read_bytes()
"""A static busybox: a base for images built ``FROM scratch`` with a shell to RUN."""
FINAL = ("success", "failed", "canceled", "timed_out")


def build_env(base: Path, **extra: str) -> dict[str, str]:
    """Settings for a server that builds: local sources allowed (the git server is on
    loopback), work and cache folders of the test's own."""
    return {
        "DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES": "true",
        "DOCKYARD_BUILD_WORK_DIR": str(base / "build-work"),
        "DOCKYARD_BUILD_CACHE_DIR": str(base / "build-cache"),
        **extra,
    }


def module_server(
    factory: pytest.TempPathFactory,
    stem: str,
    backend: dict[str, str],
    *,
    local: bool,
    **extra: str,
) -> Iterator[DockyardServer]:
    """A server for a test module (removed after it): work and cache folders of its own,
    local sources allowed when ``local``."""
    base = factory.mktemp(stem)
    env = {**backend, **build_env(base, **extra)}
    if not local:
        env["DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES"] = "false"
    with running_server(base, env, remove=True) as started:
        yield started


def api_client(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def repo_path(name: str) -> str:
    return f"/api/v1/repositories/library/{name}"


def new_repository(c: httpx.Client, stem: str = "app") -> str:
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    r = c.post("/api/v1/repositories", json={"namespace": "library", "name": name})
    assert r.status_code == 201, r.text
    return name


def bind(
    c: httpx.Client, name: str, git: GitServer, repo: GitRepo, **fields: Any
) -> dict[str, Any]:
    """Bind ``repo`` (over HTTP with the git server's credentials) to ``name``."""
    body = {
        "type": "git",
        "url": repo.http_url,
        "credentials": {"username": git.username, "token": git.token},
        **fields,
    }
    r = c.put(f"{repo_path(name)}/source", json=body)
    assert r.status_code in (200, 201), r.text
    found: dict[str, Any] = r.json()
    return found


def add_rule(c: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    r = c.post(f"{repo_path(name)}/build-rules", json={"type": "branch", "ref": "main", **fields})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


def build_now(c: httpx.Client, name: str, rule_id: int, **body: Any) -> dict[str, Any]:
    r = c.post(f"{repo_path(name)}/build-rules/{rule_id}/build", json=body)
    assert r.status_code == 202, r.text
    found: dict[str, Any] = r.json()
    return found


def get_build(c: httpx.Client, name: str, build_id: int) -> dict[str, Any]:
    r = c.get(f"{repo_path(name)}/builds/{build_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def wait_build(
    c: httpx.Client,
    name: str,
    build_id: int,
    *,
    until: tuple[str, ...] = FINAL,
    timeout: float = 180,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        build = get_build(c, name, build_id)
        if build["status"] in until:
            return build
        assert time.monotonic() < deadline, (build, log_text(c, name, build_id))
        time.sleep(0.2)


def log_lines(c: httpx.Client, name: str, build_id: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = c.get(f"{repo_path(name)}/builds/{build_id}/log", params={"offset": offset})
        assert r.status_code == 200, r.text
        page = r.json()
        lines += page["items"]
        if not page["items"]:
            return lines
        offset = page["next_offset"]


def log_text(c: httpx.Client, name: str, build_id: int) -> str:
    return "\n".join(x["text"] for x in log_lines(c, name, build_id))


def github_hook(
    c: httpx.Client, hook_url: str, secret: str, body: dict[str, Any], event: str = "push"
) -> httpx.Response:
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    path = httpx.URL(hook_url).path
    return c.post(path, content=raw, headers=headers, auth=None)


def push_body(ref: str, after: str, *, deleted: bool = False) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": "0" * 40 if deleted else after,
        "deleted": deleted,
        "repository": {"full_name": "team/app"},
    }


@contextmanager
def podman(server: DockyardServer) -> Iterator[Podman]:
    tmp = Path(tempfile.mkdtemp(prefix="dyb-", dir="/tmp"))
    try:
        yield Podman(server, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Podman:
    """podman with a storage of its own, logged in to ``server`` as the admin."""

    def __init__(self, server: DockyardServer, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp
        self.env = client_env(tmp)
        self.storage = [
            "--root",
            str(tmp / "root"),
            "--runroot",
            str(tmp / "run"),
            "--storage-driver",
            "vfs",
        ]

    def __call__(self, *args: str) -> str:
        return run([tool("podman"), *self.storage, *args], env=self.env, timeout=120).stdout

    def pull(self, name: str, tag: str) -> tuple[str, dict[str, Any], Path]:
        """Pull ``library/name:tag``: its reference, its inspection and its mounted root."""
        ref = f"{self.server.host}/library/{name}:{tag}"
        self(
            "pull",
            "-q",
            "--tls-verify=false",
            "--creds",
            f"admin:{ADMIN_PASSWORD}",
            ref,
        )
        [info] = json.loads(self("image", "inspect", ref))
        mount = Path(self("image", "mount", ref).strip())
        return ref, info, mount


def sleeper(seconds: int) -> dict[str, bytes | str]:
    dockerfile = (
        "FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n"
        f'RUN ["/bin/busybox", "sh", "-c", "echo sleeping; /bin/busybox sleep {seconds}"]\n'
    )
    return {"Dockerfile": dockerfile, "busybox": BUSYBOX}


def work_folders(server: DockyardServer) -> list[Path]:
    work = Path(server.env["DOCKYARD_BUILD_WORK_DIR"])
    return sorted(work.iterdir()) if work.exists() else []
