"""The management API as a contract: its OpenAPI document is valid, describes every
route the server serves, and the server's real answers match it.

- the document validates (``openapi-spec-validator``);
- every ``/api/v1`` operation has a description (typed bodies and replies); the test
  names each one that has not;
- a realistic flow drives every operation against a real server and checks each answer
  with schemathesis' checks (status documented, content type, headers, body schema);
- schemathesis then generates requests for every operation (a few each), as the
  administrator, with path parameters naming real things half of the time: no 5xx,
  and every answer matches the document.
"""

from __future__ import annotations

import base64
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.responses import JSONResponse
from starlette.routing import Route

from dockyard.openapi import Field, Op, Reply, describe, field_names, openapi_document
from dockyard.openapi_schema import pydantic_model
from tests.builds.support import build_env, wait_build
from tests.builds.test_builds import simple_files
from tests.fixtures.gitserver import GitServer, MakeRepo
from tests.fixtures.oci import push_image
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server
from tests.scanning.registry_helpers import push, scan_server, wait_scan
from tests.scanning.test_cli import build_image
from tests.security.test_authz_matrix import _app_routes

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ADMIN = ("admin", ADMIN_PASSWORD)
ROOT = ("contractco", "contract-root-password")

# Operations the generated requests leave alone, and why:
# - creating or changing a webhook makes the server resolve the webhook's host and, for
#   a test delivery, send to it: generated URLs would send traffic off this machine
#   (the realistic flow drives both with a loopback URL);
# - a wrong current password counts as a failed login from this address: generated ones
#   would bring loopback near its lock-out (brute-force protection), which would refuse
#   every later request; the flow changes a RAM user's own password instead.
NOT_GENERATED = {
    "POST /api/v1/repositories/{namespace}/{repository}/webhooks",
    "POST /api/v1/namespaces/{namespace}/webhooks",
    "PATCH /api/v1/repositories/{namespace}/{repository}/webhooks/{id}",
    "PATCH /api/v1/namespaces/{namespace}/webhooks/{id}",
    "PUT /api/v1/me/password",
}
# - a code source's URL is where the server clones from and lists refs of: a generated
#   one would send traffic off this machine (the flow binds a loopback git server).
NOT_GENERATED |= {
    "PUT /api/v1/repositories/{namespace}/{repository}/source",
    "POST /api/v1/repositories/{namespace}/{repository}/source/check",
}


