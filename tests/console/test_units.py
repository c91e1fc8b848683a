"""Console pieces without a browser: the in-process API client, the CSRF token, the
Markdown renderer and the template filters."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.config import Settings
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
