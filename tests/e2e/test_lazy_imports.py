"""What each kind of process loads at start-up, and what waits for first use.

Every process's resident memory counts toward the instance's peak (``make bench``
sums the server's and its job workers'), and a library imported is resident for good.
A job worker builds every service but must not load the HTTP layers, the console, the
migration machinery, or the libraries only a scan, a report, a build, a signed
delivery or a sync uses; the server must not load the console before its first page.
Each check runs in a fresh interpreter (this test session has imported everything),
on a data directory that a first start has prepared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WORKER_NEVER = (
    # the server's HTTP layers, its console, the OpenAPI models
    "dockyard.app",
    "dockyard.api",
    "dockyard.console",
    "starlette.applications",
    "uvicorn",
    "pydantic",
    "jinja2",
    # migrations, when the schema is at head
    "alembic",
    "mako",
    # loaded by the first job that needs them
    "dockyard.scanning.image",
    "dockyard.scanning.versions",
    "dockyard.scanning.formats.cyclonedx",
    "cyclonedx",
    "zstandard",
    "univers",
    "httpx",
    "jwt",
    "cryptography",
    "re2",
    "sqlalchemy.dialects.postgresql",
)


def _run(code: str, data_dir: Path) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter on ``data_dir``; it prints a JSON object."""
    prologue = (
        "import json, sys\n"
        "from dockyard.config import load_settings\n"
        f"settings = load_settings(environ={{'DOCKYARD_DATA_DIR': {str(data_dir)!r}, "
        "'DOCKYARD_ADMIN_PASSWORD': 'x' * 16})\n"
        "def loaded(names):\n"
        "    return {n: any(m == n or m.startswith(n + '.') for m in sys.modules) "
        "for n in names}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prologue + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory after a first start: schema at head, administrator, keys."""
    path = tmp_path / "data"
    _run("from dockyard.services import bootstrap\nbootstrap(settings).close()\nprint('{}')", path)
    return path


def test_a_job_worker_loads_no_http_layer_nor_what_its_jobs_load_later(data_dir: Path) -> None:
    code = (
        # what `dockyard worker` imports and builds before its first job
        "import dockyard.cli.main\n"
        "from dockyard.services import open_services\n"
        "from dockyard.observability import Metrics\n"
        "services = open_services(settings, migrate=True)\n"
        "services.worker(concurrency=1, observer=Metrics())\n"
        "services.close()\n"
        f"print(json.dumps(loaded({list(WORKER_NEVER)!r})))\n"
    )
    loaded = _run(code, data_dir)
    assert [name for name, yes in loaded.items() if yes] == []


def test_the_console_is_built_by_its_first_page(data_dir: Path) -> None:
    code = (
        "import asyncio, httpx\n"
        "from dockyard.app import create_app\n"
        "from dockyard.services import open_services\n"
        "app = create_app(settings, open_services(settings))\n"
        "before = loaded(['dockyard.console', 'jinja2'])\n"
        "async def get(path):\n"
        "    transport = httpx.ASGITransport(app=app)\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://t') as c:\n"
        "        return (await c.get(path)).status_code\n"
        "v2 = asyncio.run(get('/v2/'))\n"
        "mid = loaded(['dockyard.console', 'jinja2'])\n"
        "page = asyncio.run(get('/console/sign-in'))\n"
        "after = loaded(['dockyard.console', 'jinja2'])\n"
        "print(json.dumps({'before': any(before.values()), 'mid': any(mid.values()), "
        "'v2': v2 == 401, 'page': page == 200, 'after': all(after.values())}))\n"
    )
    assert _run(code, data_dir) == {
        "before": False,
        "mid": False,
        "v2": True,
        "page": True,
        "after": True,
    }
