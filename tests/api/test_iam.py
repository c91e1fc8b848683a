"""Groups, roles and STS, repository and namespace permissions, the audit log, login
brute-force protection, and the instance, sign-up and own-access-key routes."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.fixtures.oci import push_image
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("iam")
    with running_server(base, {"DOCKYARD_ALLOW_SIGNUP": "true"}, remove=True) as started:
        yield started


def _account(server: DockyardServer, name: str) -> tuple[str, str]:
    """A new account with a namespace ``NAME-ns`` holding ``NAME-ns/app:v1``; its root's
    console and registry password are ``NAME-password``."""
    root = (name, f"{name}-password")
    with server.client() as admin:
        assert (
            admin.post("/api/v1/accounts", json={"name": name, "password": root[1]}).status_code
            == 201
        )
    with server.client(auth=root) as client:
        assert (
            client.put("/api/v1/me/registry-password", json={"password": root[1]}).status_code
            == 204
        )
        assert client.post("/api/v1/namespaces", json={"name": f"{name}-ns"}).status_code == 201
        push_image(client, f"{name}-ns/app", "v1")
    return root


def _user(server: DockyardServer, root: tuple[str, str], name: str) -> tuple[str, str]:
    """A RAM user with console password and registry password ``NAME-secret-pw``."""
    with server.client(auth=root) as client:
        r = client.post("/api/v1/ram/users", json={"name": name, "password": f"{name}-secret-pw"})
        assert r.status_code == 201, r.text
        r = client.put(
            f"/api/v1/ram/users/{name}/registry-password", json={"password": f"{name}-secret-pw"}
        )
        assert r.status_code == 204
    return f"{name}@{root[0]}", f"{name}-secret-pw"


def _granted(server: DockyardServer, auth: tuple[str, str], repository: str) -> list[str]:
    r = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": f"repository:{repository}:pull,push,delete"},
        auth=auth,
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return sorted(a for grant in claims["access"] for a in grant["actions"])


def _account_id(server: DockyardServer, root: tuple[str, str]) -> int:
    with server.client(auth=root) as client:
        return int(client.get("/api/v1/me").json()["account_id"])


def _trust(*principals: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def test_instance_and_signup(server: DockyardServer) -> None:
    info = httpx.get(f"{server.url}/api/v1/instance").json()
    assert info["region"] == "local"
    assert info["signup_enabled"] is True
    assert info["registry_host"] == server.host
    r = httpx.post(f"{server.url}/api/v1/signup", json={"name": "newco", "password": "newco-pw-1"})
    assert r.status_code == 201, r.text
    with server.client(auth=("newco", "newco-pw-1")) as client:
        assert client.get("/api/v1/me").json()["is_root"] is True
    r = httpx.post(f"{server.url}/api/v1/signup", json={"name": "newco", "password": "other-pw-1"})
    assert r.status_code == 409


def test_groups_carry_policies_to_their_members(server: DockyardServer) -> None:
    root = _account(server, "grp")
    dev = _user(server, root, "dev")
    assert _granted(server, dev, "grp-ns/app") == []
    with server.client(auth=root) as client:
        r = client.post("/api/v1/ram/groups", json={"name": "readers", "description": "pullers"})
        assert r.status_code == 201, r.text
        assert client.post("/api/v1/ram/groups", json={"name": "readers"}).status_code == 409
        assert client.post("/api/v1/ram/groups", json={"name": "bad name"}).status_code == 400
        assert client.put("/api/v1/ram/groups/readers/members/dev").status_code == 204
        assert client.put("/api/v1/ram/groups/readers/members/ghost").status_code == 404
        r = client.put("/api/v1/ram/groups/readers/policies/AliyunContainerRegistryReadOnlyAccess")
        assert r.status_code == 204
        group = client.get("/api/v1/ram/groups/readers").json()
        assert group["members"] == ["dev@grp"]
        assert group["policies"] == ["AliyunContainerRegistryReadOnlyAccess"]
    assert _granted(server, dev, "grp-ns/app") == ["pull"]
    with server.client(auth=root) as client:
        assert client.delete("/api/v1/ram/groups/readers/members/dev").status_code == 204
    assert _granted(server, dev, "grp-ns/app") == []
    with server.client(auth=root) as client:
        # Still holding a policy: refused until it is detached.
        assert client.delete("/api/v1/ram/groups/readers").status_code == 409
        policy = "/api/v1/ram/groups/readers/policies/AliyunContainerRegistryReadOnlyAccess"
        assert client.delete(policy).status_code == 204
        assert client.delete("/api/v1/ram/groups/readers").status_code == 204
        assert client.get("/api/v1/ram/groups/readers").status_code == 404


def test_repository_permissions_are_managed_policies(server: DockyardServer) -> None:
    root = _account(server, "perm")
    dev = _user(server, root, "dev")
    with server.client(auth=root) as client:
        base = "/api/v1/repositories/perm-ns/app/permissions"
        r = client.put(f"{base}/dev", json={"role": "read-only"})
        assert r.status_code == 200, r.text
        assert r.json()["subject"] == "dev@perm"
        assert client.put(f"{base}/dev", json={"role": "owner"}).status_code == 400
        assert client.put(f"{base}/nobody", json={"role": "write"}).status_code == 404
        assert (
            client.put(
                "/api/v1/repositories/perm-ns/missing/permissions/dev", json={"role": "write"}
            ).status_code
            == 404
        )
        listed = client.get(base).json()["items"]
        assert [(p["subject_type"], p["subject"], p["role"]) for p in listed] == [
            ("user", "dev@perm", "read-only")
        ]
        managed = client.get("/api/v1/ram/policies", params={"type": "managed"}).json()["items"]
        assert [p["role"] for p in managed] == ["read-only"]
        policy = managed[0]["name"]
        assert managed[0]["resource"].endswith(":repository/perm-ns/app")
        # What a person attaches (system and custom) leaves the managed ones out; a
        # list of types pages with its types kept.
        attachable = client.get("/api/v1/ram/policies", params={"type": "system,custom"})
        assert attachable.status_code == 200, attachable.text
        assert {p["type"] for p in attachable.json()["items"]} == {"system"}
        pages = client.get("/api/v1/ram/policies", params={"type": "system,managed", "limit": 1})
        assert "type=system%2Cmanaged" in pages.json()["next"]
        every = [p["name"] for p in client.get("/api/v1/ram/policies").json()["items"]]
        assert policy in every
        for bad in ("system,owned", ",", "managed,"):
            r = client.get("/api/v1/ram/policies", params={"type": bad})
            assert r.status_code == 400, (bad, r.text)
            assert "type must be system, custom or managed" in r.json()["detail"]
        # Managed policies are changed only through the permission.
        assert client.delete(f"/api/v1/ram/policies/{policy}").status_code == 409
        r = client.put(f"/api/v1/ram/users/dev/policies/{policy}")
        assert r.status_code == 409
    assert _granted(server, dev, "perm-ns/app") == ["pull"]
    assert _granted(server, dev, "perm-ns/other") == []
    with server.client(auth=root) as client:
        assert client.put(f"{base}/dev", json={"role": "write"}).status_code == 200
        assert [p["role"] for p in client.get(base).json()["items"]] == ["write"]
    assert _granted(server, dev, "perm-ns/app") == ["pull", "push"]
    with server.client(auth=root) as client:
        assert client.delete(f"{base}/dev").status_code == 204
        assert client.delete(f"{base}/dev").status_code == 404
        # A namespace permission covers every repository in it, new ones too.
        r = client.put("/api/v1/namespaces/perm-ns/permissions/dev", json={"role": "admin"})
        assert r.status_code == 200
    assert _granted(server, dev, "perm-ns/app") == ["delete", "pull", "push"]
    assert _granted(server, dev, "perm-ns/brand-new") == ["delete", "pull", "push"]
    # The RAM user cannot manage permissions on another account's repositories.
    other = _account(server, "permx")
    with server.client(auth=other) as client:
        assert client.get(base).status_code == 403
    # Deleting the repository, then the namespace, takes their permissions along.
    with server.client(auth=root) as client:
        managed = client.get("/api/v1/ram/policies", params={"type": "managed"}).json()["items"]
        assert len(managed) == 3  # read-only and write on the repository, admin on the namespace
        assert client.delete("/api/v1/repositories/perm-ns/app").status_code == 204
        managed = client.get("/api/v1/ram/policies", params={"type": "managed"}).json()["items"]
        assert [p["role"] for p in managed] == ["admin"]
        assert client.delete("/api/v1/namespaces/perm-ns").status_code == 204
        assert client.get("/api/v1/ram/policies", params={"type": "managed"}).json()["items"] == []


def test_policy_versions(server: DockyardServer) -> None:
    root = _account(server, "vers")
    doc = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:Get*", "Resource": "*"}]}
    with server.client(auth=root) as client:
        assert (
            client.post("/api/v1/ram/policies", json={"name": "p", "document": doc}).status_code
            == 201
        )
        for n in range(6):
            doc["Statement"][0]["Action"] = f"cr:List{n}"
            r = client.put("/api/v1/ram/policies/p", json={"document": doc})
            assert r.status_code == 200
        assert r.json()["version"] == 7
        versions = client.get("/api/v1/ram/policies/p/versions").json()["items"]
        assert [v["version"] for v in versions] == [7, 6, 5, 4, 3]
        assert versions[0]["document"]["Statement"][0]["Action"] == "cr:List5"
        r = client.put(
            "/api/v1/ram/policies/p", json={"document": {"Version": "1", "Statement": [{}]}}
        )
        assert r.status_code == 400
        assert "Statement[0].Effect" in r.json()["detail"]


def test_assume_role_within_and_across_accounts(server: DockyardServer) -> None:
    owner = _account(server, "owner")
    guest = _account(server, "guest")
    owner_id, guest_id = _account_id(server, owner), _account_id(server, guest)
    role_arn = f"acs:ram::{owner_id}:role/puller"
    with server.client(auth=owner) as client:
        r = client.post(
            "/api/v1/ram/roles",
            json={"name": "puller", "trust_policy": _trust(f"acs:ram::{guest_id}:root")},
        )
        assert r.status_code == 201, r.text
        assert r.json()["arn"] == role_arn
        bad = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
        r = client.post("/api/v1/ram/roles", json={"name": "x", "trust_policy": bad})
        assert r.status_code == 400
        assert "Principal" in r.json()["detail"]
        r = client.put("/api/v1/ram/roles/puller/policies/AliyunContainerRegistryReadOnlyAccess")
        assert r.status_code == 204
        # The owner's own root is not in the trust policy.
        r = client.post(
            "/api/v1/sts/assume-role", json={"role_arn": role_arn, "role_session_name": "s1"}
        )
        assert r.status_code == 403
    with server.client(auth=guest) as client:
        for body, status in [
            ({"role_arn": "nope", "role_session_name": "s1"}, 400),
            ({"role_arn": role_arn, "role_session_name": "s"}, 400),
            ({"role_arn": role_arn, "role_session_name": "s1", "duration_seconds": 899}, 400),
            ({"role_arn": role_arn, "role_session_name": "s1", "duration_seconds": 3601}, 400),
            ({"role_arn": f"acs:ram::{owner_id}:role/ghost", "role_session_name": "s1"}, 404),
        ]:
            assert client.post("/api/v1/sts/assume-role", json=body).status_code == status, body
        r = client.post(
            "/api/v1/sts/assume-role",
            json={"role_arn": role_arn, "role_session_name": "ci-job", "duration_seconds": 900},
        )
        assert r.status_code == 201, r.text
        creds = r.json()
    assert creds["access_key_id"].startswith("STS.")
    assert creds["assumed_role_user"]["arn"] == f"acs:ram::{owner_id}:assumed-role/puller/ci-job"
    sts = (creds["access_key_id"], creds["access_key_secret"])
    # On the API: the SecurityToken is required with STS credentials.
    with httpx.Client(base_url=server.url, auth=sts) as client:
        assert client.get("/api/v1/me").status_code == 401
        headers = {"X-Dockyard-Security-Token": creds["security_token"]}
        me = client.get("/api/v1/me", headers=headers).json()
        assert me["is_sts"] is True
        assert me["account_id"] == owner_id
        # Read-only on the owner's account: may list, may not create.
        assert client.get("/api/v1/namespaces", headers=headers).status_code == 200
        r = client.post("/api/v1/namespaces", headers=headers, json={"name": "sts-made"})
        assert r.status_code == 403
        r = client.post("/api/v1/tokens", headers=headers)
        assert r.status_code == 201
        # A temporary login lasts no longer than the credentials.
        temp = r.json()
    # docker login with the STS pair: pull in the role's account only.
    assert _granted(server, sts, "owner-ns/app") == ["pull"]
    assert _granted(server, sts, "guest-ns/app") == []
    assert _granted(server, ("cr_temp_user", temp["password"]), "owner-ns/app") == ["pull"]
    claims = jwt.decode(temp["password"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 900


def test_inline_policy_narrows_and_expiry_ends_sts(server: DockyardServer) -> None:
    root = _account(server, "narrow")
    account_id = _account_id(server, root)
    role_arn = f"acs:ram::{account_id}:role/admin-role"
    with server.client(auth=root) as client:
        r = client.post(
            "/api/v1/ram/roles",
            json={"name": "admin-role", "trust_policy": _trust(f"acs:ram::{account_id}:root")},
        )
        assert r.status_code == 201
        client.put("/api/v1/ram/roles/admin-role/policies/AliyunContainerRegistryFullAccess")
        inline = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cr:PullRepository",
                    "Resource": f"acs:cr:*:{account_id}:repository/narrow-ns/*",
                }
            ],
        }
        r = client.post(
            "/api/v1/sts/assume-role",
            json={"role_arn": role_arn, "role_session_name": "narrowed", "policy": inline},
        )
        assert r.status_code == 201, r.text
        narrowed = r.json()
        r = client.post(
            "/api/v1/sts/assume-role",
            json={"role_arn": role_arn, "role_session_name": "full"},
        )
        full = r.json()
        r = client.post(
            "/api/v1/sts/assume-role",
            json={"role_arn": role_arn, "role_session_name": "x", "policy": {"Version": "2"}},
        )
        assert r.status_code == 400
    assert _granted(
        server, (full["access_key_id"], full["access_key_secret"]), "narrow-ns/app"
    ) == [
        "delete",
        "pull",
        "push",
    ]
    narrowed_pair = (narrowed["access_key_id"], narrowed["access_key_secret"])
    assert _granted(server, narrowed_pair, "narrow-ns/app") == ["pull"]
    # Expire the full credentials (as time would) and they stop working everywhere.
    db = sqlite3.connect(Path(server.data_dir) / "dockyard.db")
    with db:
        db.execute(
            "UPDATE sts_sessions SET expires_at = '2000-01-01 00:00:00.000000' "
            "WHERE access_key_id = ?",
            (full["access_key_id"],),
        )
    db.close()
    r = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": "repository:narrow-ns/app:pull"},
        auth=(full["access_key_id"], full["access_key_secret"]),
    )
    assert r.status_code == 401
    r = httpx.get(
        f"{server.url}/api/v1/me",
        auth=(full["access_key_id"], full["access_key_secret"]),
        headers={"X-Dockyard-Security-Token": full["security_token"]},
    )
    assert r.status_code == 401


def test_own_access_keys_work_for_root(server: DockyardServer) -> None:
    root = _account(server, "keys")
    with server.client(auth=root) as client:
        r = client.post("/api/v1/me/access-keys")
        assert r.status_code == 201
        key = r.json()
        listed = client.get("/api/v1/me/access-keys").json()["items"]
        assert [k["access_key_id"] for k in listed] == [key["access_key_id"]]
        assert "access_key_secret" not in listed[0]
    pair = (key["access_key_id"], key["access_key_secret"])
    assert _granted(server, pair, "keys-ns/app") == ["delete", "pull", "push"]
    with server.client(auth=root) as client:
        assert client.delete(f"/api/v1/me/access-keys/{key['access_key_id']}").status_code == 204
    assert httpx.get(f"{server.url}/api/v1/me", auth=pair).status_code == 401


def test_audit_log_records_changes_and_denials(server: DockyardServer) -> None:
    root = _account(server, "aud")
    dev = _user(server, root, "dev")
    with httpx.Client(base_url=server.url, auth=dev) as client:
        assert client.post("/api/v1/namespaces", json={"name": "aud-dev"}).status_code == 403
    r = httpx.get(f"{server.url}/api/v1/me", auth=("dev@aud", "wrong-password"))
    assert r.status_code == 401
    with server.client(auth=root) as client:
        entries = client.get("/api/v1/audit").json()["items"]
        denied = client.get("/api/v1/audit", params={"allowed": "false"}).json()["items"]
        assert client.get("/api/v1/audit", params={"allowed": "maybe"}).status_code == 400
    actions = [(e["actor"], e["action"], e["allowed"]) for e in entries]
    # The push in _account is recorded (registry), as is the namespace creation (API).
    assert ("aud", "cr:PushRepository", True) in actions
    assert ("aud", "cr:CreateNamespace", True) in actions
    assert ("dev@aud", "ram:CreateUser", True) not in actions
    assert ("aud", "ram:CreateUser", True) in actions
    assert ("dev@aud", "cr:CreateNamespace", False) in actions
    assert ("dev@aud", "auth:Login", False) in actions
    assert all(not e["allowed"] for e in denied)
    assert {e["source_ip"] for e in entries} == {"127.0.0.1"}
    # A RAM user without permission may not read the log; another account sees none of it.
    with httpx.Client(base_url=server.url, auth=dev) as client:
        assert client.get("/api/v1/audit").status_code == 403
    other = _account(server, "audx")
    with server.client(auth=other) as client:
        assert all(
            e["account_id"] != _account_id(server, root)
            for e in client.get("/api/v1/audit").json()["items"]
        )


def test_logins_are_locked_after_repeated_failures(server: DockyardServer) -> None:
    root = _account(server, "brute")
    for _ in range(10):
        r = httpx.get(f"{server.url}/api/v1/me", auth=("brute", "guess"))
        assert r.status_code == 401
    # Locked now: even the right password is refused, on the API and on docker login.
    r = httpx.get(f"{server.url}/api/v1/me", auth=root)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert r.headers["content-type"] == PROBLEM
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": "brute", "password": root[1]}
    )
    assert r.status_code == 429
    r = httpx.get(f"{server.url}/auth/token", params={"service": "dockyard"}, auth=root)
    assert r.status_code == 429
    # Other users are not affected.
    with server.client() as admin:
        assert admin.get("/api/v1/me").status_code == 200


def test_openapi_document_lists_every_route(server: DockyardServer) -> None:
    r = httpx.get(f"{server.url}/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/namespaces", "post"),
        ("/api/v1/repositories/{namespace}/{repository}/tags/{tag}", "delete"),
        ("/api/v1/repositories/{namespace}/{repository}/permissions/{subject}", "put"),
        ("/api/v1/ram/{kind}/{holder}/policies/{policy}", "put"),
        ("/api/v1/sts/assume-role", "post"),
        ("/api/v1/audit", "get"),
    ]:
        assert method in paths[path], (path, method)
    login = paths["/api/v1/auth/login"]["post"]
    assert login["summary"].startswith("A session token")
    assert "401" in login["responses"]
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    # The parameters of each path are declared.
    for path, ops in paths.items():
        names = {p["name"] for op in ops.values() for p in op["parameters"] if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path)), path


def test_sign_out_ends_sessions(server: DockyardServer) -> None:
    root = _account(server, "leave")
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": root[0], "password": root[1]}
    )
    token = r.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/api/v1/me", headers=bearer).status_code == 200
    assert httpx.post(f"{server.url}/api/v1/auth/logout", headers=bearer).status_code == 204
    r = httpx.get(f"{server.url}/api/v1/me", headers=bearer)
    assert r.status_code == 401
    assert "session has ended" in r.json()["detail"]
    # A new session right away works; Basic credentials never depended on it.
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": root[0], "password": root[1]}
    )
    fresh = {"Authorization": f"Bearer {r.json()['token']}"}
    assert httpx.get(f"{server.url}/api/v1/me", headers=fresh).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/me", auth=root).status_code == 200


def test_policies_page_and_users_show_groups(server: DockyardServer) -> None:
    root = _account(server, "pages")
    _user(server, root, "dev")
    doc = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:Get*", "Resource": "*"}]}
    with server.client(auth=root) as client:
        for n in range(3):
            client.post("/api/v1/ram/policies", json={"name": f"p{n}", "document": doc})
        first = client.get("/api/v1/ram/policies", params={"type": "custom", "limit": 2}).json()
        assert [p["name"] for p in first["items"]] == ["p0", "p1"]
        rest = client.get(first["next"]).json()
        assert [p["name"] for p in rest["items"]] == ["p2"]
        everything = client.get("/api/v1/ram/policies").json()["items"]
        assert {p["type"] for p in everything} == {"system", "custom"}
        client.post("/api/v1/ram/groups", json={"name": "team"})
        client.put("/api/v1/ram/groups/team/members/dev")
        assert client.get("/api/v1/ram/users/dev").json()["groups"] == ["team"]


def test_console_password_changes(server: DockyardServer, tmp_path: Path) -> None:
    root = _account(server, "pwchange")
    _user(server, root, "dev")
    with server.client(auth=root) as client:
        r = client.put(
            "/api/v1/me/password", json={"current_password": "nope", "password": "x" * 9}
        )
        assert r.status_code == 403
        r = client.put(
            "/api/v1/me/password", json={"current_password": root[1], "password": "short"}
        )
        assert r.status_code == 400
        r = client.put(
            "/api/v1/me/password", json={"current_password": root[1], "password": "new-root-pw"}
        )
        assert r.status_code == 204
    assert httpx.get(f"{server.url}/api/v1/me", auth=root).status_code == 401
    assert httpx.get(f"{server.url}/api/v1/me", auth=("pwchange", "new-root-pw")).status_code == 200
    # The registry password is its own: unchanged.
    assert _granted(server, root, "pwchange-ns/app") == ["delete", "pull", "push"]
    with server.client(auth=("pwchange", "new-root-pw")) as client:
        r = client.patch("/api/v1/ram/users/dev", json={"password": "dev-new-console"})
        assert r.status_code == 200
        assert client.patch("/api/v1/ram/users/dev", json={"name": "x"}).status_code == 400
    assert (
        httpx.get(f"{server.url}/api/v1/me", auth=("dev@pwchange", "dev-new-console")).status_code
        == 200
    )
    # The administrator's first-start password serves docker login until either changes:
    # changing the console password retires it there too (the new one serves both).
    with running_server(tmp_path / "fresh") as fresh:
        with fresh.client() as admin:
            r = admin.put(
                "/api/v1/me/password",
                json={"current_password": ADMIN_PASSWORD, "password": "new-admin-console"},
            )
            assert r.status_code == 204
        assert (
            httpx.get(f"{fresh.url}/api/v1/me", auth=("admin", ADMIN_PASSWORD)).status_code == 401
        )
        r = httpx.get(f"{fresh.url}/auth/token", auth=("admin", ADMIN_PASSWORD))
        assert r.status_code == 401
        r = httpx.get(f"{fresh.url}/auth/token", auth=("admin", "new-admin-console"))
        assert r.status_code == 200


def test_wrong_current_passwords_count_as_failed_logins(server: DockyardServer) -> None:
    root = _account(server, "guesser")
    with server.client(auth=root) as client:
        for _ in range(10):
            r = client.put(
                "/api/v1/me/password", json={"current_password": "g", "password": "x" * 9}
            )
            assert r.status_code == 403
        r = client.put(
            "/api/v1/me/password", json={"current_password": root[1], "password": "x" * 9}
        )
        assert r.status_code == 429


def test_ram_users_list_the_namespaces_they_may_see(server: DockyardServer) -> None:
    root = _account(server, "nslist")
    dev = _user(server, root, "dev")
    with server.client(auth=root) as client:
        assert client.post("/api/v1/namespaces", json={"name": "nslist-two"}).status_code == 201
    with httpx.Client(base_url=server.url, auth=dev) as client:
        assert client.get("/api/v1/namespaces").json()["items"] == []
    with server.client(auth=root) as client:
        r = client.put("/api/v1/namespaces/nslist-two/permissions/dev", json={"role": "read-only"})
        assert r.status_code == 200
    with httpx.Client(base_url=server.url, auth=dev) as client:
        names = [n["name"] for n in client.get("/api/v1/namespaces").json()["items"]]
        assert names == ["nslist-two"]


def test_permission_listings_page(server: DockyardServer) -> None:
    root = _account(server, "permpage")
    for name in ("ann", "bob"):
        _user(server, root, name)
    base = "/api/v1/repositories/permpage-ns/app/permissions"
    with server.client(auth=root) as client:
        client.post("/api/v1/ram/groups", json={"name": "crew"})
        for subject, role in (("bob", "write"), ("ann", "read-only"), ("group:crew", "admin")):
            assert client.put(f"{base}/{subject}", json={"role": role}).status_code == 200
        first = client.get(base, params={"limit": 2}).json()
        assert [p["key"] for p in first["items"]] == ["user:ann@permpage", "user:bob@permpage"]
        rest = client.get(first["next"]).json()
        assert [(p["subject_type"], p["subject"], p["role"]) for p in rest["items"]] == [
            ("group", "crew", "admin")
        ]
        assert "next" not in rest
        assert client.get(base, params={"limit": 0}).status_code == 400
