"""Repositories and tags through the management API (``/api/v1/repositories``): the
routes, their filters and pages, sizes, quotas, and who may do what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dockyard.config import load_settings
from dockyard.db import tables as t
from dockyard.db.engine import Database
from tests.fixtures.backends import all_backends_module
from tests.fixtures.oci import OCI_INDEX, OCI_MANIFEST, Image, descriptor, push_image, put_manifest
from tests.fixtures.server import DockyardServer

pytestmark = all_backends_module

PROBLEM = "application/problem+json"
ACME = ("acme", "acme-password")
GLOBEX = ("globex", "globex-password")
REPOSITORY_FIELDS = {
    "namespace",
    "name",
    "full_name",
    "account_id",
    "account",
    "allowed_actions",
    "repo_type",
    "summary",
    "detail",
    "created_at",
    "updated_at",
    "tag_count",
    "size",
}


@pytest.fixture(scope="module")
def server(registry: DockyardServer) -> DockyardServer:
    """The module's server with accounts ``acme`` and ``globex`` (room for many
    namespaces), each root's registry password the same as its console password."""
    with registry.client() as admin:
        for name, password in (ACME, GLOBEX):
            r = admin.post(
                "/api/v1/accounts",
                json={"name": name, "password": password, "namespace_quota": 50},
            )
            assert r.status_code == 201, r.text
    for auth in (ACME, GLOBEX):
        with registry.client(auth=auth) as root:
            r = root.put("/api/v1/me/registry-password", json={"password": auth[1]})
            assert r.status_code == 204, r.text
    return registry


@pytest.fixture
def acme(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=ACME) as client:
        yield client


def _namespace(client: httpx.Client, name: str, **settings: Any) -> None:
    r = client.post("/api/v1/namespaces", json={"name": name, **settings})
    assert r.status_code == 201, r.text


def _create(client: httpx.Client, full_name: str, **fields: Any) -> httpx.Response:
    namespace, _, name = full_name.partition("/")
    return client.post(
        "/api/v1/repositories", json={"namespace": namespace, "name": name, **fields}
    )


