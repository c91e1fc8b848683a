"""A fast webhook receiver for the benchmark: its own process, asyncio, loopback only.

    python bench/_receiver.py          # prints "port N" once listening on 127.0.0.1:N

Every ``POST`` is answered ``204 No Content`` as soon as its body has been read, and
recorded with the moment it arrived (``time.monotonic()``, taken when the whole request
has been read; CLOCK_MONOTONIC is one clock for every process on a Linux machine, so
the benchmark compares it with its own ``time.monotonic()``), its path, its Standard
Webhooks headers and its body. Nothing is parsed or verified here, so that the receiver
costs as little as possible; the benchmark checks the signatures and reads the
payloads afterwards.

The benchmark reads what arrived through two routes of the same server:

- ``GET /_bench/stats``: ``{"count": N, "first": t, "last": t}``;
- ``GET /_bench/records?start=I``: the records from index I on, as a JSON array of
  ``[arrived, path, webhook-id, webhook-timestamp, webhook-signature, body]``.

It stops by itself when its parent process goes away, and after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse
from typing import Any

_MAX_BODY = 1024 * 1024
_MAX_HEAD_LINES = 100
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"

records: list[list[Any]] = []


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _control(target: str) -> bytes:
    url = urllib.parse.urlsplit(target)
    if url.path == "/_bench/stats":
        stats = {
            "count": len(records),
            "first": records[0][0] if records else None,
            "last": records[-1][0] if records else None,
        }
        return _response("200 OK", json.dumps(stats).encode())
    if url.path == "/_bench/records":
        query = urllib.parse.parse_qs(url.query)
        start = int(query.get("start", ["0"])[0])
        return _response("200 OK", json.dumps(records[start:]).encode())
    return _response("404 Not Found", b"{}")


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, target, _version = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEAD_LINES):
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if length > _MAX_BODY or "chunked" in headers.get("transfer-encoding", ""):
                writer.write(_response("413 Content Too Large", b"{}"))
                await writer.drain()
                return
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                records.append(
                    [
                        time.monotonic(),
                        target,
                        headers.get("webhook-id", ""),
                        headers.get("webhook-timestamp", ""),
                        headers.get("webhook-signature", ""),
                        body.decode("utf-8", errors="replace"),
                    ]
                )
                writer.write(_NO_CONTENT)
            else:
                writer.write(_control(target))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


async def _main(max_seconds: float) -> None:
    parent = os.getppid()
    server = await asyncio.start_server(_serve, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    deadline = time.monotonic() + max_seconds
    async with server:
        # Bounded: stop with the parent, or at the deadline at the latest.
        while time.monotonic() < deadline and os.getppid() == parent:
            await asyncio.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(_main(args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