def basic(creds: tuple[str, str]) -> dict[str, str]:
    token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("contract")
    env = {"DOCKYARD_JOB_WORKERS": "0", "DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    with running_server(base, env, remove=True) as server:
        yield server


@pytest.fixture(scope="module")
def worker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """A server whose job workers run, for what needs them: scans (OSV records
    imported) and builds (from the loopback git server, so local sources are allowed)."""
    base = tmp_path_factory.mktemp("contract-workers")
    with scan_server(base / "server", build_env(base)) as server:
        yield server


@pytest.fixture(scope="module")
def document(server: DockyardServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/v1/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def schema(document: dict[str, Any], server: DockyardServer) -> Any:
    return schemathesis.openapi.from_dict(document)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    tags = {t["name"] for t in document["tags"]}
    for expected in ("namespaces", "repositories", "tags", "ram-users", "sts", "webhooks"):
        assert expected in tags


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_every_route_is_described(document: dict[str, Any]) -> None:
    """Every operation the server serves under /api/v1 (the document is made from its
    routes) has typed bodies and replies; the failure names those that lack them."""
    ops = list(_operations(document))
    assert len(ops) > 80
    missing = [f"{m} {p}" for m, p, op in ops if op.get("x-undocumented")]
    assert not missing, "routes without a description (@describe beside the handler):\n" + (
        "\n".join(missing)
    )
    schemas = document["components"]["schemas"]
    for method, path, op in ops:
        where = f"{method} {path}"
        assert op["summary"], where
        assert op["tags"], where
        # One success, or a few (a PUT that creates or replaces, a hook's ping beside its
        # push); each a JSON body of a named type, and any other media type typed too
        # (a report format's document, the events of a stream).
        success = sorted(s for s in op["responses"] if s.startswith("2"))
        assert 1 <= len(success) <= 2, where
        answer = op["responses"][success[0]]
        for status in success:
            if status == "204":
                continue
            content = op["responses"][status]["content"]
            if "application/json" in content or status != success[0]:
                ref = content["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, where
            for kind, typed in content.items():  # each event of an event stream typed
                assert typed["schema"]["$ref"].rsplit("/", 1)[1] in schemas, (where, kind)
        # Problems are documented with their statuses, as problem JSON.
        for status, response in op["responses"].items():
            if status.startswith("4"):
                assert "application/problem+json" in response["content"], where
        if "requestBody" in op:
            content = op["requestBody"]["content"]
            schema = content["application/json"]["schema"]
            if "$ref" in schema:
                assert schema["$ref"].rsplit("/", 1)[1] in schemas, where
            else:  # a file as the body (an upload): its bytes, or a form's one file
                binary = content["application/octet-stream"]["schema"]
                assert binary == {"type": "string", "format": "binary"}, where
                assert content["multipart/form-data"]["schema"]["required"] == ["file"], where
        elif method in ("PATCH",) or (method == "POST" and success[0] == "201"):
            raise AssertionError(f"{where} changes something from a body it does not describe")
        # Paging the same way on every listing: a reply of items and next goes with
        # limit, after and Link. (A scan report pages its vulnerabilities with limit and
        # after too, and a build log its lines with offset and limit; neither is a
        # listing.)
        names = {p["name"] for p in op["parameters"]}
        reply = answer.get("content", {}).get("application/json", {}).get("schema", {})
        page = schemas.get(reply.get("$ref", "/").split("/")[-1], {})
        if {"items", "next"} <= set(page.get("properties", {})):
            assert {"limit", "after"} <= names, where
            assert "Link" in answer["headers"], where
        else:
            assert "Link" not in answer.get("headers", {}), where
        if "after" in names:
            assert "limit" in names, where


def test_the_document_lists_every_route_the_app_serves(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    served = _app_routes(tmp_path)
    documented = {(path, method) for method, path, _ in _operations(document)}
    assert not served - documented, f"served, not in the document: {sorted(served - documented)}"
    assert not documented - served, f"documented, not served: {sorted(documented - served)}"


def test_a_route_without_a_description_is_named() -> None:
    """What the lead sees after merging a route nobody described: listed, untyped and
    marked, and describing it is the one decorator beside the handler."""

    class Thing(Reply):
        name: str

    async def bare(_: Any) -> JSONResponse:
        """Scan something."""
        return JSONResponse({})

    @describe(get=Op("Read a thing", tag="things", reply=Thing))
    async def described(_: Any) -> JSONResponse:
        return JSONResponse({})

    doc = openapi_document(
        [
            Route("/api/v1/scans/{id}", bare, methods=["POST"]),
            Route("/api/v1/things/{name}", described, methods=["GET"]),
        ]
    )
    validate(doc)
    scan = doc["paths"]["/api/v1/scans/{id}"]["post"]
    assert scan["x-undocumented"] is True
    assert scan["summary"] == "Scan something."
    thing = doc["paths"]["/api/v1/things/{name}"]["get"]
    assert "x-undocumented" not in thing
    assert thing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Thing"
    }
    assert doc["components"]["schemas"]["Thing"]["required"] == ["name"]


def test_a_class_names_its_fields_inherited_first() -> None:
    class Base(Reply):
        b: int
        a: str = Field(default="x", description="a field")

    class Child(Base):
        model_config = {"extra": "allow"}
        c: bool = False

    assert field_names(Child) == ("b", "a", "c")
    model = pydantic_model(Child)
    assert list(model.model_fields) == ["b", "a", "c"]
    assert model.model_fields["a"].description == "a field"
    assert model.model_config.get("extra") == "allow"
    assert model.model_json_schema()["required"] == ["b"]


class Flow:
    """Calls operations by their documented path, checking each answer against the
    document with schemathesis' checks, and remembers which operations succeeded."""

    def __init__(self, schema: Any, server: DockyardServer) -> None:
        self.schema = schema
        self.server = server
        self.succeeded: set[str] = set()
        self.answered: set[str] = set()

    def __call__(
        self,
        label: str,
        status: int,
        *,
        auth: tuple[str, str] | dict[str, str] = ADMIN,
        params: dict[str, Any] | None = None,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        method, path = label.split(" ", 1)
        operation = self.schema[path][method]
        headers = auth if isinstance(auth, dict) else basic(auth)
        kwargs: dict[str, Any] = {"path_parameters": params or {}, "headers": headers}
        if body is not None:
            kwargs |= {"body": body, "media_type": "application/json"}
        if query:
            kwargs["query"] = query
        case = operation.Case(**kwargs)
        response = case.call(base_url=self.server.url)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == status, f"{label}: {response.text[:500]}"
        self.answered.add(label)
        if status < 400:
            self.succeeded.add(label)
        kind = response.headers.get("content-type") or ["application/json"]
        if "json" not in (kind if isinstance(kind, str) else kind[0]):
            return response.text  # an event stream
        return response.json() if response.content else None


R = "/api/v1/repositories/{namespace}/{repository}"
N = "/api/v1/namespaces/{namespace}"


def test_every_operation_answers_as_documented(
    schema: Any,
    server: DockyardServer,
    document: dict[str, Any],
    worker_server: DockyardServer,
    git_server: GitServer,
    git_repo_factory: MakeRepo,
    tmp_path: Path,
) -> None:
    call = Flow(schema, server)
    # The instance, sign-in and the caller.
    call("GET /api/v1/instance", 200, auth={})
    call("GET /api/v1/openapi.json", 200, auth={})
    session = call(
        "POST /api/v1/auth/login", 200, auth={}, body={"username": "admin", "password": ADMIN[1]}
    )
    call("POST /api/v1/signup", 403, auth={}, body={"name": "nobody", "password": "x" * 12})
    call("POST /api/v1/tokens", 201)
    call("GET /api/v1/me", 200)
    key = call("POST /api/v1/me/access-keys", 201)["access_key_id"]
    call("GET /api/v1/me/access-keys", 200)
    call("DELETE /api/v1/me/access-keys/{key}", 204, params={"key": key})
    # Accounts.
    account = call(
        "POST /api/v1/accounts",
        201,
        body={"name": ROOT[0], "password": ROOT[1], "namespace_quota": 5},
    )
    call("GET /api/v1/accounts", 200, query={"limit": 1})
    call("GET /api/v1/accounts/{name}", 200, params={"name": ROOT[0]})
    call(
        "PATCH /api/v1/accounts/{name}",
        200,
        params={"name": ROOT[0]},
        body={"repository_quota": 50},
    )
    # Namespaces, repositories and tags, as the account's root.
    ns = {"name": "contract"}
    repo = {"namespace": "contract", "repository": "app"}
    call(
        "POST /api/v1/namespaces",
        201,
        auth=ROOT,
        body={"name": "contract", "auto_create_repo": True, "default_repo_type": "private"},
    )
    call("GET /api/v1/namespaces", 200, auth=ROOT)
    call("GET /api/v1/namespaces/{name}", 200, auth=ROOT, params=ns)
    call(
        "PATCH /api/v1/namespaces/{name}",
        200,
        auth=ROOT,
        params=ns,
        body={"auto_create_repo": True},
    )
    call(
        "POST /api/v1/repositories",
        201,
        auth=ROOT,
        body={"namespace": "contract", "name": "app", "repo_type": "private", "summary": "An app"},
    )
    call("GET /api/v1/repositories", 200, auth=ROOT, query={"namespace": "contract"})
    call(f"GET {R}", 200, auth=ROOT, params=repo)
    call(f"PATCH {R}", 200, auth=ROOT, params=repo, body={"detail": "# App"})
    call("PUT /api/v1/me/registry-password", 204, auth=ROOT, body={"password": "root-registry"})
    with server.client(auth=(ROOT[0], "root-registry")) as registry:
        push_image(registry, "contract/app", "v1", layers=1, layer_size=64)
    call(f"GET {R}/tags", 200, auth=ROOT, params=repo, query={"order": "name"})
    call(f"GET {R}/tags/{{tag}}", 200, auth=ROOT, params=repo | {"tag": "v1"})
    call(f"GET {R}/manifests/{{reference}}", 200, auth=ROOT, params=repo | {"reference": "v1"})
    checks = [{"action": "cr:DeleteRepository", "resource": "contract/app"}, {"action": "cr:X"}]
    call("POST /api/v1/authz/check", 400, auth=ROOT, body={"checks": checks})
    answer = call("POST /api/v1/authz/check", 200, auth=ROOT, body={"checks": checks[:1]})
    assert answer["results"][0]["allowed"] is True
    # RAM users, groups, roles and policies.
    alice = {"user": "alice"}
    call("POST /api/v1/ram/users", 201, auth=ROOT, body={"name": "alice", "password": "alice-pw-1"})
    call("GET /api/v1/ram/users", 200, auth=ROOT)
    call("GET /api/v1/ram/users/{user}", 200, auth=ROOT, params=alice)
    call(
        "PATCH /api/v1/ram/users/{user}",
        200,
        auth=ROOT,
        params=alice,
        body={"password": "alice-pw-2"},
    )
    call(
        "PUT /api/v1/ram/users/{user}/registry-password",
        204,
        auth=ROOT,
        params=alice,
        body={"password": "alice-registry"},
    )
    key = call("POST /api/v1/ram/users/{user}/access-keys", 201, auth=ROOT, params=alice)
    call("GET /api/v1/ram/users/{user}/access-keys", 200, auth=ROOT, params=alice)
    call(
        "DELETE /api/v1/ram/users/{user}/access-keys/{key}",
        204,
        auth=ROOT,
        params=alice | {"key": key["access_key_id"]},
    )
    call(
        "PUT /api/v1/me/password",
        204,
        auth=("alice@contractco", "alice-pw-2"),
        body={"current_password": "alice-pw-2", "password": "alice-pw-3"},
    )
    call("POST /api/v1/ram/groups", 201, auth=ROOT, body={"name": "devs", "description": "Devs"})
    call("GET /api/v1/ram/groups", 200, auth=ROOT)
    call("GET /api/v1/ram/groups/{group}", 200, auth=ROOT, params={"group": "devs"})
    members = {"group": "devs", "user": "alice"}
    call("PUT /api/v1/ram/groups/{group}/members/{user}", 204, auth=ROOT, params=members)
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account['id']}:root"]},
            }
        ],
    }
    role = call(
        "POST /api/v1/ram/roles", 201, auth=ROOT, body={"name": "deployer", "trust_policy": trust}
    )
    call("GET /api/v1/ram/roles", 200, auth=ROOT)
    call("GET /api/v1/ram/roles/{role}", 200, auth=ROOT, params={"role": "deployer"})
    call(
        "PATCH /api/v1/ram/roles/{role}",
        200,
        auth=ROOT,
        params={"role": "deployer"},
        body={"max_session_seconds": 1800},
    )
    document_ = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "cr:Pull*", "Resource": "*"}],
    }
    call(
        "POST /api/v1/ram/policies", 201, auth=ROOT, body={"name": "PullAll", "document": document_}
    )
    call("GET /api/v1/ram/policies", 200, auth=ROOT, query={"type": "custom"})
    policy = {"policy": "PullAll"}
    call("GET /api/v1/ram/policies/{policy}", 200, auth=ROOT, params=policy)
    call(
        "PUT /api/v1/ram/policies/{policy}",
        200,
        auth=ROOT,
        params=policy,
        body={"document": document_},
    )
    call("GET /api/v1/ram/policies/{policy}/versions", 200, auth=ROOT, params=policy)
    attach = "/api/v1/ram/{kind}/{holder}/policies/{policy}"
    for kind, holder in (("users", "alice"), ("roles", "deployer")):
        call(f"PUT {attach}", 204, auth=ROOT, params={"kind": kind, "holder": holder} | policy)
    call(
        "POST /api/v1/sts/assume-role",
        201,
        auth=ROOT,
        body={"role_arn": role["arn"], "role_session_name": "ci", "duration_seconds": 900},
    )
    # Permissions on a namespace and a repository.
    call(
        "PUT /api/v1/namespaces/{name}/permissions/{subject}",
        200,
        auth=ROOT,
        params=ns | {"subject": "alice"},
        body={"role": "read-only"},
    )
    call("GET /api/v1/namespaces/{name}/permissions", 200, auth=ROOT, params=ns)
    call(
        f"PUT {R}/permissions/{{subject}}",
        200,
        auth=ROOT,
        params=repo | {"subject": "alice"},
        body={"role": "write"},
    )
    call(f"GET {R}/permissions", 200, auth=ROOT, params=repo)
    # Webhooks (delivering to this server itself, on loopback), per repository and namespace.
    for base, where in ((f"{R}/webhooks", repo), (f"{N}/webhooks", {"namespace": "contract"})):
        hook = call(
            f"POST {base}",
            201,
            auth=ROOT,
            params=where,
            body={
                "name": "ci",
                "url": f"{server.url}/healthz",
                "trigger": {"type": "tag_list", "tags": ["v1"]},
                "events": ["push"],
                "format": "cloudevents",
                "headers": {"X-Token": "t"},
            },
        )
        one = where | {"id": str(hook["id"])}
        call(f"GET {base}", 200, auth=ROOT, params=where)
        call(f"GET {base}/{{id}}", 200, auth=ROOT, params=one)
        call(f"PATCH {base}/{{id}}", 200, auth=ROOT, params=one, body={"trigger": {"type": "all"}})
        call(f"POST {base}/{{id}}/rotate-secret", 200, auth=ROOT, params=one)
        delivery = call(f"POST {base}/{{id}}/test", 200, auth=ROOT, params=one)
        call(f"GET {base}/{{id}}/deliveries", 200, auth=ROOT, params=one)
        sent = one | {"delivery": str(delivery["id"])}
        call(f"GET {base}/{{id}}/deliveries/{{delivery}}", 200, auth=ROOT, params=sent)
        call(f"POST {base}/{{id}}/deliveries/{{delivery}}/redeliver", 202, auth=ROOT, params=sent)
        call(f"DELETE {base}/{{id}}", 204, auth=ROOT, params=one)
    # What happened: audit, events and jobs (no worker runs here: the jobs wait).
    call("GET /api/v1/audit", 200, query={"account": ROOT[0], "allowed": "true"})
    call("GET /api/v1/events", 200, auth=ROOT, query={"repository": "contract/app"})
    jobs = call("GET /api/v1/jobs", 200, query={"state": "queued", "limit": 2})
    job = {"id": str(jobs["items"][0]["id"])}
    call("GET /api/v1/jobs/{id}", 200, params=job)
    call("POST /api/v1/jobs/{id}/retry", 409, params=job)  # only a dead or failed job
    # Taking it all down again.
    call(f"DELETE {R}/permissions/{{subject}}", 204, auth=ROOT, params=repo | {"subject": "alice"})
    call(
        "DELETE /api/v1/namespaces/{name}/permissions/{subject}",
        204,
        auth=ROOT,
        params=ns | {"subject": "alice"},
    )
    for kind, holder in (("users", "alice"), ("roles", "deployer")):
        call(f"DELETE {attach}", 204, auth=ROOT, params={"kind": kind, "holder": holder} | policy)
    call("DELETE /api/v1/ram/groups/{group}/members/{user}", 204, auth=ROOT, params=members)
    call("DELETE /api/v1/ram/policies/{policy}", 204, auth=ROOT, params=policy)
    call("DELETE /api/v1/ram/roles/{role}", 204, auth=ROOT, params={"role": "deployer"})
    call("DELETE /api/v1/ram/groups/{group}", 204, auth=ROOT, params={"group": "devs"})
    call("DELETE /api/v1/ram/users/{user}", 204, auth=ROOT, params=alice)
    call(f"DELETE {R}/tags/{{tag}}", 204, auth=ROOT, params=repo | {"tag": "v1"})
    call(f"DELETE {R}", 204, auth=ROOT, params=repo)
    call("DELETE /api/v1/namespaces/{name}", 204, auth=ROOT, params=ns)
    call("POST /api/v1/auth/logout", 204, auth={"Authorization": f"Bearer {session['token']}"})

    # The vulnerability database: an import of one OSV record, as a JSON body.
    record = {"id": "DOCKYARD-TEST-1", "modified": "2026-01-01T00:00:00Z", "affected": []}
    started = call("POST /api/v1/vulndb/imports", 202, body=[record])
    call("GET /api/v1/vulndb/imports/{id}", 200, params={"id": started["id"]})
    call("GET /api/v1/vulndb/imports", 200)
    call("GET /api/v1/vulndb", 200)
    call("POST /api/v1/vulndb/imports", 403, auth=ROOT, body=[record])

    # Scans, security settings, builds and the git hook, on the server whose workers run.
    worked = Flow(schema, worker_server)
    _scans_and_security(worked, worker_server, tmp_path)
    _builds_and_hooks(worked, git_server, git_repo_factory)
    call.answered |= worked.answered
    call.succeeded |= worked.succeeded

    every = {f"{m} {p}" for m, p, _ in _operations(document)}
    assert not every - call.answered, "operations this flow does not drive yet (add a call):\n" + (
        "\n".join(sorted(every - call.answered))
    )
    # All of them succeeded, but for sign-up (off here) and retrying a job that has not
    # failed (no worker runs to fail one).
    assert every - call.succeeded == {"POST /api/v1/signup", "POST /api/v1/jobs/{id}/retry"}


