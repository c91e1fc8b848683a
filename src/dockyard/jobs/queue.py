"""The durable job queue: one table, claimed with leases.

A job is a kind, a JSON payload and a state: ``queued`` → ``running`` → ``succeeded``,
or back to ``queued`` with a later ``run_after`` after a failed attempt, ``dead`` when
out of attempts, ``failed`` when its handler says retrying is pointless. A worker
claims jobs by writing its lease (owner and expiry) and renews the lease while they
run; a job whose lease ran out (its worker died) is claimed again by another worker.
Delivery is therefore at least once, and handlers are idempotent.

On PostgreSQL many workers claim side by side with ``FOR UPDATE SKIP LOCKED``; on
SQLite write transactions (``BEGIN IMMEDIATE``) already run one at a time. Every state
change after the claim checks the lease owner, so a worker whose lease was taken over
cannot overwrite what the new owner does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.errors import Conflict, NotFound

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
DEAD: Final = "dead"
STATES: Final = (QUEUED, RUNNING, SUCCEEDED, FAILED, DEAD)

QUEUES: Final = ("events", "webhooks", "scans", "builds")
"""The queues a worker may serve (``dockyard worker --queues``)."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A kind of job: which queue serves it and how many attempts it gets."""

    kind: str
    queue: str
    max_attempts: int = 5
    concurrency_limit: int = 0
    """At most this many jobs with the same ``concurrency_key`` run at once (0: no
    limit); one slow webhook receiver then never holds every worker."""


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    queue: str
    payload: dict[str, Any]
    state: str
    priority: int
    attempts: int
    max_attempts: int
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str
    concurrency_key: str | None


def _job(row: Any) -> Job:
    m = row._mapping
    return Job(
        id=int(m["id"]),
        kind=m["kind"],
        queue=m["queue"],
        payload=json.loads(m["payload"]),
        state=m["state"],
        priority=int(m["priority"]),
        attempts=int(m["attempts"]),
        max_attempts=int(m["max_attempts"]),
        run_after=as_utc(m["run_after"]),
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
        started_at=as_utc(m["started_at"]) if m["started_at"] else None,
        finished_at=as_utc(m["finished_at"]) if m["finished_at"] else None,
        lease_owner=m["lease_owner"],
        lease_expires_at=as_utc(m["lease_expires_at"]) if m["lease_expires_at"] else None,
        last_error=m["last_error"],
        concurrency_key=m["concurrency_key"],
    )


_INSERT_JOB = sa.insert(t.jobs)
"""Built once: enqueue runs in every push that someone listens to."""


