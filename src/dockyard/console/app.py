"""The web console at ``/console/``: server-rendered pages over the management API.

The console holds no data and touches no service: each page calls the API in-process
with the signed-in user's session token (see :mod:`dockyard.console.client`), so it can
do exactly what the API allows that user, and the audit log records the same calls.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from dockyard.config import Settings
from dockyard.console.core import HERE, PREFIX, Console, api_routes
from dockyard.console.views import (
    access,
    artifacts,
    auth,
    builds,
    catalog,
    ram,
    scans,
    vulndb,
    webhooks,
)


def create_console(api: ASGIApp, settings: Settings, *, audited: ASGIApp | None = None) -> ASGIApp:
    """The console over the management API app ``api`` (whose routes it reads).

    Its calls go through ``audited`` when given: ``api`` behind the audit middleware,
    so that a change refused (or failed) is recorded as the same call made directly is.
    A change made is recorded with its own transaction either way."""
    console = Console(audited or api, settings, routes=api_routes(api))

    async def bare(_: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 404:
            return console.render(
                request,
                "error.html",
                404,
                ctx=None,
                title="Not found",
                message="There is no console page at this address.",
            )
        return PlainTextResponse("method not allowed", status_code=status)

    routes = [
        Route(PREFIX, bare),
        Mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static"),
        *auth.routes(console),
        *catalog.routes(console),
        *artifacts.routes(console),
        *ram.routes(console),
        *access.routes(console),
        *webhooks.routes(console),
        *vulndb.routes(console),
        *scans.routes(console),
        *builds.routes(console),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
