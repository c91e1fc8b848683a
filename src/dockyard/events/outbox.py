"""Events written in the transaction of their change (the transactional outbox), and
their fan-out to listeners by a job.

:func:`write_event` inserts the event row and a ``events.fanout`` job in the caller's
transaction: both exist exactly when the change commits, so a committed change always
reaches its listeners (even if the process dies right after the commit) and a
rolled-back one reaches none. The fan-out job hands the event to each listener
(webhooks now; scans and builds next), which queue their own jobs in one transaction.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.errors import Invalid, NotFound
from dockyard.events.model import EVENT_TYPES, Event
from dockyard.jobs.batch import GroupCommit
from dockyard.jobs.queue import Job, JobQueue, JobSpec, enqueue, settle
from dockyard.jobs.worker import Fail, Handler
from dockyard.origin import Origin

FANOUT = JobSpec("events.fanout", queue="events", max_attempts=20)


class _Gone(enum.Enum):
    EVENT = "gone"


_GONE = _Gone.EVENT
"""A fan-out's result when its event no longer exists."""
_FanOut = tuple[int, "Job | None", str]
_Settled = list[str | _Gone | None]
"""What one fan-out needs: the event, its job, the worker that holds the job."""

Listener = Callable[[Connection, Event], None]
"""Reacts to an event inside the fan-out transaction (queues its own jobs there)."""
Interest = Callable[[Connection, str, "Subject"], bool]
"""Whether a listener may react to an event of this type about this subject, asked in
the writing transaction: an event no listener wants is stored without a fan-out job."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about: the repository (or namespace) and, for image events, the
    tag and manifest."""

    account_id: int | None
    namespace: str
    repository: str = ""
    tag: str = ""
    digest: str = ""
    media_type: str = ""
    size: int = 0
    repository_public: bool = False
    repository_created_at: datetime | None = None
    detail: dict[str, Any] | None = None


_INSERT_EVENT = sa.insert(t.events)
"""Built once: every push writes an event."""


def write_event(
    conn: Connection,
    origin: Origin,
    type_: str,
    subject: Subject,
    interests: Sequence[Interest] = (),
) -> int:
    """Insert the event, and its fan-out job when one of ``interests`` wants it, inside
    ``conn``'s transaction."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    res = conn.execute(
        _INSERT_EVENT,
        {
            "type": type_,
            "at": utcnow(),
            "account_id": subject.account_id,
            "namespace": subject.namespace,
            "repository": subject.repository,
            "tag": subject.tag,
            "digest": subject.digest,
            "media_type": subject.media_type,
            "size": subject.size,
            "actor": origin.actor[:200],
            "request_id": origin.request_id[:64],
            "client_address": origin.client_address[:64],
            "repository_public": subject.repository_public,
            "repository_created_at": subject.repository_created_at,
            "detail": json.dumps(subject.detail, separators=(",", ":")) if subject.detail else "",
        },
    )
    pk = res.inserted_primary_key
    assert pk is not None
    event_id = int(pk[0])
    if any(wants(conn, type_, subject) for wants in interests):
        enqueue(conn, FANOUT, {"event_id": event_id})
    return event_id


def _event(row: Any) -> Event:
    m = row._mapping
    created = m["repository_created_at"]
    return Event(
        id=int(m["id"]),
        type=m["type"],
        at=as_utc(m["at"]),
        account_id=m["account_id"],
        namespace=m["namespace"],
        repository=m["repository"],
        tag=m["tag"],
        digest=m["digest"],
        media_type=m["media_type"],
        size=int(m["size"]),
        actor=m["actor"],
        request_id=m["request_id"],
        client_address=m["client_address"],
        repository_public=bool(m["repository_public"]),
        repository_created_at=as_utc(created) if created else None,
        detail=json.loads(m["detail"]) if m["detail"] else None,
    )


def load_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(sa.select(t.events).where(t.events.c.id == event_id)).first()
    return None if row is None else _event(row)


class EventLog:
    """Reading events back, fanning them out, and forgetting old ones."""

    def __init__(self, db: Database, jobs: JobQueue) -> None:
        self.db = db
        self.jobs = jobs
        self.listeners: list[Listener] = []
        self._batch: GroupCommit[_FanOut, str | _Gone | None] | None = None

    def listen(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def get(self, event_id: int) -> Event:
        with self.db.read() as conn:
            found = load_event(conn, event_id)
        if found is None:
            raise NotFound(f"event {event_id} does not exist")
        return found

    def list(
        self,
        account_id: int | None,
        *,
        limit: int = 100,
        before: int | None = None,
        types: Sequence[str] = (),
        repository: str | None = None,
        since: datetime | None = None,
    ) -> list[Event]:
        """Newest first; ``account_id`` None means every account's (the administrator).
        ``repository`` is ``namespace/name`` or a namespace alone."""
        e = t.events.c
        q = sa.select(t.events).order_by(e.id.desc()).limit(limit)
        if account_id is not None:
            q = q.where(e.account_id == account_id)
        if before is not None:
            q = q.where(e.id < before)
        if types:
            unknown = sorted(set(types) - set(EVENT_TYPES))
            if unknown:
                raise Invalid(
                    f"unknown event type {unknown[0]!r}; the types are {', '.join(EVENT_TYPES)}"
                )
            q = q.where(e.type.in_(list(types)))
        if repository:
            namespace, _, name = repository.partition("/")
            q = q.where(e.namespace == namespace)
            if name:
                q = q.where(e.repository == name)
        if since is not None:
            q = q.where(e.at >= since)
        with self.db.read() as conn:
            return [_event(r) for r in conn.execute(q)]

    def fan_out(self, event_id: int, job: Job | None = None, owner: str = "") -> str | None:
        """Hand the event to every listener in one transaction (a listener queues its
        jobs there, idempotently: this may run twice for one event), which also settles
        the fan-out ``job`` when given; returns its new state."""
        settled = self._fan_out_all([(event_id, job, owner)])[0]
        if settled is _GONE:
            raise Fail(f"event {event_id} no longer exists (past its retention)")
        return settled

    def _fan_out_all(self, batch: Sequence[_FanOut]) -> _Settled:
        """Fan out several events in one transaction (a worker's fan-outs commit
        together: :class:`jobs.batch.GroupCommit`); per event, its job's new state, or
        ``_GONE``."""
        results: _Settled = []
        # Not waiting for the disk when every fan-out is a job's: if a power loss takes
        # this transaction, it takes the jobs' outcomes with it, and they run again.
        with self.db.write(durable=any(job is None for _, job, _ in batch)) as conn:
            for event_id, job, owner in batch:
                event = load_event(conn, event_id)
                if event is None:
                    results.append(_GONE)
                    continue
                for listener in self.listeners:
                    listener(conn, event)
                results.append(settle(conn, job, owner) if job is not None else None)
        self.jobs.notify()
        return results

    def handler(self) -> Handler:
        async def run(job: Job, owner: str) -> str | None:
            event_id = int(job.payload["event_id"])
            if self._batch is None:
                self._batch = GroupCommit(self._fan_out_all)
            settled = await self._batch.submit((event_id, job, owner))
            if settled is _GONE:
                raise Fail(f"event {event_id} no longer exists (past its retention)")
            return settled

        return Handler(FANOUT, run)

    def purge(self, older_than: datetime) -> int:
        """Forget events older than ``older_than`` (``DOCKYARD_EVENT_RETENTION``), with
        their webhook deliveries."""
        with self.db.write() as conn:
            res = conn.execute(sa.delete(t.events).where(t.events.c.at < older_than))
        return int(res.rowcount)
