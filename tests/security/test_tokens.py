"""Forged, expired and misused tokens are refused, by the registry (OCI error JSON,
``UNAUTHORIZED`` with a ``WWW-Authenticate`` challenge) and by the management API
(problem JSON 401).

Kinds of tokens the instance issues, each for its own audience: registry bearer tokens
(``/auth/token``), API session tokens (``/api/v1/auth/login``), temporary registry
passwords (``cr_temp_user``, ``/api/v1/tokens``) and STS SecurityTokens. A token of one
kind is never accepted as another. Some forgeries here are signed with the instance's
real key (read from the data directory), so that only the claim under test is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.oci import push_image
from tests.fixtures.server import DockyardServer, running_server

PROBLEM = "application/problem+json"
ROOT = ("tok", "tok-console-pw")
REGISTRY_ROOT = ("tok", "tok-registry-pw")
SCOPE = "repository:tok-ns/app:pull"
T = TypeVar("T")


@dataclass
class Tokens:
    server: DockyardServer
    client: httpx.Client
    key: ec.EllipticCurvePrivateKey
    registry: str
    session: str
    temp_password: str
    sts: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload))


def _compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tokens]:
    base = tmp_path_factory.mktemp("tokens")
    with running_server(base, remove=True) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        admin = ("admin", "admin-test-password")
        r = client.post("/api/v1/accounts", json={"name": ROOT[0], "password": ROOT[1]}, auth=admin)
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
        r = client.put(
            "/api/v1/me/registry-password", json={"password": REGISTRY_ROOT[1]}, auth=ROOT
        )
        assert r.status_code == 204
        assert client.post("/api/v1/namespaces", json={"name": "tok-ns"}, auth=ROOT).is_success
        with httpx.Client(base_url=server.url, auth=REGISTRY_ROOT) as pusher:
            push_image(pusher, "tok-ns/app", "v1", layers=1, layer_size=32)
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
                }
            ],
        }
        r = client.post("/api/v1/ram/roles", json={"name": "r", "trust_policy": trust}, auth=ROOT)
        assert r.status_code == 201, r.text
        r = client.put("/api/v1/ram/roles/r/policies/AliyunContainerRegistryFullAccess", auth=ROOT)
        assert r.status_code == 204
        role_arn = f"acs:ram::{account_id}:role/r"
        body = {"role_arn": role_arn, "role_session_name": "tokens"}
        sts = client.post("/api/v1/sts/assume-role", json=body, auth=ROOT).json()
        registry = client.get(
            "/auth/token", params={"service": "dockyard", "scope": SCOPE}, auth=REGISTRY_ROOT
        ).json()["token"]
        session = client.post(
            "/api/v1/auth/login", json={"username": ROOT[0], "password": ROOT[1]}
        ).json()["token"]
        temp = client.post("/api/v1/tokens", auth=ROOT).json()["password"]
        pem = (server.data_dir / "token-key.pem").read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        try:
            yield Tokens(server, client, key, registry, session, temp, sts)
        finally:
            client.close()


# -- how a refusal looks ----------------------------------------------------------------


def _registry_refuses(client: httpx.Client, token: str) -> None:
    for path in ("/v2/", "/v2/tok-ns/app/manifests/v1"):
        r = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (path, r.status_code, r.text)
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED", r.text
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="'), challenge
        assert 'error="invalid_token"' in challenge, challenge


def _api_refuses(client: httpx.Client, token: str) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"


def test_the_genuine_tokens_work(tokens: Tokens) -> None:
    """The controls: without them every refusal below could be vacuous."""
    c = tokens.client
    auth = {"Authorization": f"Bearer {tokens.registry}"}
    assert c.get("/v2/", headers=auth).status_code == 200
    assert c.get("/v2/tok-ns/app/manifests/v1", headers=auth).status_code == 200
    me = c.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens.session}"})
    assert me.status_code == 200
    assert me.json()["login"] == "tok"
    temp = c.get("/v2/tok-ns/app/manifests/v1", auth=("cr_temp_user", tokens.temp_password))
    assert temp.status_code == 200
    sts = tokens.sts
    r = c.get(
        "/api/v1/me",
        auth=(sts["access_key_id"], sts["access_key_secret"]),
        headers={"X-Dockyard-Security-Token": sts["security_token"]},
    )
    assert r.status_code == 200


# -- forgeries ------------------------------------------------------------------------


def _flip_signature(token: str, _: Tokens) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64(bytes(raw))}"


def _escalated(claims: dict[str, Any]) -> dict[str, Any]:
    claims = dict(claims)
    claims["sub"] = "admin"
    claims["access"] = [{"type": "repository", "name": "tok-ns/app", "actions": ["*"]}]
    return claims


def _resigned_with_another_key(token: str, _: Tokens) -> str:
    header, claims = _parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(_escalated(claims), other, algorithm="ES256", headers={"kid": header["kid"]})


def _alg_none(token: str, _: Tokens) -> str:
    header, claims = _parts(token)
    return _compact({"alg": "none", "typ": "JWT", "kid": header["kid"]}, _escalated(claims), b"")


def _hs256_with_public_key(token: str, t: Tokens) -> str:
    header, claims = _parts(token)
    public = t.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}).encode())
    body = _b64(json.dumps(_escalated(claims)).encode())
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _expired(token: str, t: Tokens) -> str:
    """The same claims, signed with the instance's own key, but expired a minute ago."""
    header, claims = _parts(token)
    now = int(time.time())
    claims.update(iat=now - 600, nbf=now - 600, exp=now - 60)
    return jwt.encode(claims, t.key, algorithm="ES256", headers={"kid": header["kid"]})


