"""The scaled-out shape: a server that runs no jobs and two ``dockyard worker``
processes on one PostgreSQL database deliver every webhook, and no delivery runs twice
at the same time. Also the job and event APIs, and the job metrics."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fixtures.backends import BackendEnv
from tests.fixtures.oci import push_image
from tests.fixtures.server import DockyardServer, running_server
from tests.webhooks.receiver import receiver, verify
from tests.webhooks.test_webhooks import FAST, HOOKS, _create, _settled

_BIN = Path(sys.executable).with_name("dockyard")


@contextmanager
def worker(server: DockyardServer, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    assert server.log_path is not None
    log = (server.log_path.parent / f"worker-{time.monotonic_ns()}.log").open("ab")
    proc = subprocess.Popen(
        [str(_BIN), "worker", *args],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.postgres
def test_two_workers_deliver_everything_once_at_a_time(
    tmp_path: Path, backend_postgres_s3: BackendEnv
) -> None:
    env = {**backend_postgres_s3(tmp_path), **FAST, "DOCKYARD_JOB_WORKERS": "0"}
    pushes = 24
    with (
        receiver(delay=0.15) as rx,
        running_server(tmp_path / "server", env) as server,
        server.client() as c,
    ):
        c.post("/api/v1/repositories", json={"namespace": "library", "name": "app"})
        hooks = [_create(c, rx.url) for _ in range(2)]
        with worker(server, "--concurrency", "1"), worker(server, "--queues", "events,webhooks"):
            for n in range(pushes):
                push_image(c, "library/app", f"v{n}", layers=1, layer_size=64)
            got = rx.wait_for(pushes * len(hooks), timeout=120)
            for hook in hooks:
                assert len(_settled(c, hook, pushes, timeout=60)) == pushes
        by_id: dict[str, list[float]] = {}
        for r in got:
            by_id.setdefault(r.headers["webhook-id"], []).append(r.at)
        assert len(by_id) == pushes * len(hooks)  # every delivery arrived
        for arrivals in by_id.values():  # and none twice at once
            arrivals.sort()
            assert all(b - a >= 0.15 for a, b in itertools.pairwise(arrivals))
        secrets = {h["id"]: h["secret"] for h in hooks}
        assert all(any(verify(s, r.headers, r.body) for s in secrets.values()) for r in got)
        jobs = c.get("/api/v1/jobs", params={"kind": "webhooks.deliver", "limit": 1000}).json()
        assert {j["state"] for j in jobs["items"]} == {"succeeded"}
        owners = c.get("/api/v1/jobs", params={"kind": "events.fanout", "limit": 1000}).json()
        assert {j["state"] for j in owners["items"]} == {"succeeded"}


def test_worker_refuses_an_unknown_queue(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        result = server.cli("worker", "--queues", "webhooks,bogus", check=False)
        assert result.returncode == 2
        assert "unknown queue bogus" in result.stderr


def test_sigterm_lets_running_deliveries_finish(tmp_path: Path) -> None:
    with (
        receiver(delay=1) as rx,
        running_server(tmp_path, {**FAST, "DOCKYARD_JOB_WORKERS": "0"}) as server,
        server.client() as c,
    ):
        c.post("/api/v1/repositories", json={"namespace": "library", "name": "app"})
        hook = _create(c, rx.url)
        with worker(server) as proc:
            push_image(c, "library/app", "1.0")
            rx.wait_for(1)  # the receiver has it and takes 1 s to answer
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        [delivery] = _settled(c, hook, 1)
        assert delivery["status"] == "succeeded"


def test_jobs_events_and_metrics(server: DockyardServer) -> None:
    with server.client() as c:
        hook = _create(c, "http://127.0.0.1:9/closed")
        push_image(c, "library/app", "1.0")
        deadline = time.monotonic() + 20
        while True:
            failing = c.get("/api/v1/jobs", params={"kind": "webhooks.deliver"}).json()["items"]
            if failing and failing[0]["attempts"] >= 2:
                break
            assert time.monotonic() < deadline, failing
            time.sleep(0.1)
        job = failing[0]
        assert job["payload"]["delivery_id"]
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["kind"] == "webhooks.deliver"
        # Once out of attempts the job is dead and stays visible; it can be retried.
        deadline = time.monotonic() + 30
        while c.get(f"/api/v1/jobs/{job['id']}").json()["state"] != "dead":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        dead = c.get("/api/v1/jobs", params={"state": "dead"}).json()["items"]
        assert [d["id"] for d in dead] == [job["id"]]
        assert (
            "cannot connect"
            in c.get(f"{HOOKS}/{hook['id']}/deliveries").json()["items"][0]["reason"]
        )
        retried = c.post(f"/api/v1/jobs/{job['id']}/retry")
        assert retried.status_code == 200
        assert retried.json()["state"] in ("queued", "running", "dead")
        assert retried.json()["attempts"] <= 1
        assert c.post(f"/api/v1/jobs/{dead[0]['id'] + 10_000}/retry").status_code == 404
        assert c.get("/api/v1/jobs", params={"state": "sleeping"}).status_code == 400

        events = c.get("/api/v1/events", params={"repository": "library/app"}).json()["items"]
        # The push is scanned too (scan on push): its scan_completed may come first.
        events = [e for e in events if e["type"] != "scan_completed"]
        assert [e["type"] for e in events] == ["push", "repository_create"]
        assert events[0]["tag"] == "1.0"
        assert c.get("/api/v1/events", params={"type": "nope"}).status_code == 400
        assert c.get("/api/v1/events", params={"since": "yesterday"}).status_code == 400
        later = c.get("/api/v1/events", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert later["items"] == []
        page = c.get("/api/v1/events", params={"limit": 1}).json()
        assert len(page["items"]) == 1
        assert "after=" in page["next"]

        metrics = c.get("/metrics").text
        assert 'dockyard_jobs_run_total{kind="webhooks.deliver",outcome="retried"}' in metrics
        assert 'dockyard_jobs_run_total{kind="events.fanout",outcome="succeeded"}' in metrics
        assert "dockyard_job_duration_seconds_bucket" in metrics
        assert "dockyard_jobs_queued" in metrics


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DockyardServer]:
    with running_server(tmp_path, FAST) as started:
        with started.client() as c:
            c.post("/api/v1/repositories", json={"namespace": "library", "name": "app"})
        yield started


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DOCKYARD_WEBHOOK_ALLOW_NETWORKS", "10.0.0.0/33", "is not a network in CIDR notation"),
        ("DOCKYARD_WEBHOOK_RETRY_DELAYS", "5,soon", "comma-separated seconds"),
        ("DOCKYARD_TIMEZONE", "Mars/Olympus", "not an IANA time zone"),
        ("DOCKYARD_JOB_NICE", "20", "job_nice must be 0 to 19"),
        ("DOCKYARD_JOB_SLOTS", "0", "job_slots must be at least 1"),
        ("DOCKYARD_THREADS", "0", "threads must be at least 1"),
    ],
)
def test_bad_settings_stop_serve_and_worker_with_one_line(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(tmp_path), variable: value}
    for command in ("serve", "worker"):
        result = subprocess.run(
            [str(_BIN), command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def _workers_of(pid: int) -> dict[int, int]:
    """The ``dockyard worker`` children of process ``pid``, with their niceness."""
    return {child: nice for child, (nice, _) in _worker_processes(pid).items()}


def _worker_processes(pid: int) -> dict[int, tuple[int, list[str]]]:
    """The ``dockyard worker`` children of process ``pid``: niceness and arguments."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"worker" in cmdline:
            arguments = [a.decode() for a in cmdline.split(b"\0") if a]
            found[int(stat.parent.name)] = (int(fields[16]), arguments)  # stat field 19: nice
    return found


