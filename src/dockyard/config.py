"""The one settings object.

Values come, lowest precedence first, from the defaults below, a TOML file
(``--config`` or ``DOCKYARD_CONFIG``), environment variables ``DOCKYARD_<FIELD>``
(upper case, e.g. ``DOCKYARD_DATA_DIR``, ``DOCKYARD_S3_BUCKET``) and command-line flags.
The embedded default needs none of them: SQLite and blobs under ``./data``.

TOML keys are the field names; S3 settings may also sit in an ``[s3]`` table with the
``s3_`` prefix dropped (``[s3] bucket = "…"``), dashes and underscores alike.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field, fields
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A setting has a value Dockyard cannot use."""


@dataclass
class Settings:
    listen: str = "127.0.0.1:5000"
    """HOST:PORT to serve on."""
    data_dir: Path = Path("data")
    """Where the SQLite file, the blobs (filesystem storage), keys and secrets live."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at DATA_DIR/dockyard.db. PostgreSQL:
    ``postgresql://user:pass@host:port/db``."""
    region: str = "local"
    """The region id that appears in resource names (ARNs) and webhook payloads."""
    tls_cert: str = ""
    tls_key: str = ""
    public_url: str = ""
    """The URL clients reach this registry at (for token realms and Location headers);
    empty means derived from each request's Host header."""
    service: str = "dockyard"
    """The token service name (``service=`` in the auth challenge, ``aud`` in tokens)."""
    token_ttl: int = 300
    """Lifetime of registry bearer tokens, seconds."""
    allow_signup: bool = False
    """Let anyone create an account (and become its root) on the console's sign-up page."""
    admin_password: str = ""
    """Password of the instance administrator ``admin`` on first start; empty: generated."""
    workers: int = 1
    """Server processes (uvicorn workers)."""
    threads: int = 16
    """Threads a server process runs blocking work on (database queries, blob reads and
    writes, password checks), and the connections its database pool keeps; requests
    beyond it wait for a thread. Each thread that has run a query keeps a
    database connection with its caches: anyio's default of 40 threads left the server
    34 SQLite connections (8 MB) after 64 clients sent Basic credentials at once."""
    log_level: str = "info"
    log_format: str = "auto"
    """``json``, ``text`` or ``auto`` (JSON unless stderr is a terminal)."""
    storage: str = ""
    """``filesystem`` or ``s3``; empty means s3 when ``s3_bucket`` is set."""
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_path_style: bool = False
    s3_prefix: str = ""
    s3_redirect: bool = False
    """Answer blob GETs with a redirect to a presigned URL."""
    upload_purge_age: int = 7 * 24 * 3600
    """Abandoned uploads older than this (seconds) are removed by ``dockyard gc``."""
    gc_grace: int = 3600
    """Blobs and manifests younger than this (seconds) are never collected."""
    fsync: bool = True
    job_workers: int = 1
    """Job worker processes ``dockyard serve`` runs beside itself (webhooks, scans,
    builds); 0 runs none (then run ``dockyard worker`` processes). One by default: on
    a machine of two cores, one for the requests and one for the background work, and
    each process is some 60 MB more of memory at rest, more while it scans."""
    job_slots: int = 2
    """Job slots in each of those processes (``dockyard worker --concurrency``)."""
    job_nice: int = 10
    """Niceness (0 to 19) of the job worker processes ``dockyard serve`` runs beside
    itself: on a machine whose cores are all busy, requests come first and background
    work (fan-out, scans, deliveries, builds) takes the time they leave; 0 runs the
    workers at the server's priority."""
    job_grace: int = 30
    """On shutdown, running jobs get this long (seconds) to finish before they are
    handed back to the queue."""
    job_lease: int = 60
    """Seconds a worker's hold on a running job lasts unless renewed (every third of
    it): a worker that dies hands its jobs (a build, say) on after this long."""
    event_retention: int = 30
    """Days events (and their webhook deliveries) are kept."""
    timezone: str = "UTC"
    """The instance's time zone (IANA name), for the times in ``acr`` webhook payloads."""
    webhook_allow_networks: str = ""
    """Comma-separated CIDRs webhooks may reach although they are loopback, private or
    link-local (refused by default: server-side request forgery)."""
    webhook_retry_delays: str = "5,300,1800,7200,18000,36000,36000"
    """Seconds before each retry of a failed webhook delivery (8 attempts over about a
    day); jitter of ±20 % is added."""
    webhook_timeout: int = 10
    """Seconds a webhook receiver has to answer."""
    vulndb_source: str = ""
    """Where ``dockyard vulndb sync`` and the periodic refresh fetch OSV data: a folder
    (laid out ``<Ecosystem>/all.zip``, or any folder of OSV files), a file, or an
    http(s) base URL laid out like the OSV data export; empty: no refresh."""
    vulndb_refresh: int = 24
    """Hours between two refreshes from ``vulndb_source``; 0 turns them off."""
    vulndb_ecosystems: str = ""
    """Comma-separated ecosystems a sync fetches while no stored image tells which are
    used; empty: every ecosystem the source has."""
    vulndb_upload_limit: int = 256
    """The largest OSV file ``POST /api/v1/vulndb/imports`` accepts, in MiB."""
    rescan_window: int = 30
    """Days: after an import changes the vulnerability database, the images pushed or
    pulled within this many days are scanned again (0: none)."""
    build_allow_local_sources: bool = False
    """Let code sources be local (``file://`` URLs, and plain ``http://`` or ``git://``
    on loopback or private addresses): off, a build could read the server's own files."""
    build_timeout: int = 3600
    """Seconds a build may run (clone, build and push) before it ends ``timed_out``."""
    build_concurrency: int = 1
    """Builds one job worker runs at once."""
    build_account_limit: int = 2
    """Builds of one account that run at once, across all workers; more wait."""
    build_context_limit: int = 1024
    """MiB a build context (the Dockerfile's folder in the commit) may hold."""
    build_work_dir: str = ""
    """Where builds get their throwaway work folders (outside the data folder); empty:
    ``dockyard-builds`` in the system's temporary folder."""
    build_cache_dir: str = ""
    """Where each repository's build layer cache lives (outside the data folder); empty:
    ``dockyard-build-cache`` in the system's temporary folder."""
    build_registry: str = ""
    """HOST:PORT build workers push to and pull ``FROM`` images from (this Dockyard's
    registry); empty: the listen address (127.0.0.1 when it listens on every address)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        try:
            return int(self.listen.rpartition(":")[2])
        except ValueError as exc:
            raise ConfigError(f"listen {self.listen!r} must be HOST:PORT") from exc

    @property
    def zone(self) -> tzinfo:
        """The instance's time zone (UTC needs no time zone database)."""
        if self.timezone.upper() in ("UTC", "Z", "ETC/UTC"):
            return UTC
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"timezone {self.timezone!r} is not an IANA time zone") from exc

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def build_registry_address(self) -> str:
        """HOST:PORT build workers reach this Dockyard's registry at."""
        if self.build_registry:
            return self.build_registry
        host = self.host.strip("[]")
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reading, not binding
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    @property
    def build_work_path(self) -> Path:
        if self.build_work_dir:
            return Path(self.build_work_dir)
        return Path(tempfile.gettempdir()) / "dockyard-builds"

    @property
    def build_cache_path(self) -> Path:
        if self.build_cache_dir:
            return Path(self.build_cache_dir)
        return Path(tempfile.gettempdir()) / "dockyard-build-cache"

    @property
    def storage_backend(self) -> str:
        backend = self.storage or ("s3" if self.s3_bucket else "filesystem")
        if backend not in ("filesystem", "s3"):
            raise ConfigError(f"storage must be 'filesystem' or 's3', not {backend!r}")
        return backend


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be an integer, not {value!r}") from exc
    if kind == "Path":
        return Path(str(value))
    return str(value)


def _flatten_toml(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        norm = key.replace("-", "_")
        if isinstance(value, dict) and norm == "s3":
            for sub, subvalue in value.items():
                out[f"s3_{sub.replace('-', '_')}"] = subvalue
        else:
            out[norm] = value
    return out


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_file = config_file or env.get("DOCKYARD_CONFIG") or None
    if config_file:
        try:
            with open(config_file, "rb") as f:
                doc = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
        for key, value in _flatten_toml(doc).items():
            if key not in _FIELDS:
                raise ConfigError(f"config file {config_file}: unknown setting {key!r}")
            values[key] = value
    for name in _FIELDS:
        env_value = env.get(f"DOCKYARD_{name.upper()}")
        if env_value is not None:
            values[name] = env_value
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    settings = Settings(**{k: _coerce(k, v) for k, v in values.items()})
    settings.port  # noqa: B018 - validates listen early
    settings.storage_backend  # noqa: B018 - validates storage early
    settings.zone  # noqa: B018 - validates the time zone early
    return settings


__all__ = ["ConfigError", "Settings", "load_settings"]
