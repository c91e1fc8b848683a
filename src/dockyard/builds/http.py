"""Build routes: a repository's code source, build rules, builds and their logs
(``/api/v1/repositories/{namespace}/{repository}/…``), and the hook code hosts call
(``POST /api/v1/hooks/git/{hook_id}``, no login: the hook secret signs the request).

Credentials and rule secrets are never answered (the source says which kind of
credentials it has; a rule the ids of its secrets); the hook secret is answered when the
source is bound and when it is rotated, as a webhook's secret is. A build's log is paged
by line number, or followed (``?follow=true``) as Server-Sent Events until the build ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dockyard.api import (
    ApiAuth,
    ApiError,
    before_param,
    call_service,
    iso,
    json_body,
    listing,
    no_fields,
    only_fields,
    optional_field,
    optional_json_body,
    page_params,
    paged,
    path_id,
    problem,
    read_body,
    required_field,
    title_of,
)
from dockyard.audit import DECISION, Decision, origin_of
from dockyard.builds import git
from dockyard.builds.hooks import HookRejected, Ping, parse_hook
from dockyard.builds.model import FINAL, Build, HookDelivery, LogLine, Rule, Source
from dockyard.builds.service import BuildService, RuleInput, SourceInput
from dockyard.catalog.http import repository_in_path
from dockyard.catalog.service import CatalogService
from dockyard.config import Settings
from dockyard.errors import ServiceError
from dockyard.iam.arn import repository_arn
from dockyard.iam.authz import Principal
from dockyard.oci.reference import RepositoryName
from dockyard.openapi import (
    Body,
    Field,
    Int64,
    LenientBody,
    NoFields,
    Op,
    Query,
    Reply,
    Timestamp,
    describe,
)

SOURCE_FIELDS = (
    "type",
    "url",
    "credentials",
    "auto_build",
    "build_without_cache",
    "build_pool",
    "poll_interval",
)
RULE_FIELDS = (
    "type",
    "ref",
    "dockerfile_dir",
    "dockerfile_name",
    "image_tags",
    "build_args",
    "secrets",
    "enabled",
)
HOOK_BODY_BYTES = 1024 * 1024
FOLLOW_POLL = 0.2
"""Seconds between two looks for new lines by a follower (latency: this plus the
runner's flush interval)."""
KEEP_ALIVE = 15.0


# --- the document's types ----------------------------------------------------------

BuildStatus = Literal[
    "pending", "cloning", "building", "pushing", "success", "failed", "canceled", "timed_out"
]


class TokenCredentials(Body):
    """A username and an access token (HTTPS)."""

    username: str = ""
    token: str = Field(min_length=1)


class SshCredentials(Body):
    """A private key (SSH URLs)."""

    ssh_private_key: str = Field(min_length=1)


class SourceBody(Body):
    """A repository's code source: where its images are built from."""

    type: Literal["git"] = "git"
    url: str = Field(examples=["https://git.example.com/team/app.git"])
    credentials: TokenCredentials | SshCredentials | None = Field(
        default=None, description="left out: keep the stored ones; null: none"
    )
    auto_build: bool = Field(default=True, description="build when the code host reports a push")
    build_without_cache: bool = False
    build_pool: str = Field(default="default", examples=["default"])
    poll_interval: int | None = Field(
        default=None, description="seconds between polls for new commits (null: no polling)"
    )


class CredentialsKind(Reply):
    kind: str = Field(examples=["token", "ssh"])


class SourceOut(Reply):
    """A code source (its credentials are never answered, only their kind)."""

    repository: str
    type: Literal["git"]
    url: str
    credentials: CredentialsKind | None
    auto_build: bool
    build_without_cache: bool
    build_pool: str
    poll_interval: int | None
    hook_url: str = Field(description="where the code host sends pushes")
    polled_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    hook_secret: str | None = Field(
        default=None, description="the hook secret, answered once: when the source is bound"
    )


class GitRef(Reply):
    name: str = Field(examples=["main"])
    commit: str


class SourceRefsOut(Reply):
    """The source's branches and tags, as the code host lists them now."""

    branches: list[GitRef]
    tags: list[GitRef]


class HookSecretOut(Reply):
    hook_secret: str = Field(description="the new secret; the old one no longer signs")


class HookDeliveryOut(Reply):
    """A push notification the hook received, and what came of it."""

    id: Int64
    received_at: Timestamp
    provider: str | None = Field(examples=["github", "gitlab", "gitea", "forgejo", "generic"])
    delivery: str | None = Field(description="the code host's delivery id")
    kind: str = Field(examples=["push", "ping", "refused"])
    ref: str | None
    commit: str | None
    status: int = Field(description="the HTTP status answered", examples=[202])
    outcome: str
    builds: list[Int64]


class RuleBody(Body):
    """A build rule: which refs build, from which Dockerfile, into which tags (each
    field left out keeps its default, or on PATCH its value)."""

    type: Literal["branch", "tag"] | None = None
    ref: str | None = Field(default=None, description="a name or a regular expression")
    dockerfile_dir: str | None = None
    dockerfile_name: str | None = None
    image_tags: list[str] | None = Field(
        default=None, description="tag templates", examples=[["{branch}", "latest"]]
    )
    build_args: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(
        default=None, description="build secrets by id (write only: rules answer their ids)"
    )
    enabled: bool | None = None


class RuleOut(Reply):
    id: Int64
    type: Literal["branch", "tag"]
    ref: str
    dockerfile_dir: str
    dockerfile_name: str
    image_tags: list[str]
    build_args: dict[str, str]
    secrets: list[str] = Field(description="the ids of the rule's secrets")
    enabled: bool
    builtin: bool = Field(description="the built-in release rule (read only)")
    created_at: Timestamp | None
    updated_at: Timestamp | None


class BuildNow(Body):
    ref: str | None = Field(
        default=None, description="a branch or tag to build (default: the rule's)"
    )


class BuildTrigger(Reply):
    type: Literal["manual", "push", "poll"]
    by: str | None = Field(default=None, description="who started it (manual)")
    hook_delivery_id: Int64 | None = Field(default=None, description="the delivery (push)")


class BuildRef(Reply):
    type: str = Field(examples=["branch", "tag"])
    name: str


class BuildCommit(Reply):
    sha: str
    subject: str


class BuildStages(Reply):
    queued_at: Timestamp
    cloning_at: Timestamp | None
    building_at: Timestamp | None
    pushing_at: Timestamp | None
    finished_at: Timestamp | None


class BuildOut(Reply):
    """A build: what it builds, where it stands, and what it pushed."""

    id: Int64
    repository: str
    rule_id: Int64 | None
    rule_ref: str
    trigger: BuildTrigger
    ref: BuildRef
    commit: BuildCommit
    status: BuildStatus
    stages: BuildStages
    duration_seconds: float | None
    image_tags: list[str]
    digest: str | None
    error: str | None
    worker: str | None
    cancel_requested: bool
    log_lines: int


class BuildQuery(Query):
    status: BuildStatus | None = Field(default=None, description="only builds in this state")
    rule: Int64 | None = Field(default=None, description="only builds of this rule")


class LogLineOut(Reply):
    line: int
    stage: str
    time: Timestamp
    text: str


class BuildLogOut(Reply):
    """Lines of a build's log from ``offset``; followed (``follow=true``), the same lines
    arrive as Server-Sent Events (``text/event-stream``): ``line`` events whose ``id``
    is the line number (send it back as ``Last-Event-ID`` to resume) and whose data is a
    line as here, then one ``end`` event with the final ``status``."""

    items: list[LogLineOut]
    next_offset: int = Field(description="the offset that reads on after these lines")
    status: BuildStatus
    complete: bool = Field(description="the build has ended and every line is read")


class BuildLogEvent(Reply):
    """One Server-Sent Event of a followed log (``text/event-stream``)."""

    event: Literal["line", "end"] = Field(
        description="line: a line of the log; end: the build ended (the last event)"
    )
    data: str = Field(
        description="JSON text: a line (as in items) for line, {status} for end",
        examples=['{"line": 1, "stage": "cloning", "time": "2026-01-31T12:00:00Z", "text": "…"}'],
    )
    id: str | None = Field(
        default=None, description="the line's number (send it back as Last-Event-ID to resume)"
    )


class LogQuery(Query):
    offset: int | None = Field(default=None, ge=0, le=10**9, description="lines to skip")
    limit: int | None = Field(
        default=None, ge=0, le=10000, description="lines at most (0: the default, 1000)"
    )
    follow: bool | None = Field(
        default=None, description="stream the lines as Server-Sent Events until the build ends"
    )


class HookPush(LenientBody):
    """A code host's push notification: GitHub's, GitLab's, Gitea's and Forgejo's
    payloads (as they send them), or the generic form. Signed: GitHub, Gitea, Forgejo
    and the generic form with an HMAC-SHA256 of the body (hex) in their signature
    header, GitLab with the secret itself in ``X-Gitlab-Token``."""

    ref: str | None = Field(default=None, examples=["refs/heads/main"])
    after: str | None = Field(default=None, description="the commit the ref moved to")


class HookAccepted(Reply):
    delivery: Int64 = Field(description="the recorded delivery")
    builds: list[Int64] = Field(description="the builds it started")
    outcome: str


class HookPing(Reply):
    ping: Literal["ok"]


_HOOK_HEADERS = (
    ("X-GitHub-Event", "GitHub: push or ping"),
    ("X-Hub-Signature-256", "GitHub and the generic form: sha256=<hex HMAC-SHA256 of the body>"),
    ("X-GitHub-Delivery", "GitHub: the delivery's id"),
    ("X-Gitlab-Event", "GitLab: Push Hook or Tag Push Hook"),
    ("X-Gitlab-Token", "GitLab: the hook secret itself"),
    ("X-Gitlab-Event-UUID", "GitLab: the delivery's id"),
    ("X-Gitea-Event", "Gitea: push"),
    ("X-Gitea-Signature", "Gitea: hex HMAC-SHA256 of the body"),
    ("X-Gitea-Delivery", "Gitea: the delivery's id"),
    ("X-Forgejo-Event", "Forgejo: push"),
    ("X-Forgejo-Signature", "Forgejo: hex HMAC-SHA256 of the body"),
    ("X-Forgejo-Delivery", "Forgejo: the delivery's id"),
    ("X-Delivery-Id", "the generic form: an optional delivery id"),
)


def hook_path(hook_id: str) -> str:
    return f"/api/v1/hooks/git/{hook_id}"


def source_json(source: Source, base_url: str) -> dict[str, Any]:
    return {
        "repository": source.repository,
        "type": source.type,
        "url": source.url,
        "credentials": {"kind": source.credentials_kind} if source.credentials_kind else None,
        "auto_build": source.auto_build,
        "build_without_cache": source.build_without_cache,
        "build_pool": source.build_pool,
        "poll_interval": source.poll_interval,
        "hook_url": base_url.rstrip("/") + hook_path(source.hook_id),
        "polled_at": iso(source.polled_at) if source.polled_at else None,
        "created_at": iso(source.created_at),
        "updated_at": iso(source.updated_at),
    }


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "type": rule.type,
        "ref": rule.ref,
        "dockerfile_dir": rule.dockerfile_dir,
        "dockerfile_name": rule.dockerfile_name,
        "image_tags": list(rule.image_tags),
        "build_args": rule.build_args,
        "secrets": list(rule.secret_ids),
        "enabled": rule.enabled,
        "builtin": rule.builtin,
        "created_at": iso(rule.created_at) if rule.created_at else None,
        "updated_at": iso(rule.updated_at) if rule.updated_at else None,
    }


