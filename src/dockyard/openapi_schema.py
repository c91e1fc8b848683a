"""Making the OpenAPI document (:func:`dockyard.openapi.openapi_document`): the
operations of the routes, and the JSON Schema of the typed classes they declare, which
are turned into pydantic models here, on first use (see :mod:`dockyard.openapi`)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterable
from http import HTTPStatus
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from dockyard import __version__
from dockyard.openapi import (
    _ATTRIBUTE,
    FieldSpec,
    Model,
    Op,
    Problem,
    Reply,
    RootModel,
    field_names,
)

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
_REF = "#/components/schemas/{model}"

_MODELS: dict[type[Model], type[BaseModel]] = {}


def pydantic_model(model: type[Model]) -> type[BaseModel]:
    """The pydantic model of one of :mod:`dockyard.openapi`'s typed classes: the same
    name, docstring, fields (inherited ones first), defaults and configuration."""
    made = _MODELS.get(model)
    if made is not None:
        return made
    namespace = {"__doc__": model.__doc__, "__module__": model.__module__}
    if issubclass(model, RootModel):
        (root,) = get_args(model.__orig_bases__[0])  # type: ignore[attr-defined]
        base: Any = pydantic.RootModel[_pydantic_type(root)]  # type: ignore[misc]
        made = type(model.__name__, (base,), namespace)
    else:
        hints = typing.get_type_hints(model, include_extras=True)
        config: dict[str, Any] = {}
        for klass in reversed(model.__mro__):
            config |= vars(klass).get("model_config", {})
        fields: dict[str, Any] = {}
        for name in field_names(model):
            default = getattr(model, name, ...)
            if isinstance(default, FieldSpec):
                default = _field(default)
            fields[name] = (_pydantic_type(hints[name]), default)
        made = create_model(
            model.__name__,
            __config__=pydantic.ConfigDict(**config),  # type: ignore[typeddict-item]
            __doc__=model.__doc__,
            __module__=model.__module__,
            **fields,
        )
    _MODELS[model] = made
    return made


def _field(spec: FieldSpec) -> Any:
    return pydantic.Field(**spec.options)


def _pydantic_type(annotation: Any) -> Any:
    """``annotation`` with every typed class in it replaced by its pydantic model, and
    every :func:`~dockyard.openapi.Field` by pydantic's."""
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return pydantic_model(annotation)
    origin = get_origin(annotation)
    if origin is None or origin is Literal:
        return annotation
    args = get_args(annotation)
    if origin is Annotated:
        kept = [_field(m) if isinstance(m, FieldSpec) else m for m in annotation.__metadata__]
        return Annotated[(_pydantic_type(args[0]), *kept)]
    converted = tuple(_pydantic_type(a) for a in args)
    if origin in (Union, types.UnionType):
        return Union[converted]  # noqa: UP007 (built from a tuple)
    return origin[converted]


def _pydantic(model: type[Model] | type[BaseModel]) -> type[BaseModel]:
    if issubclass(model, BaseModel):
        return model
    return pydantic_model(model)


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


def _page_model(item: type[Model], paged: bool) -> type[BaseModel]:
    """A page of ``item`` (``items`` and, when the page is full, ``next``), or, for an
    unpaged list, ``items`` alone."""
    name = item.__name__.removesuffix("Out") + ("Page" if paged else "List")
    if name in _PAGES:
        return _PAGES[name]
    fields: dict[str, Any] = {"items": (list[pydantic_model(item)], ...)}  # type: ignore[misc]
    if paged:
        fields["next"] = (
            str | None,
            pydantic.Field(
                default=None,
                description="the URL of the next page, present when this page is full",
                json_schema_extra={"format": "uri-reference"},
                examples=["/api/v1/namespaces?limit=100&after=team"],
            ),
        )
    model: type[BaseModel] = create_model(name, __base__=pydantic_model(Reply), **fields)
    _PAGES[name] = model
    return model


_PAGES: dict[str, type[BaseModel]] = {}


class _Schemas:
    """The models the document refers to, collected while its operations are made and
    turned into ``components.schemas`` at the end."""

    def __init__(self) -> None:
        self.wanted: dict[tuple[type[BaseModel], str], None] = {}

    def ref(self, model: type[Model] | type[BaseModel], mode: str) -> dict[str, Any]:
        self.wanted[(_pydantic(model), mode)] = None
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


def _query_params(model: type[Model]) -> list[dict[str, Any]]:
    schema = pydantic_model(model).model_json_schema(ref_template=_REF)
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


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
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
