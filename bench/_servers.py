"""The registries under test: start each on a free loopback port, poll it, measure it, stop it.

Two kinds exist. ``dockyard`` is this project's server (``.venv/bin/dockyard serve``) and
needs a bearer token from its ``/auth/token`` endpoint; ``distribution`` is the CNCF
registry from Debian's ``docker-registry`` package, run without authentication.

Every process is started in its own session, so that stopping it can signal its whole
process group (uvicorn's workers included) by the group id this program got from it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"
ADMIN_PASSWORD = "benchpass"  # noqa: S105 -- a throwaway server on loopback
NAMESPACE = "bench"
KINDS = ("dockyard", "distribution")

_LOOPBACK = "127.0.0.1"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something went wrong that makes the figures meaningless: stop and say what."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        return int(sock.getsockname()[1])


def ensure_tool(binary: str, package: str) -> str:
    """The path of ``binary``; installs Debian ``package`` with apt-get when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(f"{binary} not found: install the Debian package {package!r}")
    print(f"[bench] {binary} not found: apt-get install -y {package}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, timeout=900)
    found = shutil.which(binary)
    if not found:
        raise BenchError(f"apt-get installed {package!r} but {binary} is still not on PATH")
    return found


def dockyard_binary() -> str:
    for candidate in (
        Path(sys.executable).parent / "dockyard",
        REPO_ROOT / ".venv" / "bin" / "dockyard",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BenchError("no dockyard executable next to this Python or in .venv/bin: make install")


# -- /proc -------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (via /proc/PID/task/*/children)."""
    seen: list[int] = []
    todo = [pid]
    while todo and len(seen) < 10_000:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        task_dir = Path(f"/proc/{current}/task")
        with contextlib.suppress(OSError):
            for task in task_dir.iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return seen


def _tree_kib(pid: int, proc_file: str, field: str) -> int:
    """Sum of the ``field:`` line (in kB) of ``/proc/PID/<proc_file>`` over ``pid`` and
    its live descendants."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/{proc_file}").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
    return total


def peak_rss_kib(pid: int) -> int:
    """Sum of VmHWM (peak resident set) over ``pid`` and its live descendants, in KiB."""
    return _tree_kib(pid, "status", "VmHWM")


def pss_kib(pid: int) -> int:
    """Sum of Pss (proportional set size: each page shared by N processes counts 1/N)
    over ``pid`` and its live descendants, in KiB."""
    return _tree_kib(pid, "smaps_rollup", "Pss")


class PssSampler:
    """The highest :func:`pss_kib` of a process tree, sampled every ``interval`` seconds
    on a thread of its own. The kernel keeps no peak of Pss, as it does VmHWM of RSS; a
    sampled peak may miss a spike shorter than the interval."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, pss_kib(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{member}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLK_TCK


def _is_job_worker(pid: int) -> bool:
    """Whether ``pid`` is a ``dockyard worker`` process (one ``serve`` started)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker" in argv and b"--supervised" in argv


# -- registries --------------------------------------------------------------------------


class Registry:
    """One registry process of ``kind`` in ``slot`` (the table column it fills)."""

    def __init__(
        self,
        slot: str,
        kind: str,
        workdir: Path,
        *,
        workers: int | None = None,
        env: dict[str, str] | None = None,
    ):
        if kind not in KINDS:
            raise BenchError(f"unknown registry kind {kind!r} (one of {', '.join(KINDS)})")
        self.slot = slot
        self.kind = kind
        self.workdir = workdir
        self.workers = workers
        self.env = dict(env or {})
        """Extra variables for Dockyard (``DOCKYARD_JOB_WORKERS``...); may change between
        a :meth:`stop` and the next :meth:`start`."""
        self._prepared = False
        self.port = free_port()
        self.base_url = f"http://{_LOOPBACK}:{self.port}"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._pss: PssSampler | None = None

    @property
    def label(self) -> str:
        return self.slot if self.slot == self.kind else f"{self.slot} slot ({self.kind})"

    @property
    def needs_auth(self) -> bool:
        return self.kind == "dockyard"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.label} is not running")
        return self.proc.pid

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "distribution":
            argv, env = self._distribution_command()
        else:
            argv, env = self._dockyard_command()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._pss = PssSampler(self.proc.pid)

    def _distribution_command(self) -> tuple[list[str], dict[str, str]]:
        binary = ensure_tool("docker-registry", "docker-registry")
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n"
            "  level: error\n"
            "  accesslog:\n"
            "    disabled: true\n"
            "storage:\n"
            "  filesystem:\n"
            f"    rootdirectory: {storage}\n"
            "  delete:\n"
            "    enabled: true\n"
            "  cache:\n"
            "    blobdescriptor: inmemory\n"
            "http:\n"
            f"  addr: {_LOOPBACK}:{self.port}\n"
            "  secret: dockyard-bench-not-a-secret\n"
            "health:\n"
            "  storagedriver:\n"
            "    enabled: false\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        return [binary, "serve", str(config)], env

    def _dockyard_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(
            {
                "DOCKYARD_DATA_DIR": str(self.workdir / "data"),
                "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "DOCKYARD_TOKEN_TTL": "3600",  # outlives the run; tokens are refetched anyway
                "DOCKYARD_LOG_LEVEL": "warning",
                "DOCKYARD_LOG_FORMAT": "json",
                # Webhook deliveries to loopback are refused unless allowed: the webhooks
                # section's receiver listens on 127.0.0.1.
                "DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
            }
        )
        env.update(self.env)
        return env

    def _dockyard_command(self) -> tuple[list[str], dict[str, str]]:
        binary = dockyard_binary()
        env = self._dockyard_env()
        argv = [binary, "serve", "--listen", f"{_LOOPBACK}:{self.port}"]
        if self.workers:
            argv += ["--workers", str(self.workers)]
        if self._prepared:  # a restart on the same data directory
            return argv, env
        # The namespace is a row in the same SQLite database; the first command to open the
        # data directory also creates the administrator, so it gets the same password.
        done = subprocess.run(
            [binary, "namespace", "create", NAMESPACE],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(
                f"dockyard namespace create {NAMESPACE} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
        self._prepared = True
        return argv, env

    def spawn_dockyard(self, *args: str) -> subprocess.Popen[bytes]:
        """Another ``dockyard`` command (``worker``...) on this registry's data directory,
        with its environment, in a session of its own; stop it with :func:`stop_group`."""
        if self.kind != "dockyard":
            raise BenchError(f"{self.label} is not Dockyard")
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [dockyard_binary(), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._dockyard_env(),
                cwd=self.workdir,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``GET /v2/`` until any HTTP response arrives (401 from Dockyard is fine)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise BenchError(f"{self.label} exited during start-up\n{self.log_tail()}")
                try:
                    client.get(f"{self.base_url}/v2/")
                except httpx.TransportError:
                    time.sleep(0.1)
                else:
                    self._wait_for_job_workers(deadline)
                    return
        raise BenchError(f"{self.label} not answering after {timeout:.0f}s\n{self.log_tail()}")

    def _wait_for_job_workers(self, deadline: float) -> None:
        """Dockyard's job worker processes start beside the server; their start-up
        (imports, a first look at the queue) must not land in the first timed phase.
        Waits until the expected number of ``dockyard worker`` processes run in the
        server's process tree and their CPU time has stopped growing (start-up over;
        an idle worker's polls cost a tick now and then)."""
        if self.kind != "dockyard":
            return
        from dockyard.config import Settings

        expected = int(self._dockyard_env().get("DOCKYARD_JOB_WORKERS", Settings.job_workers))
        if expected <= 0:
            return
        before: float | None = None
        while time.monotonic() < deadline:
            workers = [pid for pid in process_tree(self.pid) if _is_job_worker(pid)]
            if len(workers) >= expected:
                used = sum(cpu_seconds(pid) for pid in workers)
                if before is not None and used - before <= 0.03 * len(workers):
                    return
                before = used
            time.sleep(0.5)
        raise BenchError(f"{self.label}: job workers did not start\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"{self.label} is no longer running\n{self.log_tail()}")

    def auth_headers(self, repositories: list[str]) -> dict[str, str]:
        """Headers for /v2/ requests on ``repositories``: a bearer token for Dockyard."""
        if not self.needs_auth:
            return {}
        params = [("service", "dockyard")]
        params += [("scope", f"repository:{repo}:pull,push") for repo in repositories]
        response = httpx.get(
            f"{self.base_url}/auth/token",
            params=params,
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            timeout=30.0,
        )
        if response.status_code != 200:
            raise BenchError(
                f"{self.label}: token request answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        token = response.json().get("token") or response.json().get("access_token")
        if not token:
            raise BenchError(f"{self.label}: token response has no token: {response.text[:300]}")
        return {"Authorization": f"Bearer {token}"}

    def peak_rss_mib(self) -> float:
        return peak_rss_kib(self.pid) / 1024

    def peak_pss_mib(self) -> float | None:
        """The sampled peak Pss of the server and its workers since it started."""
        sampler = self._pss
        if sampler is None:
            return None
        return max(sampler.peak_kib, pss_kib(self.pid)) / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after 10 s."""
        proc, self.proc = self.proc, None
        sampler, self._pss = self._pss, None
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads (it was started in a session of its own),
    then SIGKILL whatever is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no worker of its group outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
