"""What a server loads when it starts, and what it leaves for first use: pydantic (some
9 MB) until the OpenAPI document is asked for; the console, with Jinja and httpx (its
in-process client), until its first request (:class:`dockyard.app.OnFirstRequest`)."""

from __future__ import annotations

import subprocess
import sys

_CHECK = """
import sys

def loaded(*names):
    return sorted({m.split(".")[0] for m in sys.modules} & set(names))

import dockyard.app, dockyard.cli.main
print("start", loaded("pydantic", "pydantic_core", "httpx", "jinja2"))

from starlette.routing import Route
from dockyard.catalog.http import NamespaceOut
from dockyard.openapi import Op, describe, openapi_document

@describe(get=Op("Read", tag="t", reply=NamespaceOut))
async def read(_):
    pass

doc = openapi_document([Route("/api/v1/x", read, methods=["GET"])])
schema = doc["components"]["schemas"]["NamespaceOut"]
print("document", loaded("pydantic"), "name" in schema["properties"])

import dockyard.console
print("console", loaded("httpx", "jinja2"))
"""


def test_pydantic_and_the_console_are_loaded_on_first_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines() == [
        "start []",
        "document ['pydantic'] True",
        "console ['httpx', 'jinja2']",
    ]