def build_json(build: Build) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": build.trigger}
    if build.trigger == "manual":
        trigger["by"] = build.triggered_by
    elif build.trigger == "push":
        trigger["hook_delivery_id"] = build.hook_delivery_id
    stages = {
        "queued_at": iso(build.created_at),
        "cloning_at": iso(build.started_at) if build.started_at else None,
        "building_at": iso(build.built_at) if build.built_at else None,
        "pushing_at": iso(build.pushed_at) if build.pushed_at else None,
        "finished_at": iso(build.finished_at) if build.finished_at else None,
    }
    return {
        "id": build.id,
        "repository": build.repository,
        "rule_id": build.rule_id if build.rule_id is not None else None,
        "rule_ref": build.rule_ref,
        "trigger": trigger,
        "ref": {"type": build.ref_type, "name": build.ref_name},
        "commit": {"sha": build.commit_sha, "subject": build.commit_subject},
        "status": build.status,
        "stages": stages,
        "duration_seconds": round(build.duration, 3) if build.duration is not None else None,
        "image_tags": list(build.image_tags),
        "digest": build.digest or None,
        "error": build.error or None,
        "worker": build.worker or None,
        "cancel_requested": build.cancel_requested,
        "log_lines": build.log_lines,
    }


def line_json(line: LogLine) -> dict[str, Any]:
    return {"line": line.line, "stage": line.stage, "time": iso(line.at), "text": line.text}


