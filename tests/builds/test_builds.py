"""Builds end to end: a real Dockyard, the loopback git server, real buildah and skopeo
in the runner, podman reading the result back.

Images are tiny: ``FROM scratch`` with a static busybox copied in, so RUN steps have a
shell without any base image from outside.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.builds.support import (
    BUSYBOX,
    add_rule,
    api_client,
    bind,
    build_now,
    get_build,
    github_hook,
    log_lines,
    log_text,
    module_server,
    new_repository,
    podman,
    push_body,
    repo_path,
    sleeper,
    wait_build,
    work_folders,
)
from tests.fixtures.backends import all_backends_module
from tests.fixtures.gitserver import GitServer, MakeRepo
from tests.fixtures.server import DockyardServer

SIMPLE = """\
FROM scratch
COPY --chmod=755 busybox /bin/busybox
COPY hello.txt /hello.txt
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo built-by-run > /built.txt"]
LABEL org.example.team=dockyard
"""


def simple_files(hello: str = "hello from git\n") -> dict[str, bytes | str]:
    return {"Dockerfile": SIMPLE, "busybox": BUSYBOX, "hello.txt": hello}


pytestmark = all_backends_module


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_backend_env: dict[str, str]
) -> Iterator[DockyardServer]:
    """Builds from the loopback git server; a dead worker's job moves on after 6 s."""
    yield from module_server(
        tmp_path_factory, "builds", module_backend_env, local=True, DOCKYARD_JOB_LEASE="6"
    )


@pytest.fixture
def c(server: DockyardServer) -> Iterator[httpx.Client]:
    yield from api_client(server)