def _unknown_kid(token: str, t: Tokens) -> str:
    """Signed with the instance's own key, but naming a key the instance does not have."""
    _, claims = _parts(token)
    return jwt.encode(claims, t.key, algorithm="ES256", headers={"kid": "UNKNOWNKEY0000"})


def _other_key_with_its_own_kid(token: str, _: Tokens) -> str:
    _, claims = _parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(_escalated(claims), other, algorithm="ES256", headers={"kid": "ATTACKER"})


def _wrong_issuer(token: str, t: Tokens) -> str:
    header, claims = _parts(token)
    claims["iss"] = "someone-else"
    return jwt.encode(claims, t.key, algorithm="ES256", headers={"kid": header["kid"]})


FORGERIES: dict[str, Callable[[str, Tokens], str]] = {
    "flipped-signature-byte": _flip_signature,
    "claims-changed-resigned-with-another-es256-key": _resigned_with_another_key,
    "alg-none": _alg_none,
    "hs256-with-the-public-key-as-secret": _hs256_with_public_key,
    "expired": _expired,
    "unknown-kid": _unknown_kid,
    "another-key-and-its-kid": _other_key_with_its_own_kid,
    "wrong-issuer": _wrong_issuer,
}


@pytest.mark.parametrize("kind", ["registry-token", "api-session"])
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_tokens_are_refused(tokens: Tokens, forgery: str, kind: str) -> None:
    genuine = tokens.registry if kind == "registry-token" else tokens.session
    forged = FORGERIES[forgery](genuine, tokens)
    assert forged != genuine
    _registry_refuses(tokens.client, forged)
    _api_refuses(tokens.client, forged)


def test_garbage_bearer_values_are_refused(tokens: Tokens) -> None:
    for value in ("not-a-jwt", "a.b.c", tokens.registry + "x", tokens.registry[:-4]):
        _registry_refuses(tokens.client, value)
        _api_refuses(tokens.client, value)


# -- right signature, wrong audience ------------------------------------------------------
#
# The server keeps the tokens it has verified in a cache. Each test below takes tokens of
# its own, fresh from the server, and refuses each twice over: never used (the signature
# check's audience) and once used as meant (the cache's audience), so that no test depends
# on another having warmed the cache, nor on its order.

WARM = pytest.mark.parametrize("used_first", [False, True], ids=["never-used", "used-first"])


