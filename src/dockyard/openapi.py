"""The OpenAPI 3.1 document of the management API (``GET /api/v1/openapi.json``), made
from the routes themselves and from the typed bodies each route declares, so that it
lists exactly what the server answers and names every field.

Describing a route is one step, beside its handler::

    @describe(
        get=Op("List namespaces", tag="namespaces", reply=NamespaceOut, paged=True),
        post=Op("Create a namespace", tag="namespaces", body=NewNamespace,
                reply=NamespaceOut, status=201),
    )
    async def list_or_create(self, request: Request) -> Response: ...

Bodies, replies and query strings are pydantic models (:class:`Body`, :class:`Reply`,
:class:`Query`): their JSON Schema goes into ``components.schemas``, and the fields a
route accepts are read from the same model (:func:`field_names`), so the document and
the route cannot name different fields. A route served without a description still
appears (from its docstring, with untyped bodies), marked ``x-undocumented``: the
contract test names each of those.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from dockyard import __version__

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
_ATTRIBUTE = "__dockyard_api__"
_REF = "#/components/schemas/{model}"

F = TypeVar("F", bound=Callable[..., Any])

Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]
"""An id or a size: JSON integers that may pass 2**31."""

Timestamp = Annotated[datetime, Field(json_schema_extra={"examples": ["2026-01-31T12:00:00Z"]})]
"""An instant, as the API writes it: ISO 8601 in UTC (``format: date-time``)."""


# Every model below builds its validator and JSON Schema when first used (the document's
# first request, a check), not when its module is imported: the server starts some 1.5 MB
# smaller, and most servers are never asked for the document.


class Body(BaseModel):
    """A request body that refuses fields it does not name (``additionalProperties:
    false``), as the routes that check :func:`dockyard.api.only_fields` do."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class LenientBody(BaseModel):
    """A request body whose route ignores fields it does not name."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class Reply(BaseModel):
    """A response body. Every field the server always writes is required (nullable
    where it may be null); a field it writes only sometimes has a default."""

    model_config = ConfigDict(defer_build=True)


class Query(BaseModel):
    """A route's query parameters (besides ``limit`` and ``after``, which every paged
    listing takes): each field becomes one optional parameter."""

    model_config = ConfigDict(defer_build=True)


class NoFields(Body):
    """No body at all, or ``{}``: the route takes no fields."""


class Problem(Reply):
    """An error, as problem JSON (RFC 9457)."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(description="the status's reason phrase", examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(
        description="what went wrong, in plain words", examples=["namespace 'x' does not exist"]
    )
    code: str | None = Field(
        default=None,
        description="a machine-readable code, where one exists",
        examples=["DeleteConflict.User.AccessKey"],
    )


class OpenApiDocument(Reply):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str = Field(examples=["3.1.0"])
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


def full_match(regex: re.Pattern[str]) -> str:
    """``regex`` as a JSON Schema ``pattern`` that, like the ``fullmatch`` the services
    check names with, must match the whole value."""
    return f"^(?:{regex.pattern.removeprefix('^').removesuffix('$')})$"


def field_names(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields ``model`` names, in order: what a route lets a body carry."""
    return tuple(model.model_fields)


@dataclass(frozen=True)
class Op:
    """How one operation (one method of a route) is described in the document.

    ``reply`` is the body of a success (None: no content); with ``paged`` it is the
    type of each item of a page (``items``, ``next``, a ``Link`` header) and the route
    takes ``limit`` and ``after``; with ``listed`` it is the item of an unpaged list.
    ``errors`` adds problem statuses to those every operation of its kind can answer
    (see :func:`_error_statuses`)."""

    summary: str
    tag: str
    body: type[BaseModel] | None = None
    body_required: bool = True
    reply: type[BaseModel] | None = None
    status: int = 200
    query: type[BaseModel] | None = None
    paged: bool = False
    listed: bool = False
    errors: tuple[int, ...] = ()
    public: bool = False
    location: bool = False
    description: str = ""
    upload: tuple[str, ...] = ()
    """Media types of a file sent as the whole body (or as the one file of a
    ``multipart/form-data`` form), instead of a JSON ``body``."""
    media: tuple[tuple[str, type[BaseModel]], ...] = ()
    """Other media types a success may be answered in (a report format chosen with a
    query parameter, an event stream), each with its body's model (for
    ``text/event-stream``, the model of one event). Listed after ``reply``'s JSON, so a
    generated client reads the JSON."""
    also: tuple[tuple[int, type[BaseModel] | None], ...] = ()
    """Other successes the operation answers, each with its JSON body's model (None: no
    content): a PUT that creates (201) or replaces (200), a hook's ping (200) beside its
    push (202)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Request headers the operation reads, ``(name, what it is)``: how a public route
    proves who sent it (a signature) when no credentials do."""


def describe(**operations: Op) -> Callable[[F], F]:
    """Describe a handler's operations, one per HTTP method (``get=Op(…)``, …)."""

    def mark(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, {m.upper(): op for m, op in operations.items()})
        return handler

    return mark


