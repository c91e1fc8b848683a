"""What ``dockyard serve`` says: a port in use in one plain line, and with JSON logs
every line JSON, uvicorn's and the first-start notice included, with the warnings of
clients that try TLS first naming the client and folded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.server import running_server

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
