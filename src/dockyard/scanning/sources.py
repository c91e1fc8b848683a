"""Where OSV data comes from: ``DOCKYARD_VULNDB_SOURCE``, and the sync that fetches what
changed there.

A source is one of:

* an http(s) base URL laid out like the public OSV data export: ``<base>/<Ecosystem>/
  all.zip`` per ecosystem, and ``<base>/ecosystems.txt`` listing them. Archives are
  fetched with conditional requests (``If-None-Match``/``If-Modified-Since`` from the
  copy last imported): an unchanged archive answers 304 and is neither downloaded nor
  imported again.
* a folder laid out the same way (``<folder>/<Ecosystem>/all.zip``), or, when it has no
  such subfolders, any folder of OSV files (imported whole, as ``dockyard vulndb
  import`` would);
* a file (a zip archive or JSON).

Files are compared by size and modification time instead of HTTP validators.

Which ecosystems a sync fetches
-------------------------------
Only those stored images use: the ``ecosystems_in_use`` providers answer that (the scan
service connects one that reads the ecosystems of stored scan results, else of the
packages found). While they know of none — nothing scanned yet — the sync takes
``DOCKYARD_VULNDB_ECOSYSTEMS`` when set, else every ecosystem the source lists: a
first sync then brings everything, so that the first scans already find something, and
later syncs narrow down to what is used. A folder without the per-ecosystem layout, and
a single file, are imported whole.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit, urlunsplit

from anyio import to_thread

from dockyard.jobs.queue import Job
from dockyard.jobs.worker import Handler, Retry
from dockyard.scanning.service_db import SYNC_JOB, ImportResult, VulnDBService
from dockyard.scanning.vulndb import ecosystem_base

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

ARCHIVE: Final = "all.zip"
LISTING: Final = "ecosystems.txt"

Validators = tuple[str, str]
"""(ETag, Last-Modified) of a copy; for a file, (size and modification time, "")."""


class SourceError(Exception):
    """The source cannot be read (missing, unreachable, answering an error)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    location: str
    path: Path | None
    """The downloaded (or local) copy to import; None when unchanged since imported."""
    validators: Validators


class Source:
    """One of the kinds in the module docstring."""

    description: str

    def available(self) -> list[str] | None:
        """The ecosystems the source has; None when it is not split by ecosystem."""
        raise NotImplementedError

    def fetch(
        self,
        ecosystems: list[str] | None,
        known: Callable[[str], Validators | None],
        work: Path,
    ) -> tuple[list[Fetched], list[str]]:
        """The copies of ``ecosystems`` (everything when None), downloaded into
        ``work`` where needed, and the ecosystems the source does not have."""
        raise NotImplementedError


def _file_validators(path: Path) -> Validators:
    stat = path.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}", ""


def _local(path: Path, known: Callable[[str], Validators | None]) -> Fetched:
    location = str(path)
    validators = _file_validators(path)
    unchanged = known(location) == validators
    return Fetched(location, None if unchanged else path, validators)


class FileSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def available(self) -> list[str] | None:
        return None

    def fetch(
        self,
        ecosystems: list[str] | None,
        known: Callable[[str], Validators | None],
        work: Path,
    ) -> tuple[list[Fetched], list[str]]:
        if not self.path.is_file():
            raise SourceError(f"the source file {self.path} does not exist")
        return [_local(self.path, known)], []


class FolderSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def available(self) -> list[str] | None:
        if not self.path.is_dir():
            raise SourceError(f"the source folder {self.path} does not exist")
        found = sorted(c.name for c in self.path.iterdir() if (c / ARCHIVE).is_file())
        return found or None

    def fetch(
        self,
        ecosystems: list[str] | None,
        known: Callable[[str], Validators | None],
        work: Path,
    ) -> tuple[list[Fetched], list[str]]:
        available = self.available()
        if available is None:
            # Any folder of OSV files: one fingerprint of every file's size and time.
            digest = hashlib.sha256()
            for child in sorted(self.path.rglob("*")):
                if child.is_file() and child.suffix.lower() in (".json", ".zip"):
                    stamp, _ = _file_validators(child)
                    digest.update(f"{child.relative_to(self.path)}\0{stamp}\n".encode())
            validators = (digest.hexdigest(), "")
            location = str(self.path)
            unchanged = known(location) == validators
            return [Fetched(location, None if unchanged else self.path, validators)], []
        wanted = available if ecosystems is None else ecosystems
        missing = [e for e in wanted if e not in available]
        return [_local(self.path / e / ARCHIVE, known) for e in wanted if e in available], missing


