"""What every console page shares: the request context, the page wrapper (session,
CSRF, errors), templates and their filters."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup, escape
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

import dockyard
from dockyard.config import Settings
from dockyard.console.client import ApiClient, ApiProblem, SessionExpired
from dockyard.console.markdown import render_markdown
from dockyard.console.session import (
    SESSION_COOKIE,
    Flash,
    clear_flash,
    clear_session,
    csrf_ok,
    csrf_token,
    read_flash,
    set_flash,
)

HERE = Path(__file__).parent
PREFIX = "/console"

Handler = Callable[["Ctx"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
PAGE_SIZE = "50"

ACCOUNT_ACTIONS = (
    "cr:CreateNamespace",
    "ram:ListUsers",
    "ram:CreateUser",
    "ram:ListGroups",
    "ram:CreateGroup",
    "ram:ListRoles",
    "ram:CreateRole",
    "ram:ListPolicies",
    "ram:CreatePolicy",
    "ram:DeletePolicy",
    "cr:ReadAuditLog",
    "cr:ListAccount",
    "cr:CreateAccount",
    "cr:GetVulnDB",
    "cr:ImportVulnDB",
)
"""What every page asks the API about the caller (``POST /api/v1/authz/check``, one call
with no resource: any name in the caller's account): the menus and the create buttons
follow the answer, so nobody is shown a page or a form that ends in "Not allowed"."""


class Rerender(Protocol):
    """A page shown again with messages next to its forms (``errors``: form → message)."""

    def __call__(
        self, ctx: Ctx, status: int = ..., *, errors: dict[str, str] | None = ...
    ) -> Awaitable[Response]: ...


def _route_key(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def api_routes(api: ASGIApp) -> set[tuple[str, str]]:
    """(path with ``{}`` for parameters, method) of every route the API app has."""
    found: set[tuple[str, str]] = set()
    for route in getattr(api, "routes", []):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or set()
        if isinstance(path, str):
            for method in methods:
                found.add((_route_key(path), str(method)))
    return found


# -- template filters ------------------------------------------------------------------


def human_size(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop always returns


def short_digest(value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        return str(value or "—")
    algorithm, _, hexpart = value.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def when(value: Any) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def http_status(value: Any) -> str:
    """An HTTP status with its phrase: ``404 Not Found``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "—"
    try:
        return f"{value} {HTTPStatus(value).phrase}"
    except ValueError:
        return str(value)


def seg(value: Any) -> str:
    return quote(str(value), safe="")


def pretty_json(value: Any) -> str:
    """A text indented when it is JSON, as it is otherwise."""
    text = str(value or "")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=human_size,
        short_digest=short_digest,
        when=when,
        q=seg,
        http_status=http_status,
        pretty_json=pretty_json,
        allows=allows,
        markdown=lambda text: Markup(render_markdown(str(text or ""))),  # noqa: S704
    )
    return env


# -- the console and a request's context -----------------------------------------------


