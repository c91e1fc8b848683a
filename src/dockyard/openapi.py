"""The OpenAPI 3.1 document of the management API, made from the routes themselves so
that it lists exactly what the server answers (``GET /api/v1/openapi.json``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

from dockyard import __version__

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
_CREATED = {"POST"}
_NO_CONTENT_SUFFIXES = ("registry-password",)
_ACCEPTED_SUFFIXES = ("/scan",)
"""POSTs that queue work and answer 202 (a scan)."""

_PROBLEM = {
    "description": "An error, as problem JSON (RFC 9457) with a clear detail",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _summary(route: Route, method: str) -> str:
    doc = inspect.getdoc(route.endpoint) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return first or f"{method} {route.path}"


def _operation(route: Route, method: str, path: str) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    if method == "GET":
        params += [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                "description": "page size, for listings",
            },
            {
                "name": "after",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "the last key of the previous page, for listings",
            },
        ]
    ok: dict[str, Any]
    if method == "DELETE" or (method == "PUT" and path.endswith(_NO_CONTENT_SUFFIXES)):
        ok = {"204": {"description": "Done"}}
    else:
        code = "201" if method in _CREATED else "200"
        if method == "POST" and path.endswith(_ACCEPTED_SUFFIXES):
            code = "202"
        ok = {
            code: {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
    operation: dict[str, Any] = {
        "operationId": re.sub(r"[^a-zA-Z0-9]+", "_", f"{method.lower()}{path}").strip("_"),
        "summary": _summary(route, method),
        "tags": [path.split("/")[3]],
        "parameters": params,
        "responses": {
            **ok,
            "400": _PROBLEM,
            "401": _PROBLEM,
            "403": _PROBLEM,
            "404": _PROBLEM,
            "409": _PROBLEM,
            "429": _PROBLEM,
        },
    }
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {
            "required": method != "POST" or not path.endswith(("/tokens", "/access-keys")),
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return operation


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/api/v1/"):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, method, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dockyard management API",
            "version": __version__,
            "description": (
                "Namespaces, repositories and tags, accounts, RAM users, groups, roles and "
                "policies, STS, temporary registry logins and the audit log. JSON with "
                "snake_case fields (policy documents keep their own format); errors are "
                "problem JSON; listings page with limit and after, and name the next page "
                "in next."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}, {"bearer": []}, {"basic": [], "stsToken": []}],
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
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                }
            },
        },
        "paths": dict(sorted(paths.items())),
    }
