"""Every refused attempt on the registry is in the audit log: a token that grants less
than was asked, a request whose bearer token lacks the scope, and a pull refused to
credentials — whatever the method, GET and HEAD included. Plain HTTP token flows against
a real server, checked through ``GET /api/v1/audit``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.fixtures.oci import push_image
from tests.fixtures.server import DockyardServer, running_server

ROOT = ("acme", "acme-password")
READER = ("reader@acme", "reader-registry-pw")
NOBODY = ("nobody@acme", "nobody-registry-pw")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """acme's private ``acme-apps/web:v1`` and ``acme-apps/prod:v1``; ``reader`` may
    pull everything (read-only), ``nobody`` nothing."""
    base = tmp_path_factory.mktemp("audit-refusals")
    with running_server(base, remove=True) as started:
        with started.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": ROOT[0], "password": ROOT[1]})
            assert r.status_code == 201, r.text
        with started.client(auth=ROOT) as root:
            r = root.put("/api/v1/me/registry-password", json={"password": ROOT[1]})
            assert r.status_code == 204
            assert root.post("/api/v1/namespaces", json={"name": "acme-apps"}).status_code == 201
            push_image(root, "acme-apps/web", "v1")
            push_image(root, "acme-apps/prod", "v1")
            for (login, password), policy in ((READER, "ReadOnly"), (NOBODY, None)):
                name = login.split("@")[0]
                assert root.post("/api/v1/ram/users", json={"name": name}).status_code == 201
                r = root.put(
                    f"/api/v1/ram/users/{name}/registry-password", json={"password": password}
                )
                assert r.status_code == 204
                if policy:
                    r = root.put(
                        f"/api/v1/ram/users/{name}/policies/AliyunContainerRegistry{policy}Access"
                    )
                    assert r.status_code == 204
        yield started


def _audit(
    server: DockyardServer, actor: str, action: str, *, at_least: int = 1
) -> list[dict[str, Any]]:
    """acme's audit records of ``actor`` doing ``action``, newest first, once there are
    ``at_least`` (within 10 s): a refusal is recorded after its response has gone out,
    so the client may ask before the record is there."""
    deadline = time.monotonic() + 10
    with server.client(auth=ROOT) as root:
        while True:
            r = root.get("/api/v1/audit", params={"actor": actor, "action": action})
            assert r.status_code == 200, r.text
            items = list(r.json()["items"])
            if len(items) >= at_least or time.monotonic() > deadline:
                return items
            time.sleep(0.05)


def _token(server: DockyardServer, auth: tuple[str, str] | None, *scopes: str) -> str:
    r = httpx.get(
        f"{server.url}/auth/token",
        params=[("service", "dockyard"), *(("scope", s) for s in scopes)],
        auth=auth,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _granted(token: str) -> dict[str, list[str]]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {grant["name"]: grant["actions"] for grant in claims["access"]}


def test_a_token_granting_less_than_asked_is_audited(server: DockyardServer) -> None:
    # podman asks pull,push and gets pull: the token is issued, the refusal recorded.
    token = _token(
        server,
        READER,
        "repository:acme-apps/web:pull,push",
        "repository:acme-apps/prod:pull,delete",
    )
    assert _granted(token) == {"acme-apps/web": ["pull"], "acme-apps/prod": ["pull"]}
    records = _audit(server, READER[0], "registry:Token", at_least=2)
    by_repository = {r["resource"].rsplit("/", 2)[-1]: r for r in records}
    assert len(records) == 2
    web, prod = by_repository["web"], by_repository["prod"]
    assert web["resource"].endswith(":repository/acme-apps/web")
    assert "asked pull,push; granted pull" in web["detail"]
    assert "asked pull,delete; granted pull" in prod["detail"]
    for record in (web, prod):
        assert record["allowed"] is False
        assert record["status"] == 200
        assert record["source_ip"] == "127.0.0.1"

    # Granted all it asked: nothing more to record.
    _token(server, READER, "repository:acme-apps/web:pull")
    assert len(_audit(server, READER[0], "registry:Token")) == 2

    # Nothing granted, to a user without policies and to nobody signed in.
    assert _granted(_token(server, NOBODY, "repository:acme-apps/web:pull")) == {
        "acme-apps/web": []
    }
    [refused] = _audit(server, NOBODY[0], "registry:Token")
    assert "asked pull; granted nothing" in refused["detail"]
    _token(server, None, "repository:acme-apps/web:pull")
    [anonymous] = _audit(server, "anonymous", "registry:Token")
    assert anonymous["resource"].endswith(":repository/acme-apps/web")
    assert anonymous["account_id"] == refused["account_id"]


def test_requests_refused_for_lack_of_scope_are_audited(server: DockyardServer) -> None:
    token = _token(server, READER, "repository:acme-apps/web:pull")
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=bearer) as client:
        assert client.get("/v2/acme-apps/web/manifests/v1").status_code == 200
        assert client.head("/v2/acme-apps/web/manifests/v1").status_code == 200
        # The same token on another repository, to push and to list the catalog.
        assert client.get("/v2/acme-apps/prod/manifests/v1").status_code == 401
        assert client.head("/v2/acme-apps/prod/manifests/v1").status_code == 401
        assert client.get("/v2/acme-apps/prod/tags/list").status_code == 401
        assert client.post("/v2/acme-apps/web/blobs/uploads/").status_code == 401
        assert client.get("/v2/_catalog").status_code == 401

    pulls = _audit(server, READER[0], "cr:PullRepository", at_least=3)
    assert [(r["resource"].rsplit("/", 1)[-1], r["status"], r["allowed"]) for r in pulls] == [
        ("prod", 401, False)
    ] * 3
    assert "does not grant repository:acme-apps/prod:pull" in pulls[0]["detail"]
    [push] = _audit(server, READER[0], "cr:PushRepository")
    assert push["resource"].endswith(":repository/acme-apps/web")
    assert (push["status"], push["allowed"]) == (401, False)
    [catalog] = _audit(server, READER[0], "cr:ListRepository")
    assert (catalog["status"], catalog["allowed"]) == (401, False)

    # An anonymous token, refused the private repository.
    anonymous = _token(server, None, "repository:acme-apps/prod:pull")
    r = httpx.head(
        f"{server.url}/v2/acme-apps/prod/manifests/v1",
        headers={"Authorization": f"Bearer {anonymous}"},
    )
    assert r.status_code == 401
    [refused] = _audit(server, "anonymous", "cr:PullRepository")
    assert refused["resource"].endswith(":repository/acme-apps/prod")


def test_a_refused_pull_with_credentials_is_audited_for_get_and_head(
    server: DockyardServer,
) -> None:
    """A 403 answered to a GET or HEAD (a refused registry pull) is in the audit log."""
    with server.client(auth=NOBODY) as client:
        assert client.get("/v2/acme-apps/web/manifests/v1").status_code == 403
        assert client.head("/v2/acme-apps/web/manifests/v1").status_code == 403
        assert client.get("/v2/acme-apps/web/tags/list").status_code == 403
    pulls = _audit(server, NOBODY[0], "cr:PullRepository", at_least=3)
    assert len(pulls) == 3
    for record in pulls:
        assert record["resource"].endswith(":repository/acme-apps/web")
        assert (record["status"], record["allowed"]) == (403, False)
        assert record["source_ip"] == "127.0.0.1"


def test_decision_and_outcome_are_two_things(server: DockyardServer) -> None:
    """Allowed, then answered 404 or 400, is not simply "allowed": the record says the
    decision and how the request ended apart."""
    with server.client(auth=ROOT) as root:
        assert root.post("/api/v1/ram/groups", json={"name": "fine"}).status_code == 201
        assert root.delete("/api/v1/ram/groups/ghost").status_code == 404
        assert root.post("/api/v1/ram/groups", json={"name": "fine"}).status_code == 409
    with server.client(auth=NOBODY) as client:
        assert client.head("/v2/acme-apps/prod/manifests/v1").status_code == 403
    _token(server, NOBODY, "repository:acme-apps/prod:pull")

    def seen(actor: str, action: str) -> list[tuple[str, str, int, bool]]:
        return [
            (r["decision"], r["outcome"], r["status"], r["allowed"])
            for r in _audit(server, actor, action)
            if r["resource"].endswith(("/acme-apps/prod", ":group/fine", ":group/ghost"))
        ]

    assert seen(ROOT[0], "ram:DeleteGroup") == [("allowed", "failed", 404, True)]
    assert seen(ROOT[0], "ram:CreateGroup") == [
        ("allowed", "failed", 409, True),
        ("allowed", "succeeded", 201, True),
    ]
    assert seen(NOBODY[0], "cr:PullRepository") == [("denied", "refused", 403, False)]
    # The token was issued (200), its scope refused.
    assert seen(NOBODY[0], "registry:Token") == [("denied", "succeeded", 200, False)]
