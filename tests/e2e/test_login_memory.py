"""Logins that miss the verification cache run argon2, whose work area (19 MiB) is
allocated and freed in whichever server thread answers. ``dockyard serve`` sets up
glibc's allocator at start (``dockyard.allocator.tune``) so that every work area goes
back to the system when freed: a burst of new logins must not leave the server larger
by one work area per thread."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dockyard.iam.passwords import MEMORY_COST
from tests.fixtures.server import running_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

USERS = 12


def _resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


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
