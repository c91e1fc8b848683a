"""A build that runs out of time (``DOCKYARD_BUILD_TIMEOUT``) ends ``timed_out``, its
process group stopped and its work folder removed; on each backend."""

from __future__ import annotations

from pathlib import Path

from tests.builds.support import (
    add_rule,
    bind,
    build_env,
    build_now,
    new_repository,
    sleeper,
    wait_build,
    work_folders,
)
from tests.fixtures.backends import all_backends
from tests.fixtures.gitserver import GitServer, MakeRepo
from tests.fixtures.server import running_server


@all_backends
def test_timeout_ends_a_build_timed_out(
    tmp_path: Path, backend_env: dict[str, str], git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    env = {**backend_env, **build_env(tmp_path), "DOCKYARD_BUILD_TIMEOUT": "6"}
    with running_server(tmp_path, env) as server, server.client() as c:
        git = git_repo_factory("timeout", sleeper(120))
        name = new_repository(c)
        bind(c, name, git_server, git)
        rule = add_rule(c, name)
        build = wait_build(c, name, build_now(c, name, rule["id"])["id"], timeout=60)
        assert build["status"] == "timed_out"
        assert "DOCKYARD_BUILD_TIMEOUT" in build["error"]
        assert not [p for p in work_folders(server) if p.name.startswith(f"build-{build['id']}-")]