def _fresh_registry_token(t: Tokens) -> str:
    r = t.client.get(
        "/auth/token", params={"service": "dockyard", "scope": SCOPE}, auth=REGISTRY_ROOT
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def _fresh_session(t: Tokens) -> str:
    r = t.client.post("/api/v1/auth/login", json={"username": ROOT[0], "password": ROOT[1]})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def _fresh_temp_password(t: Tokens) -> str:
    r = t.client.post("/api/v1/tokens", auth=ROOT)
    assert r.is_success, r.text
    password: str = r.json()["password"]
    return password


def _fresh_sts(t: Tokens) -> dict[str, str]:
    body = {"role_arn": _role_arn(t), "role_session_name": "fresh"}
    r = t.client.post("/api/v1/sts/assume-role", json=body, auth=ROOT)
    assert r.is_success, r.text
    sts: dict[str, str] = r.json()
    return sts


def _use_registry_token(t: Tokens, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    assert t.client.get("/v2/tok-ns/app/manifests/v1", headers=auth).status_code == 200


def _use_session(t: Tokens, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    assert t.client.get("/api/v1/me", headers=auth).status_code == 200


def _use_temp_password(t: Tokens, password: str) -> None:
    r = t.client.get("/v2/tok-ns/app/manifests/v1", auth=("cr_temp_user", password))
    assert r.status_code == 200, r.text


def _use_sts(t: Tokens, sts: dict[str, str]) -> None:
    r = t.client.get(
        "/api/v1/me",
        auth=(sts["access_key_id"], sts["access_key_secret"]),
        headers={"X-Dockyard-Security-Token": sts["security_token"]},
    )
    assert r.status_code == 200, r.text


def _take(
    t: Tokens, fresh: Callable[[Tokens], T], use: Callable[[Tokens, T], None], used: bool
) -> T:
    """A fresh token of one kind; ``used``: once used as meant, so the server caches it."""
    value = fresh(t)
    if used:
        use(t, value)
    return value


@WARM
def test_api_session_token_is_not_a_registry_token(tokens: Tokens, used_first: bool) -> None:
    session = _take(tokens, _fresh_session, _use_session, used_first)
    _registry_refuses(tokens.client, session)


@WARM
def test_registry_token_is_not_an_api_session(tokens: Tokens, used_first: bool) -> None:
    registry = _take(tokens, _fresh_registry_token, _use_registry_token, used_first)
    _api_refuses(tokens.client, registry)


@WARM
def test_temporary_registry_password_is_not_a_bearer_token(
    tokens: Tokens, used_first: bool
) -> None:
    password = _take(tokens, _fresh_temp_password, _use_temp_password, used_first)
    _registry_refuses(tokens.client, password)
    _api_refuses(tokens.client, password)


@WARM
def test_sts_security_token_is_not_a_bearer_token(tokens: Tokens, used_first: bool) -> None:
    sts = _take(tokens, _fresh_sts, _use_sts, used_first)
    _api_refuses(tokens.client, sts["security_token"])
    _registry_refuses(tokens.client, sts["security_token"])


@WARM
def test_tokens_are_not_passwords(tokens: Tokens, used_first: bool) -> None:
    """A registry token or a session is no ``cr_temp_user`` password, nor a SecurityToken."""
    c = tokens.client
    registry = _take(tokens, _fresh_registry_token, _use_registry_token, used_first)
    session = _take(tokens, _fresh_session, _use_session, used_first)
    temp = _take(tokens, _fresh_temp_password, _use_temp_password, used_first)
    sts, other = _fresh_sts(tokens), _take(tokens, _fresh_sts, _use_sts, used_first)
    for value in (registry, session, other["security_token"]):
        r = c.get("/v2/", auth=("cr_temp_user", value))
        assert r.status_code == 401, r.text
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    for value in (registry, session, temp):
        r = c.get(
            "/api/v1/me",
            auth=(sts["access_key_id"], sts["access_key_secret"]),
            headers={"X-Dockyard-Security-Token": value},
        )
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == PROBLEM


# -- expiry --------------------------------------------------------------------------------


def test_a_token_used_before_it_expired_is_refused_once_it_has(tokens: Tokens) -> None:
    """A verified token is served from the server's cache; once expired, it is refused
    all the same (the controls of ``test_expired_token`` never use theirs in time)."""
    short: list[str] = []
    expires = int(time.time()) + 2
    for genuine in (_fresh_registry_token(tokens), _fresh_session(tokens)):
        header, claims = _parts(genuine)
        claims.update(exp=expires)
        short.append(jwt.encode(claims, tokens.key, algorithm="ES256", headers=header))
    registry, session = short
    _use_registry_token(tokens, registry)
    _use_session(tokens, session)
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    _registry_refuses(tokens.client, registry)
    _api_refuses(tokens.client, session)


def test_a_security_token_belongs_to_its_own_credentials(tokens: Tokens) -> None:
    """Another session's SecurityToken does not complete these STS credentials."""
    c = tokens.client
    body = {"role_arn": _role_arn(tokens), "role_session_name": "second"}
    second = c.post("/api/v1/sts/assume-role", json=body, auth=ROOT).json()
    sts = tokens.sts
    r = c.get(
        "/api/v1/me",
        auth=(sts["access_key_id"], sts["access_key_secret"]),
        headers={"X-Dockyard-Security-Token": second["security_token"]},
    )
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM


def _role_arn(tokens: Tokens) -> str:
    me = tokens.client.get("/api/v1/me", auth=ROOT).json()
    return f"acs:ram::{me['account_id']}:role/r"


def test_sts_credentials_without_security_token_are_refused_on_the_api(tokens: Tokens) -> None:
    sts = tokens.sts
    r = tokens.client.get("/api/v1/me", auth=(sts["access_key_id"], sts["access_key_secret"]))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM


def test_sts_credentials_cannot_sign_in_without_their_security_token(tokens: Tokens) -> None:
    sts = tokens.sts
    r = tokens.client.post(
        "/api/v1/auth/login",
        json={"username": sts["access_key_id"], "password": sts["access_key_secret"]},
    )
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
