"""First start of several replicas at once on one new PostgreSQL database: every one
comes up, and they agree on the administrator and on the token signing key."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import DockyardServer

pytestmark = pytest.mark.postgres

REPLICAS = 4


def test_replicas_started_together_on_a_new_database_agree(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    servers = [
        DockyardServer(
            data_dir=tmp_path / f"r{i}" / "data",
            env={
                **os.environ,
                "DOCKYARD_DATA_DIR": str(tmp_path / f"r{i}" / "data"),
                "DOCKYARD_DATABASE_URL": url,
                # Each would create the administrator with its own password: only one may.
                "DOCKYARD_ADMIN_PASSWORD": f"first-password-{i}",
                "DOCKYARD_LOG_FORMAT": "json",
                "DOCKYARD_JOB_WORKERS": "0",
                "NO_PROXY": "*",
                "no_proxy": "*",
            },
        )
        for i in range(REPLICAS)
    ]
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(DockyardServer.start, servers))
        for server in servers:
            assert server.proc is not None
            assert server.proc.poll() is None, server.log()
        # One administrator: the password of exactly one replica works, on every one.
        winners = {
            i
            for i in range(REPLICAS)
            if all(
                httpx.get(f"{s.url}/v2/", auth=("admin", f"first-password-{i}")).status_code == 200
                for s in servers
            )
        }
        assert len(winners) == 1, winners
        password = f"first-password-{winners.pop()}"
        # One signing key: the same key set everywhere, and a token of one works on all.
        keys = {httpx.get(f"{s.url}/auth/jwks").text for s in servers}
        assert len(keys) == 1
        for issuer in servers:
            token = httpx.get(
                f"{issuer.url}/auth/token",
                params={"service": "dockyard", "scope": "repository:library/x:pull"},
                auth=("admin", password),
            ).json()["token"]
            for server in servers:
                r = httpx.get(f"{server.url}/v2/", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, (issuer.url, server.url, r.text)
    finally:
        for server in servers:
            server.stop()
