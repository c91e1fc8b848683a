"""The namespace part of the management API, and the CLI that does the same."""

from __future__ import annotations

from tests.fixtures.backends import all_backends, all_backends_module
from tests.fixtures.server import DockyardServer

PROBLEM = "application/problem+json"


@all_backends_module
def test_create_list_get_delete(registry: DockyardServer) -> None:
    with registry.client() as c:
        r = c.post("/api/v1/namespaces", json={"name": "apiteam"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "apiteam"
        assert r.json()["auto_create_repo"] is True
        assert r.json()["default_repo_type"] == "private"
        r = c.post(
            "/api/v1/namespaces",
            json={
                "name": "apipub",
                "default_repo_type": "public",
                "auto_create_repo": False,
            },
        )
        assert r.status_code == 201
        assert c.get("/api/v1/namespaces/apipub").json()["default_repo_type"] == "public"
        names = [n["name"] for n in c.get("/api/v1/namespaces").json()["items"]]
        assert {"apiteam", "apipub", "library"} <= set(names)
        assert names == sorted(names)
        assert c.delete("/api/v1/namespaces/apipub").status_code == 204
        r = c.get("/api/v1/namespaces/apipub")
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM
        assert "does not exist" in r.json()["detail"]


@all_backends_module
def test_pagination(registry: DockyardServer) -> None:
    with registry.client() as c:
        for i in range(5):
            assert c.post("/api/v1/namespaces", json={"name": f"page{i}"}).status_code == 201
        seen: list[str] = []
        url: str | None = "/api/v1/namespaces?limit=2"
        pages = 0
        while url:
            body = c.get(url).json()
            seen += [n["name"] for n in body["items"]]
            url = body.get("next")
            pages += 1
        assert pages >= 3
        assert len(seen) == len(set(seen))
        assert {f"page{i}" for i in range(5)} <= set(seen)


@all_backends_module
def test_errors_are_problem_json(registry: DockyardServer) -> None:
    with registry.client() as c:
        cases = [
            ({"name": "library"}, 409, "already exists"),
            ({"name": "Bad_Name"}, 400, "lowercase"),
            ({"name": "a"}, 400, "2 to 30"),
            ({}, 400, "name"),
            ({"name": "okname", "default_repo_type": "secret"}, 400, '"public" or "private"'),
            ({"name": "okname", "auto_create_repo": "yes"}, 400, "true or false"),
            # The old field names are refused by name rather than silently ignored.
            ({"name": "okname", "auto_create_repository": False}, 400, "unknown field"),
        ]
        for body, status, words in cases:
            r = c.post("/api/v1/namespaces", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.headers["content-type"] == PROBLEM
            assert words in r.json()["detail"]
            assert r.json()["status"] == status
        r = c.post(
            "/api/v1/namespaces", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert "not valid JSON" in r.json()["detail"]
        r = c.post("/api/v1/namespaces", json=["a", "list"])
        assert r.status_code == 400
        assert c.get("/api/v1/no-such-route").headers["content-type"] == PROBLEM


@all_backends_module
def test_patch_settings(registry: DockyardServer) -> None:
    with registry.client() as c:
        assert c.post("/api/v1/namespaces", json={"name": "settings"}).status_code == 201
        r = c.patch("/api/v1/namespaces/settings", json={"default_repo_type": "public"})
        assert r.status_code == 200, r.text
        assert r.json()["default_repo_type"] == "public"
        assert r.json()["auto_create_repo"] is True  # untouched
        r = c.patch("/api/v1/namespaces/settings", json={"auto_create_repo": False})
        assert (r.json()["auto_create_repo"], r.json()["default_repo_type"]) == (False, "public")
        assert c.get("/api/v1/namespaces/settings").json() == r.json()
        assert c.patch("/api/v1/namespaces/settings", json={}).json() == r.json()
        # Auto-create off: a push to a missing repository is refused.
        refused = c.post("/v2/settings/app/blobs/uploads/")
        assert refused.status_code == 404
        assert refused.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        # On again: the push creates the repository, of the namespace's default type.
        r = c.patch("/api/v1/namespaces/settings", json={"auto_create_repo": True})
        assert r.json()["auto_create_repo"] is True
        assert c.post("/v2/settings/app/blobs/uploads/").status_code == 202
        assert c.get("/api/v1/repositories/settings/app").json()["repo_type"] == "public"
        for body, words in (
            ({"default_repo_type": "open"}, '"public" or "private"'),
            ({"auto_create_repo": 1}, "true or false"),
            ({"colour": "red"}, "unknown field 'colour'"),
        ):
            r = c.patch("/api/v1/namespaces/settings", json=body)
            assert r.status_code == 400, body
            assert r.headers["content-type"] == PROBLEM
            assert words in r.json()["detail"]
        r = c.patch(
            "/api/v1/namespaces/settings",
            content=b"[",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        r = c.patch("/api/v1/namespaces/missing", json={"auto_create_repo": False})
        assert r.status_code == 404
        assert "does not exist" in r.json()["detail"]
    with registry.client(auth=None) as anonymous:
        r = anonymous.patch("/api/v1/namespaces/settings", json={"auto_create_repo": False})
        assert r.status_code == 401


@all_backends_module
def test_anonymous_and_wrong_password_are_refused(registry: DockyardServer) -> None:
    with registry.client(auth=None) as c:
        r = c.post("/api/v1/namespaces", json={"name": "sneaky"})
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
    with registry.client(auth=("admin", "nope")) as c:
        assert c.get("/api/v1/namespaces").status_code == 401


def test_cli_namespace_commands(dockyard_server: DockyardServer) -> None:
    dockyard_server.cli("namespace", "create", "fromcli", "--public", "--no-auto-create")
    assert "fromcli" in dockyard_server.cli("namespace", "list").stdout.split()
    with dockyard_server.client() as c:
        body = c.get("/api/v1/namespaces/fromcli").json()
        assert body["default_repo_type"] == "public"
        assert body["auto_create_repo"] is False
    dup = dockyard_server.cli("namespace", "create", "fromcli", check=False)
    assert dup.returncode != 0
    assert "already exists" in dup.stderr
    assert len(dup.stderr.strip().splitlines()) == 1


@all_backends
def test_push_into_namespace_without_auto_create_explains(dockyard_server: DockyardServer) -> None:
    dockyard_server.cli("namespace", "create", "strict", "--no-auto-create")
    with dockyard_server.client() as c:
        r = c.post("/v2/strict/app/blobs/uploads/")
        assert r.status_code == 404
        error = r.json()["errors"][0]
        assert error["code"] == "NAME_UNKNOWN"
        assert "create it" in error["message"]
        r = c.post("/v2/nowhere/app/blobs/uploads/")
        assert r.status_code == 404
        assert "namespace 'nowhere' does not exist" in r.json()["errors"][0]["message"]


@all_backends_module
def test_listing_limits_are_checked(registry: DockyardServer) -> None:
    with registry.client() as c:
        for bad in ("0", "-1", "abc", "1001", "²", "99999999999"):
            r = c.get("/api/v1/namespaces", params={"limit": bad})
            assert r.status_code == 400, bad
            assert "limit must be an integer" in r.json()["detail"]
        assert c.get("/api/v1/namespaces", params={"limit": "1000"}).status_code == 200
