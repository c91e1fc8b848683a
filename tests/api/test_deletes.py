"""Deletes never lose data silently: a RAM user, group, role or custom policy that still
holds something is refused with 409, naming what holds it and how many (as Alibaba RAM's
``DeleteConflict.*``), and deleted once it holds nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import DockyardServer, running_server

PROBLEM = "application/problem+json"
ROOT = ("keeper", "keeper-password")
READ_ONLY = "AliyunContainerRegistryReadOnlyAccess"
TRUST = {
    "Version": "1",
    "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": ["acs:ram::1:root"]}}
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("deletes")
    with running_server(base, remove=True) as started:
        with started.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": ROOT[0], "password": ROOT[1]})
            assert r.status_code == 201, r.text
        yield started


@pytest.fixture
def root(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=ROOT) as client:
        yield client


def _refused(response: httpx.Response, code: str, *parts: str) -> str:
    """The 409 problem of a refused delete, with ``code`` and each of ``parts``."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    for part in parts:
        assert part in body["detail"], body["detail"]
    return str(body["detail"])


def _created(response: httpx.Response) -> None:
    assert response.status_code in (200, 201, 204), response.text


def test_ram_user_holding_keys_policies_or_groups_is_not_deleted(root: httpx.Client) -> None:
    _created(root.post("/api/v1/ram/users", json={"name": "dev"}))
    keys = [root.post("/api/v1/ram/users/dev/access-keys").json() for _ in range(2)]
    _created(root.put(f"/api/v1/ram/users/dev/policies/{READ_ONLY}"))
    _created(root.post("/api/v1/ram/groups", json={"name": "crew"}))
    _created(root.put("/api/v1/ram/groups/crew/members/dev"))

    detail = _refused(
        root.delete("/api/v1/ram/users/dev"),
        "DeleteConflict.User.AccessKey",
        "2 access keys",
        "1 attached policy",
        "1 group membership",
    )
    assert "dev@keeper" in detail
    # Nothing went: the user, its keys, its policy and its membership are all there.
    user = root.get("/api/v1/ram/users/dev").json()
    assert (user["policies"], user["groups"]) == ([READ_ONLY], ["crew"])
    assert len(root.get("/api/v1/ram/users/dev/access-keys").json()["items"]) == 2

    for key in keys:
        _created(root.delete(f"/api/v1/ram/users/dev/access-keys/{key['access_key_id']}"))
    _refused(root.delete("/api/v1/ram/users/dev"), "DeleteConflict.User.Policy", "1 attached")
    _created(root.delete(f"/api/v1/ram/users/dev/policies/{READ_ONLY}"))
    # A repository or namespace permission is an attached policy too.
    _created(root.post("/api/v1/namespaces", json={"name": "keeper-ns"}))
    _created(root.put("/api/v1/namespaces/keeper-ns/permissions/dev", json={"role": "write"}))
    _refused(root.delete("/api/v1/ram/users/dev"), "DeleteConflict.User.Policy", "revoke")
    _created(root.delete("/api/v1/namespaces/keeper-ns/permissions/dev"))
    _refused(root.delete("/api/v1/ram/users/dev"), "DeleteConflict.User.Group", "1 group")
    _created(root.delete("/api/v1/ram/groups/crew/members/dev"))

    assert root.delete("/api/v1/ram/users/dev").status_code == 204
    assert root.get("/api/v1/ram/users/dev").status_code == 404


def test_group_with_members_or_policies_is_not_deleted(root: httpx.Client) -> None:
    _created(root.post("/api/v1/ram/groups", json={"name": "readers"}))
    for name in ("ann", "bob"):
        _created(root.post("/api/v1/ram/users", json={"name": name}))
        _created(root.put(f"/api/v1/ram/groups/readers/members/{name}"))
    _created(root.put(f"/api/v1/ram/groups/readers/policies/{READ_ONLY}"))

    _refused(
        root.delete("/api/v1/ram/groups/readers"),
        "DeleteConflict.Group.User",
        "group 'readers' still has 2 members and 1 attached policy",
    )
    assert root.get("/api/v1/ram/groups/readers").json()["members"] == [
        "ann@keeper",
        "bob@keeper",
    ]
    for name in ("ann", "bob"):
        _created(root.delete(f"/api/v1/ram/groups/readers/members/{name}"))
    _refused(root.delete("/api/v1/ram/groups/readers"), "DeleteConflict.Group.Policy", "1 attached")
    _created(root.delete(f"/api/v1/ram/groups/readers/policies/{READ_ONLY}"))
    assert root.delete("/api/v1/ram/groups/readers").status_code == 204
    assert root.get("/api/v1/ram/groups/readers").status_code == 404
    for name in ("ann", "bob"):
        assert root.delete(f"/api/v1/ram/users/{name}").status_code == 204


def test_role_with_policies_is_not_deleted(root: httpx.Client) -> None:
    _created(root.post("/api/v1/ram/roles", json={"name": "deployer", "trust_policy": TRUST}))
    _created(root.put(f"/api/v1/ram/roles/deployer/policies/{READ_ONLY}"))
    _refused(
        root.delete("/api/v1/ram/roles/deployer"),
        "DeleteConflict.Role.Policy",
        "role 'deployer' still has 1 attached policy",
    )
    assert root.get("/api/v1/ram/roles/deployer").json()["policies"] == [READ_ONLY]
    _created(root.delete(f"/api/v1/ram/roles/deployer/policies/{READ_ONLY}"))
    assert root.delete("/api/v1/ram/roles/deployer").status_code == 204


def test_attached_custom_policy_is_not_deleted(root: httpx.Client) -> None:
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "cr:PullRepository", "Resource": "*"}],
    }
    _created(root.post("/api/v1/ram/policies", json={"name": "Pull", "document": document}))
    _created(root.post("/api/v1/ram/users", json={"name": "carl"}))
    _created(root.post("/api/v1/ram/groups", json={"name": "pullers"}))
    _created(root.post("/api/v1/ram/roles", json={"name": "puller", "trust_policy": TRUST}))
    holders = ("users/carl", "groups/pullers", "roles/puller")
    for holder in holders:
        _created(root.put(f"/api/v1/ram/{holder}/policies/Pull"))

    _refused(
        root.delete("/api/v1/ram/policies/Pull"),
        "DeleteConflict.Policy.User",
        "policy 'Pull' is still attached to 1 user, 1 group and 1 role; detach it",
    )
    assert root.get("/api/v1/ram/users/carl").json()["policies"] == ["Pull"]
    _created(root.delete("/api/v1/ram/users/carl/policies/Pull"))
    _refused(root.delete("/api/v1/ram/policies/Pull"), "DeleteConflict.Policy.Group", "1 group")
    _created(root.delete("/api/v1/ram/groups/pullers/policies/Pull"))
    _refused(root.delete("/api/v1/ram/policies/Pull"), "DeleteConflict.Policy.Role", "1 role")
    _created(root.delete("/api/v1/ram/roles/puller/policies/Pull"))
    assert root.delete("/api/v1/ram/policies/Pull").status_code == 204
    assert root.get("/api/v1/ram/policies/Pull").status_code == 404