def _described(route: Route, method: str) -> Op | None:
    ops: dict[str, Op] = getattr(route.endpoint, _ATTRIBUTE, {})
    return ops.get(method)


def _api_operations(routes: Iterable[BaseRoute]) -> Iterable[tuple[Route, str, str]]:
    """Each ``(route, METHOD, path)`` the app serves under ``/api/v1``."""
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/api/v1/"):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield route, method, path


_PATH_PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "namespace": ("a namespace", {"type": "string", "examples": ["team"]}),
    "repository": ("a repository in the namespace", {"type": "string", "examples": ["app"]}),
    "tag": ("a tag of the repository", {"type": "string", "examples": ["latest"]}),
    "subject": (
        "who the permission is for: a RAM user's name, or group:NAME",
        {"type": "string", "examples": ["alice", "group:developers"]},
    ),
    "kind": (
        "what holds the policy",
        {"type": "string", "enum": ["users", "groups", "roles"]},
    ),
    "holder": ("the RAM user, group or role's name", {"type": "string", "examples": ["alice"]}),
    "user": ("a RAM user's name (or login)", {"type": "string", "examples": ["alice"]}),
    "group": ("a RAM group's name", {"type": "string", "examples": ["developers"]}),
    "role": ("a RAM role's name", {"type": "string", "examples": ["deployer"]}),
    "policy": ("a policy's name", {"type": "string", "examples": ["AliyunCRFullAccess"]}),
    "key": ("an AccessKeyId", {"type": "string", "examples": ["LTAI5tExample"]}),
    "id": ("a numeric id", {"type": "string", "pattern": "^[0-9]+$", "examples": ["7"]}),
    "delivery": ("a delivery's id", {"type": "string", "pattern": "^[0-9]+$"}),
}


def _path_param(name: str, path: str) -> dict[str, Any]:
    if name == "name":
        noun = "an account" if path.startswith("/api/v1/accounts") else "a namespace"
        described = (noun + "'s name", {"type": "string", "examples": ["team"]})
    else:
        described = _PATH_PARAMS.get(name, (name, {"type": "string"}))
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": described[0],
        "schema": described[1],
    }


_PAGE_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "how many items a page holds",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "the key of the last item of the previous page (from next)",
        "schema": {"type": "string"},
    },
]

_LINK = {
    "description": 'the next page, as in next (RFC 8288, rel="next"), when this one is full',
    "schema": {"type": "string"},
}


def _error_statuses(method: str, op: Op) -> list[int]:
    """The problems an operation may answer: 401 and 429 wherever credentials are
    checked (a wrong password, too many of them), 403 where a policy decides, 404 for
    what does not exist, 400 and 413 for a bad query or body, 409 where a change can
    conflict (quotas, names taken, things still in use)."""
    found = set(op.errors)
    if not op.public:
        found |= {400, 401, 403, 404, 429}
    if method in ("POST", "PUT", "PATCH"):
        found |= {400, 413}
        if not op.public:
            found.add(409)
    if method == "DELETE":
        found.add(409)
    return sorted(found)


