"""Shared pieces of the management API (/api/v1/): problem JSON and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from dockyard import jsontext
from dockyard.audit import DECISION, Decision, decision
from dockyard.errors import ServiceError
from dockyard.iam.accounts import AccountService
from dockyard.iam.authz import (
    ANONYMOUS,
    Context,
    Principal,
    Resource,
    allowed_actions,
    is_allowed,
)
from dockyard.iam.identity import IdentityService, parse_basic
from dockyard.iam.sts import is_sts_key
from dockyard.iam.throttle import LoginThrottled
from dockyard.iam.tokens import TokenError, TokenService

PROBLEM = "application/problem+json"


T = TypeVar("T")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def of(cls, exc: Exception) -> ApiError:
        """A domain error (with its HTTP ``status``) as a problem, titled by its status
        as every problem is ("Not Found", never the exception's class name), with its
        machine-readable ``code`` when it has one (RAM's DeleteConflict.User.AccessKey)."""
        status: int = getattr(exc, "status", 400)
        code = getattr(exc, "code", None)
        extra = {"code": code} if code else {}
        return cls(status, title_of(status), str(exc), **extra)


def title_of(status: int) -> str:
    """The standard reason phrase of ``status``, a problem's title."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


SECURITY_TOKEN_HEADER = "x-dockyard-security-token"  # noqa: S105 (a header name)


def throttled(exc: LoginThrottled) -> ApiError:
    """429 with ``Retry-After`` while the brute-force protection holds a login."""
    return ApiError(
        429, "Too Many Requests", str(exc), headers={"Retry-After": str(exc.retry_after)}
    )


def request_context(request: Request) -> Context:
    """The request facts policy conditions look at."""
    client = request.client
    return Context(
        source_ip=client.host if client else None,
        secure_transport=request.url.scheme == "https",
    )


class ApiAuth:
    """Who calls the management API, and whether they may: a session token from
    ``/api/v1/auth/login`` (``Authorization: Bearer``), or HTTP Basic with a login name
    and console password, an AccessKeyId and its secret, or STS credentials (with their
    SecurityToken in ``X-Dockyard-Security-Token``)."""

    def __init__(self, identity: IdentityService, tokens: TokenService) -> None:
        self.identity = identity
        self.tokens = tokens

    async def principal(self, request: Request) -> Principal:
        cached = request.scope.get("dockyard.principal")
        if isinstance(cached, Principal):
            return cached
        found = await self._authenticate(request)
        request.scope["dockyard.principal"] = found
        return found

    async def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            return ANONYMOUS
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            try:
                session = self.tokens.verify(value.strip(), audience=self.tokens.api_audience)
            except TokenError as exc:
                raise self._refused(request, str(exc)) from exc
            found = await to_thread.run_sync(
                self.identity.session_principal, session.subject, session.issued_at
            )
            if found is None:
                raise self._refused(
                    request, "the session has ended (signed out, or its user no longer exists)"
                )
            return found
        creds = parse_basic(header)
        if creds is None:
            raise ApiError(401, "Unauthorized", "use HTTP Basic credentials or a Bearer token")
        username, password = creds
        return await self.check_password(request, username, password)

    async def check_password(
        self, request: Request, username: str, password: str, *, registry: bool = False
    ) -> Principal:
        """A console (or registry) password check under brute-force protection; 401 or 429
        (recorded in the audit log) when it fails. STS credentials also need their
        SecurityToken (``X-Dockyard-Security-Token``) here."""
        if is_sts_key(username) and not registry:
            token = request.headers.get(SECURITY_TOKEN_HEADER, "")
            try:
                proof = self.tokens.verify(token, audience=self.tokens.sts_audience)
            except TokenError as exc:
                raise self._refused(
                    request,
                    f"STS credentials need their SecurityToken in X-Dockyard-Security-Token: {exc}",
                    username,
                ) from exc
            if proof.subject != username:
                raise self._refused(
                    request, "the SecurityToken belongs to other credentials", username
                )
        client = request.client
        try:
            principal = await to_thread.run_sync(
                lambda: self.identity.login(
                    username, password, source_ip=client.host if client else None, registry=registry
                )
            )
        except LoginThrottled as exc:
            request.scope[DECISION] = Decision(username[:200], "auth:Login", "", False)
            raise throttled(exc) from exc
        if principal is None:
            raise self._refused(request, "incorrect username or password", username)
        return principal

    @staticmethod
    def _refused(request: Request, detail: str, actor: str = "") -> ApiError:
        request.scope[DECISION] = Decision(actor[:200] or "anonymous", "auth:Login", "", False)
        return ApiError(401, "Unauthorized", detail)

    async def signed_in(self, request: Request) -> Principal:
        principal = await self.principal(request)
        if principal.is_anonymous:
            raise ApiError(
                401, "Unauthorized", "log in first (HTTP Basic credentials or a Bearer token)"
            )
        return principal

    async def authorize(
        self, request: Request, action: str, arn: str, *, public: bool = False
    ) -> Principal:
        """The one check every management route makes: 401 when an anonymous caller is
        refused, 403 otherwise; the decision goes to the audit log."""
        principal = await self.principal(request)
        allowed = is_allowed(
            principal, action, Resource(arn, public=public), request_context(request)
        )
        request.scope[DECISION] = decision(principal, action, arn, allowed)
        if allowed:
            return principal
        if principal.is_anonymous:
            raise ApiError(
                401, "Unauthorized", "log in first (HTTP Basic credentials or a Bearer token)"
            )
        raise ApiError(403, "Forbidden", f"{principal.name} may not do {action} on {arn}")

    async def allowed(
        self, request: Request, candidates: tuple[str, ...], resources: list[Resource]
    ) -> list[list[str]]:
        """For each resource, which of ``candidates`` the caller may do on it: the same
        decision :meth:`authorize` makes, evaluated once per class of resources (see
        :func:`iam.authz.allowed_actions`). Nothing is audited: this only asks."""
        principal = await self.principal(request)
        found = allowed_actions(principal, candidates, resources, request_context(request))
        return [list(a) for a in found]


_KINDS: dict[type, str] = {str: "a string", bool: "true or false", int: "an integer"}


def optional_field(body: dict[str, Any], key: str, kind: type[T]) -> T | None:
    """``body[key]`` when present and of ``kind`` (``str``, ``bool`` or ``int``; a JSON
    true is no integer); None when absent; 400 otherwise."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, "Bad Request", f"{key} must be {_KINDS[kind]}")
    return value


def required_field(body: dict[str, Any], key: str, kind: type[T]) -> T:
    value = optional_field(body, key, kind)
    if value is None:
        raise ApiError(400, "Bad Request", f"{key} ({_KINDS[kind]}) is required")
    return value


def only_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse a body field the route does not know, naming it."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            400, "Bad Request", f"unknown field {unknown[0]!r}; the fields are {', '.join(allowed)}"
        )


MAX_BODY_BYTES = 1024 * 1024
"""The largest body the management API reads (the largest field, a repository's 64 KiB
description, fits several times over even with every character escaped)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or 413 as soon as it is known to be larger than ``limit``
    (from ``Content-Length`` before reading, or while reading a chunked body). The 413
    closes the connection: the rest of the body is left unread."""
    too_large = ApiError(
        413,
        "Content Too Large",
        f"the body may have at most {limit} bytes",
        headers={"Connection": "close"},
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 413 when larger than :data:`MAX_BODY_BYTES`, 400 when
    it is no JSON object or nests deeper than :data:`jsontext.MAX_DEPTH`."""
    return _json_object(await read_body(request))


async def optional_json_body(request: Request) -> dict[str, Any]:
    """:func:`json_body` for a request whose body may be left out (an empty object)."""
    raw = await read_body(request)
    return _json_object(raw) if raw.strip() else {}


async def no_fields(request: Request) -> None:
    """For a request that takes no fields: no body, or ``{}``; 400 for anything else
    (broken JSON, a field) rather than doing what was asked and ignoring the rest."""
    raw = await read_body(request)
    if raw.strip() and (body := _json_object(raw)):
        raise ApiError(400, "Bad Request", f"unknown field {min(body)!r}; this takes no fields")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = jsontext.loads(raw)
    except jsontext.TooDeep as exc:
        raise ApiError(400, "Bad Request", f"the body is refused: its {exc}") from exc
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
        raise ApiError.of(exc) from exc


def iso(moment: datetime | float) -> str:
    """An instant as the API writes it: ISO 8601 in UTC with a ``Z``."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


def paged(body: dict[str, Any]) -> JSONResponse:
    """A listing's response: the page, with its ``next`` also in a ``Link`` header
    (RFC 8288) for clients that follow those."""
    headers = {"Link": f'<{body["next"]}>; rel="next"'} if "next" in body else None
    return JSONResponse(body, headers=headers)


def listing(
    items: list[dict[str, Any]], limit: int, request: Request, key: str, filters: tuple[str, ...]
) -> dict[str, Any]:
    """A page (see :func:`page`) whose ``next`` keeps the request's ``filters``."""
    body = page(items, limit, request.url.path, key)
    kept = {f: request.query_params[f] for f in filters if request.query_params.get(f)}
    if "next" in body and kept:
        body["next"] += "&" + urlencode(kept)
    return body


def query_time(request: Request, name: str) -> datetime | None:
    """``?name=`` as an ISO 8601 time (UTC when it names no zone); None when absent."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "Bad Request", f"{name} must be an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def before_param(after: str | None, noun: str) -> int | None:
    """A listing's ``after`` that names a numeric id (newest-first listings)."""
    if after is None:
        return None
    if not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise ApiError(400, "Bad Request", f"after must be {noun} id")
    return int(after)


async def listed_account(
    request: Request, principal: Principal, accounts: AccountService
) -> int | None:
    """Whose records an account-wide listing (audit log, events) shows: the caller's
    account, or for the instance administrator every account's (None) or the one named
    by ``?account=``."""
    if not principal.is_admin:
        return principal.account_id
    named = request.query_params.get("account")
    if not named:
        return None
    return (await call_service(lambda: accounts.get(named), ServiceError)).id


def path_id(request: Request, name: str, noun: str) -> int:
    """A numeric id from the path; 404 naming ``noun`` for anything else."""
    raw: str = request.path_params[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ApiError(404, "Not Found", f"{noun} {raw[:40]!r} does not exist")
    return int(raw)