def _problem(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == status
    assert words in r.json()["detail"], r.json()["detail"]


def _all(client: httpx.Client, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of a listing, following ``next``; and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        next_url = r.json().get("next")
        pages += 1
    return items, pages


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _image_size(image: Image) -> int:
    return len(image.manifest) + sum(len(b) for b in image.blobs.values())


def test_create_get_update_delete(acme: httpx.Client) -> None:
    _namespace(acme, "acme-crud")
    _namespace(acme, "acme-pubdef", default_repo_type="public")
    r = _create(acme, "acme-crud/web", summary="The web front end", detail="# Web\n\nDocs.")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == REPOSITORY_FIELDS
    assert body["namespace"] == "acme-crud"
    assert body["name"] == "web"
    assert body["full_name"] == "acme-crud/web"
    assert body["repo_type"] == "private"  # the namespace's default
    assert body["summary"] == "The web front end"
    assert body["detail"] == "# Web\n\nDocs."
    assert body["tag_count"] == 0
    assert body["size"] == 0
    assert body["created_at"] == body["updated_at"]
    assert r.headers["location"] == "/api/v1/repositories/acme-crud/web"
    assert acme.get("/api/v1/repositories/acme-crud/web").json() == body

    _problem(_create(acme, "acme-crud/web"), 409, "already exists")
    assert _create(acme, "acme-pubdef/site").json()["repo_type"] == "public"
    assert _create(acme, "acme-pubdef/inner", repo_type="private").json()["repo_type"] == "private"
    assert _create(acme, "acme-crud/open", repo_type="public").json()["repo_type"] == "public"

    r = acme.patch("/api/v1/repositories/acme-crud/web", json={"summary": "Front end"})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["summary"] == "Front end"
    assert patched["detail"] == "# Web\n\nDocs."  # untouched
    assert patched["repo_type"] == "private"
    assert _time(patched["updated_at"]) > _time(body["updated_at"])
    assert patched["created_at"] == body["created_at"]
    r = acme.patch("/api/v1/repositories/acme-crud/web", json={"repo_type": "public", "detail": ""})
    assert r.json()["repo_type"] == "public"
    assert r.json()["detail"] == ""
    assert acme.get("/api/v1/repositories/acme-crud/web").json()["repo_type"] == "public"

    assert acme.delete("/api/v1/repositories/acme-crud/web").status_code == 204
    _problem(acme.get("/api/v1/repositories/acme-crud/web"), 404, "does not exist")
    _problem(acme.delete("/api/v1/repositories/acme-crud/web"), 404, "does not exist")
    _problem(acme.patch("/api/v1/repositories/acme-crud/web", json={}), 404, "does not exist")
    # The name is free again.
    assert _create(acme, "acme-crud/web").status_code == 201


def test_missing_namespace_says_how_to_create_it(acme: httpx.Client) -> None:
    r = _create(acme, "acme-nowhere/app")
    _problem(r, 404, "namespace 'acme-nowhere' does not exist")
    assert "POST /api/v1/namespaces" in r.json()["detail"]
    _problem(acme.get("/api/v1/repositories/acme-nowhere/app"), 404, "does not exist")


def test_listing_filters_and_pages(server: DockyardServer, acme: httpx.Client) -> None:
    _namespace(acme, "acme-list")
    _namespace(acme, "acme-list2")
    names = ["acme-list/web", "acme-list/api", "acme-list/web-admin", "acme-list2/web"]
    for name in names:
        r = _create(acme, name, repo_type="public" if "admin" in name else "private")
        assert r.status_code == 201, r.text
    with server.client(auth=GLOBEX) as globex:
        _namespace(globex, "globex-list")
        assert _create(globex, "globex-list/web").status_code == 201

        items, _ = _all(acme, "/api/v1/repositories?namespace=acme-list")
        assert [i["full_name"] for i in items] == sorted(names[:3])
        items, _ = _all(acme, "/api/v1/repositories?q=WEB")
        full = [i["full_name"] for i in items]
        assert {"acme-list/web", "acme-list/web-admin", "acme-list2/web"} <= set(full)
        assert "acme-list/api" not in full
        assert "globex-list/web" not in full  # another account's
        items, _ = _all(acme, "/api/v1/repositories?repo_type=public&namespace=acme-list")
        assert [i["full_name"] for i in items] == ["acme-list/web-admin"]
        items, _ = _all(acme, "/api/v1/repositories?repo_type=private&namespace=acme-list")
        assert [i["full_name"] for i in items] == ["acme-list/api", "acme-list/web"]

        # Pages keep the filters: two pages of two, then one of none.
        items, pages = _all(acme, "/api/v1/repositories?limit=2&q=web")
        assert [i["full_name"] for i in items] == sorted(
            n for n in full if "web" in n.partition("/")[2]
        )
        assert pages >= 2
        first = acme.get("/api/v1/repositories", params={"limit": 1, "namespace": "acme-list"})
        assert "namespace=acme-list" in first.json()["next"]
        everything, _ = _all(acme, "/api/v1/repositories?limit=1")
        listed = [i["full_name"] for i in everything]
        assert listed == sorted(listed)
        assert len(listed) == len(set(listed))
        assert set(names) <= set(listed)

        # Each root sees its own account's only; the administrator sees all, and
        # ?account= narrows to one.
        globex_items, _ = _all(globex, "/api/v1/repositories")
        assert {i["full_name"] for i in globex_items} == {"globex-list/web"}
        with server.client() as admin:
            every, _ = _all(admin, "/api/v1/repositories")
            assert {"globex-list/web", *names} <= {i["full_name"] for i in every}
            only, _ = _all(admin, "/api/v1/repositories?account=globex")
            assert [i["full_name"] for i in only] == ["globex-list/web"]
            assert _all(admin, "/api/v1/repositories?account=nobody")[0] == []


def test_tags_sizes_order_and_delete(acme: httpx.Client) -> None:
    _namespace(acme, "acme-tags")
    name = "acme-tags/app"
    v1 = push_image(acme, name, "v1", layers=2, layer_size=3000)
    v2 = push_image(acme, name, "v2", layers=1, layer_size=5000)
    amd64 = push_image(acme, name, None, layers=1, layer_size=700)
    arm64 = push_image(acme, name, None, layers=2, layer_size=900)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, image.manifest, platform={"os": "linux", "architecture": arch})
            for image, arch in ((amd64, "amd64"), (arm64, "arm64"))
        ],
    }
    r = put_manifest(acme, name, "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    index_body = json.dumps(index).encode()
    index_digest = r.headers["docker-content-digest"]
    # Re-tagging v1's manifest as "latest" makes it the newest push.
    assert (
        put_manifest(acme, name, "latest", json.loads(v1.manifest), OCI_MANIFEST).status_code == 201
    )

    r = acme.get(f"/api/v1/repositories/{name}/tags")
    assert r.status_code == 200, r.text
    tags = r.json()["items"]
    assert [x["name"] for x in tags] == ["latest", "multi", "v2", "v1"]  # newest push first
    by_name = {x["name"]: x for x in tags}
    assert by_name["v1"] == {
        "name": "v1",
        "digest": v1.digest,
        "media_type": OCI_MANIFEST,
        "size": _image_size(v1),
        "pushed_at": by_name["v1"]["pushed_at"],
        "scan": by_name["v1"]["scan"],  # its vulnerability scan: tests/scanning
    }
    assert by_name["v1"]["scan"]["status"] in ("none", "queued", "scanning", "failed", "complete")
    assert by_name["v2"]["size"] == _image_size(v2)
    assert by_name["latest"]["digest"] == v1.digest
    assert by_name["multi"]["media_type"] == OCI_INDEX
    assert by_name["multi"]["digest"] == index_digest
    assert by_name["multi"]["size"] == len(index_body) + _image_size(amd64) + _image_size(arm64)
    pushed = [_time(by_name[x]["pushed_at"]) for x in ("v1", "v2", "latest")]
    assert pushed == sorted(pushed)
    assert by_name["v1"]["pushed_at"].endswith("Z")

    by_order = acme.get(f"/api/v1/repositories/{name}/tags", params={"order": "name"}).json()
    assert [x["name"] for x in by_order["items"]] == ["latest", "multi", "v1", "v2"]
    filtered = acme.get(f"/api/v1/repositories/{name}/tags", params={"q": "v"}).json()
    assert [x["name"] for x in filtered["items"]] == ["v2", "v1"]
    for order, expected in (("pushed", ["latest", "multi", "v2", "v1"]), ("name", None)):
        items, pages = _all(acme, f"/api/v1/repositories/{name}/tags?limit=1&order={order}")
        assert [x["name"] for x in items] == (expected or ["latest", "multi", "v1", "v2"])
        assert pages == 5
    _problem(
        acme.get(f"/api/v1/repositories/{name}/tags", params={"after": "gone"}),
        400,
        "list again from the start",
    )
    by_size = acme.get(f"/api/v1/repositories/{name}/tags", params={"order": "size"}).json()
    sizes = [x["size"] for x in by_size["items"]]
    assert sizes == sorted(sizes, reverse=True)
    turned = {"order": "size", "direction": "asc", "limit": "2"}
    first = acme.get(f"/api/v1/repositories/{name}/tags", params=turned).json()
    assert [x["size"] for x in first["items"]] == sorted(sizes)[:2]
    assert "direction=asc" in first["next"]
    assert "order=size" in first["next"]
    following = acme.get(first["next"]).json()
    assert [x["size"] for x in following["items"]] == sorted(sizes)[2:]
    tags_url = f"/api/v1/repositories/{name}/tags"
    _problem(acme.get(tags_url, params={"order": "largest"}), 400, "order is one of")
    _problem(acme.get(tags_url, params={"direction": "up"}), 400, "direction is one of")

    # (the scan a push queues may end between the two reads: compared apart)
    one = acme.get(f"/api/v1/repositories/{name}/tags/v2").json()
    assert one.pop("scan")["status"] in ("none", "queued", "scanning", "complete", "failed")
    assert one == {k: v for k, v in by_name["v2"].items() if k != "scan"}
    _problem(acme.get(f"/api/v1/repositories/{name}/tags/nope"), 404, "tag 'nope' does not exist")
    _problem(acme.get(f"/api/v1/repositories/{name}/tags/-bad"), 400, "must match")

    repo = acme.get(f"/api/v1/repositories/{name}").json()
    assert repo["tag_count"] == 4
    blobs = {**v1.blobs, **v2.blobs, **amd64.blobs, **arm64.blobs}
    manifests = [v1.manifest, v2.manifest, amd64.manifest, arm64.manifest, index_body]
    assert repo["size"] == sum(map(len, blobs.values())) + sum(map(len, manifests))

    # Deleting a tag removes the tag; the manifest stays, reachable by digest.
    assert acme.delete(f"/api/v1/repositories/{name}/tags/v1").status_code == 204
    _problem(acme.delete(f"/api/v1/repositories/{name}/tags/v1"), 404, "does not exist")
    assert acme.get(f"/v2/{name}/manifests/v1").status_code == 404
    headers = {"Accept": OCI_MANIFEST}
    assert acme.get(f"/v2/{name}/manifests/{v1.digest}", headers=headers).content == v1.manifest
    after = acme.get(f"/api/v1/repositories/{name}").json()
    assert after["tag_count"] == 3
    assert _time(after["updated_at"]) > _time(repo["updated_at"])
    assert after["size"] == repo["size"]
    assert "v1" not in [x["name"] for x in _all(acme, f"/api/v1/repositories/{name}/tags")[0]]


def test_a_push_updates_the_repository(acme: httpx.Client) -> None:
    _namespace(acme, "acme-touch")
    created = _create(acme, "acme-touch/app").json()
    push_image(acme, "acme-touch/app", "v1")
    pushed = acme.get("/api/v1/repositories/acme-touch/app").json()
    assert _time(pushed["updated_at"]) > _time(created["updated_at"])
    assert pushed["tag_count"] == 1


def test_type_decides_anonymous_pull(server: DockyardServer, acme: httpx.Client) -> None:
    _namespace(acme, "acme-vis")
    image = push_image(acme, "acme-vis/app", "v1")
    url = "/v2/acme-vis/app/manifests/v1"
    headers = {"Accept": OCI_MANIFEST}
    with server.client(auth=None) as anonymous:
        assert anonymous.get(url, headers=headers).status_code == 401
        r = acme.patch("/api/v1/repositories/acme-vis/app", json={"repo_type": "public"})
        assert r.status_code == 200
        r = anonymous.get(url, headers=headers)
        assert r.status_code == 200
        assert r.content == image.manifest
        acme.patch("/api/v1/repositories/acme-vis/app", json={"repo_type": "private"})
        assert anonymous.get(url, headers=headers).status_code == 401


def test_deleted_repository_is_unknown_to_the_registry(acme: httpx.Client) -> None:
    _namespace(acme, "acme-del", auto_create_repo=False)
    _create(acme, "acme-del/app")
    push_image(acme, "acme-del/app", "v1")
    assert acme.delete("/api/v1/repositories/acme-del/app").status_code == 204
    for url in ("/v2/acme-del/app/manifests/v1", "/v2/acme-del/app/tags/list"):
        r = acme.get(url)
        assert r.status_code == 404, r.text
        assert r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert "acme-del/app" not in [
        i["full_name"] for i in _all(acme, "/api/v1/repositories?namespace=acme-del")[0]
    ]


def _set_repository_quota(server: DockyardServer, account: str, quota: int) -> None:
    db = Database(load_settings(environ=server.env).effective_database_url)
    try:
        with db.write() as conn:
            conn.execute(
                sa.update(t.accounts)
                .where(t.accounts.c.name == account)
                .values(repository_quota=quota)
            )
    finally:
        db.dispose()


def test_repository_quota(server: DockyardServer) -> None:
    with server.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "quota-co", "password": "quota-pw-1"})
        assert r.status_code == 201, r.text
    auth = ("quota-co", "quota-pw-1")
    with server.client(auth=auth) as root:
        assert (
            root.put("/api/v1/me/registry-password", json={"password": auth[1]}).status_code == 204
        )
        _namespace(root, "quota-ns")
        _set_repository_quota(server, "quota-co", 2)
        assert _create(root, "quota-ns/one").status_code == 201
        push_image(root, "quota-ns/two", "v1")  # created by the push
        r = _create(root, "quota-ns/three")
        _problem(r, 403, "has 2 of its 2 repositories")
        detail = r.json()["detail"]
        assert 'PATCH /api/v1/accounts/quota-co {"repository_quota": N}' in detail
        # A push that would create one more is refused the same way.
        r = root.post("/v2/quota-ns/three/blobs/uploads/")
        assert r.status_code == 403, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert "has 2 of its 2 repositories" in error["message"]
        # Pushing into an existing repository is not creating one.
        push_image(root, "quota-ns/one", "v1")
        # The instance administrator is not bound by the quota.
        with server.client() as admin:
            assert _create(admin, "quota-ns/by-admin").status_code == 201
        assert root.delete("/api/v1/repositories/quota-ns/one").status_code == 204
        assert root.delete("/api/v1/repositories/quota-ns/by-admin").status_code == 204
        assert _create(root, "quota-ns/three").status_code == 201


