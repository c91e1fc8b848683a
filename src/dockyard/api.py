"""Shared pieces of the management API (/api/v1/): problem JSON and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from dockyard.iam.authz import ANONYMOUS, Principal
from dockyard.iam.identity import IdentityService, parse_basic

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


async def caller(request: Request, identity: IdentityService) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        return ANONYMOUS
    creds = parse_basic(header)
    if creds is None:
        raise ApiError(401, "Unauthorized", "use HTTP Basic credentials")
    principal = await to_thread.run_sync(identity.authenticate, *creds)
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
