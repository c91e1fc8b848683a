"""Build benchmark: from a code push to a pushed tag, against plain buildah.

    .venv/bin/python bench/build.py [--runs N] [--payload-mib N]

1. A git repository (a bare one on disk, reached as ``file://``: local sources allowed)
   holds a small context: a static busybox, a random payload of N MiB (default 8) and a
   Dockerfile with two RUN steps; every run commits a new payload, so nothing is cached.
2. Dockyard (``dockyard serve`` on a free loopback port, SQLite, the default job workers)
   has a source bound to it with ``build_without_cache`` and a rule for ``main``.
3. **Dockyard**: the wall time from the hook's POST (GitHub-signed) to the build's
   ``success`` as the API reports it (polled every 50 ms): queueing, the clone, buildah,
   the push through the registry, the bookkeeping.
4. **Plain**: the same context, on disk already: ``buildah bud --no-cache`` (chroot, vfs,
   a fresh storage) and ``buildah push`` to the same Dockyard; wall time of both.
5. **Log latency**: while a build prints a line every 50 ms, a follower (``GET
   …/log?follow=true``, Server-Sent Events) notes when each line arrives; the latency is
   that minus the line's recorded time (when the runner read it from buildah).

Prints a markdown table: the median of ``--runs`` for each side, the overhead (goal:
≤ 15 % or ≤ 3 s, whichever is larger) and the follower's p50/p99 (goal: p99 < 1 s).
Contacts nothing but loopback. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _servers import dockyard_binary, free_port  # noqa: E402

PASSWORD = "benchpass"  # noqa: S105 - a throwaway instance's
BUSYBOX = Path("/bin/busybox")
DOCKERFILE = """\
FROM scratch
COPY --chmod=755 busybox /bin/busybox
COPY payload.bin /data/payload.bin
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sha256sum /data/payload.bin > /data/sum"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo built > /built"]
"""
TICKS = """\
FROM scratch
COPY --chmod=755 busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "for i in $(/bin/busybox seq 1 100); do echo tick-$i; \
/bin/busybox usleep 50000; done"]
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def log(message: str) -> None:
    print(f"bench/build: {message}", file=sys.stderr, flush=True)


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Bench:
    def __init__(self, tmp: Path, payload_mib: int) -> None:
        self.tmp = tmp
        self.payload = payload_mib * 1024 * 1024
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, auth=("admin", PASSWORD), timeout=120)

    # -- set-up ------------------------------------------------------------------------

    def start(self) -> None:
        data = self.tmp / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env |= {
            "DOCKYARD_DATA_DIR": str(data),
            "DOCKYARD_ADMIN_PASSWORD": PASSWORD,
            "DOCKYARD_LOG_LEVEL": "warning",
            "DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES": "true",
            "DOCKYARD_BUILD_WORK_DIR": str(self.tmp / "work"),
            "DOCKYARD_BUILD_CACHE_DIR": str(self.tmp / "cache"),
        }
        binary = dockyard_binary()
        subprocess.run([binary, "namespace", "create", "bench"], env=env, check=True)
        logfile = (self.tmp / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", self.host],
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("dockyard serve did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def repository(self, name: str, dockerfile: str) -> tuple[Path, dict[str, Any]]:
        """A git repository with ``dockerfile``, bound to Dockyard's ``bench/name``."""
        bare, work = self.tmp / f"{name}.git", self.tmp / f"{name}-work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
        git("remote", "add", "origin", str(bare), cwd=work)
        shutil.copy(BUSYBOX, work / "busybox")
        (work / "Dockerfile").write_text(dockerfile)
        self.commit(work)
        r = self.client.post("/api/v1/repositories", json={"namespace": "bench", "name": name})
        r.raise_for_status()
        source = self.client.put(
            f"/api/v1/repositories/bench/{name}/source",
            json={"url": bare.as_uri(), "build_without_cache": True},
        )
        source.raise_for_status()
        rule = {"ref": "main", "image_tags": ["${commit:7}"]}
        self.client.post(f"/api/v1/repositories/bench/{name}/build-rules", json=rule)
        return work, source.json()

    def commit(self, work: Path) -> str:
        (work / "payload.bin").write_bytes(os.urandom(self.payload))
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "bench", cwd=work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def hook(self, source: dict[str, Any], sha: str) -> int:
        body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
        signature = hmac.new(source["hook_secret"].encode(), body, hashlib.sha256).hexdigest()
        r = self.client.post(
            httpx.URL(source["hook_url"]).path,
            content=body,
            headers={"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Event": "push"},
            auth=None,
        )
        r.raise_for_status()
        [build] = r.json()["builds"]
        return int(build)

    def wait(self, name: str, build_id: int) -> dict[str, Any]:
        while True:
            build: dict[str, Any] = self.client.get(
                f"/api/v1/repositories/bench/{name}/builds/{build_id}"
            ).json()
            if build["status"] in ("success", "failed", "canceled", "timed_out"):
                if build["status"] != "success":
                    raise RuntimeError(f"build {build_id} ended {build['status']}: {build}")
                return build
            time.sleep(0.05)

    # -- the measures --------------------------------------------------------------------

    def dockyard_run(
        self, name: str, work: Path, source: dict[str, Any]
    ) -> tuple[float, dict[str, float]]:
        """Seconds from the hook to success, and the build's own stage times."""
        sha = self.commit(work)
        started = time.monotonic()
        build_id = self.hook(source, sha)
        build = self.wait(name, build_id)
        return time.monotonic() - started, stage_seconds(build["stages"])

    def plain_run(self, work: Path, n: int) -> float:
        storage = self.tmp / f"plain-{n}"
        store = ["--root", str(storage / "root"), "--runroot", str(storage / "run")]
        store += ["--storage-driver", "vfs"]
        self.commit(work)
        image = f"localhost/plain:{n}"
        started = time.monotonic()
        subprocess.run(
            [
                *("buildah", *store, "bud", "--isolation", "chroot", "--no-cache"),
                *("-t", image, "-f", str(work / "Dockerfile"), str(work)),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *("buildah", *store, "push", "--tls-verify=false", "--creds", f"admin:{PASSWORD}"),
                *(image, f"docker://{self.host}/bench/plain:{n}"),
            ],
            check=True,
            capture_output=True,
        )
        elapsed = time.monotonic() - started
        shutil.rmtree(storage, ignore_errors=True)
        return elapsed

    def follower_latency(self, name: str, work: Path, source: dict[str, Any]) -> list[float]:
        build_id = self.hook(source, git("rev-parse", "HEAD", cwd=work))
        path = f"/api/v1/repositories/bench/{name}/builds/{build_id}/log"
        latencies: list[float] = []
        event = ""
        with self.client.stream("GET", path, params={"follow": "true"}, timeout=300) as r:
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "line":
                    seen = time.time()
                    item = json.loads(line.removeprefix("data: "))
                    if item["text"].startswith("tick-"):
                        written = datetime.fromisoformat(item["time"].replace("Z", "+00:00"))
                        latencies.append(seen - written.timestamp())
                elif line.startswith("data: ") and event == "end":
                    break
        return latencies


def stage_seconds(stages: dict[str, str]) -> dict[str, float]:
    """queued → cloning → building → pushing → finished, in seconds."""
    order = ("queued_at", "cloning_at", "building_at", "pushing_at", "finished_at")
    at = [datetime.fromisoformat(stages[k].replace("Z", "+00:00")).timestamp() for k in order]
    names = ("waiting", "clone", "build", "push")
    return {n: at[i + 1] - at[i] for i, n in enumerate(names)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payload-mib", type=int, default=8)
    args = parser.parse_args()
    for tool in ("buildah", "git", "skopeo"):
        if shutil.which(tool) is None:
            log(f"{tool} is not installed")
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-build-"))
    bench = Bench(tmp, args.payload_mib)
    try:
        bench.start()
        work, source = bench.repository("app", DOCKERFILE)
        log("warming up (one build each way)")
        bench.dockyard_run("app", work, source)
        bench.plain_run(work, 0)
        dockyard, plain, stages = [], [], []
        for n in range(1, args.runs + 1):
            seconds, parts = bench.dockyard_run("app", work, source)
            dockyard.append(seconds)
            stages.append(parts)
            plain.append(bench.plain_run(work, n))
            log(f"run {n}: dockyard {dockyard[-1]:.2f} s, plain {plain[-1]:.2f} s")
        ticks_work, ticks_source = bench.repository("ticks", TICKS)
        latencies = bench.follower_latency("ticks", ticks_work, ticks_source)
    finally:
        bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    d, p = statistics.median(dockyard), statistics.median(plain)
    overhead = d - p
    allowed = max(0.15 * p, 3.0)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    ok_overhead, ok_latency = overhead <= allowed, p99 < 1.0
    print(f"## Build: hook to pushed tag ({args.payload_mib} MiB payload, median of {args.runs})")
    print()
    print("| measure | value | goal |")
    print("| --- | --- | --- |")
    print(f"| Dockyard: hook → build success (tag pushed) | {d:.2f} s | |")
    print(f"| plain `buildah bud` + `buildah push` | {p:.2f} s | |")
    print(
        f"| overhead | {overhead:+.2f} s ({overhead / p * 100:+.0f} %) | "
        f"≤ {allowed:.2f} s {'✓' if ok_overhead else '✗'} |"
    )
    split = " / ".join(
        f"{n} {statistics.median(s[n] for s in stages):.2f}"
        for n in ("waiting", "clone", "build", "push")
    )
    print(f"| Dockyard's stages, s (median) | {split} | |")
    print(
        f"| log follower latency p50 / p99 ({len(latencies)} lines) | "
        f"{p50 * 1000:.0f} ms / {p99 * 1000:.0f} ms | p99 < 1 s {'✓' if ok_latency else '✗'} |"
    )
    return 0 if ok_overhead and ok_latency else 1


if __name__ == "__main__":
    sys.exit(main())