def test_bad_input(acme: httpx.Client) -> None:
    _namespace(acme, "acme-bad")
    cases: list[tuple[Any, int, str]] = [
        ({"namespace": "acme-bad"}, 400, "namespace and name"),
        ({"namespace": "acme-bad", "name": 7}, 400, "namespace and name"),
        ({"namespace": "acme-bad", "name": "Bad"}, 400, "lowercase"),
        ({"namespace": "acme-bad", "name": "a/b"}, 400, "exactly one '/'"),
        ({"namespace": "acme-bad", "name": ""}, 400, "empty"),
        ({"namespace": "acme-bad", "name": "-x"}, 400, "lowercase"),
        ({"namespace": "acme-bad", "name": "ok", "repo_type": "secret"}, 400, "public"),
        ({"namespace": "acme-bad", "name": "ok", "summary": "x" * 101}, 400, "at most 100"),
        ({"namespace": "acme-bad", "name": "ok", "summary": 5}, 400, "summary must be a string"),
        ({"namespace": "acme-bad", "name": "ok", "detail": "x" * 65537}, 400, "64 KiB"),
        ({"namespace": "acme-bad", "name": "ok", "colour": "red"}, 400, "unknown field 'colour'"),
    ]
    for body, status, words in cases:
        _problem(acme.post("/api/v1/repositories", json=body), status, words)
    # The longest allowed summary and detail are fine.
    r = _create(acme, "acme-bad/ok", summary="é" * 100, detail="x" * 65536)
    assert r.status_code == 201, r.text
    r = acme.post(
        "/api/v1/repositories", content=b"{nope", headers={"content-type": "application/json"}
    )
    _problem(r, 400, "not valid JSON")
    _problem(acme.post("/api/v1/repositories", json=["a"]), 400, "JSON object")
    for body, words in (
        ({"repo_type": "PUBLIC"}, "public"),
        ({"summary": "y" * 101}, "at most 100"),
        ({"detail": None, "extra": 1}, "unknown field 'extra'"),
    ):
        _problem(acme.patch("/api/v1/repositories/acme-bad/ok", json=body), 400, words)
    assert acme.get("/api/v1/repositories/acme-bad/ok").json()["summary"] == "é" * 100
    _problem(acme.get("/api/v1/repositories/acme-bad/Nope"), 400, "lowercase")
    _problem(acme.get("/api/v1/repositories", params={"repo_type": "shared"}), 400, "public")
    _problem(acme.get("/api/v1/repositories", params={"limit": "0"}), 400, "limit")


