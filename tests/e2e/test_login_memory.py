"""Logins that miss the verification cache run argon2, whose work area (7 MiB) is
allocated and freed in whichever server thread answers. ``dockyard serve`` sets up
glibc's allocator at start (``dockyard.allocator.tune``) so that every work area goes
back to the system when freed: a burst of new logins must not leave the server larger
by one work area per thread. And clients that send Basic credentials on every request,
each checked on a thread, must not grow the server past its thread limit
(``DOCKYARD_THREADS``), each thread keeping a database connection."""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dockyard.iam.passwords import MEMORY_COST
from tests.fixtures.server import ADMIN_PASSWORD, running_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

USERS = 12


def _status(pid: int, field: str) -> int:
    """A number of ``/proc/PID/status`` (VmRSS in KiB, Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def _resident_mib(pid: int) -> float:
    return _status(pid, "VmRSS") / 1024


def test_a_burst_of_new_logins_leaves_no_work_areas_behind(tmp_path: Path) -> None:
    with running_server(tmp_path, {"DOCKYARD_JOB_WORKERS": "0"}) as server:
        assert server.proc is not None
        with server.client() as admin:
            # Warm the paths a login takes, with the admin's own (cached) credential.
            assert admin.get("/v2/").status_code == 200
            for n in range(USERS):
                r = admin.post(
                    "/api/v1/ram/users", json={"name": f"u{n}", "password": f"pw-{n}-long"}
                )
                assert r.status_code == 201, r.text
        before = _resident_mib(server.proc.pid)

        def login(n: int) -> int:
            auth = (f"u{n}@admin", f"pw-{n}-long")
            return httpx.get(f"{server.url}/api/v1/me", auth=auth, timeout=60).status_code

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(login, range(USERS))) == [200] * USERS
        grown = _resident_mib(server.proc.pid) - before
    # Each login's work area freed and unmapped: far less than even two of them kept.
    assert grown < 2 * MEMORY_COST / 1024, f"the server grew by {grown:.0f} MiB"


def _threads_and_connections(pid: int) -> tuple[int, int]:
    """The server's threads, and its open SQLite connections (descriptors of the
    database file itself, not of its -wal and -shm files)."""
    threads = _status(pid, "Threads")
    connections = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            connections += Path(fd).readlink().name == "dockyard.db"
    return threads, connections


@pytest.mark.parametrize("threads", [4, 40])
def test_basic_credentials_on_many_connections_use_at_most_the_thread_limit(
    tmp_path: Path, threads: int
) -> None:
    """48 clients at once, each sending Basic credentials (checked on a thread, as
    registry clients send them on every request): the server grows by at most
    ``DOCKYARD_THREADS`` threads and database connections. 40 shows the test sees a
    server that takes more."""
    env = {"DOCKYARD_JOB_WORKERS": "0", "DOCKYARD_THREADS": str(threads)}
    with running_server(tmp_path, env) as server:
        assert server.proc is not None
        with server.client() as admin:
            assert admin.get("/v2/").status_code == 200
        auth = httpx.BasicAuth("admin", ADMIN_PASSWORD)
        threads_before, _ = _threads_and_connections(server.proc.pid)

        def request(_: int) -> int:
            with httpx.Client(auth=auth, timeout=60) as client:
                return sum(client.get(f"{server.url}/v2/").status_code for _ in range(10))

        with ThreadPoolExecutor(48) as pool:
            assert list(pool.map(request, range(48))) == [2000] * 48
        threads_after, connections = _threads_and_connections(server.proc.pid)
    grown = threads_after - threads_before
    if threads == 4:
        assert grown <= 4, f"{grown} more threads"
        assert connections <= 4 + 1, f"{connections} connections"  # +1: the event loop's reads
    else:
        assert grown > 4 or connections > 5, (grown, connections)
