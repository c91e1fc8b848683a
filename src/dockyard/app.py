"""Assemble the ASGI application from the settings.

:func:`bootstrap` prepares an instance once per start (migrations, the administrator,
the token key) before any server process begins; :func:`create_app` builds the app in
each server process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api import ApiAuth, ApiError, problem, title_of
from dockyard.audit import AuditLog, AuditMiddleware
from dockyard.builds.http import BuildRoutes, HookRoutes
from dockyard.builds.model import DEFAULT_POOL, build_queue
from dockyard.builds.runner import BuildRunner, RunnerConfig, check_folders
from dockyard.builds.service import BuildService
from dockyard.catalog.http import NamespaceRoutes, RepositoryRoutes
from dockyard.catalog.service import CatalogService
from dockyard.changes import Changes
from dockyard.config import Settings, load_settings
from dockyard.console import create_console
from dockyard.db.engine import Database, utcnow
from dockyard.events.http import EventRoutes
from dockyard.events.outbox import EventLog
from dockyard.iam.accounts import AccountService
from dockyard.iam.checks import CheckService
from dockyard.iam.http import AccountRoutes, AuthzRoutes, RamRoutes
from dockyard.iam.identity import IdentityService
from dockyard.iam.permissions import PermissionService
from dockyard.iam.ram import RamService
from dockyard.iam.sts import StsService
from dockyard.iam.tokens import TokenService, load_or_create_key
from dockyard.jobs.http import JobRoutes
from dockyard.jobs.queue import QUEUES, JobQueue
from dockyard.jobs.worker import Handler, JobObserver, Worker
from dockyard.observability import Metrics, ObservabilityMiddleware, setup_logging
from dockyard.openapi import Op, OpenApiDocument, describe, openapi_document
from dockyard.registry.details import ManifestDetails
from dockyard.registry.details_http import ManifestRoutes
from dockyard.registry.http import RegistryHTTP
from dockyard.registry.service import RegistryService
from dockyard.scanning.scans_http import (
    NamespaceSecurityRoutes,
    RepositoryScanRoutes,
    tag_briefs,
)
from dockyard.scanning.service import ScanService
from dockyard.scanning.service_db import CACHE_DIRNAME, ImportResult, VulnDBService
from dockyard.scanning.sources import VulnSync
from dockyard.scanning.vulndb_http import VulnDBRoutes
from dockyard.secretbox import SecretBox
from dockyard.storage.base import BlobStore
from dockyard.storage.factory import create_store
from dockyard.webhooks.guard import AddressGuard
from dockyard.webhooks.http import WebhookRoutes
from dockyard.webhooks.service import WebhookService, retry_delays

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    store: BlobStore
    catalog: CatalogService
    identity: IdentityService
    accounts: AccountService
    registry: RegistryService
    ram: RamService
    permissions: PermissionService
    sts: StsService
    audit: AuditLog
    jobs: JobQueue
    events: EventLog
    webhooks: WebhookService
    vulndb: VulnDBService
    vulndb_sync: VulnSync
    scans: ScanService
    builds: BuildService
    runner: BuildRunner

    def close(self) -> None:
        self.db.dispose()

    def job_handlers(self, build_pool: str = DEFAULT_POOL) -> list[Handler]:
        """Every kind of job, with the handler that runs it (builds: those of
        ``build_pool``)."""
        return [
            self.events.handler(),
            self.webhooks.handler(),
            self.runner.handler(build_pool, self.settings.build_account_limit),
            self.scans.handler(),
            self.vulndb.import_handler(),
            self.vulndb_sync.handler(),
        ]

    def worker(
        self,
        *,
        concurrency: int,
        queues: Sequence[str] = QUEUES,
        observer: JobObserver | None = None,
        build_pool: str = DEFAULT_POOL,
    ) -> Worker:
        worker = Worker(
            self.jobs,
            self.job_handlers(build_pool),
            concurrency=concurrency,
            queues=queues,
            slots={build_queue(build_pool): max(1, self.settings.build_concurrency)},
            lease=float(max(self.settings.job_lease, 3)),
        )
        if observer is not None:
            worker.observer = observer
            if hasattr(observer, "scan_finished"):
                self.scans.observer = observer  # type: ignore[assignment]
        return worker

    def housekeeping(self) -> None:
        """Forget events past their retention, finished jobs as old, login-failure
        counters that no longer count, and scans of manifests no longer stored; queue
        the vulnerability database's refresh when it is due (the schedule is in the
        database: one replica queues it)."""
        cutoff = utcnow() - timedelta(days=self.settings.event_retention)
        self.events.purge(cutoff)
        self.jobs.purge(cutoff)
        self.identity.throttle.purge()
        self.scans.purge()
        if self.settings.vulndb_source:
            self.vulndb.schedule_refresh(timedelta(hours=self.settings.vulndb_refresh))


HOUSEKEEPING_INTERVAL = 600.0
"""Seconds between two purges of old events and jobs by a process that runs jobs."""
POLL_INTERVAL = 5.0
"""Seconds between two looks for code sources due to be polled (each source says how
often it wants to be; one worker takes each poll)."""


async def run_worker(services: Services, worker: Worker) -> None:
    """Run ``worker`` until it is stopped, with the periodic housekeeping beside it."""

    async def housekeeping() -> None:
        while True:
            try:
                await to_thread.run_sync(services.housekeeping)
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    async def polling() -> None:
        while True:
            try:
                await to_thread.run_sync(services.builds.poll_due)
            except Exception:
                log.exception("polling code sources failed")
            await asyncio.sleep(POLL_INTERVAL)

    keeper = asyncio.create_task(housekeeping())
    poller = asyncio.create_task(polling())
    try:
        await worker.run(grace=services.settings.job_grace)
    finally:
        for task in (keeper, poller):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await services.webhooks.aclose()


def open_services(settings: Settings, *, migrate: bool = False) -> Services:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate:
        db.migrate()
    store = create_store(settings)
    jobs = JobQueue(db)
    changes = Changes(db, jobs)
    catalog = CatalogService(db, changes, settings.region)
    events = EventLog(db, jobs)
    box = SecretBox.load_or_create(db)
    webhooks = WebhookService(
        db,
        changes,
        jobs,
        box,
        AddressGuard.from_setting(settings.webhook_allow_networks),
        region=settings.region,
        tz=settings.zone,
        retry_delays=retry_delays(settings.webhook_retry_delays),
        timeout=settings.webhook_timeout,
    )
    events.listen(webhooks.fan_out)
    changes.interests.append(webhooks.wants)
    identity = IdentityService(db, data_dir=settings.data_dir)
    changes.identity_changed.append(identity.forget_logins)
    vulndb = VulnDBService(
        db, settings.data_dir / CACHE_DIRNAME, changes=changes, jobs=jobs, store=store
    )
    scans = ScanService(db, store, changes, jobs, vulndb.open, vulndb.version)
    events.listen(scans.on_event)
    changes.interests.append(scans.wants)
    # After an import that changed the database, what was pushed or pulled lately is
    # scanned again (at low priority); a new High or worse is a scan_completed event.
    window = timedelta(days=settings.rescan_window)

    def rescan(_result: ImportResult) -> None:
        scans.rescan_recent(window)

    vulndb.on_imported.append(rescan)
    builds = BuildService(
        db,
        changes,
        box,
        allow_local=settings.build_allow_local_sources,
        account_limit=settings.build_account_limit,
    )
    runner_config = RunnerConfig(
        registry=settings.build_registry_address,
        registry_tls=bool(settings.tls_cert),
        work_dir=settings.build_work_path,
        cache_dir=settings.build_cache_path,
        data_dir=settings.data_dir,
        timeout=float(settings.build_timeout),
        context_limit=settings.build_context_limit * 1024 * 1024,
        allow_local=settings.build_allow_local_sources,
    )
    check_folders(runner_config)

    def tokens() -> TokenService:
        return TokenService(
            load_or_create_key(db, settings.data_dir),
            service=settings.service,
            ttl=settings.token_ttl,
        )

    runner = BuildRunner(db, changes, builds, tokens, runner_config)
    return Services(
        settings=settings,
        db=db,
        store=store,
        catalog=catalog,
        identity=identity,
        accounts=AccountService(db, changes),
        registry=RegistryService(db, store, catalog),
        ram=RamService(db, changes),
        permissions=PermissionService(db, changes),
        sts=StsService(db, changes),
        audit=AuditLog(db),
        jobs=jobs,
        events=events,
        webhooks=webhooks,
        vulndb=vulndb,
        vulndb_sync=VulnSync(
            vulndb,
            settings.vulndb_source,
            tuple(e.strip() for e in settings.vulndb_ecosystems.split(",") if e.strip()),
            # A sync fetches only the ecosystems stored images use.
            ecosystems_in_use=[scans.ecosystems_in_use],
        ),
        scans=scans,
        builds=builds,
        runner=runner,
    )


def observe_vulndb(vulndb: VulnDBService, metrics: Metrics) -> None:
    """Read the vulnerability database's figures into the metrics (at each scrape)."""
    try:
        records, last_import_at = vulndb.summary()
        metrics.set_vulndb(records, last_import_at, vulndb.outcomes())
    except Exception:
        log.exception("could not read the vulnerability database's status")


def bootstrap(settings: Settings) -> Services:
    """Migrate the schema, create the administrator and the signing key if missing."""
    services = open_services(settings, migrate=True)
    services.identity.ensure_admin(settings.data_dir, settings.admin_password)
    load_or_create_key(services.db, settings.data_dir)
    return services


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
    services = services or open_services(settings)
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
    )
    app.state.services = services
    audited = AuditMiddleware(app, services.audit, reads=False)
    console = create_console(app, settings, audited=audited)

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


def create_app_from_env() -> ASGIApp:
    """Factory for server worker processes: settings come from DOCKYARD_* variables."""
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)