def delivery_json(d: HookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "received_at": iso(d.received_at),
        "provider": d.provider or None,
        "delivery": d.delivery or None,
        "kind": d.kind,
        "ref": d.ref or None,
        "commit": d.commit or None,
        "status": d.status,
        "outcome": d.outcome,
        "builds": list(d.builds),
    }


def _credentials(value: Any) -> git.Credentials:
    if not isinstance(value, dict):
        raise ApiError(
            400,
            "Bad Request",
            'credentials: {"username", "token"} or {"ssh_private_key"}, or null',
        )
    only_fields(value, ("username", "token", "ssh_private_key"))
    username = optional_field(value, "username", str) or ""
    token = optional_field(value, "token", str) or ""
    key = optional_field(value, "ssh_private_key", str) or ""
    if key and (username or token):
        raise ApiError(400, "Bad Request", "credentials: a token or an ssh_private_key, not both")
    if not key and not token:
        raise ApiError(400, "Bad Request", "credentials: a token (with its username) is needed")
    for name, text in (("username", username), ("token", token)):
        if len(text) > 1024 or any(c in text for c in "\r\n\0"):
            raise ApiError(400, "Bad Request", f"credentials.{name}: one line of at most 1024")
    if len(key) > 16384:
        raise ApiError(400, "Bad Request", "credentials.ssh_private_key: at most 16384 characters")
    return git.Credentials(username=username, token=token, ssh_private_key=key)


