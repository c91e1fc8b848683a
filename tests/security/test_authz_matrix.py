"""The authorization matrix: every management API route and every registry operation,
called by every kind of identity, with the expected outcome of each cell written out.

One server is set up once for the module. Account ``owner`` holds namespace ``owner-ns``
with a private ``owner-ns/app:v1`` and a public ``owner-ns/pub:v1``; account ``other`` is
a stranger. The identities (columns of every table below):

========  ==============================================================================
anon      no credentials
owner     root of ``owner``
other     root of ``other``
none      RAM user of ``owner`` with no policy at all
ro        RAM user with the read-only permission on namespace ``owner-ns``
rw        RAM user with the write permission on ``owner-ns``
adm       RAM user with the admin permission on ``owner-ns``
denied    RAM user with AliyunContainerRegistryFullAccess plus an explicit Deny of
          ``cr:PushRepository`` and ``cr:DeleteRepositoryImage`` on ``owner-ns/*``
sts       STS credentials of role ``sts-role`` (FullAccess, trusting the owner's root),
          narrowed by an inline policy to ``cr:PullRepository`` on ``owner-ns/*``
expired   STS credentials of the same role whose ``expires_at`` lies in the past
admin     the instance administrator (root of the built-in account ``admin``)
========  ==============================================================================

The expectations are written by hand from the issue's rules, not computed by the
product's own engine. Operations that destroy or create something act on a target of
their own per identity (``dn-owner``, ``dn-adm``, …), so cells are independent of their
order. Where a caller is allowed but the named target does not exist in its own account
(another account's root naming the owner's RAM user), 404 is the precise expectation.

Failed logins count against the brute-force protection (10 per login name, 100 per source
address in 5 minutes): the expired credentials are a pool of sessions, each used a few
times, each from its own loopback source address.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.fixtures.oci import OCI_MANIFEST, push_image
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server

PROBLEM = "application/problem+json"
IDS = ("anon", "owner", "other", "none", "ro", "rw", "adm", "denied", "sts", "expired", "admin")
RAM_IDENTITIES = ("none", "ro", "rw", "adm", "denied")
FULL = "AliyunContainerRegistryFullAccess"
READ_ONLY = "AliyunContainerRegistryReadOnlyAccess"
EXPIRED_POOL = 24
EXPIRED_USES_PER_SESSION = 7


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def _trust(arn: str) -> dict[str, Any]:
    return _doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [arn]}})


SIMPLE_POLICY = _doc({"Effect": "Allow", "Action": "cr:GetRepository", "Resource": "*"})


# -- the world ------------------------------------------------------------------------


@dataclass
class World:
    server: DockyardServer
    owner_id: int
    other_id: int
    main: httpx.Client
    sts: dict[str, str]
    expired_pool: list[dict[str, str]]
    expired_clients: list[httpx.Client]
    keyholder_key: str
    keyring_key: str
    app_manifest: bytes
    app_config: str
    rdel: dict[tuple[str, str], str] = field(default_factory=dict)
    hooks: dict[str, int] = field(default_factory=dict)
    """Webhook ids: ``repo`` and ``ns`` (shared), ``repo-IDENT`` and ``ns-IDENT`` (one
    per identity, to delete), and ``delivery`` (a test delivery of ``repo``)."""
    rules: dict[str, int] = field(default_factory=dict)
    """Build rule ids: ``app`` (of ``owner-ns/app``, whose code source nothing contacts)
    and one per identity (of ``owner-ns/src-IDENT``, to delete)."""
    expired_uses: int = 0

    # Console passwords (the management API) and registry passwords (docker login).
    def console(self, ident: str) -> tuple[str, str]:
        if ident == "admin":
            return ("admin", ADMIN_PASSWORD)
        if ident in ("owner", "other"):
            return (ident, f"{ident}-console-pw")
        return (f"{ident}@owner", f"{ident}-console-pw")

    def registry_password(self, ident: str) -> tuple[str, str]:
        if ident == "admin":
            return ("admin", ADMIN_PASSWORD)
        if ident in ("owner", "other"):
            return (ident, f"{ident}-registry-pw")
        return (f"{ident}@owner", f"{ident}-registry-pw")

    def _expired(self) -> tuple[dict[str, str], httpx.Client]:
        index = self.expired_uses // EXPIRED_USES_PER_SESSION
        self.expired_uses += 1
        if index >= len(self.expired_pool):
            raise AssertionError(
                "the pool of expired STS sessions is used up: raise EXPIRED_POOL "
                "(each session takes a few failed logins, below the lock-out)"
            )
        return self.expired_pool[index], self.expired_clients[index]

    def api(self, ident: str) -> tuple[httpx.Client, dict[str, Any]]:
        """A client and the request arguments that authenticate ``ident`` on the API."""
        if ident == "anon":
            return self.main, {}
        if ident in ("sts", "expired"):
            creds, client = (self.sts, self.main) if ident == "sts" else self._expired()
            return client, {
                "auth": (creds["access_key_id"], creds["access_key_secret"]),
                "headers": {"X-Dockyard-Security-Token": creds["security_token"]},
            }
        return self.main, {"auth": self.console(ident)}

    def login_body(self, ident: str) -> tuple[httpx.Client, dict[str, Any], dict[str, str]]:
        """``POST /api/v1/auth/login``: the identity's own credentials in the body."""
        if ident == "anon":
            return self.main, {}, {"username": "nobody-at-all", "password": "not-a-password"}
        client, kwargs = self.api(ident)
        username, password = kwargs.pop("auth")
        return client, kwargs, {"username": username, "password": password}

    def registry(self, ident: str) -> tuple[httpx.Client, tuple[str, str] | None]:
        """A client and the Basic credentials ``docker login`` would use."""
        if ident == "anon":
            return self.main, None
        if ident == "sts":
            return self.main, (self.sts["access_key_id"], self.sts["access_key_secret"])
        if ident == "expired":
            creds, client = self._expired()
            return client, (creds["access_key_id"], creds["access_key_secret"])
        return self.main, self.registry_password(ident)

    def token(self, ident: str, scope: str) -> httpx.Response:
        client, auth = self.registry(ident)
        return client.get(
            "/auth/token", params={"service": "dockyard", "scope": scope}, auth=auth or None
        )


