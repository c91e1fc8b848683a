"""API sessions (``/api/v1/auth/login``) and temporary registry logins
(``POST /api/v1/tokens``, the cloud's GetAuthorizationToken)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.fixtures.oci import push_image
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer


def _login(server: DockyardServer, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": username, "password": password}
    )


def test_session_tokens_open_the_api_and_nothing_else(dockyard_server: DockyardServer) -> None:
    r = _login(dockyard_server, "admin", ADMIN_PASSWORD)
    assert r.status_code == 200
    token = r.json()["token"]
    assert r.json()["expires_at"].endswith("Z")
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=dockyard_server.url, headers=bearer) as c:
        assert c.get("/api/v1/me").json()["login"] == "admin"
        assert c.post("/api/v1/namespaces", json={"name": "by-session"}).status_code == 201
        # A session token is not a registry token.
        assert c.get("/v2/").status_code == 401
    # Nor is a registry token a session token.
    registry_token = httpx.get(
        f"{dockyard_server.url}/auth/token",
        params={"service": "dockyard"},
        auth=("admin", ADMIN_PASSWORD),
    ).json()["token"]
    r = httpx.get(
        f"{dockyard_server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {registry_token}"},
    )
    assert r.status_code == 401
    assert "not meant for this use" in r.json()["detail"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = httpx.get(f"{dockyard_server.url}/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert _login(dockyard_server, "admin", "wrong").status_code == 401
    assert httpx.post(f"{dockyard_server.url}/api/v1/auth/login", json={}).status_code == 400


def test_temporary_registry_login(dockyard_server: DockyardServer, tmp_path: Path) -> None:
    with dockyard_server.client() as admin:
        admin.post("/api/v1/accounts", json={"name": "acme", "password": "acme-password"})
    with dockyard_server.client(auth=("acme", "acme-password")) as root:
        assert root.post("/api/v1/namespaces", json={"name": "acme-apps"}).status_code == 201
        r = root.post("/api/v1/tokens")
        assert r.status_code == 201
        temp = r.json()
        assert temp["username"] == "cr_temp_user"
    # The temporary login carries acme's permissions: its namespace, nobody else's.
    with dockyard_server.client(auth=(temp["username"], temp["password"])) as docker:
        assert docker.get("/v2/").status_code == 200
        push_image(docker, "acme-apps/web", "v1")
        assert docker.get("/v2/library/x/tags/list").status_code == 403
        # It does not open the management API.
        assert docker.get("/api/v1/me").status_code == 401
    # A real client logs in with it.
    auth_file = tmp_path / "auth.json"
    login = subprocess.run(
        [
            "podman",
            "login",
            "--tls-verify=false",
            "--authfile",
            str(auth_file),
            "-u",
            temp["username"],
            "-p",
            temp["password"],
            dockyard_server.host,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    # A tampered temporary password is refused; anonymous callers get none.
    with dockyard_server.client(auth=("cr_temp_user", temp["password"][:-2] + "xx")) as bad:
        assert bad.get("/v2/").status_code == 401
    with dockyard_server.client(auth=None) as anonymous:
        assert anonymous.post("/api/v1/tokens").status_code == 401