def source_input(body: dict[str, Any]) -> SourceInput:
    only_fields(body, SOURCE_FIELDS)
    url = required_field(body, "url", str)
    poll = optional_field(body, "poll_interval", int)
    creds = None
    keep = "credentials" not in body
    if body.get("credentials") is not None:
        creds = _credentials(body["credentials"])
    auto = optional_field(body, "auto_build", bool)
    no_cache = optional_field(body, "build_without_cache", bool)
    return SourceInput(
        url=url,
        type=optional_field(body, "type", str) or "git",
        credentials=creds,
        keep_credentials=keep,
        auto_build=True if auto is None else auto,
        build_without_cache=bool(no_cache),
        build_pool=optional_field(body, "build_pool", str) or "default",
        poll_interval=poll,
    )


def _strings(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ApiError(400, "Bad Request", f"{what} must be an object of strings")
    return dict(value)


def rule_input(body: dict[str, Any]) -> RuleInput:
    only_fields(body, RULE_FIELDS)
    tags = body.get("image_tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(x, str) for x in tags)
    ):
        raise ApiError(400, "Bad Request", "image_tags must be a list of tag templates")
    args = body.get("build_args")
    secrets = body.get("secrets")
    return RuleInput(
        type=optional_field(body, "type", str),
        ref=optional_field(body, "ref", str),
        dockerfile_dir=optional_field(body, "dockerfile_dir", str),
        dockerfile_name=optional_field(body, "dockerfile_name", str),
        image_tags=tuple(tags) if tags is not None else None,
        build_args=_strings(args, "build_args") if args is not None else None,
        secrets=_strings(secrets, "secrets") if secrets is not None else None,
        enabled=optional_field(body, "enabled", bool),
    )


def _int_param(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) <= most):
        raise ApiError(400, "Bad Request", f"{name} must be an integer from 0 to {most}")
    return int(raw)


