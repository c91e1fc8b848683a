"""Accounts: the administrator creates them; each root may do everything in its own
account and nothing in another's, through the API and the registry alike."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.fixtures.backends import all_backends
from tests.fixtures.oci import assert_intact, push_image
from tests.fixtures.server import DockyardServer

PROBLEM = "application/problem+json"
ACME = ("acme", "acme-password")
GLOBEX = ("globex", "globex-password")


def _create_accounts(server: DockyardServer) -> None:
    for name, password in (ACME, GLOBEX):
        with server.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": name, "password": password})
            assert r.status_code == 201, r.text
            assert r.json()["root_login"] == name
            assert r.json()["namespace_quota"] == 3
        with server.client(auth=(name, password)) as root:
            # "Access Credential": the docker-login password, here the same as the console's.
            r = root.put("/api/v1/me/registry-password", json={"password": password})
            assert r.status_code == 204, r.text


def _token(server: DockyardServer, auth: tuple[str, str] | None, scope: str) -> list[str]:
    r = httpx.get(
        f"{server.url}/auth/token", params={"service": "dockyard", "scope": scope}, auth=auth
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return [a for grant in claims["access"] for a in grant["actions"]]


@all_backends
def test_roots_act_in_their_own_account_only(dockyard_server: DockyardServer) -> None:
    _create_accounts(dockyard_server)
    with dockyard_server.client(auth=ACME) as acme, dockyard_server.client(auth=GLOBEX) as globex:
        r = acme.post("/api/v1/namespaces", json={"name": "acme-apps"})
        assert r.status_code == 201, r.text
        acme_account = r.json()["account_id"]
        assert globex.post("/api/v1/namespaces", json={"name": "globex-apps"}).status_code == 201
        # Each root sees its own namespaces; the administrator sees all.
        assert [n["name"] for n in acme.get("/api/v1/namespaces").json()["items"]] == ["acme-apps"]
        with dockyard_server.client() as admin:
            every = {n["name"] for n in admin.get("/api/v1/namespaces").json()["items"]}
            assert {"acme-apps", "globex-apps", "library"} <= every
        # Another account's namespace is out of reach, however it is asked for.
        for response in (
            globex.get("/api/v1/namespaces/acme-apps"),
            globex.delete("/api/v1/namespaces/acme-apps"),
        ):
            assert response.status_code == 403
            assert response.headers["content-type"] == PROBLEM

        # The registry: acme pushes and pulls its own; globex can do neither there.
        image = push_image(acme, "acme-apps/web", "v1")
        assert_intact(acme, image, "v1")
        r = globex.get("/v2/acme-apps/web/manifests/v1")
        assert r.status_code == 403
        assert r.json()["errors"][0]["code"] == "DENIED"
        r = globex.post("/v2/acme-apps/web/blobs/uploads/")
        assert r.status_code == 403
        assert globex.get("/v2/library/anything/tags/list").status_code == 403
        # Tokens grant exactly what is allowed.
        assert _token(dockyard_server, ACME, "repository:acme-apps/web:pull,push") == [
            "pull",
            "push",
        ]
        assert _token(dockyard_server, GLOBEX, "repository:acme-apps/web:pull,push") == []
        assert _token(dockyard_server, None, "repository:acme-apps/web:pull") == []
        # The catalog lists only what the caller may pull.
        assert acme.get("/v2/_catalog").json()["repositories"] == ["acme-apps/web"]
        assert globex.get("/v2/_catalog").json()["repositories"] == []
        with dockyard_server.client() as admin:
            assert_intact(admin, image, "v1")
        # The namespace's owner is recorded as the account.
        assert acme.get("/api/v1/namespaces/acme-apps").json()["account_id"] == acme_account


def test_namespace_quota(dockyard_server: DockyardServer) -> None:
    _create_accounts(dockyard_server)
    with dockyard_server.client(auth=ACME) as acme:
        for i in range(3):
            assert acme.post("/api/v1/namespaces", json={"name": f"acme-{i}"}).status_code == 201
        r = acme.post("/api/v1/namespaces", json={"name": "acme-3"})
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM
        assert "3 of its 3 namespaces" in r.json()["detail"]
        with dockyard_server.client() as admin:
            r = admin.patch("/api/v1/accounts/acme", json={"namespace_quota": 4})
            assert r.status_code == 200
            assert r.json()["namespace_quota"] == 4
        assert acme.post("/api/v1/namespaces", json={"name": "acme-3"}).status_code == 201
        assert acme.delete("/api/v1/namespaces/acme-0").status_code == 204
        assert acme.post("/api/v1/namespaces", json={"name": "acme-4"}).status_code == 201


def test_only_the_administrator_manages_accounts(dockyard_server: DockyardServer) -> None:
    _create_accounts(dockyard_server)
    with dockyard_server.client(auth=ACME) as acme:
        r = acme.post("/api/v1/accounts", json={"name": "sneaky", "password": "password1"})
        assert r.status_code == 403
        assert acme.get("/api/v1/accounts").status_code == 403
        assert acme.patch("/api/v1/accounts/acme", json={"namespace_quota": 99}).status_code == 403
    with dockyard_server.client(auth=None) as anonymous:
        assert anonymous.get("/api/v1/accounts").status_code == 401
    with dockyard_server.client() as admin:
        names = [a["name"] for a in admin.get("/api/v1/accounts").json()["items"]]
        assert names == ["acme", "admin", "globex"]
        assert admin.get("/api/v1/accounts/nobody").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "acme", "password": "another-password"}, 409, "already exists"),
        ({"name": "admin", "password": "another-password"}, 409, "already exists"),
        ({"name": "Bad Name", "password": "password1"}, 400, "lowercase"),
        ({"name": "ok-name", "password": "short"}, 400, "at least 8"),
        ({"name": "ok-name"}, 400, "required"),
        ({"name": "ok-name", "password": "password1", "namespace_quota": "x"}, 400, "integer"),
    ],
)
def test_bad_account_requests(
    dockyard_server: DockyardServer, body: dict[str, object], status: int, words: str
) -> None:
    with dockyard_server.client() as admin:
        assert admin.post("/api/v1/accounts", json={"name": "acme", "password": "password1"})
        r = admin.post("/api/v1/accounts", json=body)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
        assert words in r.json()["detail"]


def test_account_cli(dockyard_server: DockyardServer) -> None:
    out = dockyard_server.cli(
        "account", "create", "initech", "--password", "initech-pw", "--repository-quota", "7"
    )
    assert "root login: initech" in out.stdout
    with dockyard_server.client() as admin:
        assert admin.get("/api/v1/accounts/initech").json()["repository_quota"] == 7
    dockyard_server.cli("namespace", "create", "initech-ns", "--account", "initech")
    with dockyard_server.client(auth=("initech", "initech-pw")) as root:
        root.put("/api/v1/me/registry-password", json={"password": "initech-pw"})
        assert root.get("/api/v1/namespaces/initech-ns").status_code == 200
        image = push_image(root, "initech-ns/tps", "report")
        assert_intact(root, image, "report")
    bad = dockyard_server.cli("namespace", "create", "x-ns", "--account", "nobody", check=False)
    assert bad.returncode == 1
    assert "account 'nobody' does not exist" in bad.stderr


def test_registry_password_is_separate(dockyard_server: DockyardServer) -> None:
    with dockyard_server.client() as admin:
        admin.post("/api/v1/accounts", json={"name": "acme", "password": "console-pw"})
        # The administrator's first-start password serves the registry too.
        assert admin.get("/v2/").status_code == 200
    with dockyard_server.client(auth=("acme", "console-pw")) as console:
        assert console.get("/api/v1/me").json() == {
            "login": "acme",
            "arn": "acs:ram::2:root",
            "account": "acme",
            "account_id": 2,
            "is_root": True,
            "is_instance_admin": False,
            "is_sts": False,
            "has_registry_password": False,
            "namespace_quota": 3,
            "repository_quota": 300,
            "namespace_count": 0,
            "repository_count": 0,
        }
        # No registry password yet: docker login is refused, with either password.
        assert console.get("/v2/").status_code == 401
        token = httpx.get(
            f"{dockyard_server.url}/auth/token",
            params={"service": "dockyard"},
            auth=("acme", "console-pw"),
        )
        assert token.status_code == 401
        r = console.put("/api/v1/me/registry-password", json={"password": "short"})
        assert r.status_code == 400
        assert "at least 8" in r.json()["detail"]
        r = console.put("/api/v1/me/registry-password", json={"password": "docker-pw-1"})
        assert r.status_code == 204
        # The console password still opens the API, but not the registry.
        assert console.get("/api/v1/me").json()["has_registry_password"] is True
        assert console.get("/v2/").status_code == 401
    with dockyard_server.client(auth=("acme", "docker-pw-1")) as docker:
        assert docker.get("/v2/").status_code == 200
        assert docker.get("/api/v1/me").status_code == 401
    with dockyard_server.client(auth=None) as anonymous:
        assert (
            anonymous.put(
                "/api/v1/me/registry-password", json={"password": "whatever-1"}
            ).status_code
            == 401
        )
