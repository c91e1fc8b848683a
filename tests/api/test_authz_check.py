"""What the API says the caller may do: ``allowed_actions`` on the namespaces and
repositories it returns (and on a tag listing, for its repository), the owning account
of each, ``?account=`` on the namespaces, and the batch check ``POST /api/v1/authz/check``.

Every answer is held against what the routes then do: an action said to be refused is
refused with 403 when tried, one said to be allowed works.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dockyard.iam import actions
from tests.fixtures.backends import all_backends_module
from tests.fixtures.server import DockyardServer

pytestmark = all_backends_module

PROBLEM = "application/problem+json"
ROOT = ("authzco", "authzco-password")
OTHER = ("authzother", "authzother-password")
READER = ("reader@authzco", "reader-console")
WRITER = ("writer@authzco", "writer-console")
READ_ONLY = "AliyunContainerRegistryReadOnlyAccess"
"""The system policy: cr:Get*, cr:List* and cr:PullRepository on everything."""
READ_REPOSITORY = {a for a in actions.REPOSITORY_ACTIONS if a.startswith(("cr:Get", "cr:List"))} | {
    actions.PULL
}
READ_NAMESPACE = {a for a in actions.NAMESPACE_ACTIONS if a.startswith(("cr:Get", "cr:List"))}


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


@pytest.fixture(scope="module")
def server(registry: DockyardServer) -> DockyardServer:
    """Accounts of this module's own: ``authzco`` (namespaces authz-a with a private and
    a public repository, authz-b with one; RAM users ``reader``, read-only everywhere,
    and ``writer``, write on authz-a) and ``authzother`` (namespace authz-other)."""
    with registry.client() as admin:
        for name, password in (ROOT, OTHER):
            r = admin.post(
                "/api/v1/accounts",
                json={"name": name, "password": password, "namespace_quota": 10},
            )
            _ok(r, 201)
    with registry.client(auth=ROOT) as root:
        for ns in ("authz-a", "authz-b"):
            _ok(root.post("/api/v1/namespaces", json={"name": ns}), 201)
        for ns, repo, kind in (
            ("authz-a", "web", "private"),
            ("authz-a", "pub", "public"),
            ("authz-b", "api", "private"),
        ):
            body = {"namespace": ns, "name": repo, "repo_type": kind}
            _ok(root.post("/api/v1/repositories", json=body), 201)
        for user, password in (READER, WRITER):
            name = user.split("@")[0]
            _ok(root.post("/api/v1/ram/users", json={"name": name, "password": password}), 201)
        _ok(root.put(f"/api/v1/ram/users/reader/policies/{READ_ONLY}"), 204)
        r = root.put("/api/v1/namespaces/authz-a/permissions/user:writer", json={"role": "write"})
        _ok(r)
    with registry.client(auth=OTHER) as other:
        _ok(other.post("/api/v1/namespaces", json={"name": "authz-other"}), 201)
    return registry


@pytest.fixture
def reader(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=READER) as client:
        yield client


@pytest.fixture
def root(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=ROOT) as client:
        yield client


def _allowed(client: httpx.Client, checks: list[dict[str, str]]) -> list[bool]:
    """The batch check's answers, in the order asked (and each naming what was asked)."""
    said = _ok(client.post("/api/v1/authz/check", json={"checks": checks}))["results"]
    assert [(r["action"], r["resource"]) for r in said] == [
        (c["action"], c.get("resource")) for c in checks
    ]
    return [bool(r["allowed"]) for r in said]


