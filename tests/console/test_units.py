"""Console pieces without a browser: the in-process API client, the CSRF token, the
Markdown renderer and the template filters."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.config import Settings
from dockyard.console.app import create_console
from dockyard.console.client import ApiProblem
from dockyard.console.core import (
    Console,
    api_routes,
    human_size,
    safe_next,
    same_origin,
    short_digest,
    when,
)
from dockyard.console.markdown import render_markdown
from dockyard.console.session import csrf_ok, csrf_token


async def _echo(request: Request) -> Response:
    return JSONResponse(
        {
            "client": request.client.host if request.client else None,
            "host": request.headers.get("host"),
            "scheme": request.url.scheme,
            "authorization": request.headers.get("authorization"),
            "forwarded": request.headers.get("x-forwarded-for"),
        }
    )


def _browser_request(client: tuple[str, int], scheme: str = "https") -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/console/",
        "raw_path": b"/console/",
        "query_string": b"",
        "headers": [(b"host", b"registry.example:8443")],
        "client": client,
        "server": ("registry.example", 8443),
    }
    return Request(scope)


def test_the_api_sees_the_browsers_address_host_scheme_and_token() -> None:
    api = Starlette(routes=[Route("/api/v1/echo", _echo)])
    console = Console(api, Settings(), routes=api_routes(api))
    request = _browser_request(("203.0.113.9", 51515))

    async def call() -> dict[str, Any]:
        client = console.client(request, "the-session-token")
        try:
            found: dict[str, Any] = await client.get("/api/v1/echo")
            return found
        finally:
            await client.aclose()

    seen = anyio.run(call)
    assert seen == {
        "client": "203.0.113.9",
        "host": "registry.example:8443",
        "scheme": "https",
        "authorization": "Bearer the-session-token",
        "forwarded": None,
    }
    assert console.has("/api/v1/echo")
    assert not console.has("/api/v1/echo", "POST")


async def _report(request: Request) -> Response:
    if request.query_params.get("format") == "harbor":
        body = b'{"severity": "High"}'
        return Response(body, media_type="application/vnd.security.vulnerability.report")
    problem = {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "queued"}
    return JSONResponse(problem, status_code=409, media_type="application/problem+json")


def test_a_download_keeps_the_apis_bytes_and_media_type_and_raises_its_problems() -> None:
    api = Starlette(routes=[Route("/api/v1/report", _report)])
    console = Console(api, Settings(), routes=api_routes(api))
    request = _browser_request(("203.0.113.9", 51515))

    async def call() -> tuple[tuple[bytes, str], ApiProblem]:
        client = console.client(request, "the-session-token")
        try:
            found = await client.download("/api/v1/report", {"format": "harbor", "x": ""})
            try:
                await client.download("/api/v1/report", {"format": "sarif"})
            except ApiProblem as exc:
                return found, exc
            raise AssertionError("a 409 must raise its problem")
        finally:
            await client.aclose()

    (body, media_type), problem = anyio.run(call)
    assert body == b'{"severity": "High"}'
    assert media_type == "application/vnd.security.vulnerability.report"
    assert problem.status == 409
    assert problem.detail == "queued"


def test_csrf_token_is_bound_to_the_session() -> None:
    token = csrf_token("session-a")
    assert len(token) == 64
    assert csrf_token("session-a") == token
    assert csrf_ok("session-a", token)
    assert not csrf_ok("session-b", token)
    assert not csrf_ok("session-a", "")
    assert not csrf_ok("session-a", token[:-1] + ("0" if token[-1] != "0" else "1"))


def test_markdown_escapes_everything_it_does_not_render() -> None:
    html = render_markdown(
        "# Title <b>\n\nText with `<code>` and **bold** and *it*.\n\n"
        "- [ok](https://example.com/a)\n- [bad](javascript:alert(1))\n\n"
        "```\n<script>alert(1)</script>\n```\n<img src=x onerror=alert(1)>"
    )
    assert "<h1>Title &lt;b&gt;</h1>" in html
    assert "<code>&lt;code&gt;</code>" in html
    assert "<strong>bold</strong>" in html
    assert "<em>it</em>" in html
    assert '<a href="https://example.com/a" rel="nofollow noopener" target="_blank">ok</a>' in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")
    assert 'href="javascript' not in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<img" not in html


def test_filters_and_redirect_targets() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024 * 1024) == "5.0 MiB"
    assert human_size(None) == "—"
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert when("2026-01-02T03:04:05Z") == "2026-01-02 03:04:05 UTC"
    assert when("2026-01-02T04:04:05+01:00") == "2026-01-02 03:04:05 UTC"
    assert safe_next("/console/ram/users?x=1") == "/console/ram/users?x=1"
    for bad in ("https://evil.example/console/", "//evil.example", "/api/v1/me", None, ""):
        assert safe_next(bad) == "/console/"


def test_origin_check() -> None:
    def request(origin: str | None) -> Request:
        headers = [(b"host", b"127.0.0.1:5000")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})

    assert same_origin(request(None))
    assert same_origin(request("http://127.0.0.1:5000"))
    assert not same_origin(request("http://evil.example"))
    assert not same_origin(request("null"))
    # Behind a proxy that rewrites Host, the public URL's origin is this site too.
    assert same_origin(request("https://registry.example"), "https://registry.example")
    assert not same_origin(request("https://evil.example"), "https://registry.example")


# -- pages over a fake API ---------------------------------------------------------------


class FakeRam:
    """A management API with just what the RAM user page reads, recording each call. Its
    policy listing pages by two whatever ``limit`` asks, so following ``next`` shows."""

    POLICIES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]

    def __init__(self, *, groups_field: bool) -> None:
        self.groups_field = groups_field
        self.calls: list[str] = []

    def app(self) -> Starlette:
        async def me(request: Request) -> Response:
            self.calls.append(request.url.path)
            return JSONResponse(
                {"login": "root1", "is_root": True, "is_instance_admin": False, "account_id": 7}
            )

        async def user(request: Request) -> Response:
            self.calls.append(request.url.path)
            body: dict[str, Any] = {
                "name": "dev",
                "login": "dev@acme",
                "has_registry_password": False,
                "policies": ["Bravo"],
                "created_at": "2026-01-02T03:04:05Z",
            }
            if self.groups_field:
                body["groups"] = ["builders"]
            return JSONResponse(body)

        async def keys(request: Request) -> Response:
            return JSONResponse({"items": []})

        async def groups(request: Request) -> Response:
            self.calls.append(request.url.path)
            return JSONResponse(
                {
                    "items": [
                        {"name": "builders", "members": ["dev@acme"], "policies": []},
                        {"name": "others", "members": ["ops@acme"], "policies": []},
                    ]
                }
            )

        async def policies(request: Request) -> Response:
            self.calls.append(str(request.url.include_query_params()))
            after = request.query_params.get("after", "")
            rest = [p for p in self.POLICIES if p > after]
            items = [{"name": p, "type": "custom"} for p in rest[:2]]
            body: dict[str, Any] = {"items": items}
            if len(rest) > 2:
                body["next"] = f"/api/v1/ram/policies?limit=2&after={items[-1]['name']}"
            return JSONResponse(body)

        async def patch(request: Request) -> Response:  # pragma: no cover - not called
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/api/v1/me", me),
                Route("/api/v1/ram/users/{user}", user),
                Route("/api/v1/ram/users/{user}", patch, methods=["PATCH"]),
                Route("/api/v1/ram/users/{user}/access-keys", keys),
                Route("/api/v1/ram/groups", groups),
                Route("/api/v1/ram/groups/{group}", groups),
                Route("/api/v1/ram/policies", policies),
            ]
        )


def _user_page(fake: FakeRam) -> str:
    console = create_console(fake.app(), Settings())

    async def call() -> str:
        transport = httpx.ASGITransport(app=console, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            http.cookies.set("dockyard_session", "token")
            r = await http.get("/console/ram/users/dev")
            assert r.status_code == 200, r.text
            return r.text

    return anyio.run(call)


def _options(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]*)">', html)


def test_user_page_takes_groups_from_the_user_and_offers_every_policy() -> None:
    fake = FakeRam(groups_field=True)
    html = _user_page(fake)
    assert '<a href="/console/ram/groups/builders">builders</a>' in html
    assert "others" not in html
    # The user's own ``groups``: no scan of every group.
    assert "/api/v1/ram/groups" not in fake.calls
    # Every page of policies, less the one attached.
    assert _options(html) == ["Alpha", "Charlie", "Delta", "Echo"]
    assert len([c for c in fake.calls if "/api/v1/ram/policies" in c]) == 3
    # The console password form, since the API has PATCH on the user.
    assert 'action="/console/ram/users/dev/password"' in html


def test_user_page_finds_groups_among_members_when_the_api_has_no_groups_field() -> None:
    fake = FakeRam(groups_field=False)
    html = _user_page(fake)
    assert "/api/v1/ram/groups" in fake.calls
    assert '<a href="/console/ram/groups/builders">builders</a>' in html
    assert "/console/ram/groups/others" not in html