def redacted(url: str) -> str:
    """``url`` without a password it may carry (for what is shown and recorded)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class HttpSource(Source):
    def __init__(self, base: str, *, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.description = redacted(self.base)
        self.timeout = timeout

    def _client(self) -> httpx.Client:
        # httpx (with what it imports, some 5 MB) is loaded by the first sync from an
        # HTTP source, not by every process that builds the services.
        import httpx

        return httpx.Client(timeout=self.timeout, follow_redirects=True)

    def available(self) -> list[str] | None:
        import httpx

        url = f"{self.base}/{LISTING}"
        try:
            with self._client() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach {redacted(url)}: {exc}") from exc
        if response.status_code != 200:
            raise SourceError(
                f"{redacted(url)} answered {response.status_code}: the source does not list its "
                "ecosystems; set DOCKYARD_VULNDB_ECOSYSTEMS"
            )
        return sorted({line.strip() for line in response.text.splitlines() if line.strip()})

    def fetch(
        self,
        ecosystems: list[str] | None,
        known: Callable[[str], Validators | None],
        work: Path,
    ) -> tuple[list[Fetched], list[str]]:
        wanted = self.available() if ecosystems is None else ecosystems
        fetched: list[Fetched] = []
        missing: list[str] = []
        with self._client() as client:
            for index, ecosystem in enumerate(wanted or []):
                url = f"{self.base}/{quote(ecosystem, safe='')}/{ARCHIVE}"
                copy = self._get(client, url, known(url), work / f"{index}.zip")
                if copy is None:
                    missing.append(ecosystem)
                else:
                    fetched.append(copy)
        return fetched, missing

    @staticmethod
    def _get(
        client: httpx.Client, url: str, previous: Validators | None, target: Path
    ) -> Fetched | None:
        import httpx

        headers = {}
        if previous is not None:
            etag, modified = previous
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304 and previous is not None:
                    return Fetched(url, None, previous)
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise SourceError(f"{redacted(url)} answered {response.status_code}")
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
                validators = (
                    response.headers.get("etag", ""),
                    response.headers.get("last-modified", ""),
                )
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch {redacted(url)}: {exc}") from exc
        return Fetched(url, target, validators)


def open_source(text: str) -> Source:
    """The source a ``DOCKYARD_VULNDB_SOURCE`` value names."""
    text = text.strip()
    if not text:
        raise SourceError("no source is configured (DOCKYARD_VULNDB_SOURCE)")
    if text.startswith(("http://", "https://")):
        return HttpSource(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return FileSource(path)
    raise SourceError(f"the source {text} is no URL, folder or file that exists")


@dataclass(frozen=True, slots=True)
class SyncResult:
    source: str
    ecosystems: list[str] | None
    """What was asked for; None: everything the source has."""
    imported: ImportResult | None
    """None when nothing had changed at the source."""
    fetched: list[str]
    unchanged: list[str]
    missing: list[str]
    """Ecosystems asked for that the source does not have."""


@dataclass
class VulnSync:
    """Fetch what changed at the source and import it (module docstring)."""

    service: VulnDBService
    source: str
    default_ecosystems: tuple[str, ...] = ()
    ecosystems_in_use: list[Callable[[], Iterable[str]]] = field(default_factory=list)
    """Providers of the ecosystems stored images use (``Debian:12`` or ``Debian``)."""

    def wanted(self) -> list[str] | None:
        """The ecosystems to fetch; None for everything the source has."""
        used: set[str] = set()
        for provider in self.ecosystems_in_use:
            used.update(ecosystem_base(e) for e in provider() if e.strip())
        used.discard("")
        if used:
            return sorted(used)
        return list(self.default_ecosystems) or None

    def sync(self, *, actor: str = "system") -> SyncResult:
        """Fetch and import; raises :class:`SourceError` when the source cannot be read
        (nothing is imported then)."""
        source = open_source(self.source)
        ecosystems = self.wanted()
        with tempfile.TemporaryDirectory(prefix="vulndb-sync-") as work:
            copies, missing = source.fetch(ecosystems, self.service.validators, Path(work))
            changed = [c for c in copies if c.path is not None]
            imported = None
            if changed:
                imported = self.service.import_files(
                    [c.path for c in changed if c.path is not None],
                    source=f"sync {source.description}",
                    actor=actor,
                )
                # Remembered only once imported: a failed import fetches again.
                self.service.remember([(c.location, *c.validators) for c in changed])
        result = SyncResult(
            source=source.description,
            ecosystems=ecosystems,
            imported=imported,
            fetched=[c.location for c in changed],
            unchanged=[c.location for c in copies if c.path is None],
            missing=missing,
        )
        log.info(
            "vulnerability database sync from %s: %d fetched, %d unchanged, missing %s",
            result.source,
            len(result.fetched),
            len(result.unchanged),
            ", ".join(missing) or "none",
        )
        return result

    def handler(self) -> Handler:
        """Runs the periodic sync job (:data:`SYNC_JOB`)."""

        async def run(job: Job, owner: str) -> str | None:
            try:
                await to_thread.run_sync(self.sync)
            except SourceError as exc:
                raise Retry(str(exc)) from exc
            return None

        return Handler(SYNC_JOB, run)