LIBRARY = {"namespace": "library", "repository": "app"}


def _scans_and_security(call: Flow, server: DockyardServer, tmp: Path) -> None:
    """An image pushed with skopeo and scanned by the workers: its report in every
    format, its SBOMs, a rescan; the namespace's and repository's security settings."""
    build_image(tmp / "layout")
    digest = push(server, tmp, f"oci:{tmp / 'layout'}:latest", "app:v1")
    with server.client() as admin:
        wait_scan(admin, f"{R.format(**LIBRARY)}/tags/v1/scan")
    tag, manifest = LIBRARY | {"tag": "v1"}, LIBRARY | {"digest": digest}
    for fmt in ("dockyard", "harbor", "trivy", "sarif", "cyclonedx"):
        call(f"GET {R}/tags/{{tag}}/scan", 200, params=tag, query={"format": fmt})
    report = call(
        f"GET {R}/manifests/{{digest}}/scan",
        200,
        params=manifest,
        query={"severity": "High,Medium", "limit": 1},
    )
    assert len(report["vulnerabilities"]) == 1, report
    assert report["next"], report
    call(f"GET {R}/tags/{{tag}}/scan", 400, params=tag, query={"format": "grype"})
    for fmt in ("cyclonedx", "spdx"):
        call(f"GET {R}/manifests/{{digest}}/sbom", 200, params=manifest, query={"format": fmt})
    call(f"POST {R}/tags/{{tag}}/scan", 202, params=tag)
    call(f"POST {R}/manifests/{{digest}}/scan", 202, params=manifest)
    ns = {"name": "library"}
    call("GET /api/v1/namespaces/{name}/security", 200, params=ns)
    call(
        "PUT /api/v1/namespaces/{name}/security",
        200,
        params=ns,
        body={
            "block_pull_severity": "none",
            "allowlist": [{"id": "CVE-2023-0001", "comment": "not reachable"}, "CVE-2023-0002"],
        },
    )
    call("PUT /api/v1/namespaces/{name}/security", 400, params=ns, body={"block_pull": "x"})
    call(f"GET {R}/security", 200, params=LIBRARY)
    call(f"PUT {R}/security", 200, params=LIBRARY, body={"scan_on_push": False})