def _page_model(item: type[BaseModel], paged: bool) -> type[BaseModel]:
    """A page of ``item`` (``items`` and, when the page is full, ``next``), or, for an
    unpaged list, ``items`` alone."""
    name = item.__name__.removesuffix("Out") + ("Page" if paged else "List")
    if name in _PAGES:
        return _PAGES[name]
    fields: dict[str, Any] = {"items": (list[item], ...)}  # type: ignore[valid-type]
    if paged:
        fields["next"] = (
            str | None,
            Field(
                default=None,
                description="the URL of the next page, present when this page is full",
                json_schema_extra={"format": "uri-reference"},
                examples=["/api/v1/namespaces?limit=100&after=team"],
            ),
        )
    model: type[BaseModel] = create_model(name, __base__=Reply, **fields)
    _PAGES[name] = model
    return model


_PAGES: dict[str, type[BaseModel]] = {}


class _Schemas:
    """The models the document refers to, collected while its operations are made and
    turned into ``components.schemas`` at the end."""

    def __init__(self) -> None:
        self.wanted: dict[tuple[type[BaseModel], str], None] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        self.wanted[(model, mode)] = None
        return {"$ref": _REF.format(model=model.__name__)}

    def components(self) -> dict[str, Any]:
        names: dict[str, type[BaseModel]] = {}
        for model, _ in self.wanted:
            if names.setdefault(model.__name__, model) is not model:
                raise ValueError(f"two body types are named {model.__name__}: rename one")
        _, found = models_json_schema(
            list(self.wanted),  # type: ignore[arg-type]
            ref_template=_REF,
        )
        schemas: dict[str, Any] = found.get("$defs", {})
        return dict(sorted(schemas.items()))


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    params = []
    for name, declared in schema.get("properties", {}).items():
        prop = {k: v for k, v in declared.items() if k not in ("title", "default")}
        description = prop.pop("description", name)
        if "anyOf" in prop:  # optional: drop the null, a query parameter is absent instead
            kinds = [k for k in prop.pop("anyOf") if k.get("type") != "null"]
            prop |= kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": prop,
            }
        )
    return params


def _operation(
    route: Route, method: str, path: str, op: Op | None, schemas: _Schemas
) -> dict[str, Any]:
    params = [_path_param(name, path) for name in _PARAM.findall(route.path)]
    if op is None:
        return _undescribed(route, method, path, params)
    if op.query is not None:
        schemas.ref(op.query, "validation")  # for the types its parameters refer to
        params += _query_params(op.query)
    if op.paged:
        params += _PAGE_PARAMS
    params += [
        {"name": name, "in": "header", "required": False, "description": what}
        | {"schema": {"type": "string"}}
        for name, what in op.headers
    ]
    success: dict[str, Any] = {"description": op.summary}
    content: dict[str, Any] = {}
    if op.reply is not None:
        reply = _page_model(op.reply, op.paged) if op.paged or op.listed else op.reply
        content["application/json"] = {"schema": schemas.ref(reply, "serialization")}
    for kind, model in op.media:
        content[kind] = {"schema": schemas.ref(model, "serialization")}
    if content:
        success["content"] = content
    headers: dict[str, Any] = {}
    if op.paged:
        headers["Link"] = _LINK
    if op.location:
        headers["Location"] = {
            "description": "the URL of what was created",
            "schema": {"type": "string", "format": "uri-reference"},
        }
    if headers:
        success["headers"] = headers
    responses: dict[str, Any] = {str(op.status): success}
    for status, body in op.also:
        other: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if body is not None:
            other["content"] = {"application/json": {"schema": schemas.ref(body, "serialization")}}
        responses[str(status)] = other
    for status in _error_statuses(method, op):
        responses[str(status)] = _problem_response(status)
    schemas.ref(Problem, "serialization")
    operation: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    description = op.description or inspect.getdoc(route.endpoint) or ""
    if description:
        operation["description"] = description
    if op.public:
        operation["security"] = [{}]
    if op.upload:
        operation["requestBody"] = {
            "required": True,
            "content": {kind: {"schema": _upload_schema(kind)} for kind in op.upload},
        }
    elif op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schemas.ref(op.body, "validation")}},
        }
    return operation