class BuildRoutes:
    def __init__(
        self, builds: BuildService, catalog: CatalogService, auth: ApiAuth, settings: Settings
    ) -> None:
        self.builds = builds
        self.catalog = catalog
        self.auth = auth
        self.region = settings.region
        self.public_url = settings.public_url

    def routes(self) -> list[Route]:
        base = "/api/v1/repositories/{namespace}/{repository}"
        return [
            Route(base + "/source", self.source, methods=["GET", "PUT", "DELETE"]),
            Route(base + "/source/check", self.check, methods=["POST"]),
            Route(base + "/source/rotate-hook-secret", self.rotate, methods=["POST"]),
            Route(base + "/source/hook-deliveries", self.deliveries, methods=["GET"]),
            Route(base + "/build-rules", self.rules, methods=["GET", "POST"]),
            Route(base + "/build-rules/{id}", self.rule, methods=["GET", "PATCH", "DELETE"]),
            Route(base + "/build-rules/{id}/build", self.build_now, methods=["POST"]),
            Route(base + "/builds", self.list_builds, methods=["GET"]),
            Route(base + "/builds/{id}", self.build, methods=["GET"]),
            Route(base + "/builds/{id}/log", self.log, methods=["GET"]),
            Route(base + "/builds/{id}/cancel", self.cancel, methods=["POST"]),
        ]

    async def _authorized(self, request: Request, action: str) -> tuple[RepositoryName, Principal]:
        return await repository_in_path(self.auth, self.catalog, self.region, request, action)

    def _base_url(self, request: Request) -> str:
        return self.public_url or str(request.base_url)

    # -- source ------------------------------------------------------------------------

    @describe(
        get=Op("Read the repository's code source", tag="builds", reply=SourceOut),
        put=Op(
            "Bind the repository to a code source, or change it",
            tag="builds",
            body=SourceBody,
            reply=SourceOut,
            also=((201, SourceOut),),
            description="201 with the hook secret when the source is bound, 200 when a "
            "bound source is changed.",
        ),
        delete=Op("Unbind the code source", tag="builds", status=204),
    )
    async def source(self, request: Request) -> Response:
        if request.method == "GET":
            name, _ = await self._authorized(request, "cr:GetRepoSourceRepo")
            found = await call_service(lambda: self.builds.get_source(name), ServiceError)
            return JSONResponse(source_json(found, self._base_url(request)))
        if request.method == "DELETE":
            name, principal = await self._authorized(request, "cr:DeleteRepoSourceRepo")
            origin = origin_of(request.scope, principal, status=204)
            await call_service(lambda: self.builds.delete_source(origin, name), ServiceError)
            return Response(status_code=204)
        name, principal = await self._authorized(request, "cr:UpdateRepoSourceRepo")
        spec = source_input(await json_body(request))
        origin = origin_of(request.scope, principal, status=200)
        source, secret = await call_service(
            lambda: self.builds.put_source(origin, name, spec), ServiceError
        )
        body = source_json(source, self._base_url(request))
        if secret is not None:
            return JSONResponse(body | {"hook_secret": secret}, status_code=201)
        return JSONResponse(body)

    @describe(
        post=Op(
            "List the code source's branches and tags",
            tag="builds",
            body=NoFields,
            body_required=False,
            reply=SourceRefsOut,
        )
    )
    async def check(self, request: Request) -> Response:
        name, _ = await self._authorized(request, "cr:ListRepoSourceRefs")
        await no_fields(request)
        refs = await call_service(lambda: self.builds.check_source(name), ServiceError)
        return JSONResponse(refs)

    @describe(
        post=Op(
            "Rotate the hook secret",
            tag="builds",
            body=NoFields,
            body_required=False,
            reply=HookSecretOut,
        )
    )
    async def rotate(self, request: Request) -> Response:
        name, principal = await self._authorized(request, "cr:UpdateRepoSourceRepo")
        await no_fields(request)
        origin = origin_of(request.scope, principal, status=200)
        secret = await call_service(
            lambda: self.builds.rotate_hook_secret(origin, name), ServiceError
        )
        return JSONResponse({"hook_secret": secret})

    @describe(
        get=Op(
            "List the hook's deliveries, newest first",
            tag="builds",
            reply=HookDeliveryOut,
            paged=True,
        )
    )
    async def deliveries(self, request: Request) -> Response:
        name, _ = await self._authorized(request, "cr:GetRepoSourceRepo")
        limit, after = page_params(request)
        before = before_param(after, "a delivery")
        found = await call_service(
            lambda: self.builds.deliveries(name, limit=limit, before=before), ServiceError
        )
        return paged(listing([delivery_json(d) for d in found], limit, request, "id", ()))

    # -- rules -------------------------------------------------------------------------

    @describe(
        get=Op("List the build rules", tag="builds", reply=RuleOut, listed=True),
        post=Op(
            "Create a build rule",
            tag="builds",
            body=RuleBody,
            reply=RuleOut,
            status=201,
            location=True,
        ),
    )
    async def rules(self, request: Request) -> Response:
        if request.method == "POST":
            name, principal = await self._authorized(request, "cr:CreateRepoBuildRule")
            spec = rule_input(await json_body(request))
            origin = origin_of(request.scope, principal, status=201)
            rule = await call_service(
                lambda: self.builds.create_rule(origin, name, spec), ServiceError
            )
            return JSONResponse(
                rule_json(rule),
                status_code=201,
                headers={"Location": f"{request.url.path}/{rule.id}"},
            )
        name, _ = await self._authorized(request, "cr:ListRepoBuildRule")
        found = await call_service(lambda: self.builds.rules(name), ServiceError)
        return JSONResponse({"items": [rule_json(r) for r in found]})

    @describe(
        get=Op("Read a build rule", tag="builds", reply=RuleOut),
        patch=Op("Change a build rule", tag="builds", body=RuleBody, reply=RuleOut),
        delete=Op("Delete a build rule", tag="builds", status=204),
    )
    async def rule(self, request: Request) -> Response:
        action = {
            "GET": "cr:GetRepoBuildRule",
            "PATCH": "cr:UpdateRepoBuildRule",
            "DELETE": "cr:DeleteRepoBuildRule",
        }[request.method]
        name, principal = await self._authorized(request, action)
        rule_id = path_id(request, "id", "build rule")
        if request.method == "GET":
            found = await call_service(lambda: self.builds.rule(name, rule_id), ServiceError)
            return JSONResponse(rule_json(found))
        if request.method == "DELETE":
            origin = origin_of(request.scope, principal, status=204)
            await call_service(lambda: self.builds.delete_rule(origin, name, rule_id), ServiceError)
            return Response(status_code=204)
        spec = rule_input(await json_body(request))
        origin = origin_of(request.scope, principal, status=200)
        changed = await call_service(
            lambda: self.builds.update_rule(origin, name, rule_id, spec), ServiceError
        )
        return JSONResponse(rule_json(changed))

    @describe(
        post=Op(
            "Build now by a rule",
            tag="builds",
            body=BuildNow,
            body_required=False,
            reply=BuildOut,
            status=202,
            location=True,
        )
    )
    async def build_now(self, request: Request) -> Response:
        name, principal = await self._authorized(request, "cr:StartRepoBuildByRule")
        rule_id = path_id(request, "id", "build rule")
        body = await optional_json_body(request)
        only_fields(body, ("ref",))
        ref = optional_field(body, "ref", str)
        origin = origin_of(request.scope, principal, status=202)
        build = await call_service(
            lambda: self.builds.start_build(origin, name, rule_id, ref), ServiceError
        )
        return JSONResponse(
            build_json(build),
            status_code=202,
            headers={
                "Location": request.url.path.rsplit("/build-rules/", 1)[0] + f"/builds/{build.id}"
            },
        )

    # -- builds ------------------------------------------------------------------------

    @describe(
        get=Op(
            "List builds, newest first",
            tag="builds",
            reply=BuildOut,
            paged=True,
            query=BuildQuery,
        )
    )
    async def list_builds(self, request: Request) -> Response:
        name, _ = await self._authorized(request, "cr:GetRepoBuildList")
        limit, after = page_params(request)
        before = before_param(after, "a build")
        status = request.query_params.get("status") or None
        rule_raw = request.query_params.get("rule")
        rule_id = None
        if rule_raw:
            if not (rule_raw.isascii() and rule_raw.isdigit() and len(rule_raw) <= 18):
                raise ApiError(400, "Bad Request", "rule must be a build rule id")
            rule_id = int(rule_raw)
        found = await call_service(
            lambda: self.builds.list_builds(
                name, status=status, rule_id=rule_id, limit=limit, before=before
            ),
            ServiceError,
        )
        return paged(
            listing([build_json(b) for b in found], limit, request, "id", ("status", "rule"))
        )

    @describe(get=Op("Read a build", tag="builds", reply=BuildOut))
    async def build(self, request: Request) -> Response:
        name, _ = await self._authorized(request, "cr:GetRepoBuildRecord")
        build_id = path_id(request, "id", "build")
        found = await call_service(lambda: self.builds.get_build(name, build_id), ServiceError)
        return JSONResponse(build_json(found))

    @describe(
        post=Op(
            "Cancel a build",
            tag="builds",
            body=NoFields,
            body_required=False,
            reply=BuildOut,
            status=202,
        )
    )
    async def cancel(self, request: Request) -> Response:
        name, principal = await self._authorized(request, "cr:CancelRepoBuild")
        build_id = path_id(request, "id", "build")
        await no_fields(request)
        origin = origin_of(request.scope, principal, status=202)
        found = await call_service(lambda: self.builds.cancel(origin, name, build_id), ServiceError)
        return JSONResponse(build_json(found), status_code=202)

    @describe(
        get=Op(
            "Read a build's log, or follow it",
            tag="builds",
            reply=BuildLogOut,
            query=LogQuery,
            media=(("text/event-stream", BuildLogEvent),),
        )
    )
    async def log(self, request: Request) -> Response:
        name, _ = await self._authorized(request, "cr:GetRepoBuildLogs")
        build_id = path_id(request, "id", "build")
        offset = _int_param(request, "offset", 0, 10**9)
        limit = _int_param(request, "limit", 1000, 10000) or 1000
        follow = request.query_params.get("follow", "").lower() in ("1", "true", "yes")
        lines, status = await call_service(
            lambda: self.builds.log(name, build_id, offset=offset, limit=limit), ServiceError
        )
        if not follow:
            last = lines[-1].line if lines else offset
            return JSONResponse(
                {
                    "items": [line_json(x) for x in lines],
                    "next_offset": last,
                    "status": status,
                    "complete": status in FINAL and len(lines) < limit,
                }
            )
        resume = request.headers.get("last-event-id", "")
        if resume.isascii() and resume.isdigit() and len(resume) <= 9:
            offset = max(offset, int(resume))
        return StreamingResponse(
            self._follow(build_id, offset),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _follow(self, build_id: int, offset: int) -> AsyncIterator[str]:
        """New lines as ``line`` events (id: the line number, so a client that
        reconnects with Last-Event-ID resumes), then one ``end`` event with the final
        status; a comment every 15 s keeps idle connections open."""
        quiet_since = time.monotonic()
        yield ": following\n\n"
        while True:
            lines, status = await to_thread.run_sync(self.builds.log_since, build_id, offset)
            for line in lines:
                offset = line.line
                yield f"id: {line.line}\nevent: line\ndata: {json.dumps(line_json(line))}\n\n"
            if lines:
                quiet_since = time.monotonic()
                continue
            if status in FINAL:
                yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
                return
            if time.monotonic() - quiet_since > KEEP_ALIVE:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(FOLLOW_POLL)


class HookRoutes:
    """``POST /api/v1/hooks/git/{hook_id}``: a code host tells of a push. No login: the
    request is signed with the source's hook secret (GitHub, GitLab, Gitea/Forgejo and
    a generic form); a refused signature is answered 401 and recorded in the audit log
    and among the source's hook deliveries."""

    def __init__(self, builds: BuildService, region: str) -> None:
        self.builds = builds
        self.region = region

    def routes(self) -> list[Route]:
        return [Route("/api/v1/hooks/git/{hook_id}", self.receive, methods=["POST"])]

    @describe(
        post=Op(
            "Receive a push from a code host",
            tag="hooks",
            body=HookPush,
            reply=HookAccepted,
            status=202,
            also=((200, HookPing),),
            public=True,
            headers=_HOOK_HEADERS,
            errors=(401, 404, 413),
        )
    )
    async def receive(self, request: Request) -> Response:
        hook_id = request.path_params["hook_id"]
        found = await to_thread.run_sync(self.builds.source_by_hook, hook_id[:64])
        if found is None:
            return problem(404, "Not Found", "no code source has this hook")
        source, repo = found
        arn = repository_arn(
            self.region,
            repo.account_id if repo.account_id is not None else "*",
            repo.name.namespace,
            repo.name.repository,
        )
        raw = await read_body(request, HOOK_BODY_BYTES)
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = await to_thread.run_sync(self.builds.hook_secret_of, source)
        try:
            event = parse_hook(headers, raw, secret)
        except HookRejected as exc:
            status, message = int(exc.status), str(exc)
            entry = Decision("anonymous", "cr:TriggerRepoBuildByHook", arn, False, repo.account_id)
            entry.detail = message[:500]
            request.scope[DECISION] = entry
            await to_thread.run_sync(
                lambda: self.builds.record_refused(
                    source, kind="refused", status=status, outcome=message
                )
            )
            return problem(status, title_of(status), message)
        actor = f"hook:{event.provider}"
        entry = Decision(actor, "cr:TriggerRepoBuildByHook", arn, True, repo.account_id)
        request.scope[DECISION] = entry
        if isinstance(event, Ping):
            await to_thread.run_sync(
                lambda: self.builds.record_refused(
                    source, kind="ping", status=200, outcome="ping", provider=event.provider
                )
            )
            return JSONResponse({"ping": "ok"})
        origin = origin_of(request.scope, None, status=202, actor=actor)
        outcome = await call_service(
            lambda: self.builds.on_push(
                origin,
                source,
                repo,
                provider=event.provider,
                delivery=event.delivery_id,
                ref=event.ref,
                commit=event.commit,
                deleted=event.deleted,
            ),
            ServiceError,
        )
        return JSONResponse(
            {"delivery": outcome.delivery_id, "builds": outcome.builds, "outcome": outcome.message},
            status_code=202,
        )
