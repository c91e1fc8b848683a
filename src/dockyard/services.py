"""Every service of an instance, built in one place from the settings.

No HTTP here: ``dockyard worker`` (and every CLI command) assembles the services from
this module alone, so a job worker does not load Starlette, the console, the API routes
and their models, which only the server (:mod:`dockyard.app`) needs. Heavy parts a
process may never use (the scan engine, the build runner, alembic, HTTP clients) are
imported by the services themselves when a job of their kind first runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from anyio import to_thread

from dockyard.audit import AuditLog
from dockyard.builds.model import DEFAULT_POOL, build_queue
from dockyard.builds.runner import BuildRunner, RunnerConfig, check_folders
from dockyard.builds.service import BuildService
from dockyard.catalog.service import CatalogService
from dockyard.changes import Changes
from dockyard.config import Settings
from dockyard.db.engine import Database, utcnow
from dockyard.events.outbox import EventLog
from dockyard.iam.accounts import AccountService
from dockyard.iam.identity import IdentityService
from dockyard.iam.permissions import PermissionService
from dockyard.iam.ram import RamService
from dockyard.iam.sts import StsService
from dockyard.jobs.queue import QUEUES, JobQueue
from dockyard.jobs.worker import Handler, JobObserver, Worker
from dockyard.observability import Metrics
from dockyard.registry.service import RegistryService
from dockyard.scanning.service import ScanService
from dockyard.scanning.service_db import CACHE_DIRNAME, ImportResult, VulnDBService
from dockyard.scanning.sources import VulnSync
from dockyard.secretbox import SecretBox
from dockyard.storage.base import BlobStore
from dockyard.storage.factory import create_store
from dockyard.webhooks.guard import AddressGuard
from dockyard.webhooks.service import WebhookService, retry_delays

if TYPE_CHECKING:
    from dockyard.iam.tokens import TokenService

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


def open_services(settings: Settings, *, migrate: bool = False, server: bool = False) -> Services:
    """The services over ``settings``'s database and storage; a ``server``'s database
    pool holds as many connections as its threads (``Settings.threads``)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pool = {"pool_size": settings.threads} if server else {}
    db = Database(settings.effective_database_url, **pool)
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
        # Only builds issue tokens here: PyJWT is loaded by the first one.
        from dockyard.iam.tokens import TokenService, load_or_create_key

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


def bootstrap(settings: Settings, *, server: bool = False) -> Services:
    """Migrate the schema, create the administrator and the signing key if missing (the
    services of a ``server``, see :func:`open_services`)."""
    from dockyard.iam.tokens import load_or_create_key

    services = open_services(settings, migrate=True, server=server)
    services.identity.ensure_admin(settings.data_dir, settings.admin_password)
    load_or_create_key(services.db, settings.data_dir)
    return services
