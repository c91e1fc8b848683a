"""``dockyard scan`` and ``dockyard vulndb``: scan images offline against imported OSV data.

The commands are registered on the main ``dockyard`` group (``dockyard.cli.main``) and
take its instance options; the database defaults to ``<data dir>/vulndb``. Errors exit 2
with one line on stderr: ``dockyard scan: error: …``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from pathlib import Path
from typing import IO, Any

import click

from dockyard.cli.common import instance_options, settings_of
from dockyard.scanning.model import SEVERITIES

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


def _db_dir(ctx: click.Context, command: str, db: Path | None) -> Path:
    if db is not None:
        return db
    try:
        settings = settings_of(ctx)
    except click.ClickException as exc:
        raise CommandError(command, exc.format_message()) from exc
    return Path(settings.data_dir) / "vulndb"


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
    from dockyard.scanning.vulndb import DB_FILENAME, VulnDB

    try:
        levels = parse_levels(severity)
    except ValueError as exc:
        raise CommandError("scan", f"--severity: {exc}") from exc
    directory = _db_dir(ctx, "scan", db)
    if not (directory / DB_FILENAME).is_file():
        raise CommandError(
            "scan",
            f"no vulnerability database in {directory} (import OSV records with "
            "`dockyard vulndb import`, or give --db)",
        )
    bar = _ProgressBar()
    warnings: list[str] = []
    try:
        with VulnDB(directory) as vulndb:
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

    directory = _db_dir(ctx, "vulndb import", db)

    def invalid(record: str, reason: str) -> None:
        click.echo(f"dockyard vulndb import: skipped invalid record {record}: {reason}", err=True)

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


@vulndb.command("status")
@instance_options
@_DB_OPTION
@click.pass_context
def vulndb_status(ctx: click.Context, db: Path | None) -> None:
    """Record counts and newest modified time per ecosystem."""
    from dockyard.scanning.vulndb import DB_FILENAME, VulnDB

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
    table = [("ECOSYSTEM", "RECORDS", "NEWEST MODIFIED")]
    table += [
        (
            row.ecosystem,
            str(row.records),
            row.newest_modified.strftime("%Y-%m-%dT%H:%M:%SZ") if row.newest_modified else "-",
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        click.echo(f"{r[0].ljust(widths[0])}  {r[1].rjust(widths[1])}  {r[2]}".rstrip())