@pytest.mark.parametrize(
    ("env", "processes", "slots"),
    [({}, 1, "2"), ({"DOCKYARD_JOB_WORKERS": "2", "DOCKYARD_JOB_SLOTS": "3"}, 2, "3")],
)
def test_serve_runs_its_job_workers_with_their_slots(
    tmp_path: Path, env: dict[str, str], processes: int, slots: str
) -> None:
    """By default one worker process of two slots; DOCKYARD_JOB_WORKERS processes of
    DOCKYARD_JOB_SLOTS slots each when set."""
    with running_server(tmp_path, env) as server:
        assert server.proc is not None
        deadline = time.monotonic() + 30
        while len(workers := _worker_processes(server.proc.pid)) < processes:
            assert time.monotonic() < deadline, workers
            time.sleep(0.1)
        time.sleep(0.5)  # no more than expected start
        workers = _worker_processes(server.proc.pid)
        assert len(workers) == processes
        for _, arguments in workers.values():
            assert arguments[arguments.index("--concurrency") + 1] == slots


@pytest.mark.parametrize(("nice", "expected"), [(None, 10), ("0", 0), ("5", 5)])
def test_job_workers_beside_the_server_run_at_a_lower_priority(
    tmp_path: Path, nice: str | None, expected: int
) -> None:
    """On a busy machine the server's requests come first: the job workers it starts
    run at niceness DOCKYARD_JOB_NICE (10 unless set), the server at its own."""
    env = {"DOCKYARD_JOB_WORKERS": "2"} | ({"DOCKYARD_JOB_NICE": nice} if nice else {})
    with running_server(tmp_path, env) as server:
        assert server.proc is not None
        deadline = time.monotonic() + 30
        while True:
            workers = _workers_of(server.proc.pid)
            if len(workers) == 2 and all(n == expected for n in workers.values()):
                break
            assert time.monotonic() < deadline, workers
            time.sleep(0.1)
        assert os.getpriority(os.PRIO_PROCESS, server.proc.pid) == 0
