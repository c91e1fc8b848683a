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
        assert r.json()["auto_create_repository"] is True
        assert r.json()["default_repository_type"] == "private"
        r = c.post(
            "/api/v1/namespaces",
            json={
                "name": "apipub",
                "default_repository_type": "public",
                "auto_create_repository": False,
            },
        )
        assert r.status_code == 201
        assert c.get("/api/v1/namespaces/apipub").json()["default_repository_type"] == "public"
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
            ({"name": "okname", "default_repository_type": "secret"}, 400, "public or private"),
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
        assert body["default_repository_type"] == "public"
        assert body["auto_create_repository"] is False
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