def _builds_and_hooks(call: Flow, git: GitServer, make_repo: MakeRepo) -> None:
    """A repository bound to a loopback git repository: its refs, a rule, one real
    build (buildah) with its log read and followed, one build canceled, a GitLab-style
    push to the hook, the deliveries; then unbound again."""
    repo = {"namespace": "library", "repository": "built"}
    call("POST /api/v1/repositories", 201, body={"namespace": "library", "name": "built"})
    code = make_repo("contract-built", simple_files())
    source = {
        "type": "git",
        "url": code.http_url,
        "credentials": {"username": git.username, "token": git.token},
    }
    bound = call(f"PUT {R}/source", 201, params=repo, body=source)
    call(f"PUT {R}/source", 200, params=repo, body={"url": code.http_url, "auto_build": True})
    call(f"GET {R}/source", 200, params=repo)
    refs = call(f"POST {R}/source/check", 200, params=repo)
    assert [b["name"] for b in refs["branches"]] == ["main"]
    secret = call(f"POST {R}/source/rotate-hook-secret", 200, params=repo)["hook_secret"]
    assert secret != bound["hook_secret"]
    rule = call(
        f"POST {R}/build-rules",
        201,
        params=repo,
        body={"type": "branch", "ref": "main", "image_tags": ["latest"]},
    )
    one = repo | {"id": str(rule["id"])}
    call(f"GET {R}/build-rules", 200, params=repo)
    call(f"GET {R}/build-rules/{{id}}", 200, params=one)
    call(f"PATCH {R}/build-rules/{{id}}", 200, params=one, body={"image_tags": ["latest", "v1"]})
    call(f"POST {R}/build-rules", 400, params=repo, body={"type": "branch", "ref": "("})
    built = call(f"POST {R}/build-rules/{{id}}/build", 202, params=one, body={"ref": "main"})
    doomed = call(f"POST {R}/build-rules/{{id}}/build", 202, params=one)
    call(f"POST {R}/builds/{{id}}/cancel", 202, params=repo | {"id": str(doomed["id"])})
    with call.server.client() as admin:
        done = wait_build(admin, "built", built["id"])
    assert done["status"] == "success", done
    build = repo | {"id": str(built["id"])}
    call(f"GET {R}/builds", 200, params=repo, query={"status": "success", "limit": 1})
    call(f"GET {R}/builds/{{id}}", 200, params=build)
    log = call(f"GET {R}/builds/{{id}}/log", 200, params=build, query={"limit": 5})
    assert log["complete"] is False
    assert len(log["items"]) == 5
    stream = call(f"GET {R}/builds/{{id}}/log", 200, params=build, query={"follow": "true"})
    assert "event: line" in stream  # schemathesis reads a stream's first events only:
    with call.server.client() as admin:  # the whole stream ends with the build's status
        whole = admin.get(f"{R.format(**repo)}/builds/{built['id']}/log?follow=true").text
    assert whole.endswith('event: end\ndata: {"status": "success"}\n\n'), whole[-300:]
    call(f"GET {R}/builds/{{id}}", 404, params=repo | {"id": "999999"})
    call(f"POST {R}/builds/{{id}}/cancel", 409, params=build)  # it has ended
    # A push to a branch no rule builds, as GitLab sends it (the secret in a header).
    hook = {"hook_id": bound["hook_url"].rsplit("/", 1)[1]}
    push_ = {"ref": "refs/heads/feature", "after": done["commit"]["sha"]}
    push_ |= {"checkout_sha": done["commit"]["sha"]}
    gitlab = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}
    answer = call("POST /api/v1/hooks/git/{hook_id}", 202, auth=gitlab, params=hook, body=push_)
    assert answer["builds"] == []
    wrong = gitlab | {"X-Gitlab-Token": bound["hook_secret"]}  # rotated away
    call("POST /api/v1/hooks/git/{hook_id}", 401, auth=wrong, params=hook, body=push_)
    deliveries = call(f"GET {R}/source/hook-deliveries", 200, params=repo)
    assert [d["status"] for d in deliveries["items"]] == [401, 202]
    call(f"DELETE {R}/build-rules/{{id}}", 204, params=one)
    call(f"DELETE {R}/source", 204, params=repo)