def test_push_hook_builds_an_image_podman_pulls(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("hooked", simple_files())
    name = new_repository(c)
    source = bind(c, name, git_server, git)
    assert source["credentials"] == {"kind": "token"}
    assert git_server.token not in json.dumps(source)
    rule = add_rule(c, name, image_tags=["latest", "${branch}-${commit:7}"])

    sha = git.commit({"hello.txt": "hello again\n"}, "second commit: new greeting")
    r = github_hook(c, source["hook_url"], source["hook_secret"], push_body("refs/heads/main", sha))
    assert r.status_code == 202, r.text
    [build_id] = r.json()["builds"]

    build = wait_build(c, name, build_id)
    assert build["status"] == "success", (build, log_text(c, name, build_id))
    assert build["rule_id"] == rule["id"]
    assert build["trigger"]["type"] == "push"
    assert build["trigger"]["hook_delivery_id"] == r.json()["delivery"]
    assert build["commit"] == {"sha": sha, "subject": "second commit: new greeting"}
    assert build["ref"] == {"type": "branch", "name": "main"}
    assert build["image_tags"] == ["latest", f"main-{sha[:7]}"]
    assert build["digest"].startswith("sha256:")
    assert build["duration_seconds"] > 0
    stages = build["stages"]
    assert stages["cloning_at"] <= stages["building_at"] <= stages["pushing_at"]
    assert stages["pushing_at"] <= stages["finished_at"]

    # podman pulls both tags: the same image, with the commit's files and the labels
    with podman(server) as p:
        _, info, root = p.pull(name, "latest")
        assert info["Digest"] == build["digest"]
        assert (root / "hello.txt").read_text() == "hello again\n"
        assert (root / "built.txt").read_text() == "built-by-run\n"
        labels = info["Labels"]
        assert labels["org.example.team"] == "dockyard"
        assert labels["org.opencontainers.image.revision"] == sha
        _, other, _ = p.pull(name, f"main-{sha[:7]}")
        assert other["Digest"] == build["digest"]

    # the log has every stage, and never the git token
    lines = log_lines(c, name, build_id)
    assert [x["line"] for x in lines] == list(range(1, len(lines) + 1))
    assert {x["stage"] for x in lines} >= {"cloning", "building", "pushing"}
    text = "\n".join(x["text"] for x in lines)
    assert "STEP 4/7: RUN" in text  # 5 instructions, then the 2 labels Dockyard adds
    assert git_server.token not in text

    # the delivery says what it triggered
    deliveries = c.get(f"{repo_path(name)}/source/hook-deliveries").json()["items"]
    assert deliveries[0]["builds"] == [build_id]
    assert deliveries[0]["provider"] == "github"
    assert deliveries[0]["commit"] == sha

    # the push went through the registry as build:<id>, and the build made its event
    events = c.get("/api/v1/events", params={"limit": 1000}).json()["items"]
    mine = [e for e in events if e["repository"] == name]
    pushes = [e for e in mine if e["type"] == "push"]
    assert {e["tag"] for e in pushes} == {"latest", f"main-{sha[:7]}"}
    assert all(e["actor"] == f"build:{build_id}" for e in pushes)
    [done] = [e for e in mine if e["type"] == "build_completed"]
    assert done["digest"] == build["digest"]
    assert done["actor"] == f"build:{build_id}"
    detail = done["build"]
    assert detail["status"] == "success"
    assert detail["image_tags"] == build["image_tags"]
    assert detail["duration_seconds"] == build["duration_seconds"]
    assert detail["commit"] == sha


def test_multi_stage_dockerfile_in_a_subfolder_with_build_args(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    dockerfile = """\
FROM scratch AS tools
COPY --chmod=755 busybox /bin/busybox
ARG GREETING
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo \\"$GREETING\\" > /greeting"]

FROM scratch
ARG FLAVOR
COPY --from=tools /greeting /greeting
COPY --from=tools /bin/busybox /bin/busybox
LABEL flavor=$FLAVOR
"""
    git = git_repo_factory(
        "multi", {"build/images/App.containerfile": dockerfile, "build/images/busybox": BUSYBOX}
    )
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(
        c,
        name,
        dockerfile_dir="/build/images",
        dockerfile_name="App.containerfile",
        image_tags=["v1"],
        build_args={"GREETING": "hi there", "FLAVOR": "mint"},
    )
    build = build_now(c, name, rule["id"])
    assert build["trigger"] == {"type": "manual", "by": "admin"}
    assert build["commit"]["sha"] == git.head()
    build = wait_build(c, name, build["id"])
    assert build["status"] == "success", log_text(c, name, build["id"])
    with podman(server) as p:
        _, info, root = p.pull(name, "v1")
        assert (root / "greeting").read_text() == "hi there\n"
        assert info["Labels"]["flavor"] == "mint"


def test_from_a_private_image_in_dockyard(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    base_git = git_repo_factory("base", simple_files("from the base\n"))
    base = new_repository(c, "base")
    bind(c, base, git_server, base_git)
    rule = add_rule(c, base, image_tags=["1"])
    built = wait_build(c, base, build_now(c, base, rule["id"])["id"])
    assert built["status"] == "success", log_text(c, base, built["id"])
    # the base is private: nobody anonymous may pull it
    anonymous = httpx.get(f"{server.url}/v2/library/{base}/manifests/1")
    assert anonymous.status_code == 401

    child = f"""\
FROM {server.host}/library/{base}:1
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo child > /child.txt"]
"""
    child_git = git_repo_factory("child", {"Dockerfile": child})
    name = new_repository(c, "child")
    bind(c, name, git_server, child_git)
    rule = add_rule(c, name, image_tags=["latest"])
    build = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert build["status"] == "success", log_text(c, name, build["id"])
    with podman(server) as p:
        _, _, root = p.pull(name, "latest")
        assert (root / "hello.txt").read_text() == "from the base\n"
        assert (root / "child.txt").read_text() == "child\n"


def _log_of(client: httpx.Client, path: str, build_id: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    while True:
        r = client.get(f"{path}/builds/{build_id}/log", params={"offset": len(lines)})
        assert r.status_code == 200, r.text
        if not r.json()["items"]:
            return lines
        lines += r.json()["items"]


def test_another_accounts_private_image_is_not_a_base(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    """A build pulls FROM images with its repository's account's rights: another
    account's private image is refused, and the build fails saying so."""
    base_git = git_repo_factory("secret-base", simple_files("not yours\n"))
    base = new_repository(c, "secret")
    bind(c, base, git_server, base_git)
    rule = add_rule(c, base, image_tags=["1"])
    assert wait_build(c, base, build_now(c, base, rule["id"])["id"])["status"] == "success"

    owner = ("buildco", "buildco-root-password")
    r = c.post("/api/v1/accounts", json={"name": owner[0], "password": owner[1]})
    assert r.status_code == 201, r.text
    with server.client(auth=owner) as other:
        assert other.post("/api/v1/namespaces", json={"name": "buildco"}).status_code == 201
        r = other.post("/api/v1/repositories", json={"namespace": "buildco", "name": "thief"})
        assert r.status_code == 201, r.text
        path = "/api/v1/repositories/buildco/thief"
        dockerfile = f"FROM {server.host}/library/{base}:1\nLABEL stolen=yes\n"
        git = git_repo_factory("thief", {"Dockerfile": dockerfile})
        body = {
            "type": "git",
            "url": git.http_url,
            "credentials": {"username": git_server.username, "token": git_server.token},
        }
        assert other.put(f"{path}/source", json=body).status_code in (200, 201)
        r = other.post(f"{path}/build-rules", json={"type": "branch", "ref": "main"})
        assert r.status_code == 201, r.text
        started = other.post(f"{path}/build-rules/{r.json()['id']}/build", json={})
        assert started.status_code in (201, 202), started.text
        build_id = started.json()["id"]
        deadline = time.monotonic() + 180
        while True:
            build = other.get(f"{path}/builds/{build_id}").json()
            if build["status"] in ("success", "failed", "canceled", "timed_out"):
                break
            assert time.monotonic() < deadline, build
            time.sleep(0.5)
        assert build["status"] == "failed", build
        text = "\n".join(line["text"] for line in _log_of(other, path, build_id))
        assert "not yours" not in text
        assert any(word in text.lower() for word in ("denied", "unauthorized", "401", "403")), text[
            -2000:
        ]


def test_layer_cache_and_build_without_cache(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("cache", simple_files())
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name)
    first = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert first["status"] == "success"
    assert "Using cache" not in log_text(c, name, first["id"])
    cached = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert cached["status"] == "success"
    assert "Using cache" in log_text(c, name, cached["id"])

    bind(c, name, git_server, git, build_without_cache=True)
    fresh = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert fresh["status"] == "success"
    text = log_text(c, name, fresh["id"])
    assert "Using cache" not in text
    for step in ("STEP 1/7: FROM", "STEP 2/7: COPY", "STEP 3/7: COPY", "STEP 4/7: RUN"):
        assert step in text
    assert fresh["digest"]


def _tags(c: httpx.Client, name: str) -> set[str]:
    r = c.get(f"/v2/library/{name}/tags/list")
    assert r.status_code == 200, r.text
    return set(r.json()["tags"] or [])


def test_regex_rules_templates_and_the_builtin_release_rule(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("regex", simple_files())
    name = new_repository(c)
    source = bind(c, name, git_server, git)
    semver = add_rule(
        c,
        name,
        type="tag",
        ref=r"v(?<major>\d+)\.(?P<minor>\d+)",
        image_tags=["${major}.${minor}", "${tag}-${commit:7}"],
    )
    feature = add_rule(c, name, ref="feature-(?<topic>[a-z]+)", image_tags=["feat-${topic}"])

    sha = git.commit({"hello.txt": "tagged\n"}, "release")
    git.tag("v1.2", message="annotated release")
    hook, secret = source["hook_url"], source["hook_secret"]
    r = github_hook(c, hook, secret, push_body("refs/tags/v1.2", sha))
    [tagged] = r.json()["builds"]

    git.tag("release-v3.4")
    r = github_hook(c, hook, secret, push_body("refs/tags/release-v3.4", sha))
    [released] = r.json()["builds"]

    branch_sha = git.commit({"hello.txt": "topic\n"}, "topic work", branch="feature-cats")
    r = github_hook(c, hook, secret, push_body("refs/heads/feature-cats", branch_sha))
    [featured] = r.json()["builds"]

    # nothing matches, and deleted refs build nothing
    r = github_hook(c, hook, secret, push_body("refs/heads/other", branch_sha))
    assert r.status_code == 202
    assert r.json()["builds"] == []
    assert "no enabled build rule" in r.json()["outcome"]
    r = github_hook(c, hook, secret, push_body("refs/heads/feature-cats", "", deleted=True))
    assert r.status_code == 202
    assert r.json()["builds"] == []

    one = wait_build(c, name, tagged)
    assert one["rule_id"] == semver["id"]
    assert one["image_tags"] == ["1.2", f"v1.2-{sha[:7]}"]
    two = wait_build(c, name, released)
    assert two["rule_id"] is None
    assert two["rule_ref"].startswith("release-v")
    assert two["image_tags"] == ["3.4"]
    three = wait_build(c, name, featured)
    assert three["rule_id"] == feature["id"]
    assert three["image_tags"] == ["feat-cats"]
    assert {one["status"], two["status"], three["status"]} == {"success"}
    assert _tags(c, name) == {"1.2", f"v1.2-{sha[:7]}", "3.4", "feat-cats"}

    # Build Now of a regex rule names the ref, which must match
    r = c.post(f"{repo_path(name)}/build-rules/{feature['id']}/build", json={})
    assert r.status_code == 400
    assert "name the branch" in r.json()["detail"]
    r = c.post(f"{repo_path(name)}/build-rules/{feature['id']}/build", json={"ref": "main"})
    assert r.status_code == 400
    manual = build_now(c, name, feature["id"], ref="feature-cats")
    assert manual["commit"]["sha"] == branch_sha
    listed = c.get(f"{repo_path(name)}/builds", params={"rule": feature["id"]}).json()["items"]
    assert [b["id"] for b in listed] == [manual["id"], featured]
    wait_build(c, name, manual["id"])


def test_a_template_that_renders_no_valid_tag_fails_the_build(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("badtag", simple_files())
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name, type="tag", ref="rel-(?<v>.*)", image_tags=["${v}"])
    git.tag("rel-1+build")  # a fine git tag, no valid image tag ('+')
    build = build_now(c, name, rule["id"], ref="rel-1+build")
    assert build["status"] == "failed"
    assert "${v}" in build["error"]


def test_failing_run_and_wrong_dockerfile_path(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    failing = 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\nRUN ["/bin/busybox", "false"]\n'
    git = git_repo_factory("failing", {"Dockerfile": failing, "busybox": BUSYBOX})
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name)
    build = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert build["status"] == "failed"
    assert "buildah bud failed" in build["error"]
    assert "\n" not in build["error"]
    assert 'STEP 3/5: RUN ["/bin/busybox", "false"]' in log_text(c, name, build["id"])

    wrong = add_rule(c, name, dockerfile_dir="/nowhere", image_tags=["x"])
    build = wait_build(c, name, build_now(c, name, wrong["id"])["id"])
    assert build["status"] == "failed"
    assert "/nowhere" in build["error"]
    wrong = add_rule(c, name, dockerfile_name="Missingfile", image_tags=["y"])
    build = wait_build(c, name, build_now(c, name, wrong["id"])["id"])
    assert build["status"] == "failed"
    assert "Missingfile" in build["error"]
    assert _tags_or_none(c, name) == set()


def _tags_or_none(c: httpx.Client, name: str) -> set[str]:
    r = c.get(f"/v2/library/{name}/tags/list")
    if r.status_code == 404:
        return set()
    return set(r.json()["tags"] or [])


def test_bad_credentials_and_unreachable_source(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("creds", simple_files())
    name = new_repository(c)
    bind(c, name, git_server, git, credentials={"username": "builder", "token": "wrong-token"})
    rule = add_rule(c, name)
    r = c.post(f"{repo_path(name)}/source/check")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "source.auth"
    assert "wrong-token" not in r.text
    r = c.post(f"{repo_path(name)}/build-rules/{rule['id']}/build")
    assert r.status_code == 422
    assert r.json()["code"] == "source.auth"

    bind(c, name, git_server, git)  # good credentials: the branches and tags are listed
    r = c.post(f"{repo_path(name)}/source/check")
    assert r.status_code == 200, r.text
    assert r.json()["branches"] == [{"name": "main", "commit": git.head()}]

    c.put(
        f"{repo_path(name)}/source",
        json={"url": "http://127.0.0.1:9/nothing.git", "credentials": None},
    ).raise_for_status()
    r = c.post(f"{repo_path(name)}/source/check")
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "source.unreachable"


def test_cancel_stops_a_running_build_and_removes_its_work_folder(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("cancel", sleeper(120))
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name)
    build = build_now(c, name, rule["id"])
    deadline = time.monotonic() + 60
    while "sleeping" not in log_text(c, name, build["id"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    folders = [p for p in work_folders(server) if p.name.startswith(f"build-{build['id']}-")]
    assert folders
    asked = time.monotonic()
    r = c.post(f"{repo_path(name)}/builds/{build['id']}/cancel")
    assert r.status_code == 202, r.text
    done = wait_build(c, name, build["id"], timeout=15)
    assert time.monotonic() - asked < 10
    assert done["status"] == "canceled"
    assert not folders[0].exists()
    r = c.post(f"{repo_path(name)}/builds/{build['id']}/cancel")
    assert r.status_code == 409


def test_log_follow_streams_lines_as_server_sent_events(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    dockerfile = (
        "FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", '
        '"for i in 1 2 3 4 5; do echo tick-$i; /bin/busybox sleep 0.5; done"]\n'
    )
    git = git_repo_factory("follow", {"Dockerfile": dockerfile, "busybox": BUSYBOX})
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name)
    build = build_now(c, name, rule["id"])
    seen: list[dict[str, Any]] = []
    statuses_while_streaming: set[str] = set()
    end: dict[str, Any] | None = None
    url = f"{repo_path(name)}/builds/{build['id']}/log"
    with c.stream("GET", url, params={"follow": "true"}, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "line":
                seen.append(json.loads(line.removeprefix("data: ")))
                if seen[-1]["text"] == "tick-1":
                    statuses_while_streaming.add(get_build(c, name, build["id"])["status"])
            elif line.startswith("data: ") and event == "end":
                end = json.loads(line.removeprefix("data: "))
                break
    assert end == {"status": "success"}
    assert statuses_while_streaming == {"building"}  # lines came while it ran
    assert [x["text"] for x in seen if x["text"].startswith("tick-")] == [
        f"tick-{i}" for i in range(1, 6)
    ]
    assert seen == log_lines(c, name, build["id"])


def test_a_worker_killed_mid_build_hands_the_build_on(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("killed", sleeper(4))
    name = new_repository(c)
    bind(c, name, git_server, git)
    rule = add_rule(c, name)
    build = build_now(c, name, rule["id"])
    running = wait_build(c, name, build["id"], until=("building", "success", "failed"))
    assert running["status"] == "building"
    pid = int(running["worker"].split(":")[1])
    os.kill(pid, signal.SIGKILL)  # the worker process, mid-build (serve starts another)
    done = wait_build(c, name, build["id"], timeout=120)
    assert done["status"] == "success", log_text(c, name, build["id"])
    assert done["worker"] != running["worker"]
    assert "worker lost" in log_text(c, name, build["id"])
    # the dead worker's work folder went with the retry (same machine)
    assert not [p for p in work_folders(server) if p.name.startswith(f"build-{build['id']}-")]


def test_polling_builds_new_commits(
    c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    dockerfile = "FROM scratch\nCOPY --chmod=644 hello.txt /hello.txt\n"
    git = git_repo_factory("polled", {"Dockerfile": dockerfile, "hello.txt": "one\n"})
    name = new_repository(c)
    bind(c, name, git_server, git, poll_interval=10)
    add_rule(c, name, image_tags=["${commit:7}"])
    # the first poll only looks; a commit after it builds
    source = c.get(f"{repo_path(name)}/source").json()
    deadline = time.monotonic() + 30
    while source["polled_at"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.5)
        source = c.get(f"{repo_path(name)}/source").json()
    assert c.get(f"{repo_path(name)}/builds").json()["items"] == []
    sha = git.commit({"hello.txt": "two\n"}, "second")
    deadline = time.monotonic() + 40
    while not (items := c.get(f"{repo_path(name)}/builds").json()["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    [build] = items
    assert build["trigger"] == {"type": "poll"}
    assert build["commit"]["sha"] == sha
    assert wait_build(c, name, build["id"])["status"] == "success"


def test_rule_secrets_reach_run_steps_masked_and_stay_out_of_the_image(
    server: DockyardServer, c: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    dockerfile = (
        "FROM scratch\n"
        "COPY --chmod=755 busybox /bin/busybox\n"
        'RUN --mount=type=secret,id=npm_token ["/bin/busybox", "sh", "-c", '
        '"echo token-is-$(/bin/busybox cat /run/secrets/npm_token); '
        '/bin/busybox wc -c /run/secrets/npm_token > /secret-size"]\n'
    )
    git = git_repo_factory("secret", {"Dockerfile": dockerfile, "busybox": BUSYBOX})
    name = new_repository(c)
    bind(c, name, git_server, git)
    secret = "npm-Qx7Rk2pLm9Zt"
    rule = add_rule(c, name, secrets={"npm_token": secret})
    assert secret not in json.dumps(rule)
    build = wait_build(c, name, build_now(c, name, rule["id"])["id"])
    assert build["status"] == "success", log_text(c, name, build["id"])
    text = log_text(c, name, build["id"])
    assert "token-is-****" in text
    assert secret not in text
    with podman(server) as p:
        _, _, root = p.pull(name, "latest")
        assert (root / "secret-size").read_text().split()[0] == str(len(secret))
        assert not (root / "run" / "secrets" / "npm_token").exists()
