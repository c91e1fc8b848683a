"""Authentication: the /v2/ base endpoint, the Docker token flow, what a bearer token
allows, forged and expired tokens, and anonymous access."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, make_server
from tests.registry.helpers import (
    Pushed,
    assert_error,
    connect,
    digest_of,
    parse_challenge,
    push_blob,
    push_image,
    unique,
)


def _b64decode(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _b64encode(doc: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def _token(c: httpx.Client, *scopes: str, **params: str) -> dict[str, Any]:
    query: list[tuple[str, str]] = [("service", "dockyard")]
    query += [("scope", s) for s in scopes]
    query += list(params.items())
    r = c.get("/auth/token", params=query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _bearer(registry: DockyardServer, token: str) -> httpx.Client:
    return connect(registry, auth=None, headers={"Authorization": f"Bearer {token}"})


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = _b64decode(token.split(".")[1])
    return claims


def _granted(token: str) -> dict[tuple[str, str], list[str]]:
    """The access claim as {(type, name): actions}, leaving out entries that grant nothing."""
    return {(a["type"], a["name"]): a["actions"] for a in _claims(token)["access"] if a["actions"]}


@pytest.fixture(scope="module")
def public_ns(registry: DockyardServer) -> str:
    name = "pub" + unique("ns")[3:9]
    registry.cli("namespace", "create", name, "--public")
    return name


# -- /v2/ --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/", "/v2"])
def test_base_with_credentials(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert r.json() == {}


def test_base_without_credentials(anon: httpx.Client, registry: DockyardServer) -> None:
    r = anon.get("/v2/")
    assert_error(r, 401, "UNAUTHORIZED")
    challenge = parse_challenge(r.headers["WWW-Authenticate"])
    assert challenge["realm"] == f"{registry.url}/auth/token"
    assert challenge["service"] == "dockyard"
    assert "scope" not in challenge
    assert "error" not in challenge


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"admin:wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:x").decode(),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer not.a.jwt",
        "Bearer",
        "Digest username=admin",
    ],
)
def test_base_with_bad_credentials(registry: DockyardServer, authorization: str) -> None:
    with connect(registry, auth=None, headers={"Authorization": authorization}) as c:
        r = c.get("/v2/")
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"].startswith("Bearer ")
        r = c.get("/v2/library/anything/tags/list")
        assert_error(r, 401, "UNAUTHORIZED")


# -- the token endpoint ------------------------------------------------------------------


def test_token_response_and_jwt(client: httpx.Client, anon: httpx.Client) -> None:
    scope = "repository:library/app:pull,push"
    before = time.time()
    body = _token(client, scope)
    assert set(body) >= {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    issued = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
    assert issued.tzinfo is not None
    assert before - 2 <= issued.astimezone(UTC).timestamp() <= time.time() + 2

    token = body["token"]
    header_part, _, signature = token.split(".")
    header = _b64decode(header_part)
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert signature

    jwks = anon.get("/auth/jwks").json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["ES256"], audience="dockyard", issuer="dockyard"
    )
    assert claims["sub"] == "admin"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["access"] == [
        {"type": "repository", "name": "library/app", "actions": ["pull", "push"]}
    ]


def test_token_with_several_scopes(client: httpx.Client) -> None:
    body = _token(
        client,
        "repository:library/a:pull",
        "repository:library/b:push repository:library/c:delete",  # space-separated
        "registry:catalog:*",
    )
    assert _granted(body["token"]) == {
        ("repository", "library/a"): ["pull"],
        ("repository", "library/b"): ["push"],
        ("repository", "library/c"): ["delete"],
        ("registry", "catalog"): ["*"],
    }


def test_token_wildcard_and_unknown_actions(client: httpx.Client) -> None:
    body = _token(client, "repository:library/a:*", "repository:library/b:pull,frobnicate")
    granted = _granted(body["token"])
    assert sorted(granted["repository", "library/a"]) == ["delete", "pull", "push"]
    assert granted["repository", "library/b"] == ["pull"]


def test_token_without_scope(client: httpx.Client) -> None:
    body = _token(client)
    assert _claims(body["token"])["access"] == []


def test_token_for_an_invalid_repository_name_grants_nothing(client: httpx.Client) -> None:
    body = _token(client, "repository:Bad/Name:pull", "repository:a/b/c:pull")
    assert _granted(body["token"]) == {}


def test_malformed_scope(client: httpx.Client) -> None:
    r = client.get("/auth/token", params={"scope": "garbage"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "auth", [("admin", "wrong password"), ("nobody", ADMIN_PASSWORD), ("admin", "")]
)
def test_token_with_a_wrong_password(registry: DockyardServer, auth: tuple[str, str]) -> None:
    with connect(registry, auth=auth) as c:
        r = c.get("/auth/token", params={"scope": "repository:library/a:pull"})
        assert r.status_code == 401
        assert "token" not in r.json()


def test_token_oauth2_password_grant(anon: httpx.Client, registry: DockyardServer) -> None:
    r = anon.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "service": "dockyard",
            "scope": "repository:library/oauth:pull",
            "client_id": "test",
        },
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert _granted(token) == {("repository", "library/oauth"): ["pull"]}
    r = anon.post(
        "/auth/token",
        data={"grant_type": "password", "username": "admin", "password": "nope"},
    )
    assert r.status_code == 401
    r = anon.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 401


@pytest.mark.parametrize("declared", [True, False])
def test_token_oauth2_form_is_bounded(anon: httpx.Client, declared: bool) -> None:
    """A form over 64 KiB is refused (413, in the registry's error format) before it is
    read, or as soon as a chunked one passes the bound; the endpoint goes on working."""
    body = b"scope=" + b"[" * (64 * 1024)

    def chunks() -> Iterator[bytes]:
        yield body

    r = anon.post(
        "/auth/token",
        content=body if declared else chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert r.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert r.headers["connection"] == "close"
    assert anon.get("/auth/token", params={"scope": "garbage"}).status_code == 400


# -- using bearer tokens -----------------------------------------------------------------


def test_bearer_token_push_and_pull(
    client: httpx.Client, registry: DockyardServer, repo: str
) -> None:
    token = _token(client, f"repository:{repo}:pull,push")["token"]
    with _bearer(registry, token) as c:
        assert c.get("/v2/").status_code == 200
        digest = push_blob(c, repo, b"pushed with a token")
        pushed = push_image(c, repo, "latest")
        r = c.get(f"/v2/{repo}/manifests/latest")
        assert r.status_code == 200
        assert r.headers["Docker-Content-Digest"] == pushed.digest
        assert c.get(f"/v2/{repo}/blobs/{digest}").content == b"pushed with a token"
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest"]
        # No delete in the token.
        r = c.delete(f"/v2/{repo}/manifests/{pushed.digest}")
        assert_error(r, 401, "UNAUTHORIZED")
        challenge = parse_challenge(r.headers["WWW-Authenticate"])
        assert challenge["error"] == "insufficient_scope"
        assert challenge["scope"] == f"repository:{repo}:delete"


def test_pull_token_does_not_allow_push(
    client: httpx.Client, registry: DockyardServer, repo: str
) -> None:
    push_blob(client, repo, b"exists")
    token = _token(client, f"repository:{repo}:pull")["token"]
    with _bearer(registry, token) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/")
        assert_error(r, 401, "UNAUTHORIZED")
        challenge = parse_challenge(r.headers["WWW-Authenticate"])
        assert challenge["error"] == "insufficient_scope"
        assert challenge["scope"] == f"repository:{repo}:push"


def test_token_for_one_repository_does_not_open_another(
    client: httpx.Client, registry: DockyardServer, repo: str
) -> None:
    other = f"library/{unique()}"
    push_image(client, repo, "latest")
    push_image(client, other, "latest")
    token = _token(client, f"repository:{repo}:pull,push,delete")["token"]
    with _bearer(registry, token) as c:
        assert c.get(f"/v2/{repo}/manifests/latest").status_code == 200
        for method, path in [
            ("GET", f"/v2/{other}/manifests/latest"),
            ("GET", f"/v2/{other}/tags/list"),
            ("POST", f"/v2/{other}/blobs/uploads/"),
            ("DELETE", f"/v2/{other}/manifests/latest"),
        ]:
            r = c.request(method, path)
            assert_error(r, 401, "UNAUTHORIZED")
            challenge = parse_challenge(r.headers["WWW-Authenticate"])
            assert challenge["error"] == "insufficient_scope"
            assert challenge["scope"].startswith(f"repository:{other}:")
        # Nor does it list the catalog.
        r = c.get("/v2/_catalog")
        assert_error(r, 401, "UNAUTHORIZED")
        assert parse_challenge(r.headers["WWW-Authenticate"])["scope"] == "registry:catalog:*"


@pytest.mark.parametrize("source_exists", [True, False])
def test_mount_with_a_token_that_does_not_name_the_source(
    client: httpx.Client, registry: DockyardServer, repo: str, source_exists: bool
) -> None:
    """As distribution does: a challenge for both repositories, so that the client
    fetches a token naming the source too and the mount succeeds. The challenge is the
    same whether the source exists or not (it tells nothing about the source)."""
    source = f"library/{unique()}"
    data = f"layer of {source}".encode()
    digest = push_blob(client, source, data) if source_exists else digest_of(data)
    token = _token(client, f"repository:{repo}:pull,push")["token"]
    with _bearer(registry, token) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
        assert_error(r, 401, "UNAUTHORIZED")
    challenge = parse_challenge(r.headers["WWW-Authenticate"])
    assert challenge["scope"] == f"repository:{repo}:pull,push repository:{source}:pull"
    assert challenge["error"] == "insufficient_scope"
    assert challenge["realm"] == f"{registry.url}/auth/token"
    assert_error(client.head(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # What a client does with the challenge: a token for its scopes, and the same request.
    r = client.get(
        challenge["realm"], params={"service": challenge["service"], "scope": challenge["scope"]}
    )
    assert r.status_code == 200, r.text
    assert _granted(r.json()["token"]) == {
        ("repository", repo): ["pull", "push"],
        ("repository", source): ["pull"],
    }
    with _bearer(registry, r.json()["token"]) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
        if source_exists:
            assert r.status_code == 201, r.text
            assert c.get(f"/v2/{repo}/blobs/{digest}").content == data
        else:  # nothing to mount: a plain upload
            assert r.status_code == 202, r.text
            assert r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")


def test_mount_with_a_token_refused_the_source_falls_back_to_an_upload(
    client: httpx.Client, registry: DockyardServer
) -> None:
    """The token names the source and grants nothing there: a plain upload, not another
    challenge (the client would ask for the same token again, and loop)."""
    source = f"library/{unique()}"
    digest = push_blob(client, source, b"secret layer")
    account = unique("mounter")
    body = {"name": account, "password": "mounter-console-pw"}
    assert client.post("/api/v1/accounts", json=body).status_code == 201
    auth = (account, "mounter-console-pw")
    r = client.put("/api/v1/me/registry-password", json={"password": "mounter-reg-pw"}, auth=auth)
    assert r.status_code == 204, r.text
    assert client.post("/api/v1/namespaces", json={"name": account}, auth=auth).status_code == 201
    repo = f"{account}/app"
    with connect(registry, auth=(account, "mounter-reg-pw")) as own:
        token = _token(own, f"repository:{repo}:pull,push", f"repository:{source}:pull")["token"]
    assert _granted(token) == {("repository", repo): ["pull", "push"]}
    with _bearer(registry, token) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
        assert r.status_code == 202, r.text
        assert r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")
    assert_error(client.head(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_catalog_with_a_token(client: httpx.Client, registry: DockyardServer) -> None:
    token = _token(client, "registry:catalog:*")["token"]
    with _bearer(registry, token) as c:
        r = c.get("/v2/_catalog")
        assert r.status_code == 200
        assert isinstance(r.json()["repositories"], list)


# -- forged and expired tokens -----------------------------------------------------------


def _assert_rejected(registry: DockyardServer, token: str) -> None:
    with _bearer(registry, token) as c:
        for path in ("/v2/", "/v2/library/forged/tags/list"):
            r = c.get(path)
            assert_error(r, 401, "UNAUTHORIZED")
            assert parse_challenge(r.headers["WWW-Authenticate"])["error"] == "invalid_token"


def test_tampered_signature(client: httpx.Client, registry: DockyardServer) -> None:
    token = _token(client, "repository:library/forged:pull")["token"]
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    _assert_rejected(registry, f"{head}.{payload}.{flipped}")
    _assert_rejected(registry, f"{head}.{payload}.")
    _assert_rejected(registry, f"{head}.{payload}")


def test_tampered_claims(client: httpx.Client, registry: DockyardServer) -> None:
    token = _token(client, "repository:library/forged:pull")["token"]
    head, payload, signature = token.split(".")
    claims = _b64decode(payload)
    claims["access"] = [{"type": "repository", "name": "library/forged", "actions": ["*"]}]
    _assert_rejected(registry, f"{head}.{_b64encode(claims)}.{signature}")


def test_token_signed_with_another_key(client: httpx.Client, registry: DockyardServer) -> None:
    genuine = _token(client, "repository:library/forged:pull")["token"]
    kid = _b64decode(genuine.split(".")[0])["kid"]
    claims = _claims(genuine)
    other_key = ec.generate_private_key(ec.SECP256R1())
    for headers in ({"kid": kid}, {}, {"kid": "some-other-key"}):
        forged = jwt.encode(claims, other_key, algorithm="ES256", headers=headers)
        _assert_rejected(registry, forged)


def test_unsigned_and_hmac_tokens(client: httpx.Client, registry: DockyardServer) -> None:
    genuine = _token(client, "repository:library/forged:pull")["token"]
    header = _b64decode(genuine.split(".")[0])
    claims = _claims(genuine)
    for alg in ("none", "None", "NONE"):
        unsigned = f"{_b64encode({**header, 'alg': alg})}.{_b64encode(claims)}."
        _assert_rejected(registry, unsigned)
    hmac = jwt.encode(claims, "secret-key-of-32-bytes-or-more!!", algorithm="HS256")
    _assert_rejected(registry, hmac)


def test_token_for_another_service(client: httpx.Client, registry: DockyardServer) -> None:
    """A token whose audience is not this registry is refused, even if well signed."""
    genuine = _token(client, "repository:library/forged:pull")["token"]
    head, payload, signature = genuine.split(".")
    claims = _b64decode(payload)
    claims["aud"] = "another-registry"
    _assert_rejected(registry, f"{head}.{_b64encode(claims)}.{signature}")


def test_expired_token(tmp_path: Path) -> None:
    server = make_server(tmp_path, {"DOCKYARD_TOKEN_TTL": "1"})
    server.start()
    try:
        with connect(server) as c:
            body = _token(c, "repository:library/app:pull")
            assert body["expires_in"] == 1
            claims = _claims(body["token"])
            assert claims["exp"] - claims["iat"] == 1
        time.sleep(2.1)
        with _bearer(server, body["token"]) as c:
            r = c.get("/v2/")
            assert_error(r, 401, "UNAUTHORIZED")
            assert parse_challenge(r.headers["WWW-Authenticate"])["error"] == "invalid_token"
            r = c.get("/v2/library/app/tags/list")
            assert_error(r, 401, "UNAUTHORIZED")
    finally:
        server.stop()


# -- anonymous access --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "manifests/latest", "pull"),
        ("HEAD", "manifests/latest", "pull"),
        ("GET", "blobs/{digest}", "pull"),
        ("HEAD", "blobs/{digest}", "pull"),
        ("GET", "tags/list", "pull"),
        ("GET", "referrers/{digest}", "pull"),
        ("POST", "blobs/uploads/", "push"),
        ("PUT", "manifests/latest", "push"),
        ("DELETE", "manifests/latest", "delete"),
        ("DELETE", "blobs/{digest}", "delete"),
    ],
)
def test_anonymous_on_a_private_repository(
    anon: httpx.Client, image_repo: tuple[str, Pushed], method: str, path: str, action: str
) -> None:
    repo, pushed = image_repo
    r = anon.request(method, f"/v2/{repo}/{path.format(digest=pushed.digest)}")
    assert_error(r, 401, "UNAUTHORIZED")
    challenge = parse_challenge(r.headers["WWW-Authenticate"])
    assert challenge["scope"] == f"repository:{repo}:{action}"
    assert challenge["service"] == "dockyard"
    assert challenge["realm"].endswith("/auth/token")
    assert "error" not in challenge


def test_anonymous_catalog(anon: httpx.Client) -> None:
    r = anon.get("/v2/_catalog")
    assert_error(r, 401, "UNAUTHORIZED")
    assert parse_challenge(r.headers["WWW-Authenticate"])["scope"] == "registry:catalog:*"


def test_anonymous_token_for_a_private_repository_grants_nothing(
    client: httpx.Client, anon: httpx.Client, registry: DockyardServer, repo: str
) -> None:
    push_image(client, repo, "latest")
    body = _token(anon, f"repository:{repo}:pull,push")
    assert _claims(body["token"])["sub"] == "anonymous"
    assert _granted(body["token"]) == {}
    with _bearer(registry, body["token"]) as c:
        r = c.get(f"/v2/{repo}/manifests/latest")
        assert_error(r, 401, "UNAUTHORIZED")
        assert parse_challenge(r.headers["WWW-Authenticate"])["error"] == "insufficient_scope"


def test_public_repository(
    client: httpx.Client, anon: httpx.Client, registry: DockyardServer, public_ns: str
) -> None:
    repo = f"{public_ns}/{unique()}"
    pushed = push_image(client, repo, "latest")

    # Pulls need no credentials at all; pushes and deletes do.
    r = anon.get(f"/v2/{repo}/manifests/latest")
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == pushed.digest
    assert anon.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest"]
    r = anon.post(f"/v2/{repo}/blobs/uploads/")
    assert_error(r, 401, "UNAUTHORIZED")
    assert parse_challenge(r.headers["WWW-Authenticate"])["scope"] == f"repository:{repo}:push"

    # An anonymous token gets exactly the allowed part of what it asks for.
    body = _token(anon, f"repository:{repo}:pull,push,delete")
    assert _granted(body["token"]) == {("repository", repo): ["pull"]}
    with _bearer(registry, body["token"]) as c:
        assert c.get(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 200
        r = c.delete(f"/v2/{repo}/manifests/{pushed.digest}")
        assert_error(r, 401, "UNAUTHORIZED")
    assert client.get(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 200


def test_private_repository_in_a_public_namespace(
    client: httpx.Client, anon: httpx.Client, registry: DockyardServer, public_ns: str
) -> None:
    """A namespace's default type is only a default: a repository made private in a
    namespace whose default is public is closed to anonymous pulls, by every door."""
    private, public = f"{public_ns}/{unique()}", f"{public_ns}/{unique()}"
    pushed = push_image(client, private, "latest")
    push_image(client, public, "latest")
    ns, name = private.split("/")
    r = client.patch(f"/api/v1/repositories/{ns}/{name}", json={"repo_type": "private"})
    assert r.status_code == 200, r.text
    assert r.json()["repo_type"] == "private"

    # The control: its public sibling (the namespace's default) is open.
    assert anon.get(f"/v2/{public}/manifests/latest").status_code == 200
    config = json.loads(pushed.body)["config"]["digest"]
    for method, path in [
        ("GET", "manifests/latest"),
        ("HEAD", "manifests/latest"),
        ("GET", f"manifests/{pushed.digest}"),
        ("GET", f"blobs/{config}"),
        ("HEAD", f"blobs/{config}"),
        ("GET", "tags/list"),
        ("GET", f"referrers/{pushed.digest}"),
    ]:
        r = anon.request(method, f"/v2/{private}/{path}")
        assert_error(r, 401, "UNAUTHORIZED")
        assert (
            parse_challenge(r.headers["WWW-Authenticate"])["scope"] == f"repository:{private}:pull"
        )
    # Nor does an anonymous token open it.
    body = _token(anon, f"repository:{private}:pull", f"repository:{public}:pull")
    assert _granted(body["token"]) == {("repository", public): ["pull"]}
    with _bearer(registry, body["token"]) as c:
        assert_error(c.get(f"/v2/{private}/manifests/latest"), 401, "UNAUTHORIZED")
        assert c.get(f"/v2/{public}/manifests/latest").status_code == 200


def test_public_namespace_is_not_open_for_push(
    anon: httpx.Client, public_ns: str, registry: DockyardServer
) -> None:
    repo = f"{public_ns}/{unique()}"
    body = _token(anon, f"repository:{repo}:push")
    assert _granted(body["token"]) == {}
    with _bearer(registry, body["token"]) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x")
        assert_error(r, 401, "UNAUTHORIZED")
