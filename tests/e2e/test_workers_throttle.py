"""Brute-force lock-out with several server processes: the counters are shared, so
``--workers 2`` does not double the limit; and remembered logins stay within bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[DockyardServer]:
    with running_server(tmp_path, {"DOCKYARD_WORKERS": "2", "DOCKYARD_JOB_WORKERS": "0"}) as s:
        yield s


def test_lockout_holds_across_worker_processes(two_workers: DockyardServer) -> None:
    url = f"{two_workers.url}/v2/"
    # Each request on a new connection: the two processes share the accepts, so the
    # ten failures are spread over both.
    for _ in range(10):
        assert httpx.get(url, auth=("admin", "wrong guess")).status_code == 401
    # Locked everywhere: whichever process answers refuses even the right password.
    for _ in range(12):
        r = httpx.get(url, auth=("admin", ADMIN_PASSWORD))
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 0
    r = httpx.get(f"{two_workers.url}/api/v1/me", auth=("admin", ADMIN_PASSWORD))
    assert r.status_code == 429


def test_a_changed_password_takes_effect_within_the_cache_bound(
    two_workers: DockyardServer,
) -> None:
    with two_workers.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "cached", "password": "cached-root-1"})
        assert r.status_code == 201, r.text
    old = ("cached", "cached-root-1")
    for _ in range(6):  # remembered by both processes
        assert httpx.get(f"{two_workers.url}/api/v1/me", auth=old).status_code == 200
    r = httpx.put(
        f"{two_workers.url}/api/v1/me/password",
        json={"current_password": "cached-root-1", "password": "cached-root-2"},
        auth=old,
    )
    assert r.status_code == 204, r.text
    # Another process may go on accepting the old password from memory, for at most
    # PrincipalCache.SECONDS (5); after that every process refuses it.
    time.sleep(5.5)
    for _ in range(8):
        assert httpx.get(f"{two_workers.url}/api/v1/me", auth=old).status_code == 401
    new = ("cached", "cached-root-2")
    assert httpx.get(f"{two_workers.url}/api/v1/me", auth=new).status_code == 200
