"""Structured logs with a request id, and Prometheus metrics, as one ASGI middleware.

Written as plain ASGI (not Starlette's BaseHTTPMiddleware) so that streamed uploads and
downloads pass through without buffering, and the bytes in and out can be counted.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Request ids: a random per-process prefix and a counter, unique without a syscall each.
_RID_PREFIX = uuid.uuid4().hex[:8] + "-"
_rid_counter = itertools.count(1)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        rid = request_id_var.get()
        if rid != "-":
            base += f" request_id={rid}"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Every line through one handler, in one format: uvicorn's (``uvicorn.error``) and
    alembic's too; repeated protocol warnings from one client folded (see
    :class:`FoldRepeats`)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server_log = logging.getLogger("uvicorn.error")
    server_log.handlers[:] = []
    server_log.propagate = True
    server_log.filters[:] = [f for f in server_log.filters if not isinstance(f, FoldRepeats)]
    server_log.addFilter(FoldRepeats())


TLS_HINT = (
    "clients that try HTTPS first (podman, skopeo, docker) send this to a plain-HTTP "
    "port: serve TLS (--tls-cert, --tls-key) or set the registry insecure on the client"
)


class FoldRepeats(logging.Filter):
    """uvicorn warns "Invalid HTTP request received." for every connection that speaks
    something else than HTTP, such as a TLS handshake from a client that tries HTTPS
    first: a line per connection, a flood from a busy client. Let one through per client
    address each ``window`` seconds, with a hint; count the rest and say how many were
    folded on the next line let through for that client."""

    MESSAGES = frozenset({"Invalid HTTP request received."})
    MAX_CLIENTS = 10_000

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self.window = window
        self._clients: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.MESSAGES:
            return True
        fields = getattr(record, "fields", None)
        fields = dict(fields) if isinstance(fields, dict) else {}
        host = str(fields.get("client", "-")).rpartition(":")[0] or "-"
        now = time.monotonic()
        since, folded = self._clients.get(host, (0.0, 0))
        if since and now - since < self.window:
            self._clients[host] = (since, folded + 1)
            return False
        if len(self._clients) >= self.MAX_CLIENTS:
            self._clients.clear()
        self._clients[host] = (now, 0)
        fields["hint"] = TLS_HINT
        if folded:
            fields["folded"] = folded  # like lines from this client since the last one
        record.fields = fields
        return True


class Metrics:
    """The server's metrics. With several worker processes (``PROMETHEUS_MULTIPROC_DIR``
    set by ``dockyard serve``), each worker writes its values to files there and any
    worker's /metrics sums them all."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dockyard_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dockyard_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.bytes_in = Counter(
            "dockyard_http_received_bytes_total",
            "Request body bytes received",
            ["route"],
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "dockyard_http_sent_bytes_total",
            "Response body bytes sent",
            ["route"],
            registry=self.registry,
        )
        self.uploads_in_progress = Gauge(
            "dockyard_uploads_in_progress",
            "Blob upload requests being received now",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.job_runs = Counter(
            "dockyard_jobs_run_total",
            "Jobs run, by kind and outcome (succeeded, retried, failed, dead, released)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "dockyard_job_duration_seconds",
            "Time a job took to run",
            ["kind"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
        )
        self.queue_depth = Gauge(
            "dockyard_jobs_queued",
            "Jobs waiting in the queue, by kind",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.queue_oldest = Gauge(
            "dockyard_jobs_oldest_queued_seconds",
            "Age of the oldest runnable queued job, by kind",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._depth_kinds: set[str] = set()
        self.scans_run = Counter(
            "dockyard_scans_total",
            "Vulnerability scans that ended, by outcome (complete, failed, unsupported)",
            ["outcome"],
            registry=self.registry,
        )
        self.scan_seconds = Histogram(
            "dockyard_scan_duration_seconds",
            "Time one image's vulnerability scan took",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
        )
        self.scan_results = Gauge(
            "dockyard_scan_results",
            "Stored scan results by status (queued, scanning, complete, failed, unsupported)",
            ["status"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.vulndb_age = Gauge(
            "dockyard_vulndb_age_seconds",
            "Seconds since the last successful import into the vulnerability database "
            "(-1: never imported)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.vulndb_records = Gauge(
            "dockyard_vulndb_records",
            "Vulnerability records in the database (withdrawn ones not counted)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.vulndb_imports = Gauge(
            "dockyard_vulndb_imports",
            "Imports into the vulnerability database, by outcome (queued, running, "
            "succeeded, failed)",
            ["outcome"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

    def finished(self, kind: str, outcome: str, seconds: float) -> None:
        """A job ran (the worker reports here; see :class:`jobs.worker.JobObserver`)."""
        self.job_runs.labels(kind, outcome).inc()
        self.job_seconds.labels(kind).observe(seconds)

    def scan_finished(self, outcome: str, seconds: float) -> None:
        """A scan ended (the scan service reports here, in the worker's process)."""
        self.scans_run.labels(outcome).inc()
        self.scan_seconds.observe(seconds)

    def set_scans(self, counts: Iterable[tuple[str, int]]) -> None:
        """The stored scans by status, as they are now (the database's age: see
        :meth:`set_vulndb`)."""
        seen = dict.fromkeys(("queued", "scanning", "complete", "failed", "unsupported"), 0)
        seen.update(dict(counts))
        for status, count in seen.items():
            self.scan_results.labels(status).set(count)

    def set_queue_depth(
        self, depth: list[tuple[str, int, float]], kinds: Iterable[str] = ()
    ) -> None:
        """The queue as it is now: (kind, queued jobs, oldest age); ``kinds`` (every
        kind there is) and kinds no longer queued read 0, so that an empty queue shows
        as 0 rather than as no series at all."""
        self._depth_kinds.update(kinds)
        seen = set()
        for kind, count, age in depth:
            self.queue_depth.labels(kind).set(count)
            self.queue_oldest.labels(kind).set(age)
            seen.add(kind)
        for kind in self._depth_kinds - seen:
            self.queue_depth.labels(kind).set(0)
            self.queue_oldest.labels(kind).set(0)
        self._depth_kinds |= seen

    def set_vulndb(
        self, records: int, last_import_at: datetime | None, outcomes: dict[str, int]
    ) -> None:
        """The vulnerability database as it is now (read from the database at each
        scrape: imports run in workers, on any replica)."""
        age = -1.0
        if last_import_at is not None:
            age = max((datetime.now(UTC) - last_import_at).total_seconds(), 0.0)
        self.vulndb_age.set(age)
        self.vulndb_records.set(records)
        for outcome, count in outcomes.items():
            self.vulndb_imports.labels(outcome).set(count)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def route_of(path: str) -> str:
    if path.startswith("/v2/"):
        return "v2"
    for prefix in ("/api/v1/", "/console/", "/auth/"):
        if path.startswith(prefix):
            return prefix.strip("/")
    return path if path in ("/healthz", "/readyz", "/metrics", "/v2") else "other"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("dockyard.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or f"{_RID_PREFIX}{next(_rid_counter):x}"
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        sent = 0
        received = 0
        is_upload = (
            scope["method"] in ("PATCH", "PUT", "POST") and "/blobs/uploads" in scope["path"]
        )
        if is_upload:
            self.metrics.uploads_in_progress.inc()

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        except Exception:
            self.log.exception("unhandled error", extra={"fields": {"path": scope["path"]}})
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("dockyard.route") or route_of(scope["path"])
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            self.metrics.bytes_in.labels(route).inc(received)
            self.metrics.bytes_out.labels(route).inc(sent)
            if is_upload:
                self.metrics.uploads_in_progress.dec()
            if self.log.isEnabledFor(logging.INFO):
                self.log.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "method": method,
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "bytes_in": received,
                            "bytes_out": sent,
                            "client": (scope.get("client") or ("-",))[0],
                        }
                    },
                )
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")[:64]
            return text
    return None
