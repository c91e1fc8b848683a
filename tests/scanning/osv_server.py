"""A folder served over loopback HTTP as the OSV data export is: files by path, with an
``ETag`` (the content's hash) and ``Last-Modified``, answering ``If-None-Match`` with
304, and a log of what was asked."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class OsvServer:
    root: Path
    url: str = ""
    log: list[tuple[str, int, str]] = field(default_factory=list)
    """(path, status, If-None-Match sent) per request."""

    def downloads(self) -> list[str]:
        """Archives answered with their bytes (status 200)."""
        return [path for path, status, _ in self.log if status == 200 and path.endswith(".zip")]


@contextmanager
def osv_http_server(root: Path) -> Iterator[OsvServer]:
    served = OsvServer(root)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = root / unquote(self.path.lstrip("/"))
            sent = self.headers.get("If-None-Match", "")
            if not path.is_file() or root.resolve() not in path.resolve().parents:
                served.log.append((self.path, 404, sent))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            if sent == etag:
                served.log.append((self.path, 304, sent))
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            served.log.append((self.path, 200, sent))
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(path.stat().st_mtime, usegmt=True))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