def _upload_schema(kind: str) -> dict[str, Any]:
    """A file as a body: the bytes themselves, or a form whose ``file`` field holds them."""
    binary = {"type": "string", "format": "binary"}
    if kind == "multipart/form-data":
        return {"type": "object", "properties": {"file": binary}, "required": ["file"]}
    if kind == "application/json":
        record = {"type": "object", "additionalProperties": True}
        return {"oneOf": [record, {"type": "array", "items": record}]}
    return binary


def _operation_id(method: str, path: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", f"{method.lower()}{path}").strip("_")


def _undescribed(
    route: Route, method: str, path: str, params: list[dict[str, Any]]
) -> dict[str, Any]:
    """An operation no :func:`describe` covers: listed, so that clients still see it,
    but with untyped bodies and marked ``x-undocumented``."""
    doc = inspect.getdoc(route.endpoint) or ""
    summary = doc.strip().split("\n\n")[0].replace("\n", " ") or f"{method} {path}"
    untyped = {"application/json": {"schema": {"type": "object"}}}
    operation: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": summary,
        "tags": [path.split("/")[3]],
        "parameters": params,
        "responses": {
            "2XX": {"description": "OK", "content": untyped},
            "4XX": _problem_response(400) | {"description": "An error"},
        },
        "x-undocumented": True,
    }
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {"required": False, "content": untyped}
    return operation


_TAGS = {
    "meta": "The instance and this document",
    "sessions": "Signing in and out, temporary registry logins",
    "me": "The caller's own identity, passwords and access keys",
    "accounts": "Accounts and their quotas (the instance administrator)",
    "namespaces": "Namespaces: groups of repositories owned by an account",
    "repositories": "Repositories and their settings",
    "tags": "The tags of a repository",
    "permissions": "Who may read, write or administer a namespace or repository",
    "ram-users": "RAM users of an account",
    "access-keys": "Access keys (AccessKeyId and secret) of RAM users",
    "ram-groups": "RAM groups and their members",
    "ram-roles": "RAM roles, assumed through STS",
    "ram-policies": "Permission policies and where they are attached",
    "sts": "Temporary credentials for a role (AssumeRole)",
    "audit": "The audit log",
    "events": "What happened in the registry",
    "webhooks": "Webhooks and their deliveries",
    "jobs": "The durable job queue (the instance administrator)",
    "authz": "What the caller may do, asked in one batch",
    "manifests": "What a manifest is: its kind, platforms, config, history and referrers",
    "vulndb": "The instance's vulnerability database and its imports",
    "scans": "Vulnerability scans of tags and manifests, their reports and SBOMs",
    "security": "Scan on push, pull blocking and the allowlist of namespaces and repositories",
    "builds": "Building images from a git repository: its source, build rules, builds, logs",
    "hooks": "Push notifications from code hosts (signed with the source's hook secret)",
}


def _ordered(tags: set[str]) -> list[str]:
    """The tags in the order a reader meets them (:data:`_TAGS`), any other after."""
    known = [t for t in _TAGS if t in tags]
    return known + sorted(tags - set(known))


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    used_tags: set[str] = set()
    for route, method, path in _api_operations(routes):
        operation = _operation(route, method, path, _described(route, method), schemas)
        used_tags.update(operation["tags"])
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dockyard management API",
            "version": __version__,
            "description": (
                "Namespaces, repositories and tags, accounts, RAM users, groups, roles and "
                "policies, STS, temporary registry logins, the audit log, events, webhooks "
                "and jobs. JSON with snake_case fields (policy documents keep their own "
                "format); errors are problem JSON (RFC 9457); listings page with limit and "
                "after, and name the next page in next and in a Link header."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}, {"bearer": []}, {"basic": [], "stsToken": []}],
        "tags": [
            {"name": name, "description": _TAGS.get(name, name)} for name in _ordered(used_tags)
        ],
        "components": {
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "login name and password, or AccessKeyId and secret",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a session token from POST /api/v1/auth/login",
                },
                "stsToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Dockyard-Security-Token",
                    "description": "the SecurityToken that goes with STS credentials",
                },
            },
            "schemas": schemas.components(),
        },
        "paths": dict(sorted(paths.items())),
    }