def enqueue(
    conn: Connection,
    spec: JobSpec,
    payload: dict[str, Any],
    *,
    priority: int = 0,
    run_after: datetime | None = None,
    concurrency_key: str | None = None,
) -> int:
    """Add a job inside ``conn``'s transaction: it exists exactly when the transaction
    that asked for it commits."""
    now = utcnow()
    res = conn.execute(
        _INSERT_JOB,
        {
            "kind": spec.kind,
            "queue": spec.queue,
            "payload": json.dumps(payload, separators=(",", ":")),
            "state": QUEUED,
            "priority": priority,
            "attempts": 0,
            "max_attempts": spec.max_attempts,
            "run_after": run_after or now,
            "created_at": now,
            "updated_at": now,
            "concurrency_key": concurrency_key[:128] if concurrency_key else None,
        },
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


_J = t.jobs.c


def _candidates(limited: bool, skip_locked: bool) -> sa.Select[Any]:
    """Runnable jobs of some queues, best first (with, when ``limited``, how many jobs
    of each one's concurrency key are running)."""
    running = t.jobs.alias("running")
    busy = (
        sa.select(sa.func.count())
        .where(running.c.concurrency_key == _J.concurrency_key, running.c.state == RUNNING)
        .scalar_subquery()
    )
    query = (
        sa.select(_J.id, _J.kind, _J.concurrency_key, busy if limited else sa.null())
        .where(
            _J.queue.in_(sa.bindparam("queues", expanding=True)),
            _J.state == QUEUED,
            _J.run_after <= sa.bindparam("now"),
        )
        .order_by(_J.priority.desc(), _J.run_after, _J.id)
        .limit(sa.bindparam("limit"))
    )
    return query.with_for_update(skip_locked=True, of=t.jobs) if skip_locked else query


_CANDIDATES = {(lim, pg): _candidates(lim, pg) for lim in (False, True) for pg in (False, True)}
"""Built once (a worker claims many times a second): (limited, PostgreSQL) → query."""
_TAKE = (
    sa.update(t.jobs)
    .where(_J.id.in_(sa.bindparam("ids", expanding=True)), _J.state == QUEUED)
    .values(
        state=RUNNING,
        attempts=_J.attempts + 1,
        lease_owner=sa.bindparam("owner"),
        lease_expires_at=sa.bindparam("expires"),
        started_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
    .returning(*t.jobs.c)
)


def settle(
    conn: Connection,
    job: Job,
    owner: str,
    *,
    error: str | None = None,
    retry_in: float | None = 0.0,
) -> str:
    """Record how ``job``'s attempt ended, inside ``conn``'s transaction, so that a
    handler can commit its own result and the job's in one write: ``succeeded`` when
    ``error`` is None; else queued again in ``retry_in`` seconds while attempts remain,
    ``dead`` when none do, ``failed`` at once when ``retry_in`` is None (retrying cannot
    help). Returns the new state, or '' when ``owner`` no longer holds the job (its lease
    ran out and another worker took it: that worker's outcome counts)."""
    now = utcnow()
    values: dict[str, Any] = {
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if error is None:
        state = SUCCEEDED
    elif retry_in is None:
        state = FAILED
    elif job.attempts >= job.max_attempts:
        state = DEAD
    else:
        state = QUEUED
        values["run_after"] = now + timedelta(seconds=max(retry_in, 0.0))
    if state != QUEUED:
        values["finished_at"] = now
    if error is not None:
        values["last_error"] = error[:4000]
    res = conn.execute(
        sa.update(t.jobs)
        .where(_J.id == job.id, _J.lease_owner == owner, _J.state == RUNNING)
        .values(state=state, **values)
    )
    return state if res.rowcount else ""


class JobQueue:
    settle_interval = 5.0
    """Seconds between two looks for jobs whose lease ran out (a full pass over the
    running jobs, so not on every claim)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._listeners: list[Callable[[], None]] = []
        self._guard = threading.Lock()
        self._settled_at = -1e9

    # -- wake-ups --------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) whenever this process queues work."""
        with self._guard:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._guard:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def notify(self) -> None:
        """Work was committed: wake this process's workers now rather than at their
        next poll (workers elsewhere find it when they poll)."""
        with self._guard:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def add(self, spec: JobSpec, payload: dict[str, Any], **options: Any) -> int:
        """Queue a job in a transaction of its own."""
        with self.db.write() as conn:
            job_id = enqueue(conn, spec, payload, **options)
        self.notify()
        return job_id

    # -- workers ---------------------------------------------------------------------

    def settle_due(self) -> bool:
        """Whether the next claim looks for expired leases."""
        return time.monotonic() - self._settled_at >= self.settle_interval

    def has_runnable(self, queues: Sequence[str]) -> bool:
        """Whether a job of ``queues`` waits to run: a read, which takes no write lock,
        so that idle workers may ask often."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(_J.id)
                .where(
                    _J.queue.in_(list(queues)),
                    _J.state == QUEUED,
                    _J.run_after <= utcnow(),
                )
                .limit(1)
            ).first()
        return found is not None

    def claim(
        self,
        owner: str,
        queues: Sequence[str],
        limit: int,
        *,
        lease: float,
        concurrency_limits: dict[str, int] | None = None,
    ) -> list[Job]:
        """Take up to ``limit`` runnable jobs of ``queues`` (highest priority, then
        oldest first) for ``owner`` until ``lease`` seconds from now.

        First the jobs whose lease ran out are settled: back to the queue, or ``dead``
        when that was their last attempt. ``concurrency_limits`` (kind → n) skips a job
        while n jobs with its ``concurrency_key`` are running.
        """
        return self.claim_each(
            owner, {tuple(queues): limit}, lease=lease, concurrency_limits=concurrency_limits
        )

    def claim_each(
        self,
        owner: str,
        rooms: dict[tuple[str, ...], int],
        *,
        lease: float,
        concurrency_limits: dict[str, int] | None = None,
    ) -> list[Job]:
        """:meth:`claim` for several groups of queues at once (queues → how many), in
        one transaction: a worker fills every queue's free slots with one commit."""
        wanted = {queues: n for queues, n in rooms.items() if n > 0 and queues}
        if not wanted:
            return []
        now = utcnow()
        limits = {k: n for k, n in (concurrency_limits or {}).items() if n > 0}
        settle_now = self.settle_due()
        with self.db.write(durable=False) as conn:
            if settle_now:
                self._settle_expired(conn, now)
            rows = []
            for queues, limit in wanted.items():
                rows += self._take(conn, owner, queues, limit, now, lease, limits)
        if settle_now:
            self._settled_at = time.monotonic()
        jobs = [_job(r) for r in rows]
        jobs.sort(key=lambda j: (-j.priority, j.run_after, j.id))
        return jobs

    @staticmethod
    def _take(
        conn: Connection,
        owner: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease: float,
        limits: dict[str, int],
    ) -> list[Any]:
        candidates = _CANDIDATES[(bool(limits), conn.dialect.name == "postgresql")]
        params = {
            "queues": list(queues),
            "now": now,
            # Room to skip jobs whose key is at its limit within this batch.
            "limit": limit * 4 if limits else limit,
        }
        ids: list[int] = []
        taken: dict[str, int] = {}
        for job_id, kind, key, running_now in conn.execute(candidates, params):
            cap = limits.get(kind, 0)
            if cap and key is not None:
                used = int(running_now or 0) + taken.get(key, 0)
                if used >= cap:
                    continue
                taken[key] = taken.get(key, 0) + 1
            ids.append(int(job_id))
            if len(ids) == limit:
                break
        if not ids:
            return []
        rows = conn.execute(
            _TAKE,
            {
                "ids": ids,
                "owner": owner,
                "expires": now + timedelta(seconds=lease),
                "now": now,
            },
        ).all()
        return list(rows)

    @staticmethod
    def _settle_expired(conn: Connection, now: datetime) -> None:
        expired = sa.and_(_J.state == RUNNING, _J.lease_expires_at < now)
        message = "its worker stopped renewing its lease (the worker died or hung)"
        conn.execute(
            sa.update(t.jobs)
            .where(expired, _J.attempts >= _J.max_attempts)
            .values(
                state=DEAD,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
                last_error=message,
            )
        )
        conn.execute(
            sa.update(t.jobs)
            .where(expired)
            .values(
                state=QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                run_after=now,
                updated_at=now,
                last_error=message,
            )
        )

    def renew(self, owner: str, ids: Sequence[int], *, lease: float) -> set[int]:
        """Extend ``owner``'s leases on ``ids``; the ids still held are returned (a job
        missing from the answer was taken over by another worker)."""
        if not ids:
            return set()
        now = utcnow()
        with self.db.write(durable=False) as conn:
            held = conn.execute(
                sa.update(t.jobs)
                .where(_J.id.in_(list(ids)), _J.lease_owner == owner, _J.state == RUNNING)
                .values(lease_expires_at=now + timedelta(seconds=lease))
                .returning(_J.id)
            ).scalars()
            return {int(i) for i in held}

    def succeed(self, job: Job, owner: str) -> bool:
        """Mark the job done; False when ``owner`` no longer holds it."""
        with self.db.write(durable=False) as conn:
            return bool(settle(conn, job, owner))

    def fail(self, job: Job, owner: str, error: str, *, retry_in: float | None) -> str:
        """Record a failed attempt (see :func:`settle`); the new state, '' when
        ``owner`` no longer holds the job."""
        with self.db.write(durable=False) as conn:
            return settle(conn, job, owner, error=error, retry_in=retry_in)

    def release(self, owner: str, ids: Sequence[int]) -> int:
        """Hand jobs back unfinished (a worker shutting down): queued again at once,
        and the attempt they were on does not count."""
        if not ids:
            return 0
        now = utcnow()
        with self.db.write(durable=False) as conn:
            res = conn.execute(
                sa.update(t.jobs)
                .where(_J.id.in_(list(ids)), _J.lease_owner == owner, _J.state == RUNNING)
                .values(
                    state=QUEUED,
                    attempts=_J.attempts - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    run_after=now,
                    updated_at=now,
                )
            )
        if res.rowcount:
            self.notify()
        return int(res.rowcount)

    # -- administration --------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.jobs).where(_J.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return _job(row)

    def recent(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[Job]:
        """Newest first."""
        q = sa.select(t.jobs).order_by(_J.id.desc()).limit(limit)
        if kind:
            q = q.where(_J.kind == kind)
        if state:
            q = q.where(_J.state == state)
        if before is not None:
            q = q.where(_J.id < before)
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def retry(self, job_id: int) -> Job:
        """Queue a ``dead`` or ``failed`` job again with a fresh set of attempts."""
        now = utcnow()
        with self.db.write() as conn:
            res = conn.execute(
                sa.update(t.jobs)
                .where(_J.id == job_id, _J.state.in_((DEAD, FAILED)))
                .values(
                    state=QUEUED,
                    attempts=0,
                    run_after=now,
                    updated_at=now,
                    finished_at=None,
                )
            )
            if not res.rowcount:
                exists = conn.execute(sa.select(_J.state).where(_J.id == job_id)).scalar()
                if exists is None:
                    raise NotFound(f"job {job_id} does not exist")
                raise Conflict(
                    f"job {job_id} is {exists}; only a dead or failed job can be retried"
                )
        self.notify()
        return self.get(job_id)

    def depth(self) -> list[tuple[str, int, float]]:
        """Per kind: queued jobs and the age in seconds of the oldest runnable one."""
        now = utcnow()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(_J.kind, sa.func.count(), sa.func.min(_J.run_after))
                .where(_J.state == QUEUED)
                .group_by(_J.kind)
            ).all()
        out = []
        for kind, count, oldest in rows:
            age = max((now - as_utc(oldest)).total_seconds(), 0.0) if oldest else 0.0
            out.append((kind, int(count), age))
        return out

    def purge(self, older_than: datetime) -> int:
        """Forget finished jobs (succeeded or failed) that ended before ``older_than``;
        dead ones stay until retried or deleted with their cause."""
        with self.db.write() as conn:
            res = conn.execute(
                sa.delete(t.jobs).where(
                    _J.state.in_((SUCCEEDED, FAILED)), _J.finished_at < older_than
                )
            )
        return int(res.rowcount)