def _by_name(items: list[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    return {i[key]: i for i in items}


def test_a_root_may_do_everything_with_its_own(root: httpx.Client) -> None:
    spaces = _by_name(_ok(root.get("/api/v1/namespaces"))["items"])
    assert set(spaces) == {"authz-a", "authz-b"}
    for ns in spaces.values():
        assert ns["account"] == "authzco"
        assert set(ns["allowed_actions"]) == {*actions.NAMESPACE_ACTIONS, actions.CREATE_REPOSITORY}
    repos = _by_name(_ok(root.get("/api/v1/repositories"))["items"], "full_name")
    assert set(repos) == {"authz-a/web", "authz-a/pub", "authz-b/api"}
    for repo in repos.values():
        assert repo["account"] == "authzco"
        assert set(repo["allowed_actions"]) == set(actions.REPOSITORY_ACTIONS)
    one = _ok(root.get("/api/v1/repositories/authz-a/web"))
    assert set(one["allowed_actions"]) == set(actions.REPOSITORY_ACTIONS)
    tags = _ok(root.get("/api/v1/repositories/authz-a/web/tags"))
    assert tags["items"] == []
    assert set(tags["allowed_actions"]) == set(actions.REPOSITORY_ACTIONS)


def test_a_read_only_user_is_told_it_may_only_read(
    server: DockyardServer, reader: httpx.Client
) -> None:
    spaces = _by_name(_ok(reader.get("/api/v1/namespaces"))["items"])
    assert set(spaces) == {"authz-a", "authz-b"}
    for ns in spaces.values():
        assert set(ns["allowed_actions"]) == READ_NAMESPACE
    repos = _by_name(_ok(reader.get("/api/v1/repositories"))["items"], "full_name")
    for repo in repos.values():
        assert set(repo["allowed_actions"]) == READ_REPOSITORY, repo["full_name"]
    one = _ok(reader.get("/api/v1/namespaces/authz-a"))
    assert set(one["allowed_actions"]) == READ_NAMESPACE
    tags = _ok(reader.get("/api/v1/repositories/authz-a/web/tags"))
    assert set(tags["allowed_actions"]) == READ_REPOSITORY
    # What it is told it may not do, the routes refuse; what it may, they do.
    refused = [
        ("DELETE", "/api/v1/repositories/authz-a/web", None),
        ("PATCH", "/api/v1/repositories/authz-a/web", {"summary": "x"}),
        ("DELETE", "/api/v1/namespaces/authz-a", None),
        ("PATCH", "/api/v1/namespaces/authz-a", {"auto_create_repo": False}),
        ("POST", "/api/v1/repositories", {"namespace": "authz-a", "name": "new"}),
        ("PUT", "/api/v1/namespaces/authz-a/permissions/user:reader", {"role": "admin"}),
    ]
    for method, url, body in refused:
        r = reader.request(method, url, json=body)
        assert r.status_code == 403, (method, url, r.text)
        assert r.headers["content-type"] == PROBLEM
    _ok(reader.get("/api/v1/repositories/authz-a/web"))
    _ok(reader.get("/api/v1/namespaces/authz-a/permissions"))


def test_a_namespace_writer_may_create_and_push_there_only(server: DockyardServer) -> None:
    with server.client(auth=WRITER) as writer:
        spaces = _by_name(_ok(writer.get("/api/v1/namespaces"))["items"])
        assert set(spaces) == {"authz-a"}
        allowed = set(spaces["authz-a"]["allowed_actions"])
        assert actions.CREATE_REPOSITORY in allowed
        assert "cr:DeleteNamespace" not in allowed
        repos = _by_name(_ok(writer.get("/api/v1/repositories"))["items"], "full_name")
        assert set(repos) == {"authz-a/web", "authz-a/pub"}
        web = set(repos["authz-a/web"]["allowed_actions"])
        assert {actions.PUSH, actions.PULL, actions.CREATE_REPOSITORY} <= web
        assert "cr:DeleteRepository" not in web
        checks = [
            {"action": "cr:CreateRepository", "resource": "authz-a"},
            {"action": "cr:CreateRepository", "resource": "authz-b"},
            {"action": "cr:CreateRepository", "resource": "authz-a/made-by-writer"},
            {"action": "cr:DeleteRepository", "resource": "authz-a/web"},
        ]
        assert _allowed(writer, checks) == [True, False, True, False]
        # As said: it creates in authz-a, not in authz-b.
        body = {"namespace": "authz-a", "name": "made-by-writer"}
        made = _ok(writer.post("/api/v1/repositories", json=body), 201)
        assert actions.PUSH in made["allowed_actions"]
        body = {"namespace": "authz-b", "name": "made-by-writer"}
        assert writer.post("/api/v1/repositories", json=body).status_code == 403
        assert writer.delete("/api/v1/repositories/authz-a/web").status_code == 403


def test_the_batch_check(server: DockyardServer, reader: httpx.Client, root: httpx.Client) -> None:
    checks = [
        {"action": "cr:GetRepository", "resource": "authz-a/web"},
        {"action": "cr:DeleteRepository", "resource": "authz-a/web"},
        {"action": "cr:PushRepository", "resource": "authz-b/api"},
        {"action": "cr:CreateNamespace"},
        {"action": "cr:DeleteNamespace", "resource": "authz-b"},
        {"action": "cr:ListNamespace"},
        {"action": "ram:ListUsers"},
        {"action": "ram:CreateUser", "resource": "someone"},
        {"action": "ram:AttachPolicy", "resource": "user/reader"},
        {"action": "cr:ReadAuditLog"},
        {"action": "cr:ListAccount"},
        {"action": "cr:DeleteNamespace", "resource": "authz-other"},
        {"action": "cr:PullRepository", "resource": "authz-a/pub"},
        {"action": "cr:DeleteRepository", "resource": "authz-a/no-such-repo"},
    ]
    # Reading, listing namespaces and pulling; nothing else.
    reads = [True, False, False, False, False, True, *[False] * 6, True, False]
    assert _allowed(reader, checks) == reads
    # A root: everything in its account, nothing of the instance's or of another account.
    assert _allowed(root, checks) == [True] * 10 + [False, False, True, True]
    with server.client() as admin:
        assert all(_allowed(admin, checks))
    with server.client(auth=OTHER) as other:
        said = _ok(other.post("/api/v1/authz/check", json={"checks": checks}))["results"]
        # Another account's root: only the public pull, and its own namespace (the
        # account-wide questions are about its own account).
        allowed = {(r["action"], r["resource"]) for r in said if r["allowed"]}
        assert allowed == {
            ("cr:PullRepository", "authz-a/pub"),
            ("cr:CreateNamespace", None),
            ("cr:ListNamespace", None),
            ("ram:ListUsers", None),
            ("ram:CreateUser", "someone"),
            ("ram:AttachPolicy", "user/reader"),
            ("cr:ReadAuditLog", None),
            ("cr:DeleteNamespace", "authz-other"),
        }
        assert other.delete("/api/v1/namespaces/authz-b").status_code == 403


def _problem(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"], r.json()["detail"]


def test_bad_checks_are_refused_whole(server: DockyardServer, reader: httpx.Client) -> None:
    url = "/api/v1/authz/check"
    good = {"action": "cr:GetRepository", "resource": "authz-a/web"}
    cases: list[tuple[Any, str]] = [
        ({}, "checks"),
        ({"checks": []}, "checks"),
        ({"checks": "cr:GetRepository"}, "checks"),
        ({"checks": [good] * 101}, "at most 100"),
        ({"checks": [good], "extra": 1}, "unknown field 'extra'"),
        ({"checks": [good, "cr:GetRepository"]}, "checks[1] must be an object"),
        ({"checks": [good, {"action": "cr:Nope"}]}, "checks[1].action"),
        ({"checks": [{"action": "cr:GetRepository", "who": "x"}]}, "checks[0].who"),
        ({"checks": [{"action": "cr:GetRepository", "resource": 3}]}, "checks[0].resource"),
        ({"checks": [{"action": "cr:GetRepository", "resource": "Bad Name/x"}]}, "namespace"),
        ({"checks": [{"action": "cr:GetRepository", "resource": "a/b/c"}]}, "namespace/repo"),
        ({"checks": [{"action": "cr:DeleteNamespace", "resource": "authz-a/web"}]}, "namespace"),
        ({"checks": [{"action": "cr:ReadAuditLog", "resource": "x"}]}, "takes no resource"),
        ({"checks": [{"action": "ram:AttachPolicy", "resource": "nobody"}]}, "user/NAME"),
        ({"checks": [{"action": "ram:GetUser", "resource": "a/b"}]}, "a user name"),
    ]
    for body, words in cases:
        _problem(reader.post(url, json=body), 400, words)
    _problem(reader.post(url, content=b"{not json"), 400, "not valid JSON")
    with server.client(auth=None) as anonymous:
        _problem(anonymous.post(url, json={"checks": [good]}), 401, "log in")
    # Exactly 100 are answered.
    said = _ok(reader.post(url, json={"checks": [good] * 100}))["results"]
    assert len(said) == 100
    assert all(r["allowed"] for r in said)


def test_the_administrator_sees_owners_and_filters_by_account(server: DockyardServer) -> None:
    with server.client() as admin:
        items = _ok(admin.get("/api/v1/namespaces", params={"limit": 1000}))["items"]
        owners = {n["name"]: n["account"] for n in items}
        assert owners["authz-a"] == "authzco"
        assert owners["authz-other"] == "authzother"
        only = _ok(admin.get("/api/v1/namespaces", params={"account": "authzco"}))["items"]
        assert [n["name"] for n in only] == ["authz-a", "authz-b"]
        paged = _ok(admin.get("/api/v1/namespaces", params={"account": "authzco", "limit": 1}))
        assert [n["name"] for n in paged["items"]] == ["authz-a"]
        assert "account=authzco" in paged["next"]
        following = _ok(admin.get(paged["next"]))
        assert [n["name"] for n in following["items"]] == ["authz-b"]
        assert _ok(admin.get("/api/v1/namespaces", params={"account": "no-such"}))["items"] == []
        repos = _ok(admin.get("/api/v1/repositories", params={"account": "authzother"}))
        assert repos["items"] == []
    # Anyone else: its own account's only, whatever it names.
    with server.client(auth=ROOT) as root:
        assert _ok(root.get("/api/v1/namespaces", params={"account": "authzother"}))["items"] == []
    with server.client(auth=READER) as reader:
        named = _ok(reader.get("/api/v1/namespaces", params={"account": "authzco"}))["items"]
        assert {n["name"] for n in named} == {"authz-a", "authz-b"}
        other = _ok(reader.get("/api/v1/namespaces", params={"account": "authzother"}))
        assert other["items"] == []
