"""Build limits on each backend: a build that runs out of time
(``DOCKYARD_BUILD_TIMEOUT``) ends ``timed_out``, its process group stopped and its work
folder removed; a context too large fails; an account's builds beyond
``DOCKYARD_BUILD_ACCOUNT_LIMIT`` wait; a source's build pool is served only by workers of
that pool."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.builds.support import (
    add_rule,
    bind,
    build_env,
    build_now,
    get_build,
    new_repository,
    sleeper,
    wait_build,
    work_folders,
)
from tests.fixtures.backends import all_backends
from tests.fixtures.gitserver import GitServer, MakeRepo
from tests.fixtures.server import running_server

DOCKYARD = Path(sys.executable).with_name("dockyard")


@all_backends
def test_timeout_account_limit_and_build_pools(
    tmp_path: Path, backend_env: dict[str, str], git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    env = {
        **backend_env,
        **build_env(tmp_path),
        "DOCKYARD_BUILD_TIMEOUT": "20",
        "DOCKYARD_BUILD_ACCOUNT_LIMIT": "1",
        "DOCKYARD_BUILD_CONTEXT_LIMIT": "3",
    }
    with running_server(tmp_path, env) as server, server.client() as c:
        git = git_repo_factory("timeout", sleeper(120))
        name = new_repository(c)
        bind(c, name, git_server, git)
        rule = add_rule(c, name)
        build = wait_build(c, name, build_now(c, name, rule["id"])["id"], timeout=60)
        assert build["status"] == "timed_out"
        assert "DOCKYARD_BUILD_TIMEOUT" in build["error"]
        assert not [p for p in work_folders(server) if p.name.startswith(f"build-{build['id']}-")]

        # A context over DOCKYARD_BUILD_CONTEXT_LIMIT (3 MiB) is refused before buildah.
        big = git_repo_factory("big", {**sleeper(1), "big.bin": b"x" * (4 * 1024 * 1024)})
        large = new_repository(c)
        bind(c, large, git_server, big)
        rule = add_rule(c, large)
        build = wait_build(c, large, build_now(c, large, rule["id"])["id"], timeout=60)
        assert build["status"] == "failed"
        assert "DOCKYARD_BUILD_CONTEXT_LIMIT" in build["error"]

        # One build of the account at a time: the second waits while the first runs,
        # although a second worker is free.
        quick = git_repo_factory("limit", sleeper(1))
        other = new_repository(c)
        bind(c, other, git_server, quick)
        rule = add_rule(c, other)
        first = build_now(c, other, rule["id"])
        second = build_now(c, other, rule["id"])
        running = wait_build(c, other, first["id"], until=("building",), timeout=60)
        assert running["status"] == "building"
        assert get_build(c, other, second["id"])["status"] == "pending"
        assert wait_build(c, other, first["id"])["status"] == "success"
        done = wait_build(c, other, second["id"])
        assert done["status"] == "success"
        assert (
            done["stages"]["cloning_at"]
            >= get_build(c, other, first["id"])["stages"]["finished_at"]
        )

        # A source in pool "overseas": no worker of the default pool takes its builds;
        # a worker started with --build-pool overseas does.
        bind(c, other, git_server, quick, build_pool="overseas")
        pooled = build_now(c, other, rule["id"])
        time.sleep(3)
        assert get_build(c, other, pooled["id"])["status"] == "pending"
        worker = subprocess.Popen(
            [str(DOCKYARD), "worker", "--build-pool", "overseas", "--queues", "builds"],
            # A worker elsewhere is told where the registry is.
            env={**server.env, "DOCKYARD_BUILD_REGISTRY": server.host},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            built = wait_build(c, other, pooled["id"], timeout=60)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        assert built["status"] == "success", built["error"]
        assert built["worker"].split(":")[1] == str(worker.pid)
