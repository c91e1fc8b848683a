"""``dockyard``: serve, namespaces, gc, fsck.

Every command reads the same settings (``--config``, ``DOCKYARD_*`` variables, flags).
Errors end with a non-zero exit and one line on stderr.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import shutil
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import click

from dockyard import allocator
from dockyard.cli.common import instance_options, settings_of
from dockyard.config import Settings
from dockyard.iam.arn import instance_arn, namespace_arn
from dockyard.scanning.cli import scan, vulndb

if TYPE_CHECKING:
    from dockyard.origin import Origin


def _lower_priority(nice: int) -> None:
    """A job worker beside the server: run at niceness ``nice`` at least, so that on a
    busy machine the server's requests get the cores first (never raised: a worker is
    never less nice than the server that started it)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.nice(nice - current)


@click.group()
@instance_options
def main() -> None:
    """Dockyard, a self-hosted container registry."""


@main.command()
@instance_options
@click.option("--listen", default=None, help="HOST:PORT (default 127.0.0.1:5000).")
@click.option("--tls-cert", default=None, help="PEM certificate for HTTPS.")
@click.option("--tls-key", default=None, help="PEM private key for HTTPS.")
@click.option("--region", default=None, help="Region id used in resource names (default local).")
@click.option("--workers", type=int, default=None, help="Server processes (default 1).")
@click.option(
    "--job-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Job worker processes serve runs beside itself (default 1; 0: none).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    listen: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    region: str | None,
    workers: int | None,
    job_workers: int | None,
) -> None:
    """Run the registry and its management API, and (unless --job-workers 0) a job
    worker process beside it for the background work: webhook deliveries, scans,
    builds."""
    allocator.tune()
    allocator.start_trimming()
    # The server's processes and its job worker share their metrics through files, so
    # that /metrics counts them all (set before prometheus_client is first imported).
    metrics_dir = tempfile.mkdtemp(prefix="dockyard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)

    import uvicorn

    from dockyard.app import create_app
    from dockyard.cli.protocol import HttpProtocol
    from dockyard.jobs.process import JobProcess
    from dockyard.observability import setup_logging
    from dockyard.services import bootstrap

    settings = settings_of(
        ctx,
        listen=listen,
        tls_cert=tls_cert,
        tls_key=tls_key,
        region=region,
        workers=workers,
        job_workers=job_workers,
    )
    setup_logging(settings.log_level, settings.log_format)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise click.ClickException("--tls-cert and --tls-key go together")
    # Bound and listening before anything else: a port in use is said plainly (and no
    # database is touched for a server that cannot start); "listening" is said once the
    # instance is ready (connections wait in the backlog until the server takes them).
    sock = _listen(settings)
    services = bootstrap(settings, server=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 30,
        "http": HttpProtocol,
        # No WebSocket routes: uvicorn would otherwise import a WebSocket library.
        "ws": "none",
    }
    if settings.tls_cert:
        options.update(ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key)
    scheme = "https" if settings.tls_cert else "http"
    logging.getLogger("dockyard.serve").info(
        "Dockyard listening on %s://%s", scheme, settings.listen
    )
    jobs = JobProcess(
        settings.job_workers, settings.job_slots, _as_environ(settings), grace=settings.job_grace
    )
    jobs.start()
    try:
        if settings.workers > 1:
            from uvicorn.supervisors import Multiprocess

            services.close()
            # Worker processes rebuild the settings from the environment.
            for key, value in _as_environ(settings).items():
                os.environ[key] = value
            config = uvicorn.Config(
                "dockyard.app:create_app_from_env",
                factory=True,
                workers=settings.workers,
                **options,
            )
            Multiprocess(config, sockets=[sock]).run()
        else:
            config = uvicorn.Config(create_app(settings, services), **options)
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        jobs.stop()
        sock.close()


def _listen(settings: Settings) -> socket.socket:
    """A socket bound to ``settings.listen`` and listening, as uvicorn would make it; a
    one-line error naming the address when it cannot be (a port in use above all)."""
    host = settings.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, settings.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        failure = exc
    else:
        sock.set_inheritable(True)
        return sock
    if failure.errno == errno.EADDRINUSE:
        message = (
            f"{settings.listen} is already in use; choose another with --listen or DOCKYARD_LISTEN"
        )
    else:
        message = f"cannot listen on {settings.listen}: {failure.strerror or failure}"
    # One line, in the log's format (JSON or text), and a failing exit status.
    logging.getLogger("dockyard.serve").error(message)
    raise SystemExit(1) from failure


def cli_origin(action: str, resource: str, detail: str) -> Origin:
    """The origin of a change made at the instance's command line: audited as done by
    the operating-system user who ran ``dockyard``."""
    import getpass

    from dockyard.audit import Decision
    from dockyard.origin import Origin

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    actor = f"{user} (dockyard CLI)"
    entry = Decision(actor, action, resource, True, detail=detail)
    return Origin(actor=actor, decision=entry, status=201)


def _as_environ(settings: Settings) -> dict[str, str]:
    from dataclasses import fields

    out = {}
    for f in fields(settings):
        if f.name == "extra":
            continue
        value = getattr(settings, f.name)
        out[f"DOCKYARD_{f.name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return out


@main.command()
@instance_options
@click.option(
    "--queues",
    default=",".join(("events", "webhooks", "scans", "builds")),
    show_default=True,
    help="Comma-separated queues to serve.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Job slots (webhook deliveries get several per slot: they wait on the network).",
)
@click.option(
    "--metrics-listen",
    default=None,
    help="HOST:PORT to serve this worker's Prometheus /metrics on (default: none).",
)
@click.option(
    "--build-pool",
    default="default",
    show_default=True,
    help="The build pool whose builds this worker runs (a code source names its pool).",
)
@click.option("--supervised", is_flag=True, hidden=True, help="Started by dockyard serve.")
@click.pass_context
def worker(
    ctx: click.Context,
    queues: str,
    concurrency: int,
    metrics_listen: str | None,
    build_pool: str,
    supervised: bool,
) -> None:
    """Run background jobs alone, on any machine that reaches the database and the blob
    store. SIGTERM (or Ctrl-C) stops claiming, lets running jobs finish within the grace
    time (DOCKYARD_JOB_GRACE) and hands the rest back to the queue."""
    import asyncio
    import signal

    from dockyard.jobs.queue import QUEUES
    from dockyard.observability import Metrics, setup_logging
    from dockyard.services import open_services, run_worker

    allocator.tune()
    settings = settings_of(ctx)
    setup_logging(settings.log_level, settings.log_format)
    if supervised:
        _lower_priority(settings.job_nice)
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown queue {unknown[0] if unknown else '(none)'}; the queues are "
            + ", ".join(QUEUES),
            param_hint="--queues",
        )
    from dockyard.builds.model import POOL, build_queue

    if not POOL.fullmatch(build_pool):
        raise click.BadParameter(
            "1 to 32 lowercase letters, digits and '-'", param_hint="--build-pool"
        )
    chosen = [build_queue(build_pool) if q == "builds" else q for q in chosen]
    metrics = Metrics()
    if metrics_listen:
        from prometheus_client import start_http_server

        host, _, port = metrics_listen.rpartition(":")
        if not port.isdigit():
            raise click.BadParameter("HOST:PORT", param_hint="--metrics-listen")
        start_http_server(int(port), host or "127.0.0.1", registry=metrics.registry)
    services = open_services(settings, migrate=True)
    services.db.write_in_background()
    jobs = services.worker(
        concurrency=concurrency, queues=chosen, observer=metrics, build_pool=build_pool
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, jobs.stop)
        if supervised:
            from dockyard.jobs.process import stop_with_parent

            stop_with_parent()
        await run_worker(services, jobs)

    # A log line (JSON with JSON logs): beside serve it shares the server's log.
    logging.getLogger("dockyard.worker").info(
        "Dockyard worker %s serving %s", jobs.owner, ", ".join(chosen)
    )
    try:
        asyncio.run(main())
    finally:
        services.close()


@main.group()
def namespace() -> None:
    """Manage namespaces."""


@namespace.command("create")
@instance_options
@click.argument("name")
@click.option("--account", default="admin", help="The owning account (default admin).")
@click.option(
    "--private/--public",
    "private",
    default=True,
    help="Default type of repositories created by push (default private).",
)
@click.option("--no-auto-create", is_flag=True, help="Refuse pushes to missing repositories.")
@click.pass_context
def namespace_create(
    ctx: click.Context, name: str, account: str, private: bool, no_auto_create: bool
) -> None:
    """Create namespace NAME."""
    from dockyard.errors import ServiceError
    from dockyard.services import bootstrap

    settings = settings_of(ctx)
    services = bootstrap(settings)
    try:
        owner = services.accounts.get(account)
        arn = namespace_arn(settings.region, owner.id, name)
        services.catalog.create_namespace(
            cli_origin("cr:CreateNamespace", arn, f"namespace {name}"),
            name,
            account_id=owner.id,
            auto_create=not no_auto_create,
            default_public=not private,
            enforce_quota=False,  # the operator at the console of the instance
        )
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        services.close()
    click.echo(f"created namespace {name}")


@namespace.command("list")
@instance_options
@click.pass_context
def namespace_list(ctx: click.Context) -> None:
    """List namespaces."""
    from dockyard.services import bootstrap

    services = bootstrap(settings_of(ctx))
    try:
        after = None
        while True:
            page = services.catalog.list_namespaces(limit=500, after=after)
            for ns in page:
                click.echo(ns.name)
            if len(page) < 500:
                break
            after = page[-1].name
    finally:
        services.close()


@main.group()
def account() -> None:
    """Manage accounts (tenants) and their root users."""


@account.command("create")
@instance_options
@click.argument("name")
@click.password_option(
    "--password",
    envvar="DOCKYARD_ACCOUNT_PASSWORD",
    help="The root user's password (also DOCKYARD_ACCOUNT_PASSWORD; prompted otherwise).",
)
@click.option("--namespace-quota", type=int, default=3, help="Namespaces allowed (default 3).")
@click.option(
    "--repository-quota", type=int, default=300, help="Repositories allowed (default 300)."
)
@click.pass_context
def account_create(
    ctx: click.Context, name: str, password: str, namespace_quota: int, repository_quota: int
) -> None:
    """Create account NAME with a root user of the same name."""
    from dockyard.errors import ServiceError
    from dockyard.services import bootstrap

    settings = settings_of(ctx)
    services = bootstrap(settings)
    origin = cli_origin("cr:CreateAccount", instance_arn(settings.region), f"account {name}")
    try:
        created = services.accounts.create(
            origin,
            name,
            password,
            namespace_quota=namespace_quota,
            repository_quota=repository_quota,
        )
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        services.close()
    click.echo(f"created account {created.name} (id {created.id}); root login: {created.name}")


@main.command(
    help=(
        "Remove untagged manifests and blobs nothing references; safe while serving. "
        "Uploads abandoned for longer than upload_purge_age (DOCKYARD_UPLOAD_PURGE_AGE, "
        f"default {Settings.upload_purge_age} seconds) go too. The last line says what "
        "the grace period spared."
    )
)
@instance_options
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option(
    "--grace",
    type=click.IntRange(min=0),
    default=None,
    help=(
        f"Spare anything touched within this many seconds (default {Settings.gc_grace}, "
        "or the setting gc_grace: DOCKYARD_GC_GRACE)."
    ),
)
@click.option("--verbose", "-v", is_flag=True, help="List every item removed.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, grace: int | None, verbose: bool) -> None:
    # The help is the command's (help=): it names the settings' real defaults.
    from datetime import timedelta

    from dockyard.registry.maintenance import collect_garbage
    from dockyard.services import bootstrap

    settings = settings_of(ctx)
    services = bootstrap(settings)
    try:
        report = collect_garbage(
            services.db,
            services.store,
            grace=timedelta(seconds=settings.gc_grace if grace is None else grace),
            upload_age=timedelta(seconds=settings.upload_purge_age),
            dry_run=dry_run,
        )
    finally:
        services.close()
    if verbose:
        for name in report.manifests:
            click.echo(f"manifest {name}")
        for digest, size in report.blobs + report.orphans:
            click.echo(f"blob {digest} {size}")
        for upload_id in report.uploads:
            click.echo(f"upload {upload_id}")
    click.echo(report.summary())


@main.command()
@instance_options
@click.option("--no-rehash", is_flag=True, help="Check sizes only; do not re-read every blob.")
@click.pass_context
def fsck(ctx: click.Context, no_rehash: bool) -> None:
    """Re-hash every blob and check every reference; exit 1 when something is wrong."""
    from dockyard.registry.maintenance import check_consistency, counted
    from dockyard.services import bootstrap

    services = bootstrap(settings_of(ctx))
    try:
        report = check_consistency(services.db, services.store, rehash=not no_rehash)
    finally:
        services.close()
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(
        f"checked {counted(report.blobs_checked, 'blob')} and "
        f"{counted(report.manifests_checked, 'manifest')}: "
        + ("clean" if report.clean else counted(len(report.problems), "problem"))
    )
    if not report.clean:
        ctx.exit(1)


main.add_command(scan)
main.add_command(vulndb)


def run() -> None:
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()

__all__ = ["main"]


if __name__ == "__main__":
    main()
