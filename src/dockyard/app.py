"""Assemble the ASGI application from the settings.

:func:`dockyard.services.bootstrap` prepares an instance once per start (migrations,
the administrator, the token key) before any server process begins; :func:`create_app`
builds the app over the services (:mod:`dockyard.services`) in each server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from anyio import to_thread
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard import allocator
from dockyard.api import ApiAuth, ApiError, problem, title_of
from dockyard.audit import AuditMiddleware
from dockyard.builds.http import BuildRoutes, HookRoutes
from dockyard.catalog.http import NamespaceRoutes, RepositoryRoutes
from dockyard.config import Settings, load_settings
from dockyard.events.http import EventRoutes
from dockyard.iam.checks import CheckService
from dockyard.iam.http import AccountRoutes, AuthzRoutes, RamRoutes
from dockyard.iam.tokens import TokenService, load_or_create_key
from dockyard.jobs.http import JobRoutes
from dockyard.observability import Metrics, ObservabilityMiddleware, setup_logging
from dockyard.openapi import Op, OpenApiDocument, describe, openapi_document
from dockyard.registry.details import ManifestDetails
from dockyard.registry.details_http import ManifestRoutes
from dockyard.registry.http import RegistryHTTP
from dockyard.scanning.scans_http import (
    NamespaceSecurityRoutes,
    RepositoryScanRoutes,
    tag_briefs,
)
from dockyard.scanning.vulndb_http import VulnDBRoutes
from dockyard.services import Services, observe_vulndb, open_services
from dockyard.webhooks.http import WebhookRoutes

log = logging.getLogger(__name__)


def _repository_routes(services: Services, auth: ApiAuth, region: str) -> list[Route]:
    """Repositories and their tags (with each tag's scan), scans, security settings."""
    args = (services.catalog, services.permissions, auth, region)
    repositories = RepositoryRoutes(*args)
    repositories.tag_scans = functools.partial(tag_briefs, services.scans)
    return [
        *repositories.routes(),
        *ManifestRoutes(ManifestDetails(services.registry), *args).routes(),
        *RepositoryScanRoutes(*args).with_scans(services.scans).routes(),
        *NamespaceSecurityRoutes(*args).with_scans(services.scans).routes(),
    ]


def create_app(settings: Settings, services: Services | None = None) -> ASGIApp:
    services = services or open_services(settings, server=True)
    tokens = TokenService(
        load_or_create_key(services.db, settings.data_dir),
        service=settings.service,
        ttl=settings.token_ttl,
    )
    registry_http = RegistryHTTP(
        services.registry,
        services.catalog,
        services.identity,
        tokens,
        region=settings.region,
        public_url=settings.public_url,
        scans=services.scans,
    )
    metrics = Metrics()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        problems = {}
        for name, check in (("database", services.db.ping), ("storage", services.store.ping)):
            try:
                await to_thread.run_sync(check)
            except Exception as exc:
                problems[name] = str(exc)[:200]
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        try:
            depth = await to_thread.run_sync(services.jobs.depth)
            metrics.set_queue_depth(depth, (h.spec.kind for h in services.job_handlers()))
            scans = await to_thread.run_sync(services.scans.status_counts)
            metrics.set_scans(scans)
        except Exception:
            log.exception("could not read the job queue's depth or the scans")
        await to_thread.run_sync(observe_vulndb, services.vulndb, metrics)
        return PlainTextResponse(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def jwks(_: Request) -> Response:
        return JSONResponse(tokens.jwks())

    @describe(get=Op("This document (OpenAPI 3.1)", tag="meta", reply=OpenApiDocument, public=True))
    async def openapi(_: Request) -> Response:
        """The OpenAPI document of this management API."""
        return JSONResponse(openapi_document(app.routes))

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return problem(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if request.url.path.startswith("/api/"):
            return problem(
                status,
                title_of(status),
                f"no such route: {request.method} {request.url.path}",
            )
        return PlainTextResponse("not found" if status == 404 else "error", status_code=status)

    auth = ApiAuth(services.identity, tokens)
    namespaces = NamespaceRoutes(services.catalog, services.permissions, auth, settings.region)
    registry_host = settings.public_url.split("://", 1)[-1].rstrip("/")
    accounts = AccountRoutes(
        services.accounts,
        services.ram,
        services.sts,
        services.audit,
        auth,
        region=settings.region,
        registry_host=registry_host,
        allow_signup=settings.allow_signup,
    )
    ram = RamRoutes(services.ram, auth)
    vulndb_routes = VulnDBRoutes.from_settings(services.vulndb, auth, settings)
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/auth/token", registry_http.token, methods=["GET", "POST"]),
        Route("/auth/jwks", jwks),
        Route("/api/v1/openapi.json", openapi),
        *namespaces.routes(),
        *_repository_routes(services, auth, settings.region),
        *accounts.routes(),
        *ram.routes(),
        *AuthzRoutes(CheckService(settings.region, services.catalog.owner_of), auth).routes(),
        *EventRoutes(services.events, services.accounts, auth, settings.region).routes(),
        *JobRoutes(services.jobs, auth, settings.region).routes(),
        *WebhookRoutes(services.webhooks, services.catalog, auth, settings.region).routes(),
        *vulndb_routes.routes(),
        *BuildRoutes(services.builds, services.catalog, auth, settings).routes(),
        *HookRoutes(services.builds, settings.region).routes(),
    ]

    app = Starlette(
        routes=routes,
        exception_handlers={ApiError: api_error, 404: not_found, 405: not_found},
        lifespan=_thread_limit(settings.threads),
    )
    app.state.services = services
    audited = AuditMiddleware(app, services.audit, reads=False)
    console = OnFirstRequest(functools.partial(_console, app, settings, audited))

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        # /v2/ goes straight to the registry: it answers every path under it in the OCI
        # error format, and the registry's hot path skips the router.
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v2" or path.startswith("/v2/")):
            await registry_http(scope, receive, send)
        elif scope["type"] == "http" and (path == "/console" or path.startswith("/console/")):
            await console(scope, receive, send)
        elif scope["type"] == "http" and path == "/":
            await RedirectResponse("/console/", status_code=307)(scope, receive, send)
        else:
            await app(scope, receive, send)

    return ObservabilityMiddleware(AuditMiddleware(dispatch, services.audit), metrics)


def _thread_limit(threads: int) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """The server's lifespan: blocking work runs on at most ``threads`` threads (as many
    as the database pool's connections), not anyio's default of 40."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    return lifespan


def _console(api: ASGIApp, settings: Settings, audited: ASGIApp) -> ASGIApp:
    from dockyard.console import create_console

    return create_console(api, settings, audited=audited)


class OnFirstRequest:
    """An ASGI app built when its first request comes, not when the server starts.

    For the console: its templates, Jinja and its in-process HTTP client (httpx) take
    some 7 MB of the server's memory for good, and a registry that only clients talk to
    never needs them. The first request waits for the build (in a worker thread, so
    that the event loop goes on serving meanwhile); requests that come during it wait
    for the same build."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            async with self._lock:
                if self._app is None:
                    self._app = await to_thread.run_sync(self._build)
                app = self._app
        await app(scope, receive, send)


def create_app_from_env() -> ASGIApp:
    """Factory for server worker processes: settings come from DOCKYARD_* variables."""
    allocator.tune()
    allocator.start_trimming()
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)
