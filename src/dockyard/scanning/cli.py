"""``dockyard scan`` and ``dockyard vulndb``: scan images offline against imported OSV data.

The commands are registered on the main ``dockyard`` group (``dockyard.cli.main``) and
take its instance options. Which vulnerability database they use:

* ``--db DIR``: that database file (``DIR/osv.sqlite``), as on a machine without an
  instance;
* else, when the instance has a database (``DOCKYARD_DATABASE_URL``, or the SQLite file
  in the data directory), the instance's shared database (:mod:`.service_db`) — the one
  the registry's scans use;
* else ``<data dir>/vulndb``.

``dockyard vulndb sync`` fetches what changed at ``DOCKYARD_VULNDB_SOURCE`` (or
``--source``) into the instance's database. Errors exit 2 with one line on stderr:
``dockyard scan: error: …``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from dockyard.cli.common import instance_options, settings_of
from dockyard.config import Settings
from dockyard.scanning.model import SEVERITIES

if TYPE_CHECKING:
    from dockyard.scanning.service_db import VulnDBService
    from dockyard.scanning.vulndb import VulnDB
    from dockyard.services import Services

_DB_OPTION = click.option(
    "--db",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Vulnerability database directory (default: <data dir>/vulndb).",
)


class CommandError(click.ClickException):
    """Ends a command with exit status 2 and ``dockyard COMMAND: error: MESSAGE``."""

    exit_code = 2

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command

    def show(self, file: IO[Any] | None = None) -> None:
        text = " ".join(self.format_message().split())
        click.echo(f"dockyard {self.command}: error: {text}", err=True)


def _settings(ctx: click.Context, command: str) -> Settings:
    try:
        return settings_of(ctx)
    except click.ClickException as exc:
        raise CommandError(command, exc.format_message()) from exc


def _db_dir(ctx: click.Context, command: str, db: Path | None) -> Path:
    if db is not None:
        return db
    return Path(_settings(ctx, command).data_dir) / "vulndb"


@contextlib.contextmanager
def _instance(ctx: click.Context, command: str) -> Iterator[Services | None]:
    """The instance's services as every process builds them, when the instance has a
    database (else None): what is connected to an import (the rescan of recent images)
    or to a sync (the ecosystems stored images use) is then the same here."""
    settings = _settings(ctx, command)
    if not settings.database_url and not (Path(settings.data_dir) / "dockyard.db").is_file():
        yield None
        return
    from dockyard.services import open_services

    try:
        services = open_services(settings, migrate=True)
    except Exception as exc:
        raise CommandError(command, f"cannot open the instance's database: {exc}") from exc
    try:
        yield services
    finally:
        services.close()


@contextlib.contextmanager
def _shared(ctx: click.Context, command: str, db: Path | None) -> Iterator[VulnDBService | None]:
    """The instance's shared vulnerability database, when no ``--db`` is given and the
    instance has a database; else None (the commands use a database file)."""
    if db is not None:
        yield None
        return
    with _instance(ctx, command) as services:
        yield services.vulndb if services is not None else None


class _ProgressBar:
    """A click progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.bar: Any = None
        self.enabled = sys.stderr.isatty()

    def __call__(self, progress: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = self.stack.enter_context(
                click.progressbar(
                    length=max(progress.image_size, 1),
                    label="reading layers",
                    file=sys.stderr,
                    show_percent=True,
                )
            )
        step = progress.image_done - self.bar.pos
        if step > 0:
            self.bar.update(step)

    def close(self) -> None:
        self.stack.close()


@contextlib.contextmanager
def _matcher(ctx: click.Context, db: Path | None) -> Iterator[VulnDB]:
    """The database ``dockyard scan`` matches against (module docstring): the
    instance's when it holds records, else the file."""
    from dockyard.scanning.vulndb import DB_FILENAME, VulnDB

    with _shared(ctx, "scan", db) as service:
        if service is not None and service.version():
            with service.open() as matcher:
                yield matcher
            return
    directory = _db_dir(ctx, "scan", db)
    if not (directory / DB_FILENAME).is_file():
        raise CommandError(
            "scan",
            f"no vulnerability database in {directory} (import OSV records with "
            "`dockyard vulndb import`, or give --db)",
        )
    with VulnDB(directory) as matcher:
        yield matcher


@click.command()
@instance_options
@click.argument("image")
@_DB_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default=None,
    help="Report format (default: table on a terminal, json otherwise).",
)
@click.option(
    "--severity",
    default=",".join(SEVERITIES),
    show_default=True,
    help="Levels to report, comma-separated.",
)
@click.option(
    "--exit-code",
    type=click.IntRange(0, 255),
    default=0,
    help="Exit with this status when a finding at or above the lowest --severity level exists.",
)
@click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    help="os/arch[/variant] picked from a multi-platform image.",
)
@click.pass_context
def scan(
    ctx: click.Context,
    image: str,
    db: Path | None,
    fmt: str | None,
    severity: str,
    exit_code: int,
    platform: str,
) -> None:
    """Scan IMAGE (oci:PATH[:TAG] or docker-archive:PATH) for known vulnerabilities."""
    from dockyard.scanning.image import ScanError
    from dockyard.scanning.report import at_or_above, parse_levels, render_json, render_table
    from dockyard.scanning.scan import scan_image

    try:
        levels = parse_levels(severity)
    except ValueError as exc:
        raise CommandError("scan", f"--severity: {exc}") from exc
    bar = _ProgressBar()
    warnings: list[str] = []
    try:
        with _matcher(ctx, db) as vulndb:
            result = scan_image(image, vulndb, platform, progress=bar, on_warning=warnings.append)
    except ScanError as exc:
        raise CommandError("scan", str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise CommandError("scan", str(exc)) from exc
    finally:
        bar.close()
    for message in warnings:
        click.echo(f"dockyard scan: warning: {message}", err=True)
    chosen = [f for f in result.findings if f.severity in levels]
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "json"
    render = render_table if fmt == "table" else render_json
    click.echo(render(result, chosen), nl=False)
    if exit_code and at_or_above(result.findings, levels[-1]):
        ctx.exit(exit_code)


@click.group()
def vulndb() -> None:
    """Manage the offline vulnerability database (OSV records)."""


@vulndb.command("import")
@instance_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_DB_OPTION
@click.pass_context
def vulndb_import(ctx: click.Context, paths: tuple[Path, ...], db: Path | None) -> None:
    """Import OSV records: JSON files, folders of them, osv.dev zip archives."""
    from dockyard.scanning.vulndb import VulnDB

    def invalid(record: str, reason: str) -> None:
        click.echo(f"dockyard vulndb import: skipped invalid record {record}: {reason}", err=True)

    with _shared(ctx, "vulndb import", db) as service:
        if service is not None:
            _import_shared(service, paths, invalid)
            return
    directory = _db_dir(ctx, "vulndb import", db)
    try:
        with VulnDB(directory) as database:
            stats = database.import_paths(paths, on_invalid=invalid)
    except (OSError, sqlite3.Error) as exc:
        raise CommandError("vulndb import", str(exc)) from exc
    rate = stats.imported / stats.seconds if stats.seconds > 0 else 0.0
    click.echo(
        f"imported {stats.imported} records ({stats.added} added, {stats.updated} updated), "
        f"{stats.kept} kept (newer already stored), {stats.invalid} invalid skipped, "
        f"in {stats.seconds:.1f} s ({rate:,.0f} records/s) into {directory}"
    )


def _import_shared(
    service: VulnDBService, paths: tuple[Path, ...], invalid: Callable[[str, str], None]
) -> None:
    try:
        result = service.import_files(paths, source="cli")
    except Exception as exc:
        raise CommandError("vulndb import", str(exc)) from exc
    for record, reason in result.errors:
        invalid(record, reason)
    if result.invalid > len(result.errors):
        invalid("…", f"{result.invalid - len(result.errors)} more invalid records")
    imported = result.added + result.updated
    click.echo(
        f"imported {imported} records ({result.added} added, {result.updated} updated), "
        f"{result.kept} kept (same or newer already stored), {result.invalid} invalid "
        f"skipped, in {result.seconds:.1f} s into the instance's database "
        f"(version {result.version or 'empty'})"
    )


@vulndb.command("sync")
@instance_options
@click.option("--source", default=None, help="Override DOCKYARD_VULNDB_SOURCE.")
@click.pass_context
def vulndb_sync(ctx: click.Context, source: str | None) -> None:
    """Fetch what changed at the source into the instance's database."""
    from dockyard.scanning.sources import SourceError

    settings = _settings(ctx, "vulndb sync")
    source = source or settings.vulndb_source
    if not source:
        raise CommandError("vulndb sync", "no source: set DOCKYARD_VULNDB_SOURCE or --source")
    with _instance(ctx, "vulndb sync") as services:
        if services is None:
            raise CommandError(
                "vulndb sync",
                f"no instance database in {settings.data_dir} (start `dockyard serve` once, "
                "or set DOCKYARD_DATABASE_URL)",
            )
        # The instance's sync (its default ecosystems, the ecosystems in use), from the
        # source asked for.
        sync = dataclasses.replace(services.vulndb_sync, source=source)
        try:
            result = sync.sync(actor="cli")
        except (SourceError, OSError) as exc:
            raise CommandError("vulndb sync", str(exc)) from exc
    for location in result.fetched:
        click.echo(f"fetched {location}")
    for location in result.unchanged:
        click.echo(f"unchanged {location}")
    for ecosystem in result.missing:
        click.echo(f"dockyard vulndb sync: warning: the source has no {ecosystem}", err=True)
    if result.imported is not None:
        r = result.imported
        click.echo(
            f"imported {r.added + r.updated} records ({r.added} added, {r.updated} updated), "
            f"{r.kept} kept, {r.invalid} invalid skipped (version {r.version or 'empty'})"
        )
    else:
        click.echo("nothing changed at the source")


@vulndb.command("status")
@instance_options
@_DB_OPTION
@click.pass_context
def vulndb_status(ctx: click.Context, db: Path | None) -> None:
    """Record counts and newest modified time per ecosystem."""
    from dockyard.scanning.vulndb import DB_FILENAME, VulnDB

    with _shared(ctx, "vulndb status", db) as service:
        if service is not None:
            status = service.status()
            if not status.ecosystems:
                click.echo("no records in the instance's database")
                return
            _print_table(
                [
                    (e.ecosystem, str(e.records), e.newest_modified[:19] + "Z")
                    for e in status.ecosystems
                ]
            )
            return
    directory = _db_dir(ctx, "vulndb status", db)
    if not (directory / DB_FILENAME).is_file():
        raise CommandError("vulndb status", f"no vulnerability database in {directory}")
    try:
        with VulnDB(directory) as database:
            rows = database.status()
    except (OSError, sqlite3.Error) as exc:
        raise CommandError("vulndb status", str(exc)) from exc
    if not rows:
        click.echo(f"no records in {directory}")
        return
    _print_table(
        [
            (
                row.ecosystem,
                str(row.records),
                row.newest_modified.strftime("%Y-%m-%dT%H:%M:%SZ") if row.newest_modified else "-",
            )
            for row in rows
        ]
    )


def _print_table(rows: list[tuple[str, str, str]]) -> None:
    table = [("ECOSYSTEM", "RECORDS", "NEWEST MODIFIED"), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        click.echo(f"{r[0].ljust(widths[0])}  {r[1].rjust(widths[1])}  {r[2]}".rstrip())