@dataclass
class Console:
    api: ASGIApp
    settings: Settings
    env: jinja2.Environment = field(default_factory=make_env)
    routes: set[tuple[str, str]] = field(default_factory=set)

    def same_origin(self, request: Request) -> bool:
        return same_origin(request, self.settings.public_url)

    def has(self, path: str, method: str = "GET") -> bool:
        """Whether the management API offers ``method path`` (parameters as ``{…}``)."""
        return (_route_key(path), method) in self.routes

    def client(self, request: Request, token: str | None) -> ApiClient:
        peer = request.client
        # The browser's address is what the API sees; an unknown peer is no address.
        address = (peer.host, peer.port) if peer else ("0.0.0.0", 0)  # noqa: S104
        return ApiClient(
            self.api,
            client=address,
            scheme=request.url.scheme,
            token=token,
            host=request.headers.get("host"),
        )

    async def instance(self, api: ApiClient, request: Request) -> dict[str, Any]:
        info: dict[str, Any] = {
            "region": self.settings.region,
            "edition": "Personal Edition",
            "version": dockyard.__version__,
            "registry_host": registry_host(self.settings, request),
            "signup_enabled": False,
        }
        if self.has("/api/v1/instance"):
            try:
                found = await api.get("/api/v1/instance")
            except ApiProblem:
                found = None
            if isinstance(found, dict):
                info.update({k: v for k, v in found.items() if v is not None})
        return info

    async def account_actions(self, api: ApiClient) -> frozenset[str]:
        """Which of :data:`ACCOUNT_ACTIONS` the caller may do (all of them when the API
        has no check to ask: the pages then behave as before it had one; none when the
        check fails)."""
        if not self.has("/api/v1/authz/check", "POST"):
            return frozenset(ACCOUNT_ACTIONS)
        try:
            return await allowed(api, [(a, None) for a in ACCOUNT_ACTIONS])
        except ApiProblem:
            return frozenset()  # no answer: offer nothing the API might refuse

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        html = self.env.get_template(template).render(request=request, **values)
        return HTMLResponse(html, status_code=status)

    def forbidden(self, request: Request, message: str) -> Response:
        """The error page for a refused form (another site's, or a stale session's)."""
        return self.render(request, "error.html", 403, ctx=None, title="Forbidden", message=message)

    def page(self, handler: Handler, *, upload_limit: int = 0) -> Endpoint:
        """A signed-in page: session from the cookie, CSRF on POST, API errors shown.

        With ``upload_limit`` (bytes) a POST may carry one file (a multipart form, no
        larger than that), which the handler finds in ``ctx.uploads``."""

        async def endpoint(request: Request) -> Response:
            if request.method == "POST" and not self.same_origin(request):
                return self.forbidden(request, "The form came from another site and was refused.")
            token = request.cookies.get(SESSION_COOKIE)
            if not token:
                return sign_in_redirect(request, None)
            if upload_limit and _declared_length(request) > upload_limit + FORM_OVERHEAD:
                return self.render(
                    request,
                    "error.html",
                    413,
                    ctx=None,
                    title="File too large",
                    message=f"The file may have at most {human_size(upload_limit)}.",
                )
            api = self.client(request, token)
            ctx: Ctx | None = None
            uploads: dict[str, UploadFile] = {}
            try:
                form: dict[str, str] = {}
                if request.method == "POST":
                    form, uploads = await read_form_files(request, 1 if upload_limit else 0)
                    if not csrf_ok(token, form.get("csrf", "")):
                        return self.forbidden(
                            request,
                            "The form's security token does not match your session. "
                            "Reload the page and try again.",
                        )
                me = await api.get("/api/v1/me")
                instance = await self.instance(api, request)
                may = await self.account_actions(api)
                ctx = Ctx(self, request, api, token, me, instance, form, may, uploads=uploads)
                return await handler(ctx)
            except SessionExpired:
                return sign_in_redirect(
                    request, "Your session has expired or is no longer valid. Sign in again."
                )
            except ApiProblem as exc:
                if ctx is None:
                    raise
                return ctx.render(
                    "error.html",
                    exc.status if exc.status >= 400 else 500,
                    title=_TITLES.get(exc.status, "Something went wrong"),
                    message=exc.detail,
                )
            finally:
                for upload in uploads.values():
                    await upload.close()
                await api.aclose()

        return endpoint


_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


