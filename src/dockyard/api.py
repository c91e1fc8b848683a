"""Shared pieces of the management API (/api/v1/): problem JSON and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from dockyard.iam.authz import ANONYMOUS, Principal
from dockyard.iam.identity import IdentityService, parse_basic
from dockyard.iam.tokens import TokenError, TokenService

PROBLEM = "application/problem+json"
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class ApiAuth:
    """Who calls the management API: a session token from ``/api/v1/auth/login``
    (``Authorization: Bearer``) or HTTP Basic with a login name and console password."""

    def __init__(self, identity: IdentityService, tokens: TokenService) -> None:
        self.identity = identity
        self.tokens = tokens

    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            return ANONYMOUS
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            try:
                session = self.tokens.verify(value.strip(), audience=self.tokens.api_audience)
            except TokenError as exc:
                raise ApiError(401, "Unauthorized", str(exc)) from exc
            found = await to_thread.run_sync(self.identity.principal_by_name, session.subject)
            if found is None:
                raise ApiError(401, "Unauthorized", "the session's user no longer exists")
            return found
        creds = parse_basic(header)
        if creds is None:
            raise ApiError(401, "Unauthorized", "use HTTP Basic credentials or a Bearer token")
        principal = await to_thread.run_sync(self.identity.authenticate, *creds)
        if principal is None:
            raise ApiError(401, "Unauthorized", "incorrect username or password")
        return principal


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "Bad Request", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Bad Request", "the body must be a JSON object")
    return body


async def call_service(func: Callable[[], T], *errors: type[Exception]) -> T:
    """Run a blocking service call in a worker thread; its domain errors (each with an
    HTTP ``status``) become problem responses."""
    try:
        return await to_thread.run_sync(func)
    except errors as exc:
        raise ApiError(getattr(exc, "status", 400), type(exc).__name__, str(exc)) from exc


def page_params(
    request: Request, *, default: int = 100, most: int = 1000
) -> tuple[int, str | None]:
    """``?limit=`` (at most ``most``) and ``?after=`` (the last key of the previous page)."""
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= most):
        raise ApiError(400, "Bad Request", f"limit must be an integer from 1 to {most}")
    return int(raw), request.query_params.get("after") or None


def page(items: list[dict[str, Any]], limit: int, path: str, key: str) -> dict[str, Any]:
    """A listing: ``items``, and ``next`` (the URL of the following page) when it is full."""
    body: dict[str, Any] = {"items": items}
    if len(items) == limit:
        body["next"] = f"{path}?{urlencode({'limit': limit, 'after': items[-1][key]})}"
    return body