KNOWN = {
    "name": "library",
    "namespace": "library",
    "repository": "fuzz",
    "tag": "latest",
    "user": "bob",
    "holder": "bob",
    "group": "fuzzers",
    "role": "fuzzer",
    "policy": "AliyunContainerRegistryReadOnlyAccess",
    "subject": "bob",
    "kind": "users",
}


@pytest.fixture(scope="module")
def seeded(server: DockyardServer) -> dict[str, str]:
    """Things for generated requests to find: a repository with a tag and a webhook, a
    RAM user, group and role in the administrator's reach."""
    with server.client() as admin:
        push_image(admin, "library/fuzz", "latest", layers=1, layer_size=64)
        hook = admin.post(
            "/api/v1/repositories/library/fuzz/webhooks",
            json={"name": "fuzz", "url": f"{server.url}/healthz"},
        )
        assert hook.status_code == 201, hook.text
    return KNOWN | {"id": str(hook.json()["id"])}


def test_generated_requests_answer_as_documented(
    schema: Any, server: DockyardServer, seeded: dict[str, str]
) -> None:
    """schemathesis' generated requests for every operation, as the administrator, valid
    and (with path parameters naming real things) invalid: no 5xx, statuses, content
    types, headers and bodies as documented (problem JSON for every refusal)."""
    headers = basic(ADMIN)
    failures: dict[str, str] = {}
    generated = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in NOT_GENERATED:
            continue
        names = [p.name for p in operation.path_parameters]
        known = {n: seeded[n] for n in names if n in seeded}
        strategy = st.one_of(
            operation.as_strategy(),
            operation.as_strategy(path_parameters=known),
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known),
        )

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            nonlocal generated
            generated += 1
            response = case.call(base_url=server.url, headers=headers)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # every operation runs; all failures are reported
                failures.setdefault(case.operation.label, str(exc)[:2000])

        run()
    assert generated > 400
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in sorted(failures.items()))


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Python client generated from the document by openapi-python-client (once a
    session), imported as ``dockyard_client``."""
    base = tmp_path_factory.mktemp("client")
    with running_server(base / "server", {"DOCKYARD_JOB_WORKERS": "0"}, remove=True) as server:
        document = httpx.get(f"{server.url}/api/v1/openapi.json").text
    (base / "openapi.json").write_text(document)
    (base / "config.yml").write_text("package_name_override: dockyard_client\n")
    tool = Path(sys.executable).with_name("openapi-python-client")
    env = os.environ | {"PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    made = subprocess.run(
        [
            str(tool),
            "generate",
            "--path",
            str(base / "openapi.json"),
            "--config",
            str(base / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(base / "dockyard_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    # The generator warns about what it could not turn into code: nothing, here.
    assert "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr
    sys.path.insert(0, str(base))
    try:
        yield importlib.import_module("dockyard_client")
    finally:
        sys.path.remove(str(base))
        for name in [m for m in sys.modules if m.split(".")[0] == "dockyard_client"]:
            del sys.modules[name]


def test_a_generated_client_works(generated_client: Any, server: DockyardServer) -> None:
    """Sign in, create an account, a namespace and a repository, give a RAM user write
    permission on it, let that user push an image, and list the tags: all through the
    generated client but the push."""
    dc = generated_client
    m = importlib.import_module("dockyard_client.models")
    sessions = importlib.import_module("dockyard_client.api.sessions.post_api_v1_auth_login")
    new_account = importlib.import_module("dockyard_client.api.accounts.post_api_v1_accounts")
    new_namespace = importlib.import_module("dockyard_client.api.namespaces.post_api_v1_namespaces")
    get_namespace = importlib.import_module(
        "dockyard_client.api.namespaces.get_api_v1_namespaces_name"
    )
    new_repository = importlib.import_module(
        "dockyard_client.api.repositories.post_api_v1_repositories"
    )
    new_user = importlib.import_module("dockyard_client.api.ram_users.post_api_v1_ram_users")
    grant = importlib.import_module(
        "dockyard_client.api.permissions."
        "put_api_v1_repositories_namespace_repository_permissions_subject"
    )
    registry_password = importlib.import_module(
        "dockyard_client.api.me.put_api_v1_me_registry_password"
    )
    list_tags = importlib.import_module(
        "dockyard_client.api.tags.get_api_v1_repositories_namespace_repository_tags"
    )

    def signed_in(username: str, password: str) -> Any:
        anonymous = dc.Client(base_url=server.url)
        session = sessions.sync(
            client=anonymous, body=m.Login(username=username, password=password)
        )
        assert isinstance(session, m.SessionOut), session
        return dc.AuthenticatedClient(base_url=server.url, token=session.token)

    admin = signed_in(*ADMIN)
    account = new_account.sync(
        client=admin, body=m.NewAccount(name="genco", password="genco-root-password")
    )
    assert isinstance(account, m.AccountOut), account
    assert account.namespace_quota == 3
    root = signed_in("genco", "genco-root-password")
    namespace = new_namespace.sync(client=root, body=m.NewNamespace(name="gen"))
    assert isinstance(namespace, m.NamespaceOut), namespace
    assert namespace.default_repo_type == m.RepoType.PRIVATE
    assert namespace.created_at.tzinfo is not None  # a date-time, parsed
    # Errors come back as the documented problem.
    missing = get_namespace.sync(name="no-such-namespace", client=root)
    assert isinstance(missing, m.Problem)
    assert missing.status == 404
    repository = new_repository.sync(
        client=root,
        body=m.NewRepository(namespace="gen", name="app", repo_type=m.RepoType.PRIVATE),
    )
    assert isinstance(repository, m.RepositoryOut), repository
    assert repository.full_name == "gen/app"
    user = new_user.sync(client=root, body=m.NewRamUser(name="dev", password="dev-password-1"))
    assert isinstance(user, m.RamUserOut), user
    granted = grant.sync(
        namespace="gen",
        repository="app",
        subject="dev",
        client=root,
        body=m.PermissionGrant(role=m.PermissionRole.WRITE),
    )
    assert isinstance(granted, m.PermissionOut), granted
    assert granted.subject == "dev@genco"
    # The RAM user sets its docker login password and pushes, with its new permission.
    dev = signed_in("dev@genco", "dev-password-1")
    done = registry_password.sync_detailed(
        client=dev, body=m.RegistryPassword(password="dev-registry-1")
    )
    assert done.status_code == 204
    with server.client(auth=("dev@genco", "dev-registry-1")) as registry:
        image = push_image(registry, "gen/app", "v1", layers=1, layer_size=128)
    tags = list_tags.sync(namespace="gen", repository="app", client=dev)
    assert isinstance(tags, m.TagPage), tags
    assert [(t.name, t.digest) for t in tags.items] == [("v1", image.digest)]
    assert tags.items[0].size == sum(map(len, image.blobs.values())) + len(image.manifest)