@dataclass
class Ctx:
    console: Console
    request: Request
    api: ApiClient
    token: str
    me: dict[str, Any]
    instance: dict[str, Any]
    form: dict[str, str]
    may: frozenset[str] = frozenset()
    """The account-wide actions (:data:`ACCOUNT_ACTIONS`) the caller may do."""
    flash: Flash | None = None
    uploads: dict[str, UploadFile] = field(default_factory=dict)
    """The files of a page that takes one (see :meth:`Console.page`)."""

    def __post_init__(self) -> None:
        self.flash = read_flash(self.request)

    @property
    def ram_menu(self) -> list[tuple[str, str, str]]:
        """The RAM menu: (key, URL, label) of the pages the caller may use."""
        return [
            (key, f"{PREFIX}/ram/{key}", label)
            for key, label, action in RAM_MENU
            if action in self.may and self.has(f"/api/v1/ram/{key}")
        ]

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def has(self, path: str, method: str = "GET") -> bool:
        return self.console.has(path, method)

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        response = self.console.render(self.request, template, status, ctx=self, **values)
        if self.flash is not None:
            clear_flash(response, self.request)
        return response

    def redirect(self, url: str, text: str | None = None, kind: str = "success") -> Response:
        response = RedirectResponse(url, status_code=303)
        if text:
            set_flash(response, self.request, text, kind)
        return response

    async def act(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        then: str,
        said: str,
        page: Rerender | None = None,
        key: str = "form",
        back: str | None = None,
        invalid: str | dict[str, str] | None = None,
        status: int | None = None,
    ) -> Response:
        """A form's action: ``method path`` with ``body`` on the API, then to ``then``
        with the message ``said``.

        What the form's own check found ``invalid`` (a message for the form ``key``, or
        messages by form) is shown on ``page`` with status 400, without calling the API;
        the API's refusal likewise, next to ``key``, with its status (or ``status``).
        Without a page, a refusal is an error message at ``back`` (by default ``then``).
        """
        errors = {key: invalid} if isinstance(invalid, str) else dict(invalid or {})
        code = 400
        if not errors:
            try:
                await self.api.call(method, path, json=body)
            except ApiProblem as exc:
                code, errors = status or exc.status, {key: exc.detail}
            else:
                return self.redirect(then, said)
        if page is None:
            return self.redirect(back or then, " ".join(errors.values()), "error")
        return await page(self, code, errors=errors)

    async def listing(
        self, path: str, filters: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The page of a listing this page shows (from its ``after``, 50 items) and the
        URL that shows the next one (``None`` after the last)."""
        params = {**(filters or {}), "after": self.query("after"), "limit": PAGE_SIZE}
        body = await self.api.get(path, params)
        following = next_after(body)
        next_url = page_url(self.request, after=following) if following else None
        return list(body.get("items", [])), next_url


async def allowed(api: ApiClient, checks: Sequence[tuple[str, str | None]]) -> frozenset[str]:
    """The actions of ``checks`` ((action, resource or None) pairs, each action once) the
    API says the caller may do: one batch check."""
    if not checks:
        return frozenset()
    body = await api.post(
        "/api/v1/authz/check",
        {"checks": [{"action": a, "resource": r} for a, r in checks]},
    )
    return frozenset(str(r["action"]) for r in body.get("results", []) if r.get("allowed") is True)


async def may_on(
    ctx: Ctx,
    candidates: Sequence[str],
    resource: str | None,
    *,
    also: Sequence[tuple[str, str | None]] = (),
) -> frozenset[str]:
    """Which ``candidates`` the caller may do on ``resource`` (a short name, as the batch
    check takes it), and which of the ``also`` checks: one batch check, for the forms
    and buttons of a page whose resource the API's answers carry no ``allowed_actions``
    for. Every action when the API has no check to ask (the pages then behave as before
    it had one)."""
    checks = [(a, resource) for a in candidates] + list(also)
    if not ctx.has("/api/v1/authz/check", "POST"):
        return frozenset(a for a, _ in checks)
    return await allowed(ctx.api, checks)


def allows(item: Any, action: str) -> bool:
    """Whether a namespace or repository from the API says the caller may do ``action``
    with it (its ``allowed_actions``); nothing is allowed when it does not say."""
    found = item.get("allowed_actions") if isinstance(item, dict) else None
    return isinstance(found, list) and action in found


RAM_MENU = (
    ("users", "Users", "ram:ListUsers"),
    ("groups", "Groups", "ram:ListGroups"),
    ("roles", "Roles", "ram:ListRoles"),
    ("policies", "Policies", "ram:ListPolicies"),
)


async def read_form(request: Request) -> dict[str, str]:
    return (await read_form_files(request, 0))[0]


FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart form may carry beyond its file (fields, boundaries)."""


async def read_form_files(
    request: Request, max_files: int
) -> tuple[dict[str, str], dict[str, UploadFile]]:
    """A form's fields and (up to ``max_files``) files."""
    form = await request.form(max_files=max_files, max_fields=200)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    files = {key: value for key, value in form.items() if isinstance(value, UploadFile)}
    return fields, files


def _declared_length(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else 0


def same_origin(request: Request, public_url: str = "") -> bool:
    """Whether a POST's ``Origin`` (when the browser sends one) is this site: the host
    the request came to, or the configured public URL's (behind a proxy that rewrites
    ``Host``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    allowed = {request.headers.get("host", "")}
    if public_url:
        allowed.add(urlsplit(public_url).netloc)
    return urlsplit(origin).netloc in allowed


def safe_next(target: str | None) -> str:
    """A console path to go to after signing in; anything else goes to the start page."""
    if (
        target
        and target.startswith(PREFIX + "/")
        and not target.startswith("//")
        and "\\" not in target
        and "://" not in target
    ):
        return target
    return PREFIX + "/"


def sign_in_redirect(request: Request, message: str | None) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = PREFIX + "/"
    url = f"{PREFIX}/sign-in?{urlencode({'next': target})}"
    response = RedirectResponse(url, status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        clear_session(response, request)
    if message:
        set_flash(response, request, message, "info")
    return response


def registry_host(settings: Settings, request: Request) -> str:
    if settings.public_url:
        return urlsplit(settings.public_url).netloc or settings.public_url
    return request.headers.get("host", settings.listen)


def next_after(body: Any) -> str | None:
    """The ``after`` of a listing's next page, if it has one."""
    if not isinstance(body, dict) or not isinstance(body.get("next"), str):
        return None
    values = parse_qs(urlsplit(body["next"]).query).get("after")
    return values[0] if values else None


def page_url(request: Request, **changes: str | None) -> str:
    """This page's URL with some query parameters changed (``None`` removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def escape_text(value: str) -> str:
    return str(escape(value))
