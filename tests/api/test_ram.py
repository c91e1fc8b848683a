"""RAM users and policies: what a user may do is what its policies allow, in its own
account only, with an explicit Deny beating any Allow."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from tests.fixtures.backends import all_backends
from tests.fixtures.oci import assert_intact, push_image
from tests.fixtures.server import DockyardServer

PROBLEM = "application/problem+json"
ROOT = ("acme", "acme-password")
DEV = ("dev@acme", "dev-registry-pw")


def _setup(server: DockyardServer) -> None:
    with server.client() as admin:
        for name in ("acme", "globex"):
            r = admin.post("/api/v1/accounts", json={"name": name, "password": f"{name}-password"})
            assert r.status_code == 201
    for name in ("acme", "globex"):
        with server.client(auth=(name, f"{name}-password")) as root:
            root.put("/api/v1/me/registry-password", json={"password": f"{name}-password"})
            assert root.post("/api/v1/namespaces", json={"name": f"{name}-apps"}).status_code == 201
            push_image(root, f"{name}-apps/web", "v1")
            push_image(root, f"{name}-apps/prod", "v1")


def _actions(server: DockyardServer, auth: tuple[str, str], repository: str) -> list[str]:
    r = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push,delete"},
        auth=auth,
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return sorted(a for grant in claims["access"] for a in grant["actions"])


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


@all_backends
def test_policies_decide_what_a_ram_user_may_do(dockyard_server: DockyardServer) -> None:
    _setup(dockyard_server)
    with dockyard_server.client(auth=ROOT) as root:
        r = root.post("/api/v1/ram/users", json={"name": "dev", "password": "dev-console-pw"})
        assert r.status_code == 201, r.text
        assert r.json()["login"] == "dev@acme"
        assert r.json()["has_registry_password"] is False
        r = root.put("/api/v1/ram/users/dev/registry-password", json={"password": DEV[1]})
        assert r.status_code == 204
        assert root.get("/api/v1/ram/users").json()["items"][0]["has_registry_password"]

        # Nothing attached: nothing allowed.
        assert _actions(dockyard_server, DEV, "acme-apps/web") == []
        with dockyard_server.client(auth=DEV) as dev:
            assert dev.get("/v2/acme-apps/web/manifests/v1").status_code == 403

        # Read-only: pull, not push.
        assert (
            root.put(
                "/api/v1/ram/users/dev/policies/AliyunContainerRegistryReadOnlyAccess"
            ).status_code
            == 204
        )
        assert _actions(dockyard_server, DEV, "acme-apps/web") == ["pull"]
        with dockyard_server.client(auth=DEV) as dev:
            assert dev.get("/v2/acme-apps/web/manifests/v1").status_code == 200
            assert dev.post("/v2/acme-apps/web/blobs/uploads/").status_code == 403
            # Never in another account, whatever the policy says.
            assert dev.get("/v2/globex-apps/web/manifests/v1").status_code == 403

        # A custom policy: push to everything in acme-apps but prod, which a Deny guards.
        document = _policy(
            {
                "Effect": "Allow",
                "Action": "cr:PushRepository",
                "Resource": "acs:cr:*:*:repository/acme-apps/*",
            },
            {
                "Effect": "Deny",
                "Action": "cr:*",
                "Resource": "acs:cr:*:*:repository/acme-apps/prod",
            },
        )
        r = root.post("/api/v1/ram/policies", json={"name": "PushButNotProd", "document": document})
        assert r.status_code == 201, r.text
        assert r.json()["type"] == "custom"
        assert root.put("/api/v1/ram/users/dev/policies/PushButNotProd").status_code == 204
        # Attaching again changes nothing (and is no error).
        assert root.put("/api/v1/ram/users/dev/policies/PushButNotProd").status_code == 204
        assert _actions(dockyard_server, DEV, "acme-apps/web") == ["pull", "push"]
        assert _actions(dockyard_server, DEV, "acme-apps/prod") == []
        assert _actions(dockyard_server, DEV, "globex-apps/web") == []
        with dockyard_server.client(auth=DEV) as dev:
            image = push_image(dev, "acme-apps/web", "v2")
            assert_intact(dev, image, "v2")
            assert dev.get("/v2/acme-apps/prod/manifests/v1").status_code == 403

        # Detaching takes effect at the next login.
        assert root.delete("/api/v1/ram/users/dev/policies/PushButNotProd").status_code == 204
        assert _actions(dockyard_server, DEV, "acme-apps/web") == ["pull"]

        # A RAM user manages nothing in RAM without a policy saying so.
        with dockyard_server.client(auth=("dev@acme", "dev-console-pw")) as dev_console:
            r = dev_console.post("/api/v1/ram/users", json={"name": "other"})
            assert r.status_code == 403
        # The console password is not the registry password.
        with dockyard_server.client(auth=("dev@acme", "dev-console-pw")) as wrong:
            assert wrong.get("/v2/").status_code == 401


def test_policy_documents_are_validated(dockyard_server: DockyardServer) -> None:
    _setup(dockyard_server)
    with dockyard_server.client(auth=ROOT) as root:
        bad = _policy({"Effect": "Permit", "Action": "cr:*", "Resource": "*"})
        r = root.post("/api/v1/ram/policies", json={"name": "Bad", "document": bad})
        assert r.status_code == 400
        assert r.headers["content-type"] == PROBLEM
        assert "Statement[0].Effect" in r.json()["detail"]
        r = root.post("/api/v1/ram/policies", json={"name": "Bad", "document": "{oops"})
        assert r.status_code == 400
        assert "not valid JSON" in r.json()["detail"]
        good = _policy({"Effect": "Allow", "Action": "cr:Get*", "Resource": "*"})
        assert (
            root.post("/api/v1/ram/policies", json={"name": "Good", "document": good}).status_code
            == 201
        )
        assert (
            root.post("/api/v1/ram/policies", json={"name": "Good", "document": good}).status_code
            == 409
        )
        r = root.put(
            "/api/v1/ram/policies/AliyunContainerRegistryFullAccess", json={"document": good}
        )
        assert r.status_code == 409
        assert "system policy" in r.json()["detail"]
        names = {p["name"]: p["type"] for p in root.get("/api/v1/ram/policies").json()["items"]}
        assert names == {
            "AliyunContainerRegistryFullAccess": "system",
            "AliyunContainerRegistryReadOnlyAccess": "system",
            "Good": "custom",
        }
        assert root.delete("/api/v1/ram/policies/Good").status_code == 204
        assert root.get("/api/v1/ram/policies/Good").status_code == 404
        assert root.put("/api/v1/ram/users/nobody/policies/Good").status_code == 404
    # Another account's custom policies are invisible.
    with dockyard_server.client(auth=("globex", "globex-password")) as globex:
        names = [p["name"] for p in globex.get("/api/v1/ram/policies").json()["items"]]
        assert "Good" not in names
    with dockyard_server.client(auth=None) as anonymous:
        assert anonymous.get("/api/v1/ram/policies").status_code == 401


def test_access_keys(dockyard_server: DockyardServer) -> None:
    _setup(dockyard_server)
    with dockyard_server.client(auth=ROOT) as root:
        root.post("/api/v1/ram/users", json={"name": "ci"})
        root.put("/api/v1/ram/users/ci/policies/AliyunContainerRegistryFullAccess")
        first = root.post("/api/v1/ram/users/ci/access-keys")
        assert first.status_code == 201
        key = first.json()
        assert key["access_key_id"].startswith("LTAI")
        second = root.post("/api/v1/ram/users/ci/access-keys")
        assert second.status_code == 201
        third = root.post("/api/v1/ram/users/ci/access-keys")
        assert third.status_code == 409
        assert "2 access keys" in third.json()["detail"]
        listed = root.get("/api/v1/ram/users/ci/access-keys").json()["items"]
        assert {k["access_key_id"] for k in listed} == {
            key["access_key_id"],
            second.json()["access_key_id"],
        }
        # The secret is never shown again.
        assert "access_key_secret" not in str(listed)
    login = (key["access_key_id"], key["access_key_secret"])
    with dockyard_server.client(auth=login) as ci:
        assert ci.get("/api/v1/me").json()["login"] == "ci@acme"
        assert ci.get("/v2/").status_code == 200
        push_image(ci, "acme-apps/built", "1")
        assert ci.get("/v2/globex-apps/web/manifests/v1").status_code == 403
    with dockyard_server.client(auth=(key["access_key_id"], "wrong-secret")) as bad:
        assert bad.get("/v2/").status_code == 401
        assert bad.get("/api/v1/me").status_code == 401
    with dockyard_server.client(auth=ROOT) as root:
        assert (
            root.delete(f"/api/v1/ram/users/ci/access-keys/{key['access_key_id']}").status_code
            == 204
        )
        assert (
            root.delete(f"/api/v1/ram/users/ci/access-keys/{key['access_key_id']}").status_code
            == 404
        )
    with dockyard_server.client(auth=login) as revoked:
        assert revoked.get("/v2/").status_code == 401
