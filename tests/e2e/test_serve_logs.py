"""What ``dockyard serve`` says: a port in use in one plain line, and with JSON logs
every line JSON, uvicorn's and the first-start notice included, with the warnings of
clients that try TLS first naming the client and folded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fixtures.server import DockyardServer, running_server

_BIN = Path(sys.executable).with_name("dockyard")
# The start of a TLS ClientHello: what podman, skopeo and docker send first.
CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(160)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON (fails on a line that is not)."""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n{text}") from None
    return lines


def test_a_port_in_use_is_said_plainly(tmp_path: Path) -> None:
    with running_server(tmp_path / "first", namespace=None) as first:
        for fmt in ("json", "text"):
            env = {
                **os.environ,
                "DOCKYARD_DATA_DIR": str(tmp_path / "second"),
                "DOCKYARD_LOG_FORMAT": fmt,
                "DOCKYARD_JOB_WORKERS": "0",
            }
            result = subprocess.run(
                [str(_BIN), "serve", "--listen", first.host],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            said = (
                f"{first.host} is already in use; choose another with --listen or DOCKYARD_LISTEN"
            )
            output = result.stdout + result.stderr
            assert result.returncode != 0, output
            assert said in output
            assert "listening" not in output.lower()
            assert "Errno" not in output
            if fmt == "json":
                messages = [line["message"] for line in json_lines(result.stderr)]
                assert said in messages
            # Bound before anything else: no database was made for a server that can't start.
            assert not (tmp_path / "second" / "dockyard.db").exists()


def test_with_json_logs_every_line_is_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "DOCKYARD_DATA_DIR": str(data_dir),
        "DOCKYARD_ADMIN_PASSWORD": "",  # first start: the password notice
        "DOCKYARD_LOG_FORMAT": "json",
        "DOCKYARD_JOB_WORKERS": "1",  # its lines share the server's log
        "NO_PROXY": "*",
    }
    server = DockyardServer(data_dir=data_dir, env=env)
    server.start()
    try:
        clients = []
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.port)) as conn:
                clients.append(conn.getsockname())
                conn.sendall(CLIENT_HELLO)
                assert conn.recv(1000).startswith(b"HTTP/1.1 400")
        deadline = time.monotonic() + 30
        while '"dockyard.worker"' not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)  # the job worker's first line
    finally:
        server.stop()
    lines = json_lines(server.log())
    password = (data_dir / "admin-password").read_text().strip()
    notice = [line for line in lines if password in line["message"]]
    assert len(notice) == 1
    assert notice[0]["message"].startswith("Created the instance administrator 'admin'")
    listening = [i for i, line in enumerate(lines) if "listening on" in line["message"]]
    assert [lines[i]["message"] for i in listening] == [f"Dockyard listening on {server.url}"]
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's own lines
    assert any(line["logger"] == "dockyard.worker" for line in lines)  # the job worker's
    # Five handshakes from one client address: one line, naming the client, with a hint.
    invalid = [line for line in lines if line["message"] == "Invalid HTTP request received."]
    assert len(invalid) == 1, invalid
    assert invalid[0]["client"] == "{}:{}".format(*clients[0])
    assert "HTTPS first" in invalid[0]["hint"]
