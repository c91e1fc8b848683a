"""The server starts, answers health checks and challenges unauthenticated clients,
on every backend (SQLite + filesystem, PostgreSQL + S3)."""

from __future__ import annotations

from tests.fixtures.backends import all_backends_module
from tests.fixtures.server import DockyardServer

pytestmark = all_backends_module


def test_health_and_challenge(registry: DockyardServer) -> None:
    with registry.client(auth=None) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ok"}
        r = c.get("/v2/")
        assert r.status_code == 401
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="http://127.0.0.1:')
        assert 'service="dockyard"' in challenge
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    with registry.client() as c:
        assert c.get("/v2/").status_code == 200
