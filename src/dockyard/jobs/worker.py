"""The worker: claims jobs from the queue and runs their handlers.

One worker is an asyncio task with a number of slots per queue, in a ``dockyard worker``
process: ``dockyard serve`` starts ``--job-workers N`` of them beside itself (see
:mod:`jobs.process`), and more may run on any machine that reaches the database and the
blob store. Handlers are coroutines: I/O-bound
work (webhook deliveries) runs on the loop, blocking work goes to threads.

While jobs run, their leases are renewed; a worker told to stop claims nothing more,
lets running jobs finish within a grace time and hands the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

from anyio import to_thread

from dockyard.jobs.queue import (
    DEAD,
    FAILED,
    QUEUED,
    QUEUES,
    SUCCEEDED,
    Job,
    JobQueue,
    JobSpec,
)

log = logging.getLogger(__name__)

_OUTCOMES = {SUCCEEDED: "succeeded", QUEUED: "retried", DEAD: "dead", FAILED: "failed"}
"""Job state after an attempt → the outcome the metrics count ('lost': another worker
had taken the job over)."""

QUEUE_WEIGHTS: dict[str, int] = {"events": 8, "webhooks": 8, "scans": 1, "builds": 1}
"""Slots per queue for each unit of concurrency: deliveries wait on the network and
fan-outs commit together (one transaction for all that a worker holds), so a worker runs
several of each per unit; scans and builds use a core each."""


class Retry(Exception):
    """The attempt failed and another may succeed: retry after ``after`` seconds (None:
    the kind's backoff)."""

    def __init__(self, message: str, *, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class Fail(Exception):
    """The job cannot succeed (its subject is gone, say): ``failed`` without retries."""


def exponential_backoff(attempt: int, *, base: float = 10.0, cap: float = 3600.0) -> float:
    """Seconds before retry number ``attempt`` (1 after the first failure): doubling
    from ``base`` up to ``cap``, with ±20 % jitter so that failures do not retry in
    lockstep."""
    delay = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return float(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True, slots=True)
class Handler:
    """Runs one kind of job: ``run(job, owner)``. A handler that records its result in
    a transaction of its own settles the job in that same transaction
    (:func:`jobs.queue.settle` with ``owner``) and returns the state it set; returning
    None lets the worker settle it (succeeded), raising :class:`Retry` or :class:`Fail`
    (or anything else: a retry) records a failed attempt."""

    spec: JobSpec
    run: Callable[[Job, str], Awaitable[str | None]]
    backoff: Callable[[int], float] = exponential_backoff


class JobObserver(Protocol):
    """What the worker reports to (the metrics)."""

    def finished(self, kind: str, outcome: str, seconds: float) -> None:
        """A job ran: ``outcome`` is succeeded, retried, failed, dead or released."""


class _Unobserved:
    def finished(self, kind: str, outcome: str, seconds: float) -> None:
        pass


@dataclass
class Worker:
    queue: JobQueue
    handlers: Sequence[Handler]
    concurrency: int = 2
    queues: Sequence[str] = QUEUES
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    poll_interval: float = 0.1
    """Seconds between looks for work when nothing woke the worker (work queued by
    another process: the server, for a worker of its own)."""
    lease: float = 60.0
    batch_delay: float = 0.02
    observer: JobObserver = field(default_factory=_Unobserved)
    slots: dict[str, int] = field(default_factory=dict)
    """Slots of a queue when not ``concurrency`` times its weight (builds: one each by
    default, whatever the concurrency)."""

    def __post_init__(self) -> None:
        self.owner = f"{self.name}:{uuid.uuid4().hex[:8]}"[:128]
        self._by_kind = {h.spec.kind: h for h in self.handlers}
        served = {h.spec.queue for h in self.handlers}
        self._queues = [q for q in self.queues if q in served]
        # Queues beyond QUEUES: a build pool's (``builds.NAME``), weighted as builds.
        self._capacity = {
            q: self.slots.get(q) or max(1, self.concurrency * QUEUE_WEIGHTS.get(q, 1))
            for q in {*QUEUES, *self._queues}
        }
        self._limits = {
            h.spec.kind: h.spec.concurrency_limit for h in self.handlers if h.spec.concurrency_limit
        }
        self._running: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the loop --------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now (thread-safe; the queue calls it when work is committed)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def run(self, grace: float = 30.0) -> None:
        """Claim and run jobs until :meth:`stop`; then wait up to ``grace`` seconds for
        running jobs and hand back the rest."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.queue.subscribe(self.wake)
        renewer = asyncio.create_task(self._renew_leases())
        log.info("job worker %s serving %s", self.owner, ",".join(self._queues) or "nothing")
        try:
            while not self._stopping:
                claimed = await self._claim()
                if claimed:
                    continue
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                if self._running:
                    # Woken while busy (mostly by jobs ending): let a few more slots
                    # free up, so that one claim fills several of them.
                    await asyncio.sleep(self.batch_delay)
        except Exception:
            log.exception("job worker %s stopped by an error", self.owner)
            raise
        finally:
            self.queue.unsubscribe(self.wake)
            await self._drain(grace)
            renewer.cancel()

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def _claim(self) -> int:
        """Fill every queue's free slots, in one transaction."""
        rooms: dict[tuple[str, ...], int] = {}
        for name in self._queues:
            busy = sum(1 for job, _ in self._running.values() if job.queue == name)
            if self._capacity[name] > busy:
                rooms[(name,)] = self._capacity[name] - busy
        if not rooms or self._stopping:
            return 0
        try:
            jobs = await to_thread.run_sync(self._claim_from, rooms)
        except Exception:
            log.exception("could not claim jobs")
            await asyncio.sleep(self.poll_interval)
            return 0
        for job in jobs:
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._running[job.id] = (job, task)
        return len(jobs)

    def _claim_from(self, rooms: dict[tuple[str, ...], int]) -> list[Job]:
        # Look first (a read): an idle worker then polls without taking the write lock.
        queues = [q for group in rooms for q in group]
        if not self.queue.settle_due() and not self.queue.has_runnable(queues):
            return []
        return self.queue.claim_each(
            self.owner, rooms, lease=self.lease, concurrency_limits=self._limits
        )

    async def _execute(self, job: Job) -> None:
        handler = self._by_kind.get(job.kind)
        started = time.monotonic()
        outcome = "succeeded"
        try:
            if handler is None:
                raise Fail(f"this worker has no handler for job kind {job.kind!r}")
            settled = await handler.run(job, self.owner)
        except asyncio.CancelledError:
            outcome = "released"
            raise
        except Fail as exc:
            outcome = await self._failed(job, str(exc), None)
        except Retry as exc:
            after = exc.after if exc.after is not None else handler.backoff(job.attempts)  # type: ignore[union-attr]
            outcome = await self._failed(job, str(exc), after)
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            after = handler.backoff(job.attempts) if handler else None
            outcome = await self._failed(job, f"{type(exc).__name__}: {exc}", after)
        else:
            if settled is None:
                settled = SUCCEEDED if await to_thread.run_sync(self._succeed, job) else ""
            outcome = _OUTCOMES.get(settled, "lost")
        finally:
            self._running.pop(job.id, None)
            self.observer.finished(job.kind, outcome, time.monotonic() - started)
            if self._wake is not None:
                self._wake.set()  # a slot is free

    async def _failed(self, job: Job, error: str, retry_in: float | None) -> str:
        state = await to_thread.run_sync(
            lambda: self.queue.fail(job, self.owner, error, retry_in=retry_in)
        )
        if state in (DEAD, FAILED):
            log.warning("job %s (%s) is %s: %s", job.id, job.kind, state, error)
        return _OUTCOMES.get(state, "lost")

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = list(self._running)
            if not ids:
                continue
            try:
                held = await to_thread.run_sync(self._renew, ids)
            except Exception:
                log.exception("could not renew job leases")
                continue
            for lost in set(ids) - held:
                if lost in self._running:
                    log.warning("job %s was taken over by another worker", lost)

    def _succeed(self, job: Job) -> bool:
        return self.queue.succeed(job, self.owner)

    def _renew(self, ids: list[int]) -> set[int]:
        return self.queue.renew(self.owner, ids, lease=self.lease)

    async def _drain(self, grace: float) -> None:
        tasks = [task for _, task in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        left = list(self._running.items())
        for _, (_, task) in left:
            task.cancel()
        if left:
            await asyncio.gather(*(task for _, (_, task) in left), return_exceptions=True)
            ids = [job_id for job_id, _ in left]
            released = await to_thread.run_sync(lambda: self.queue.release(self.owner, ids))
            log.info("job worker %s handed back %d unfinished jobs", self.owner, released)
