"""The build API's contract without building: sources, rules, hooks and their refusals,
permissions, secrets that never come back, polling. A real server on each backend."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.builds.support import (
    add_rule,
    api_client,
    github_hook,
    module_server,
    new_repository,
    push_body,
    repo_path,
)
from tests.fixtures.backends import all_backends_module
from tests.fixtures.server import DockyardServer

pytestmark = all_backends_module

REMOTE = "https://git.example.invalid/team/app.git"
"""A source URL nothing contacts in these tests (no check, no build)."""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_backend_env: dict[str, str]
) -> Iterator[DockyardServer]:
    """A server with the defaults: local sources are not allowed."""
    yield from module_server(tmp_path_factory, "build-api", module_backend_env, local=False)


@pytest.fixture
def c(server: DockyardServer) -> Iterator[httpx.Client]:
    yield from api_client(server)


def _put(c: httpx.Client, name: str, **body: object) -> httpx.Response:
    return c.put(f"{repo_path(name)}/source", json={"url": REMOTE, **body})


def test_source_credentials_are_never_returned(c: httpx.Client) -> None:
    name = new_repository(c)
    assert c.get(f"{repo_path(name)}/source").status_code == 404
    r = _put(c, name, credentials={"username": "ci", "token": "tok-SECRET-1"}, build_pool="eu-1")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["credentials"] == {"kind": "token"}
    assert created["hook_url"].endswith(
        f"/api/v1/hooks/git/{created['hook_url'].rsplit('/', 1)[1]}"
    )
    assert created["hook_url"].startswith("http://127.0.0.1:")
    assert len(created["hook_secret"]) >= 32
    assert created["auto_build"] is True
    assert created["build_without_cache"] is False
    assert created["build_pool"] == "eu-1"
    got = c.get(f"{repo_path(name)}/source").json()
    assert "hook_secret" not in got
    assert "tok-SECRET-1" not in json.dumps(got)
    # credentials left out are kept; null removes them; an ssh key is a kind of its own
    r = _put(c, name, auto_build=False)
    assert r.status_code == 200
    assert r.json()["credentials"] == {"kind": "token"}
    assert r.json()["auto_build"] is False
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    r = _put(c, name, credentials={"ssh_private_key": key})
    assert r.json()["credentials"] == {"kind": "ssh_key"}
    assert "OPENSSH" not in r.text
    r = _put(c, name, credentials=None)
    assert r.json()["credentials"] is None
    # a rotated secret is shown once; the hook URL stays
    rotated = c.post(f"{repo_path(name)}/source/rotate-hook-secret")
    assert rotated.status_code == 200
    assert rotated.json()["hook_secret"] != created["hook_secret"]
    assert c.get(f"{repo_path(name)}/source").json()["hook_url"] == created["hook_url"]
    # the old secret signs nothing any more; the new one does
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1}
    old = github_hook(c, created["hook_url"], created["hook_secret"], ping, event="ping")
    assert old.status_code == 401, old.text
    new = github_hook(c, created["hook_url"], rotated.json()["hook_secret"], ping, event="ping")
    assert new.status_code == 200, new.text
    assert c.delete(f"{repo_path(name)}/source").status_code == 204
    assert c.get(f"{repo_path(name)}/source").status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "file:///etc"}, "url"),
        ({"url": "http://127.0.0.1:9/x.git"}, "url"),
        ({"url": "https://user:pw@git.example.invalid/x.git"}, "url"),
        ({"url": "-oProxyCommand=x"}, "url"),
        ({"url": "ftp://git.example.invalid/x.git"}, "url"),
        ({"url": REMOTE, "type": "svn"}, "type"),
        ({"url": REMOTE, "build_pool": "Not A Pool"}, "build_pool"),
        ({"url": REMOTE, "poll_interval": 1}, "poll_interval"),
        ({"url": REMOTE, "credentials": {"username": "x"}}, "credentials"),
        ({"url": REMOTE, "credentials": "secret"}, "credentials"),
        ({"url": REMOTE, "colour": "red"}, "colour"),
        ({"url": 5}, "url"),
        ({}, "url"),
    ],
)
def test_bad_sources_are_refused(c: httpx.Client, body: dict[str, object], says: str) -> None:
    name = new_repository(c)
    r = c.put(f"{repo_path(name)}/source", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]
    assert c.get(f"{repo_path(name)}/source").status_code == 404  # nothing half-written


def test_rules_builtin_rule_and_limits(c: httpx.Client) -> None:
    name = new_repository(c)
    _put(c, name).raise_for_status()
    rule = add_rule(
        c,
        name,
        ref="release-(?<version>.*)",
        type="tag",
        image_tags=["${version}"],
        build_args={"A": "1"},
        secrets={"npm_token": "s3cr3t-npm"},
    )
    assert rule["secrets"] == ["npm_token"]
    assert rule["dockerfile_dir"] == "/"
    assert rule["dockerfile_name"] == "Dockerfile"
    assert "s3cr3t-npm" not in json.dumps(rule)
    listed = c.get(f"{repo_path(name)}/build-rules").json()["items"]
    assert [r["id"] for r in listed] == [rule["id"], 0]
    builtin = listed[-1]
    assert builtin["builtin"] is True
    assert builtin["image_tags"] == ["${version}"]
    assert c.patch(f"{repo_path(name)}/build-rules/0", json={"enabled": False}).status_code == 409
    assert c.delete(f"{repo_path(name)}/build-rules/0").status_code == 409

    r = c.patch(f"{repo_path(name)}/build-rules/{rule['id']}", json={"enabled": False})
    assert r.status_code == 200
    assert r.json()["enabled"] is False
    assert r.json()["secrets"] == ["npm_token"]
    r = c.patch(f"{repo_path(name)}/build-rules/{rule['id']}", json={"secrets": {}})
    assert r.json()["secrets"] == []

    for bad, field in (
        ({"ref": "(unclosed"}, "ref"),
        ({"ref": "main", "image_tags": []}, "image_tags"),
        ({"ref": "main", "image_tags": ["a", "b", "c", "d"]}, "image_tags"),
        ({"ref": "main", "image_tags": ["${nope}"]}, "nope"),
        ({"ref": "main", "dockerfile_dir": "/../etc"}, "dockerfile_dir"),
        ({"ref": "main", "dockerfile_name": "../Dockerfile"}, "dockerfile_name"),
        ({"ref": "main", "build_args": {"1BAD": "x"}}, "build_args"),
        ({"ref": "main", "type": "commit"}, "type"),
        ({"ref": "main", "secrets": {"bad id!": "x"}}, "secrets"),
        ({"ref": "main", "extra": 1}, "extra"),
    ):
        r = c.post(f"{repo_path(name)}/build-rules", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert field in r.json()["detail"], (bad, r.text)
    for n in range(19):
        add_rule(c, name, ref=f"b{n}")
    r = c.post(f"{repo_path(name)}/build-rules", json={"ref": "one-too-many"})
    assert r.status_code == 403
    assert "20" in r.json()["detail"]
    assert c.get(f"{repo_path(name)}/build-rules/999999").status_code == 404
    assert c.get(f"{repo_path(name)}/builds/999999").status_code == 404
    assert c.get(f"{repo_path(name)}/builds", params={"status": "odd"}).status_code == 400


def _sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_hook_signatures_pings_and_audit(c: httpx.Client) -> None:
    name = new_repository(c)
    source = _put(c, name).json()
    hook, secret = source["hook_url"], source["hook_secret"]
    path = httpx.URL(hook).path
    raw = json.dumps(push_body("refs/heads/main", "a" * 40)).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}

    r = c.post(path, content=raw, headers={**headers, "X-Hub-Signature-256": _sign("wrong", raw)})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = c.post(path, content=raw, headers=headers)
    assert r.status_code == 401
    r = github_hook(c, hook, secret, {"zen": "hi", "hook_id": 1}, event="ping")
    assert r.status_code == 200
    assert c.post("/api/v1/hooks/git/not-a-hook", content=raw, headers=headers).status_code == 404
    # a good push with no rule builds nothing, and says so
    r = github_hook(c, hook, secret, push_body("refs/heads/main", "a" * 40))
    assert r.status_code == 202
    assert r.json()["builds"] == []

    deliveries = c.get(f"{repo_path(name)}/source/hook-deliveries").json()["items"]
    assert [d["status"] for d in deliveries] == [202, 200, 401, 401]
    assert deliveries[0]["outcome"].startswith("no enabled build rule")
    refused = c.get("/api/v1/audit", params={"allowed": "false", "limit": 1000}).json()["items"]
    mine = [
        e for e in refused if e["action"] == "cr:TriggerRepoBuildByHook" and name in e["resource"]
    ]
    assert len(mine) == 2
    assert {e["status"] for e in mine} == {401}
    # a GitLab hook with the token works too; a GitHub signature of another secret not
    gitlab = {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": secret,
        "Content-Type": "application/json",
    }
    body = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": "b" * 40,
        "checkout_sha": "b" * 40,
    }
    r = c.post(path, content=json.dumps(body), headers=gitlab)
    assert r.status_code == 202, r.text


def test_read_only_users_see_builds_but_change_nothing(
    server: DockyardServer, c: httpx.Client
) -> None:
    name = new_repository(c)
    _put(c, name).raise_for_status()
    rule = add_rule(c, name)
    user = f"viewer{name[-6:]}"
    r = c.post("/api/v1/ram/users", json={"name": user, "password": "viewer-password-1"})
    assert r.status_code == 201, r.text
    r = c.put(f"{repo_path(name)}/permissions/{user}", json={"role": "read-only"})
    assert r.status_code == 200, r.text
    with server.client(auth=(f"{user}@admin", "viewer-password-1")) as viewer:
        assert viewer.get(f"{repo_path(name)}/source").status_code == 200
        assert viewer.get(f"{repo_path(name)}/build-rules").status_code == 200
        assert viewer.get(f"{repo_path(name)}/builds").status_code == 200
        assert viewer.put(f"{repo_path(name)}/source", json={"url": REMOTE}).status_code == 403
        assert viewer.post(f"{repo_path(name)}/build-rules", json={"ref": "x"}).status_code == 403
        assert viewer.delete(f"{repo_path(name)}/build-rules/{rule['id']}").status_code == 403
        assert viewer.post(f"{repo_path(name)}/build-rules/{rule['id']}/build").status_code == 403
        assert viewer.post(f"{repo_path(name)}/source/rotate-hook-secret").status_code == 403
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get(f"{repo_path(name)}/builds").status_code == 401
