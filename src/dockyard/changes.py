"""One write transaction that knows who makes it.

:meth:`Changes.open` gives a :class:`Change`: the change's own statements, its audit
record (the origin's authorization decision) and its events all run on ``change.conn``
and commit together — or not at all. Once committed, any worker in this process is woken
for the events' jobs (workers elsewhere find them when they next look).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from dockyard.audit import write_audit
from dockyard.db.engine import Database
from dockyard.events.outbox import Interest, Subject, write_event
from dockyard.jobs.queue import JobQueue
from dockyard.origin import Origin


@dataclass(slots=True)
class Change:
    conn: Connection
    origin: Origin
    interests: Sequence[Interest] = ()
    events: list[int] = field(default_factory=list)

    def emit(self, type_: str, subject: Subject) -> int:
        """Write an event of ``type_`` about ``subject`` with this change."""
        event_id = write_event(self.conn, self.origin, type_, subject, self.interests)
        self.events.append(event_id)
        return event_id


class Changes:
    def __init__(self, db: Database, jobs: JobQueue) -> None:
        self.db = db
        self.jobs = jobs
        self.interests: list[Interest] = []
        """Who may react to events (webhooks; scans and builds next): an event nobody
        wants gets no fan-out job."""
        self.identity_changed: list[Callable[[], None]] = []
        """Called after the commit of a change that may alter who someone is or what they
        may do (the principal cache forgets its logins: policies, keys or users may have
        changed). Every change counts unless it says otherwise."""

    @contextmanager
    def open(self, origin: Origin, *, identity: bool = True) -> Iterator[Change]:
        """A change by ``origin``. ``identity=False`` for registry content (blobs,
        manifests, tags), which no login or policy depends on: a burst of pushes then
        leaves the principal cache warm."""
        with self.db.write() as conn:
            change = Change(conn, origin, self.interests)
            yield change
            audited = origin.decision is not None and not origin.recorded
            if audited:
                write_audit(conn, origin)
        if audited:
            origin.recorded = True
        if identity:
            for hook in self.identity_changed:
                hook()
        if change.events:
            self.jobs.notify()
