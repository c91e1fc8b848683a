"""Helpers for the scans-in-the-registry tests: a server with imported OSV records,
pushing OCI layouts with skopeo (as the client tests do), waiting for a scan to end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_clients import _clients
from tests.fixtures.server import DockyardServer, make_server
from tests.scanning.test_cli import RECORDS

ENDED = ("complete", "failed", "unsupported")


def write_records(directory: Path, records: list[dict[str, Any]] = RECORDS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


@contextmanager
def scan_server(
    base: Path, extra_env: dict[str, str] | None = None, *, records: bool = True
) -> Iterator[DockyardServer]:
    """A started server whose vulnerability database holds :data:`RECORDS` (none when
    ``records`` is False), imported with ``dockyard vulndb import`` before it starts."""
    server = make_server(base, extra_env)
    if records:
        server.cli("vulndb", "import", str(write_records(base / "records")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def push(
    server: DockyardServer, tmp: Path, source: str, name: str, *, all_images: bool = False
) -> str:
    """``skopeo copy`` ``source`` to ``library/NAME`` on ``server``; the digest pushed."""
    steps = _clients(server, tmp / "clients")
    clients = next(steps)
    try:
        return clients.push(source, name, all_images=all_images)
    finally:
        steps.close()


def wait_scan(
    client: httpx.Client, path: str, *, timeout: float = 90, ended: tuple[str, ...] = ENDED
) -> dict[str, Any]:
    """GET ``path`` (a …/scan URL) until the scan's status is one of ``ended``."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path)
        if r.status_code == 200 and r.json()["status"] in ended:
            body: dict[str, Any] = r.json()
            return body
        assert r.status_code in (200, 404), r.text
        assert time.monotonic() < deadline, f"the scan did not end: {r.text}"
        time.sleep(0.3)


def finding_keys(items: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    keys = ("id", "package", "installed_version", "fixed_version", "severity", "layer")
    return sorted(tuple(str(item[k]) for k in keys) for item in items)
