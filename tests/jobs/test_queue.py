"""The job queue on SQLite and PostgreSQL: claims, leases, retries, dead jobs, and many
workers at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.errors import Conflict, NotFound
from dockyard.jobs.queue import DEAD, FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobQueue, JobSpec
from dockyard.jobs.worker import Fail, Handler, Retry, Worker, exponential_backoff
from tests.db.conftest import run_concurrently

SPEC = JobSpec("test.work", queue="events", max_attempts=3)


@pytest.fixture
def queue(database: Database) -> JobQueue:
    jobs = JobQueue(database)
    jobs.settle_interval = 0  # look for expired leases on every claim
    return jobs


def test_claim_order_and_success(queue: JobQueue) -> None:
    low = queue.add(SPEC, {"n": 1})
    high = queue.add(SPEC, {"n": 2}, priority=5)
    later = queue.add(SPEC, {"n": 3}, run_after=utcnow() + timedelta(hours=1))
    claimed = queue.claim("w1", ["events"], 10, lease=30)
    assert [j.id for j in claimed] == [high, low]  # priority first; not-yet-due skipped
    assert all(j.state == RUNNING and j.attempts == 1 for j in claimed)
    assert claimed[0].lease_owner == "w1"
    assert queue.claim("w2", ["events"], 10, lease=30) == []
    assert queue.claim("w1", ["webhooks"], 10, lease=30) == []
    assert queue.succeed(claimed[0], "w1")
    assert queue.get(high).state == SUCCEEDED
    assert queue.get(later).state == QUEUED


def test_failures_retry_then_die(queue: JobQueue) -> None:
    job_id = queue.add(SPEC, {})
    for attempt in (1, 2):
        [job] = queue.claim("w", ["events"], 1, lease=30)
        assert job.attempts == attempt
        assert queue.fail(job, "w", f"boom {attempt}", retry_in=0) == QUEUED
    [job] = queue.claim("w", ["events"], 1, lease=30)
    assert queue.fail(job, "w", "boom 3", retry_in=0) == DEAD
    dead = queue.get(job_id)
    assert (dead.state, dead.attempts, dead.last_error) == (DEAD, 3, "boom 3")
    assert queue.claim("w", ["events"], 1, lease=30) == []

    again = queue.retry(job_id)
    assert (again.state, again.attempts) == (QUEUED, 0)
    with pytest.raises(Conflict, match="only a dead or failed job"):
        queue.retry(job_id)
    with pytest.raises(NotFound):
        queue.retry(987654)


def test_backoff_delays_the_next_attempt(queue: JobQueue) -> None:
    queue.add(SPEC, {})
    [job] = queue.claim("w", ["events"], 1, lease=30)
    queue.fail(job, "w", "later", retry_in=3600)
    assert queue.claim("w", ["events"], 1, lease=30) == []
    assert queue.get(job.id).run_after > utcnow() + timedelta(minutes=59)


def test_permanent_failure(queue: JobQueue) -> None:
    queue.add(SPEC, {})
    [job] = queue.claim("w", ["events"], 1, lease=30)
    assert queue.fail(job, "w", "the subject is gone", retry_in=None) == FAILED
    assert queue.get(job.id).state == FAILED


def test_an_expired_lease_hands_the_job_to_another_worker(queue: JobQueue) -> None:
    job_id = queue.add(SPEC, {})
    [first] = queue.claim("dead-worker", ["events"], 1, lease=0.05)
    time.sleep(0.1)
    [second] = queue.claim("live-worker", ["events"], 1, lease=30)
    assert second.id == job_id
    assert second.attempts == 2
    assert "stopped renewing its lease" in second.last_error
    # The first worker comes back: it holds nothing any more and cannot overwrite.
    assert queue.renew("dead-worker", [job_id], lease=30) == set()
    assert not queue.succeed(first, "dead-worker")
    assert queue.fail(first, "dead-worker", "late", retry_in=0) == ""
    assert queue.succeed(second, "live-worker")


def test_an_expired_lease_on_the_last_attempt_is_dead(queue: JobQueue) -> None:
    job_id = queue.add(JobSpec("test.once", "events", max_attempts=1), {})
    queue.claim("w", ["events"], 1, lease=0.05)
    time.sleep(0.1)
    assert queue.claim("w", ["events"], 1, lease=30) == []
    assert queue.get(job_id).state == DEAD


def test_release_does_not_count_the_attempt(queue: JobQueue) -> None:
    queue.add(SPEC, {})
    [job] = queue.claim("w", ["events"], 1, lease=30)
    assert queue.release("w", [job.id]) == 1
    back = queue.get(job.id)
    assert (back.state, back.attempts, back.lease_owner) == (QUEUED, 0, None)


def test_concurrency_limit_per_key(queue: JobQueue) -> None:
    spec = JobSpec("test.deliver", "webhooks", concurrency_limit=1)
    slow = [queue.add(spec, {"i": i}, concurrency_key="hook-1") for i in range(3)]
    other = queue.add(spec, {}, concurrency_key="hook-2")
    claimed = queue.claim("w", ["webhooks"], 10, lease=30, concurrency_limits={spec.kind: 1})
    # One of each key at a time: the others wait although slots are free.
    assert sorted(j.id for j in claimed) == sorted([slow[0], other])
    assert queue.claim("w", ["webhooks"], 10, lease=30, concurrency_limits={spec.kind: 1}) == []
    queue.succeed(next(j for j in claimed if j.id == slow[0]), "w")
    [nxt] = queue.claim("w", ["webhooks"], 10, lease=30, concurrency_limits={spec.kind: 1})
    assert nxt.id == slow[1]


def test_many_claimers_never_share_a_job(queue: JobQueue) -> None:
    """Eight claimers at once (side by side on PostgreSQL with SKIP LOCKED, one after
    another on SQLite): every job is claimed exactly once."""
    with queue.db.write() as conn:
        now = utcnow()
        conn.execute(
            sa.insert(t.jobs),
            [
                {
                    "kind": SPEC.kind,
                    "queue": "events",
                    "payload": "{}",
                    "state": QUEUED,
                    "max_attempts": 3,
                    "run_after": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for _ in range(400)
            ],
        )

    def claimer(i: int) -> list[int]:
        got: list[int] = []
        while batch := queue.claim(f"w{i}", ["events"], 7, lease=60):
            got += [j.id for j in batch]
        return got

    results = run_concurrently(8, claimer)
    counts = Counter(job_id for got in results for job_id in got)
    assert len(counts) == 400
    assert set(counts.values()) == {1}


def test_depth_and_purge(queue: JobQueue) -> None:
    queue.add(SPEC, {})
    queue.add(SPEC, {})
    [(kind, count, age)] = queue.depth()
    assert (kind, count) == (SPEC.kind, 2)
    assert age >= 0
    for job in queue.claim("w", ["events"], 2, lease=30):
        queue.succeed(job, "w")
    assert queue.depth() == []
    assert queue.purge(utcnow() - timedelta(days=1)) == 0
    assert queue.purge(utcnow() + timedelta(seconds=1)) == 2


def test_backoff_grows_with_jitter() -> None:
    delays = [exponential_backoff(n, base=10, cap=100) for n in (1, 2, 3, 4, 5)]
    assert 8 <= delays[0] <= 12
    assert 16 <= delays[1] <= 24
    assert 80 <= delays[4] <= 120  # capped


# -- the worker ------------------------------------------------------------------------


def _run_worker(worker: Worker, until: threading.Event, timeout: float = 30) -> None:
    async def main() -> None:
        task = asyncio.create_task(worker.run(grace=1))
        deadline = time.monotonic() + timeout
        while not until.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        worker.stop()
        await task

    asyncio.run(main())


def test_worker_runs_retries_and_fails_jobs(queue: JobQueue) -> None:
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    async def handle(job: Job, _owner: str) -> None:
        seen.append((job.payload["n"], job.attempts))
        if len(seen) >= 5:  # 1 twice, 2 once, 3 twice
            done.set()
        if job.payload["n"] == 1 and job.attempts < 2:
            raise Retry("not yet", after=0)
        if job.payload["n"] == 2:
            raise Fail("never")
        if job.payload["n"] == 3:
            raise ValueError("a bug")

    spec = JobSpec("test.handle", "events", max_attempts=2)
    ok = queue.add(spec, {"n": 1})
    failed = queue.add(spec, {"n": 2})
    crashed = queue.add(spec, {"n": 3})
    worker = Worker(
        queue,
        [Handler(spec, handle, backoff=lambda _: 0.0)],
        concurrency=1,
        poll_interval=0.05,
    )
    _run_worker(worker, done)
    assert sorted(seen) == [(1, 1), (1, 2), (2, 1), (3, 1), (3, 2)]
    assert queue.get(ok).state == SUCCEEDED
    assert queue.get(failed).state == FAILED
    dead = queue.get(crashed)
    assert (dead.state, dead.attempts) == (DEAD, 2)
    assert "ValueError: a bug" in dead.last_error


def test_worker_hands_back_what_outlives_the_grace_time(queue: JobQueue) -> None:
    started = threading.Event()

    async def slow(_job: Job, _owner: str) -> None:
        started.set()
        await asyncio.sleep(60)

    spec = JobSpec("test.slow", "events")
    job_id = queue.add(spec, {})
    worker = Worker(queue, [Handler(spec, slow)], concurrency=1, poll_interval=0.05)
    _run_worker(worker, started)
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.lease_owner) == (QUEUED, 0, None)