def test_who_may_do_what(server: DockyardServer, acme: httpx.Client) -> None:
    _namespace(acme, "acme-authz")
    _namespace(acme, "acme-authz2")
    push_image(acme, "acme-authz/app", "v1")
    push_image(acme, "acme-authz2/app", "v1")
    one = "/api/v1/repositories/acme-authz/app"
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/repositories", None),
        ("POST", "/api/v1/repositories", {"namespace": "acme-authz", "name": "new"}),
        ("GET", one, None),
        ("PATCH", one, {"summary": "hi"}),
        ("DELETE", one, None),
        ("GET", one + "/tags", None),
        ("GET", one + "/tags/v1", None),
        ("DELETE", one + "/tags/v1", None),
        ("PATCH", "/api/v1/namespaces/acme-authz", {"auto_create_repo": False}),
    ]
    with server.client(auth=None) as anonymous:
        for method, url, body in routes:
            _problem(anonymous.request(method, url, json=body), 401, "log in")
    with server.client(auth=GLOBEX) as globex:
        for method, url, body in routes[1:]:
            _problem(globex.request(method, url, json=body), 403, "may not do cr:")
        listed = [i["full_name"] for i in _all(globex, "/api/v1/repositories")[0]]
        assert not [n for n in listed if n.startswith("acme-")]

    # A RAM user with no policy sees nothing and may do nothing.
    r = acme.post("/api/v1/ram/users", json={"name": "viewer", "password": "viewer-console"})
    assert r.status_code == 201, r.text
    with server.client(auth=("viewer@acme", "viewer-console")) as viewer:
        assert viewer.get("/api/v1/repositories").json() == {"items": []}
        for method, url, body in routes[1:]:
            _problem(viewer.request(method, url, json=body), 403, "may not do cr:")

        # Allowed to list one namespace's repositories: sees those only, on every page.
        document = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["cr:ListRepository", "cr:ListRepositoryTag"],
                    "Resource": "acs:cr:*:*:repository/acme-authz2/*",
                }
            ],
        }
        r = acme.post("/api/v1/ram/policies", json={"name": "SeeAuthz2", "document": document})
        assert r.status_code == 201, r.text
        r = acme.put("/api/v1/ram/users/viewer/policies/SeeAuthz2")
        assert r.status_code == 204, server.log()[-3000:]
        items, _ = _all(viewer, "/api/v1/repositories?limit=1")
        assert [i["full_name"] for i in items] == ["acme-authz2/app"]
        assert viewer.get("/api/v1/repositories/acme-authz2/app/tags").status_code == 200
        _problem(viewer.get("/api/v1/repositories/acme-authz2/app"), 403, "cr:GetRepository")
        _problem(viewer.get(one + "/tags"), 403, "cr:ListRepositoryTag")

        # Read-only access: everything of the account in view, nothing to change.
        r = acme.put("/api/v1/ram/users/viewer/policies/AliyunContainerRegistryReadOnlyAccess")
        assert r.status_code == 204
        items, _ = _all(viewer, "/api/v1/repositories?q=app&namespace=acme-authz")
        assert [i["full_name"] for i in items] == ["acme-authz/app"]
        assert viewer.get(one).status_code == 200
        assert viewer.get(one + "/tags/v1").status_code == 200
        _problem(viewer.patch(one, json={"summary": "x"}), 403, "cr:UpdateRepository")
        _problem(viewer.delete(one + "/tags/v1"), 403, "cr:DeleteRepositoryImage")
    # The root's own changes all work.
    assert acme.delete(one + "/tags/v1").status_code == 204
    assert acme.delete(one).status_code == 204
