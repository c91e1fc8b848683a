"""Fixtures for the /v2/ tests: one server, and clients that fail a test on any 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.backends import ALL_BACKENDS
from tests.fixtures.server import DockyardServer, resolve_backend, running_server
from tests.registry.helpers import Pushed, connect, push_image, unique


@pytest.fixture(scope="package", params=ALL_BACKENDS)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockyardServer]:
    """One real ``dockyard serve`` per backend for every module here.

    Overrides the module-scoped fixture of ``tests.fixtures.server``: the tests use
    repositories of their own, so sharing the server only saves a start per module.
    """
    base = tmp_path_factory.mktemp("registry")
    with running_server(base, resolve_backend(request, request.param, base), remove=True) as s:
        yield s


@pytest.fixture(scope="package")
def client(registry: DockyardServer) -> Iterator[httpx.Client]:
    """The administrator, with Basic credentials."""
    with connect(registry) as c:
        yield c


@pytest.fixture(scope="package")
def anon(registry: DockyardServer) -> Iterator[httpx.Client]:
    """No credentials at all."""
    with connect(registry, auth=None) as c:
        yield c


@pytest.fixture
def repo() -> str:
    """A repository name in the ``library`` namespace that no other test uses."""
    return f"library/{unique()}"


@pytest.fixture(scope="package")
def image_repo(registry: DockyardServer) -> tuple[str, Pushed]:
    """One repository holding an image tagged ``latest``, for read-only tests."""
    name = f"library/{unique('shared')}"
    with connect(registry) as c:
        return name, push_image(c, name, "latest")