def _ok(response: httpx.Response, status: int = 0) -> httpx.Response:
    if status:
        assert response.status_code == status, (response.request.url, response.text)
    else:
        assert response.is_success, (response.request.url, response.status_code, response.text)
    return response


def _setup(server: DockyardServer) -> World:
    main = httpx.Client(base_url=server.url, timeout=60)
    admin = ("admin", ADMIN_PASSWORD)
    owner = ("owner", "owner-console-pw")
    ids = {}
    for name in ("owner", "other"):
        body = {"name": name, "password": f"{name}-console-pw"}
        ids[name] = _ok(main.post("/api/v1/accounts", json=body, auth=admin), 201).json()["id"]
        _ok(
            main.put(
                "/api/v1/me/registry-password",
                json={"password": f"{name}-registry-pw"},
                auth=(name, f"{name}-console-pw"),
            ),
            204,
        )
    _ok(main.patch("/api/v1/accounts/owner", json={"namespace_quota": 50}, auth=admin))
    oc = httpx.Client(base_url=server.url, timeout=60, auth=owner)
    reg = httpx.Client(base_url=server.url, timeout=60, auth=("owner", "owner-registry-pw"))
    _ok(oc.post("/api/v1/namespaces", json={"name": "owner-ns"}), 201)
    image = push_image(reg, "owner-ns/app", "v1", layers=1, layer_size=64)
    config = next(d for d, data in image.blobs.items() if data.startswith(b"{"))
    _ok(oc.post("/api/v1/repositories", json={"namespace": "owner-ns", "name": "pub"}), 201)
    _ok(oc.patch("/api/v1/repositories/owner-ns/pub", json={"repo_type": "public"}))
    push_image(reg, "owner-ns/pub", "v1", layers=1, layer_size=64)

    # RAM users: the identities, and targets for the RAM routes.
    for name in (*RAM_IDENTITIES, "keyholder", "keyring", "doomed"):
        body = {"name": name, "password": f"{name}-console-pw"}
        _ok(oc.post("/api/v1/ram/users", json=body), 201)
    for name in RAM_IDENTITIES:
        body = {"password": f"{name}-registry-pw"}
        _ok(oc.put(f"/api/v1/ram/users/{name}/registry-password", json=body), 204)
    for name, role in (("ro", "read-only"), ("rw", "write"), ("adm", "admin")):
        _ok(oc.put(f"/api/v1/namespaces/owner-ns/permissions/{name}", json={"role": role}))
    deny = _doc(
        {
            "Effect": "Deny",
            "Action": ["cr:PushRepository", "cr:DeleteRepositoryImage"],
            "Resource": "acs:cr:*:*:repository/owner-ns/*",
        }
    )
    for name, document in (
        ("DenyPushDelete", deny),
        ("spare-policy", SIMPLE_POLICY),
        ("doomed-policy", SIMPLE_POLICY),
    ):
        _ok(oc.post("/api/v1/ram/policies", json={"name": name, "document": document}), 201)
    _ok(oc.put(f"/api/v1/ram/users/denied/policies/{FULL}"), 204)
    _ok(oc.put("/api/v1/ram/users/denied/policies/DenyPushDelete"), 204)
    keyholder_key = _ok(oc.post("/api/v1/ram/users/keyholder/access-keys"), 201).json()
    keyring_key = _ok(oc.post("/api/v1/ram/users/keyring/access-keys"), 201).json()
    _ok(oc.put(f"/api/v1/ram/users/keyring/policies/{READ_ONLY}"), 204)

    # Groups: one to change, one to delete, one per identity to revoke permissions of.
    for name in ("team", "doomed-group", *(f"pg-{i}" for i in IDS)):
        _ok(oc.post("/api/v1/ram/groups", json={"name": name}), 201)
    _ok(oc.put("/api/v1/ram/groups/team/members/keyring"), 204)
    for ident in IDS:
        for base in (
            "/api/v1/repositories/owner-ns/app/permissions",
            "/api/v1/namespaces/owner-ns/permissions",
        ):
            _ok(oc.put(f"{base}/group:pg-{ident}", json={"role": "read-only"}))

    # Roles.
    trust = _trust(f"acs:ram::{ids['owner']}:root")
    for name in ("sts-role", "spare-role", "doomed-role"):
        _ok(oc.post("/api/v1/ram/roles", json={"name": name, "trust_policy": trust}), 201)
    _ok(oc.put(f"/api/v1/ram/roles/sts-role/policies/{FULL}"), 204)
    _ok(oc.put(f"/api/v1/ram/roles/spare-role/policies/{FULL}"), 204)

    # Catalog targets, one per identity for what gets deleted.
    for ident in IDS:
        _ok(oc.post("/api/v1/namespaces", json={"name": f"dn-{ident}"}), 201)
        body = {"namespace": "owner-ns", "name": f"del-{ident}"}
        _ok(oc.post("/api/v1/repositories", json=body), 201)
    tagged = push_image(reg, "owner-ns/tagged", "base", layers=1, layer_size=64)
    for ident in IDS:
        r = reg.put(
            f"/v2/owner-ns/tagged/manifests/t-{ident}",
            content=tagged.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        _ok(r, 201)
    rdel = {}
    for ident in IDS:
        for mode in MODES:
            pushed = push_image(reg, "owner-ns/rdel", f"d-{ident}-{mode}", layers=1, layer_size=16)
            rdel[ident, mode] = pushed.digest

    # Webhooks (to a loopback port nobody listens on; the server allows loopback).
    hooks: dict[str, int] = {}
    hook = {"name": "h", "url": "http://127.0.0.1:9/hook"}
    for scope, base in (
        ("repo", "/api/v1/repositories/owner-ns/app/webhooks"),
        ("ns", "/api/v1/namespaces/owner-ns/webhooks"),
    ):
        for key in (scope, *(f"{scope}-{i}" for i in IDS)):
            hooks[key] = _ok(oc.post(base, json=hook), 201).json()["id"]
    test = oc.post(f"/api/v1/repositories/owner-ns/app/webhooks/{hooks['repo']}/test")
    hooks["delivery"] = _ok(test, 200).json()["id"]

    # Builds: a code source nothing contacts (no check, no build runs), with a rule, on
    # owner-ns/app; per identity a repository with a source and a rule to delete.
    source = {"url": "https://git.example.invalid/team/app.git"}
    _ok(oc.put("/api/v1/repositories/owner-ns/app/source", json=source), 201)
    rule = oc.post("/api/v1/repositories/owner-ns/app/build-rules", json={"ref": "main"})
    rules = {"app": _ok(rule, 201).json()["id"]}
    for ident in IDS:
        body = {"namespace": "owner-ns", "name": f"src-{ident}"}
        _ok(oc.post("/api/v1/repositories", json=body), 201)
        _ok(oc.put(f"/api/v1/repositories/owner-ns/src-{ident}/source", json=source), 201)
        rule = oc.post(
            f"/api/v1/repositories/owner-ns/src-{ident}/build-rules", json={"ref": "main"}
        )
        rules[ident] = _ok(rule, 201).json()["id"]

    # STS: the narrowed credentials, and a pool of credentials that then expire.
    role_arn = f"acs:ram::{ids['owner']}:role/sts-role"
    inline = _doc(
        {
            "Effect": "Allow",
            "Action": "cr:PullRepository",
            "Resource": f"acs:cr:*:{ids['owner']}:repository/owner-ns/*",
        }
    )
    body = {"role_arn": role_arn, "role_session_name": "narrowed", "policy": inline}
    sts = _ok(oc.post("/api/v1/sts/assume-role", json=body), 201).json()
    pool = []
    for n in range(EXPIRED_POOL):
        body = {"role_arn": role_arn, "role_session_name": f"expired-{n}"}
        pool.append(_ok(oc.post("/api/v1/sts/assume-role", json=body), 201).json())
    with closing(sqlite3.connect(server.data_dir / "dockyard.db")) as db, db:
        db.executemany(
            "UPDATE sts_sessions SET expires_at = '2000-01-01 00:00:00.000000' "
            "WHERE access_key_id = ?",
            [(c["access_key_id"],) for c in pool],
        )
    oc.close()
    reg.close()
    expired_clients = [
        httpx.Client(
            base_url=server.url,
            timeout=60,
            transport=httpx.HTTPTransport(local_address=f"127.0.0.{20 + n}"),
        )
        for n in range(EXPIRED_POOL)
    ]
    return World(
        server=server,
        owner_id=ids["owner"],
        other_id=ids["other"],
        main=main,
        sts=sts,
        expired_pool=pool,
        expired_clients=expired_clients,
        keyholder_key=keyholder_key["access_key_id"],
        keyring_key=keyring_key["access_key_id"],
        app_manifest=image.manifest,
        app_config=config,
        rdel=rdel,
        hooks=hooks,
        rules=rules,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("authz")
    loopback = {"DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    with running_server(base, loopback, remove=True) as server:
        built = _setup(server)
        try:
            yield built
        finally:
            built.main.close()
            for client in built.expired_clients:
                client.close()


# -- the management API ---------------------------------------------------------------

S = "/api/v1/ram"
R = "/api/v1/repositories"
N = "/api/v1/namespaces"
RP = "/api/v1/repositories/{namespace}/{repository}/permissions"
NP = "/api/v1/namespaces/{name}/permissions"
RW = "/api/v1/repositories/{namespace}/{repository}/webhooks"
RWC = "/api/v1/repositories/owner-ns/app/webhooks"
NW = "/api/v1/namespaces/{namespace}/webhooks"
NWC = "/api/v1/namespaces/owner-ns/webhooks"
RS = "/api/v1/repositories/{namespace}/{repository}"
RSC = "/api/v1/repositories/owner-ns/app"
NEVER = "sha256:" + "0" * 64
RB = "/api/v1/repositories/{namespace}/{repository}"
RBC = "/api/v1/repositories/owner-ns/app"
RBP = "/api/v1/repositories/owner-ns/pub"
RBD = "/api/v1/repositories/owner-ns/src-{ident}"
READS = (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)
"""Builds: read with cr:Get*/cr:List* (read-only, write), not by the narrowed STS session."""
READS_404 = (401, 404, 403, 403, 404, 404, 404, 404, 403, 401, 404)
LOGIN = "login"  # body: the identity's own credentials

# (method, route template, concrete path, JSON body or None, expected status per identity)
# Path and body may hold {ident} (the caller), {kh} and {kr} (access keys of RAM users
# keyholder and keyring), {owner_id}.
# fmt: off
API: list[tuple[str, str, str, Any, tuple[int, ...]]] = [
    # Each expectation tuple is in the order of IDS:
       # anon own  oth  none ro   rw   adm  den  sts  exp  admin
    ("GET", "/api/v1/instance", "/api/v1/instance", None,
        (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/signup", "/api/v1/signup",
     {"name": "su-{ident}", "password": "signup-password"},
        (403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403)),
    ("GET", "/api/v1/accounts", "/api/v1/accounts", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", "/api/v1/accounts", "/api/v1/accounts",
     {"name": "acct-{ident}", "password": "account-password"},
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 201)),
    ("GET", "/api/v1/accounts/{name}", "/api/v1/accounts/owner", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("PATCH", "/api/v1/accounts/{name}", "/api/v1/accounts/owner",
     {"namespace_quota": 50},
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", "/api/v1/auth/login", "/api/v1/auth/login", LOGIN,
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    # Sign-out ends the caller's own sessions (none here: the cells use Basic).
    ("POST", "/api/v1/auth/logout", "/api/v1/auth/logout", None,
        (401, 204, 204, 204, 204, 204, 204, 204, 204, 401, 204)),
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None,
        (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/tokens", "/api/v1/tokens", None,
        (401, 201, 201, 201, 201, 201, 201, 201, 201, 401, 201)),
    ("GET", "/api/v1/me", "/api/v1/me", None,
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    # Asking what one may do needs no permission: every signed-in caller is answered.
    ("POST", "/api/v1/authz/check", "/api/v1/authz/check",
     {"checks": [{"action": "cr:DeleteRepository", "resource": "owner-ns/app"}]},
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    # Changing one's own console password (to the same one: the cells stay independent).
    ("PUT", "/api/v1/me/password", "/api/v1/me/password", "own-console-password",

        (401, 204, 204, 204, 204, 204, 204, 204, 403, 401, 204)),
    ("PUT", "/api/v1/me/registry-password", "/api/v1/me/registry-password",
     "own-registry-password",
        (401, 204, 204, 204, 204, 204, 204, 204, 403, 401, 204)),
    ("GET", "/api/v1/me/access-keys", "/api/v1/me/access-keys", None,
        (401, 200, 200, 200, 200, 200, 200, 200, 403, 401, 200)),
    ("POST", "/api/v1/me/access-keys", "/api/v1/me/access-keys", None,
        (401, 201, 201, 201, 201, 201, 201, 201, 403, 401, 201)),
    # Someone else's key (keyholder's): nobody reaches it through /me.
    ("DELETE", "/api/v1/me/access-keys/{key}", "/api/v1/me/access-keys/{kh}",
     None,
        (401, 404, 404, 404, 404, 404, 404, 404, 403, 401, 404)),
    # Only the owner's root is trusted by sts-role; the rest may not assume roles at all
    # (RAM users, STS) or are not trusted (other, admin).
    ("POST", "/api/v1/sts/assume-role", "/api/v1/sts/assume-role",
     {"role_arn": "acs:ram::{owner_id}:role/sts-role",
      "role_session_name": "m-{ident}"},
        (401, 201, 403, 403, 403, 403, 403, 403, 403, 401, 403)),
    # Each root reads its own account's log; FullAccess (cr:*) includes cr:ReadAuditLog.
    ("GET", "/api/v1/audit", "/api/v1/audit", None,
        (401, 200, 200, 403, 403, 403, 403, 200, 403, 401, 200)),

    # RAM: roots (and the administrator) in their own account only; cr: policies give
    # nothing here. Another root naming the owner's user, group, role or policy: 404.
    ("GET", f"{S}/users", f"{S}/users", None,
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", f"{S}/users", f"{S}/users",
     {"name": "mk-{ident}", "password": "new-user-password"},
        (401, 201, 201, 403, 403, 403, 403, 403, 403, 401, 201)),
    ("GET", f"{S}/users/{{user}}", f"{S}/users/ro", None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PATCH", f"{S}/users/{{user}}", f"{S}/users/keyholder",
     {"password": "keyholder-new-console-pw"},
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/users/{{user}}", f"{S}/users/doomed", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PUT", f"{S}/users/{{user}}/registry-password",
     f"{S}/users/keyholder/registry-password",
     {"password": "keyholder-registry-pw"},
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/users/{{user}}/access-keys", f"{S}/users/keyholder/access-keys",
     None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("POST", f"{S}/users/{{user}}/access-keys", f"{S}/users/keyholder/access-keys",
     None,
        (401, 201, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/users/{{user}}/access-keys/{{key}}",
     f"{S}/users/keyring/access-keys/{{kr}}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/groups", f"{S}/groups", None,
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", f"{S}/groups", f"{S}/groups", {"name": "mk-{ident}"},
        (401, 201, 201, 403, 403, 403, 403, 403, 403, 401, 201)),
    ("GET", f"{S}/groups/{{group}}", f"{S}/groups/team", None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/groups/{{group}}", f"{S}/groups/doomed-group", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PUT", f"{S}/groups/{{group}}/members/{{user}}",
     f"{S}/groups/team/members/keyholder", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/groups/{{group}}/members/{{user}}",
     f"{S}/groups/team/members/keyring", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/roles", f"{S}/roles", None,
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", f"{S}/roles", f"{S}/roles",
     {"name": "mk-{ident}",
      "trust_policy": _trust("acs:ram::{owner_id}:root")},
        (401, 201, 201, 403, 403, 403, 403, 403, 403, 401, 201)),
    ("GET", f"{S}/roles/{{role}}", f"{S}/roles/sts-role", None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PATCH", f"{S}/roles/{{role}}", f"{S}/roles/spare-role",
     {"description": "patched"},
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/roles/{{role}}", f"{S}/roles/doomed-role", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PUT", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/users/keyholder/policies/{READ_ONLY}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PUT", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/groups/team/policies/{READ_ONLY}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("PUT", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/roles/spare-role/policies/{READ_ONLY}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/users/keyring/policies/{READ_ONLY}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/groups/team/policies/{READ_ONLY}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("DELETE", f"{S}/{{kind}}/{{holder}}/policies/{{policy}}",
     f"{S}/roles/spare-role/policies/{FULL}", None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/policies", f"{S}/policies", None,
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", f"{S}/policies", f"{S}/policies",
     {"name": "mk-{ident}", "document": SIMPLE_POLICY},
        (401, 201, 201, 403, 403, 403, 403, 403, 403, 401, 201)),
    ("GET", f"{S}/policies/{{policy}}", f"{S}/policies/DenyPushDelete", None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/policies/{{policy}}", f"{S}/policies/{READ_ONLY}", None,
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    # PUT creates or updates: other and admin create their own spare-policy.
    ("PUT", f"{S}/policies/{{policy}}", f"{S}/policies/spare-policy",
     {"document": SIMPLE_POLICY},
        (401, 200, 200, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("DELETE", f"{S}/policies/{{policy}}", f"{S}/policies/doomed-policy",
     None,
        (401, 204, 404, 403, 403, 403, 403, 403, 403, 401, 404)),
    ("GET", f"{S}/policies/{{policy}}/versions",
     f"{S}/policies/DenyPushDelete/versions", None,
        (401, 200, 404, 403, 403, 403, 403, 403, 403, 401, 404)),

    # Namespaces. A RAM user or STS session lists the namespaces it may cr:ListNamespace
    # (possibly none); see tests/api/test_iam.py for what each sees.
    ("GET", N, N, None,
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    ("POST", N, N, {"name": "mk-{ident}"},
        (401, 201, 201, 403, 403, 403, 403, 201, 403, 401, 201)),
    ("GET", f"{N}/{{name}}", f"{N}/owner-ns", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PATCH", f"{N}/{{name}}", f"{N}/owner-ns", {"auto_create_repo": True},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    # dn-IDENT is outside the namespace the permissions of ro/rw/adm cover.
    ("DELETE", f"{N}/{{name}}", f"{N}/dn-{{ident}}", None,
        (401, 204, 403, 403, 403, 403, 403, 204, 403, 401, 204)),

    # Repositories and tags (the listing filters; see test_repository_listing_visibility).
    ("GET", R, R, None,
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    ("POST", R, R, {"namespace": "owner-ns", "name": "mk-{ident}"},
        (401, 201, 403, 403, 403, 201, 201, 201, 403, 401, 201)),
    ("GET", f"{R}/{{namespace}}/{{repository}}", f"{R}/owner-ns/app", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    # A public repository opens pulls to everyone, nothing on the management API.
    ("GET", f"{R}/{{namespace}}/{{repository}}", f"{R}/owner-ns/pub", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PATCH", f"{R}/{{namespace}}/{{repository}}", f"{R}/owner-ns/app",
     {"summary": "patched"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    # denied's Deny names cr:DeleteRepositoryImage, not cr:DeleteRepository.
    ("DELETE", f"{R}/{{namespace}}/{{repository}}", f"{R}/owner-ns/del-{{ident}}",
     None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("GET", f"{R}/{{namespace}}/{{repository}}/tags", f"{R}/owner-ns/app/tags",
     None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("GET", f"{R}/{{namespace}}/{{repository}}/tags/{{tag}}",
     f"{R}/owner-ns/app/tags/v1", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    # A manifest explained shows what a pull fetches: cr:PullRepository, which sts's
    # inline policy keeps; a public repository's, like its pulls, any signed-in caller's.
    ("GET", f"{R}/{{namespace}}/{{repository}}/manifests/{{reference}}",
     f"{R}/owner-ns/app/manifests/v1", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 200, 401, 200)),
    ("GET", f"{R}/{{namespace}}/{{repository}}/manifests/{{reference}}",
     f"{R}/owner-ns/pub/manifests/v1", None,
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200)),
    # Deleting a tag is cr:DeleteRepositoryImage, which denied's Deny refuses.
    ("DELETE", f"{R}/{{namespace}}/{{repository}}/tags/{{tag}}",
     f"{R}/owner-ns/tagged/tags/t-{{ident}}", None,
        (401, 204, 403, 403, 403, 403, 204, 403, 403, 401, 204)),

    # Permissions (read with cr:List*, set with cr:SetRepositoryPermission).
    ("GET", RP, f"{R}/owner-ns/app/permissions", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PUT", f"{RP}/{{subject}}", f"{R}/owner-ns/app/permissions/keyholder",
     {"role": "read-only"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{RP}/{{subject}}", f"{R}/owner-ns/app/permissions/group:pg-{{ident}}",
     None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("GET", NP, f"{N}/owner-ns/permissions", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PUT", f"{NP}/{{subject}}", f"{N}/owner-ns/permissions/keyholder",
     {"role": "read-only"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{NP}/{{subject}}", f"{N}/owner-ns/permissions/group:pg-{{ident}}",
     None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),

    # Events: each account's administrators (cr:ListEvents on the account's events).
    ("GET", "/api/v1/events", "/api/v1/events", None,
        (401, 200, 200, 403, 403, 403, 403, 200, 403, 401, 200)),
    # The job queue: the instance administrator only.
    ("GET", "/api/v1/jobs", "/api/v1/jobs", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("GET", "/api/v1/jobs/{id}", "/api/v1/jobs/1", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", "/api/v1/jobs/{id}/retry", "/api/v1/jobs/999999/retry", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 404)),
    # The vulnerability database: the instance administrator only.
    ("GET", "/api/v1/vulndb", "/api/v1/vulndb", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("GET", "/api/v1/vulndb/imports", "/api/v1/vulndb/imports", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 200)),
    ("POST", "/api/v1/vulndb/imports", "/api/v1/vulndb/imports",
     {"id": "MATRIX-{ident}", "modified": "2024-01-01T00:00:00Z"},
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 202)),
    ("GET", "/api/v1/vulndb/imports/{id}", "/api/v1/vulndb/imports/999999", None,
        (401, 403, 403, 403, 403, 403, 403, 403, 403, 401, 404)),

    # Webhooks of the repository: read with cr:Get*/cr:List* (read-only and write),
    # changed with the admin permission or FullAccess; the narrowed STS session may pull only.
    ("GET", f"{RW}", f"{RWC}", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("POST", f"{RW}", f"{RWC}",
     {"name": "mk-{ident}", "url": "http://127.0.0.1:9/mk"},
        (401, 201, 403, 403, 403, 403, 201, 201, 403, 401, 201)),
    ("GET", f"{RW}/{{id}}", f"{RWC}/{{wh}}", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PATCH", f"{RW}/{{id}}", f"{RWC}/{{wh}}", {"name": "renamed"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{RW}/{{id}}", f"{RWC}/{{whd}}", None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("POST", f"{RW}/{{id}}/rotate-secret", f"{RWC}/{{wh}}/rotate-secret", None,
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("POST", f"{RW}/{{id}}/test", f"{RWC}/{{wh}}/test", None,
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("GET", f"{RW}/{{id}}/deliveries", f"{RWC}/{{wh}}/deliveries", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("GET", f"{RW}/{{id}}/deliveries/{{delivery}}",
     f"{RWC}/{{wh}}/deliveries/{{dlv}}", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("POST", f"{RW}/{{id}}/deliveries/{{delivery}}/redeliver",
     f"{RWC}/{{wh}}/deliveries/{{dlv}}/redeliver", None,
        (401, 202, 403, 403, 403, 403, 202, 202, 403, 401, 202)),

    # Scans: read with cr:Get* (read-only and write), started with the admin permission
    # or FullAccess; a tag or digest never pushed is authorized, then not found.
    ("GET", f"{RS}/tags/{{tag}}/scan", f"{RSC}/tags/never/scan", None,
        (401, 404, 403, 403, 404, 404, 404, 404, 403, 401, 404)),
    ("POST", f"{RS}/tags/{{tag}}/scan", f"{RSC}/tags/never/scan", None,
        (401, 404, 403, 403, 403, 403, 404, 404, 403, 401, 404)),
    ("GET", f"{RS}/manifests/{{digest}}/scan", f"{RSC}/manifests/{NEVER}/scan", None,
        (401, 404, 403, 403, 404, 404, 404, 404, 403, 401, 404)),
    ("POST", f"{RS}/manifests/{{digest}}/scan", f"{RSC}/manifests/{NEVER}/scan", None,
        (401, 404, 403, 403, 403, 403, 404, 404, 403, 401, 404)),
    # An SBOM is read as a scan result is.
    ("GET", f"{RS}/manifests/{{digest}}/sbom", f"{RSC}/manifests/{NEVER}/sbom", None,
        (401, 404, 403, 403, 404, 404, 404, 404, 403, 401, 404)),
    # Security settings: read like the rest, changed with admin or FullAccess.
    ("GET", f"{RS}/security", f"{RSC}/security", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PUT", f"{RS}/security", f"{RSC}/security", {"scan_on_push": True},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("GET", "/api/v1/namespaces/{name}/security", "/api/v1/namespaces/owner-ns/security",
     None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PUT", "/api/v1/namespaces/{name}/security", "/api/v1/namespaces/owner-ns/security",
     {"scan_on_push": True},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),

    # The same for the namespace's webhooks.
    ("GET", f"{NW}", f"{NWC}", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("POST", f"{NW}", f"{NWC}",
     {"name": "mk-{ident}", "url": "http://127.0.0.1:9/mk"},
        (401, 201, 403, 403, 403, 403, 201, 201, 403, 401, 201)),
    ("GET", f"{NW}/{{id}}", f"{NWC}/{{nwh}}", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    ("PATCH", f"{NW}/{{id}}", f"{NWC}/{{nwh}}", {"name": "renamed"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{NW}/{{id}}", f"{NWC}/{{nwhd}}", None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("POST", f"{NW}/{{id}}/rotate-secret", f"{NWC}/{{nwh}}/rotate-secret", None,
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("POST", f"{NW}/{{id}}/test", f"{NWC}/{{nwh}}/test", None,
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("GET", f"{NW}/{{id}}/deliveries", f"{NWC}/{{nwh}}/deliveries", None,
        (401, 200, 403, 403, 200, 200, 200, 200, 403, 401, 200)),
    # A delivery of another webhook: authorized, then not found.
    ("GET", f"{NW}/{{id}}/deliveries/{{delivery}}",
     f"{NWC}/{{nwh}}/deliveries/{{dlv}}", None,
        (401, 404, 403, 403, 404, 404, 404, 404, 403, 401, 404)),
    ("POST", f"{NW}/{{id}}/deliveries/{{delivery}}/redeliver",
     f"{NWC}/{{nwh}}/deliveries/{{dlv}}/redeliver", None,
        (401, 404, 403, 403, 403, 403, 404, 404, 403, 401, 404)),

    # Builds: the code source, build rules and builds of a repository, read with
    # cr:Get*/cr:List*, changed with the admin permission or FullAccess. What would reach
    # the git host (check, Build Now) names a repository without a source: 404 once allowed.
    ("GET", f"{RB}/source", f"{RBC}/source", None, READS),
    ("PUT", f"{RB}/source", f"{RBC}/source", {"url": "https://git.example.invalid/t/a.git"},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{RB}/source", f"{RBD}/source", None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("POST", f"{RB}/source/check", f"{RBP}/source/check", None, READS_404),
    ("POST", f"{RB}/source/rotate-hook-secret", f"{RBC}/source/rotate-hook-secret", None,
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("GET", f"{RB}/source/hook-deliveries", f"{RBC}/source/hook-deliveries", None, READS),
    ("GET", f"{RB}/build-rules", f"{RBC}/build-rules", None, READS),
    ("POST", f"{RB}/build-rules", f"{RBC}/build-rules", {"ref": "mk-{ident}"},
        (401, 201, 403, 403, 403, 403, 201, 201, 403, 401, 201)),
    ("GET", f"{RB}/build-rules/{{id}}", f"{RBC}/build-rules/{{rule}}", None, READS),
    ("PATCH", f"{RB}/build-rules/{{id}}", f"{RBC}/build-rules/{{rule}}", {"enabled": True},
        (401, 200, 403, 403, 403, 403, 200, 200, 403, 401, 200)),
    ("DELETE", f"{RB}/build-rules/{{id}}", f"{RBD}/build-rules/{{ruled}}", None,
        (401, 204, 403, 403, 403, 403, 204, 204, 403, 401, 204)),
    ("POST", f"{RB}/build-rules/{{id}}/build", f"{RBP}/build-rules/999999/build", None,
        (401, 404, 403, 403, 403, 403, 404, 404, 403, 401, 404)),
    ("GET", f"{RB}/builds", f"{RBC}/builds", None, READS),
    ("GET", f"{RB}/builds/{{id}}", f"{RBC}/builds/999999", None, READS_404),
    ("GET", f"{RB}/builds/{{id}}/log", f"{RBC}/builds/999999/log", None, READS_404),
    ("POST", f"{RB}/builds/{{id}}/cancel", f"{RBC}/builds/999999/cancel", None,
        (401, 404, 403, 403, 403, 403, 404, 404, 403, 401, 404)),
    # A code host's hook takes no login (its secret signs it): an unknown hook is 404 to all.
    ("POST", "/api/v1/hooks/git/{hook_id}", "/api/v1/hooks/git/unknown", {"ref": "x"},
        (404,) * 11),
]
# fmt: on

XFAIL_API: dict[tuple[str, str, str], str] = {}
"""(method, concrete path, identity) → the bug the cell shows (strict xfail)."""


def _fill(value: Any, world: World, ident: str) -> Any:
    if isinstance(value, str):
        hooks = world.hooks
        return value.format(
            ident=ident,
            kh=world.keyholder_key,
            kr=world.keyring_key,
            owner_id=world.owner_id,
            wh=hooks.get("repo", 0),
            nwh=hooks.get("ns", 0),
            whd=hooks.get(f"repo-{ident}", 0),
            nwhd=hooks.get(f"ns-{ident}", 0),
            dlv=hooks.get("delivery", 0),
            rule=world.rules.get("app", 0),
            ruled=world.rules.get(ident, 0),
        )
    if isinstance(value, list):
        return [_fill(v, world, ident) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world, ident) for k, v in value.items()}
    return value


def _api_cells() -> list[Any]:
    cells = []
    for method, _template, path, body, expected in API:
        assert len(expected) == len(IDS), (method, path)
        for ident, status in zip(IDS, expected, strict=True):
            marks = []
            reason = XFAIL_API.get((method, path, ident))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cells.append(
                pytest.param(
                    method, path, body, ident, status, id=f"{method} {path} as {ident}", marks=marks
                )
            )
    return cells


def _check_refusal(response: httpx.Response, status: int) -> None:
    if status in (401, 403):
        assert response.headers["content-type"] == PROBLEM, response.text
        assert response.json()["status"] == status


@pytest.mark.parametrize(("method", "path", "body", "ident", "status"), _api_cells())
def test_api(world: World, method: str, path: str, body: Any, ident: str, status: int) -> None:
    url = _fill(path, world, ident)
    if body == LOGIN:
        client, kwargs, login = world.login_body(ident)
        r = client.request(method, url, json=login, **kwargs)
    elif body == "own-registry-password":
        client, kwargs = world.api(ident)
        password = world.registry_password(ident)[1] if ident != "anon" else "whatever-pw"
        r = client.request(method, url, json={"password": password}, **kwargs)
    elif body == "own-console-password":
        client, kwargs = world.api(ident)
        password = world.console(ident)[1] if ident != "anon" else "whatever-pw"
        body = {"current_password": password, "password": password}
        r = client.request(method, url, json=body, **kwargs)
    else:
        client, kwargs = world.api(ident)
        if body is not None:
            kwargs["json"] = _fill(body, world, ident)
        r = client.request(method, url, **kwargs)
    assert r.status_code == status, f"{method} {url} as {ident}: {r.status_code} {r.text[:300]}"
    _check_refusal(r, status)


def _app_routes(tmp: Path) -> set[tuple[str, str]]:
    """(template, method) of every /api/v1 route of an app built the way servers build it."""
    from dockyard.app import create_app
    from dockyard.config import load_settings
    from dockyard.services import bootstrap

    settings = load_settings(
        environ={"DOCKYARD_DATA_DIR": str(tmp / "data"), "DOCKYARD_ADMIN_PASSWORD": "x" * 16}
    )
    services = bootstrap(settings)
    try:
        asgi = create_app(settings, services)
        starlette = _find_starlette(asgi)
    finally:
        services.close()
    found = set()
    for route in starlette.routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1"):
            template = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found |= {(template, m) for m in route.methods or () if m != "HEAD"}
    return found


def _find_starlette(root: Any) -> Starlette:
    """The Starlette router inside the middleware and the dispatch closure around it."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Starlette) and any(
            getattr(r, "path", "").startswith("/api/v1") for r in item.routes
        ):
            return item
        if hasattr(item, "app"):
            todo.append(item.app)
        for cell in getattr(item, "__closure__", None) or ():
            todo.append(cell.cell_contents)
    raise AssertionError("cannot find the management API's router in the app")


def test_every_api_route_is_in_the_matrix(tmp_path: Path) -> None:
    covered = {(template, method) for method, template, *_ in API}
    routes = _app_routes(tmp_path)
    missing = routes - covered
    assert not missing, f"routes with no row in the authorization matrix: {sorted(missing)}"
    stale = covered - routes
    assert not stale, f"matrix rows for routes the app does not have: {sorted(stale)}"


def test_repository_listing_visibility(world: World) -> None:
    """The listings show only what the caller may see: (app, pub) visible per identity."""
    # fmt: off
    expected = {
        "anon": 401, "owner": (True, True), "other": (False, False), "none": (False, False),
        "ro": (True, True), "rw": (True, True), "adm": (True, True), "denied": (True, True),
        "sts": (False, False), "expired": 401, "admin": (True, True),
    }
    # fmt: on
    for ident in IDS:
        client, kwargs = world.api(ident)
        r = client.get(R, params={"namespace": "owner-ns", "limit": 1000}, **kwargs)
        want = expected[ident]
        if isinstance(want, int):
            assert r.status_code == want, (ident, r.text)
            continue
        assert r.status_code == 200, (ident, r.text)
        names = {item["full_name"] for item in r.json()["items"]}
        seen = ("owner-ns/app" in names, "owner-ns/pub" in names)
        assert seen == want, (ident, sorted(names))


def test_audit_logs_are_per_account(world: World) -> None:
    client, kwargs = world.api("other")
    entries = client.get("/api/v1/audit", params={"limit": 1000}, **kwargs).json()["items"]
    assert entries
    assert {e["account_id"] for e in entries} == {world.other_id}
    client, kwargs = world.api("owner")
    entries = client.get("/api/v1/audit", params={"limit": 1000}, **kwargs).json()["items"]
    assert world.other_id not in {e["account_id"] for e in entries}


# -- the registry ---------------------------------------------------------------------

MODES = ("basic", "token")
"""basic: ``docker login`` credentials on every request (refused: 403 DENIED);
token: a bearer token from /auth/token for the operation's scope (refused: the token
lacks the action, 401 with ``insufficient_scope``)."""

V = "ALLOWED"
BOTH, PUB_ONLY = (True, True), (False, True)

# (operation, mode) → expected per identity: an HTTP status, or for _catalog a pair
# (owner-ns/app listed, owner-ns/pub listed) meaning 200.
# fmt: off
REGISTRY: dict[tuple[str, str], tuple[Any, ...]] = {
    #                                anon own  oth  none ro   rw   adm  den  sts  exp  admin
    ("get-manifest-app", "basic"):  (401, 200, 403, 403, 200, 200, 200, 200, 200, 401, 200),
    ("get-manifest-app", "token"):  (401, 200, 401, 401, 200, 200, 200, 200, 200, 401, 200),
    ("get-manifest-pub", "basic"):  (200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200),
    ("get-manifest-pub", "token"):  (200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 200),
    ("head-blob-app", "basic"):     (401, 200, 403, 403, 200, 200, 200, 200, 200, 401, 200),
    ("head-blob-app", "token"):     (401, 200, 401, 401, 200, 200, 200, 200, 200, 401, 200),
    ("tags-list-app", "basic"):     (401, 200, 403, 403, 200, 200, 200, 200, 200, 401, 200),
    ("tags-list-app", "token"):     (401, 200, 401, 401, 200, 200, 200, 200, 200, 401, 200),
    ("put-manifest-app", "basic"):  (401, 201, 403, 403, 403, 201, 201, 403, 403, 401, 201),
    ("put-manifest-app", "token"):  (401, 201, 401, 401, 401, 201, 201, 401, 401, 401, 201),
    ("push-new-repo", "basic"):     (401, 202, 403, 403, 403, 202, 202, 403, 403, 401, 202),
    ("push-new-repo", "token"):     (401, 202, 401, 401, 401, 202, 202, 401, 401, 401, 202),
    ("delete-manifest", "basic"):   (401, 202, 403, 403, 403, 403, 202, 403, 403, 401, 202),
    ("delete-manifest", "token"):   (401, 202, 401, 401, 401, 401, 202, 401, 401, 401, 202),
    ("catalog", "basic"):           (401, BOTH, PUB_ONLY, 403, 403, 403, 403, BOTH, 403, 401, BOTH),
    ("catalog", "token"):           (401, BOTH, PUB_ONLY, 401, 401, 401, 401, BOTH, 401, 401, BOTH),
}
# fmt: on
XFAIL_REGISTRY: dict[tuple[str, str, str], str] = {}
"""(operation, mode, identity) → the bug the cell shows (strict xfail); none known."""

# operation → (method, path, scope); {ident} and {mode} name the cell's own target.
OPERATIONS = {
    "get-manifest-app": ("GET", "/v2/owner-ns/app/manifests/v1", "repository:owner-ns/app:pull"),
    "get-manifest-pub": ("GET", "/v2/owner-ns/pub/manifests/v1", "repository:owner-ns/pub:pull"),
    "head-blob-app": ("HEAD", "/v2/owner-ns/app/blobs/{config}", "repository:owner-ns/app:pull"),
    "tags-list-app": ("GET", "/v2/owner-ns/app/tags/list", "repository:owner-ns/app:pull"),
    "put-manifest-app": (
        "PUT",
        "/v2/owner-ns/app/manifests/p-{ident}-{mode}",
        "repository:owner-ns/app:push",
    ),
    "push-new-repo": (
        "POST",
        "/v2/owner-ns/new-{ident}-{mode}/blobs/uploads/",
        "repository:owner-ns/new-{ident}-{mode}:push",
    ),
    "delete-manifest": (
        "DELETE",
        "/v2/owner-ns/rdel/manifests/{digest}",
        "repository:owner-ns/rdel:delete",
    ),
    "catalog": ("GET", "/v2/_catalog", "registry:catalog:*"),
}


def _registry_cells() -> list[Any]:
    cells = []
    for (operation, mode), expected in REGISTRY.items():
        assert len(expected) == len(IDS), (operation, mode)
        for ident, want in zip(IDS, expected, strict=True):
            reason = XFAIL_REGISTRY.get((operation, mode, ident))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cells.append(
                pytest.param(
                    operation, mode, ident, want, id=f"{operation} {mode} as {ident}", marks=marks
                )
            )
    return cells


def _oci_refusal(response: httpx.Response, status: int, mode: str, ident: str) -> None:
    if response.request.method != "HEAD":
        codes = [e["code"] for e in response.json()["errors"]]
        assert codes == ["UNAUTHORIZED" if status == 401 else "DENIED"], response.text
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer realm="), challenge
        if mode == "token" and ident not in ("expired",):
            assert 'error="insufficient_scope"' in challenge, challenge


@pytest.mark.parametrize(("operation", "mode", "ident", "want"), _registry_cells())
def test_registry(world: World, operation: str, mode: str, ident: str, want: Any) -> None:
    method, path, scope = OPERATIONS[operation]
    names = {"ident": ident, "mode": mode, "config": world.app_config}
    names["digest"] = world.rdel[ident, mode]
    path, scope = path.format(**names), scope.format(**names)
    kwargs: dict[str, Any] = {"headers": {"Accept": OCI_MANIFEST}}
    if method == "PUT":
        kwargs["content"] = world.app_manifest
        kwargs["headers"]["Content-Type"] = OCI_MANIFEST
    if mode == "basic":
        client, auth = world.registry(ident)
        if auth:
            kwargs["auth"] = auth
    else:
        client = world.main
        issued = world.token(ident, scope)
        if issued.status_code != 200:
            assert want == 401, (ident, issued.status_code, issued.text)
            assert issued.status_code == 401, issued.text
            assert issued.json()["errors"][0]["code"] == "UNAUTHORIZED"
            return
        kwargs["headers"]["Authorization"] = f"Bearer {issued.json()['token']}"
    r = client.request(method, path, **kwargs)
    if isinstance(want, tuple):
        assert r.status_code == 200, (ident, r.status_code, r.text)
        names_listed = set(r.json()["repositories"])
        assert ("owner-ns/app" in names_listed, "owner-ns/pub" in names_listed) == want
        return
    assert r.status_code == want, f"{method} {path} ({mode}) as {ident}: {r.status_code} {r.text}"
    if want in (401, 403):
        _oci_refusal(r, want, mode, ident)


# -- token grants ---------------------------------------------------------------------

YES, NO = True, False
# scope → granted (True), not granted (False), or the token endpoint's status.
# fmt: off
GRANTS: dict[str, tuple[Any, ...]] = {
    #                                  anon own  oth  none ro   rw   adm  den  sts  exp  admin
    "repository:owner-ns/app:pull":   (NO,  YES, NO,  NO,  YES, YES, YES, YES, YES, 401, YES),
    "repository:owner-ns/app:push":   (NO,  YES, NO,  NO,  NO,  YES, YES, NO,  NO,  401, YES),
    "repository:owner-ns/app:delete": (NO,  YES, NO,  NO,  NO,  NO,  YES, NO,  NO,  401, YES),
    "repository:owner-ns/pub:pull":   (YES, YES, YES, YES, YES, YES, YES, YES, YES, 401, YES),
    "repository:owner-ns/pub:push":   (NO,  YES, NO,  NO,  NO,  YES, YES, NO,  NO,  401, YES),
    "repository:owner-ns/pub:delete": (NO,  YES, NO,  NO,  NO,  NO,  YES, NO,  NO,  401, YES),
    "registry:catalog:*":             (NO,  YES, YES, NO,  NO,  NO,  NO,  YES, NO,  401, YES),
}
# fmt: on


def _grant_cells() -> list[Any]:
    return [
        pytest.param(scope, ident, want, id=f"grant {scope} to {ident}")
        for scope, row in GRANTS.items()
        for ident, want in zip(IDS, row, strict=True)
    ]


@pytest.mark.parametrize(("scope", "ident", "want"), _grant_cells())
def test_token_grant(world: World, scope: str, ident: str, want: Any) -> None:
    r = world.token(ident, scope)
    if not isinstance(want, bool):
        assert r.status_code == 401, r.text
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        return
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["exp"] > time.time()
    type_, name, action = scope.split(":")
    granted = {
        a
        for g in claims["access"]
        if g["type"] == type_ and g["name"] == name
        for a in g["actions"]
    }
    # Never more than was asked.
    assert granted <= {action}, claims["access"]
    assert (action in granted) is want, claims["access"]
