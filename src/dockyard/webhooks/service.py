"""Webhooks: their settings, the deliveries an event makes, and sending them.

A webhook belongs to a repository, or to a namespace and then covers every repository
in it. When an event is fanned out (:meth:`WebhookService.fan_out`, inside the fan-out
job's transaction), each webhook of the event's repository and namespace that listens
for its type gets one delivery: ``pending`` with a ``webhooks.deliver`` job when its
trigger matches, ``untriggered`` with the reason when it does not. The body is rendered
then, once, so that every attempt sends the same bytes under the same ``webhook-id``.

Delivery (:meth:`WebhookService.deliver`, a job) signs the body per attempt (Standard
Webhooks), POSTs it through the SSRF guard and records the attempt. A failed attempt is
retried on the ``webhook_retry_delays`` schedule, 8 attempts in all; 410 Gone disables
the webhook at once, and deliveries failing for 3 days disable it too.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final, Literal

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection

from dockyard import __version__
from dockyard.changes import Changes
from dockyard.config import ConfigError
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import dialect_insert
from dockyard.errors import Invalid, NotFound
from dockyard.events.model import EVENT_TYPES, PUSH, Event
from dockyard.events.outbox import Subject
from dockyard.jobs.batch import GroupCommit
from dockyard.jobs.queue import Job, JobQueue, JobSpec, enqueue, settle
from dockyard.jobs.worker import Fail, Handler
from dockyard.origin import Origin
from dockyard.secretbox import SecretBox
from dockyard.webhooks.client import Attempt, WebhookClient
from dockyard.webhooks.guard import AddressGuard
from dockyard.webhooks.payloads import render, sample_push_event
from dockyard.webhooks.signing import delivery_headers, new_secret
from dockyard.webhooks.triggers import Trigger

DELIVER = JobSpec("webhooks.deliver", queue="webhooks", max_attempts=8, concurrency_limit=4)
"""One delivery, attempted up to 8 times; at most 4 of one webhook's run at once, so a
slow receiver never holds every worker."""

FORMATS: Final = ("acr", "cloudevents")
PayloadFormat = Literal["acr", "cloudevents"]
DELIVERY_STATES: Final = ("pending", "retrying", "succeeded", "failed", "untriggered")
MAX_HEADERS: Final = 20
ROTATION_OVERLAP: Final = timedelta(hours=24)
"""After a secret is rotated, the previous one keeps signing (beside the new) this long."""
DISABLE_AFTER: Final = timedelta(days=3)
"""A webhook whose deliveries have all failed this long is disabled."""
MASK: Final = "********"
_RESERVED_HEADERS: Final = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")


@dataclass(frozen=True, slots=True)
class Scope:
    """Where webhooks hang: a namespace, or one repository in it."""

    namespace: str
    repository: str | None = None

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.repository}" if self.repository else self.namespace


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    namespace: str
    repository: str | None
    account_id: int | None
    name: str
    url: str
    trigger: Trigger
    events: tuple[str, ...]
    format: str
    header_names: tuple[str, ...]
    enabled: bool
    disabled_reason: str
    created_at: datetime
    updated_at: datetime
    last_delivery_status: str | None = None
    last_delivery_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    at: datetime
    status: int | None
    duration_ms: int
    error: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: int | None
    event_type: str
    status: str
    reason: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    request_url: str
    request_headers: dict[str, str]
    request_body: str
    response_status: int | None
    response_headers: dict[str, str]
    response_body: str
    attempt_log: tuple[AttemptRecord, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class WebhookInput:
    """A create or update request; None leaves a field as it is (update) or takes its
    default (create)."""

    name: str | None = None
    url: str | None = None
    trigger: Trigger | None = None
    events: tuple[str, ...] | None = None
    format: str | None = None
    headers: dict[str, str] | None = None
    enabled: bool | None = None


def _check_name(name: str) -> None:
    if not 1 <= len(name) <= 64:
        raise Invalid("name: a webhook's name has 1 to 64 characters")


def _check_events(events: Sequence[str]) -> tuple[str, ...]:
    if not events:
        raise Invalid("events: at least one event type")
    for i, kind in enumerate(events):
        if kind not in EVENT_TYPES:
            raise Invalid(f"events[{i}]: {kind!r} is not one of {', '.join(EVENT_TYPES)}")
    return tuple(dict.fromkeys(events))


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise Invalid(f"headers: at most {MAX_HEADERS}")
    seen: set[str] = set()
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise Invalid(f"headers: {name[:64]!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise Invalid(f"headers: {name} is set by Dockyard itself")
        if name.lower() in seen:
            raise Invalid(f"headers: {name} is given twice")
        seen.add(name.lower())
        if not isinstance(value, str) or len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise Invalid(f"headers.{name}: a single-line string of at most 4096 characters")
    return dict(headers)


def mask_headers(headers: dict[str, str], secret_names: Sequence[str]) -> dict[str, str]:
    """Headers as the delivery log keeps them: the user's secret headers and the
    signature are masked."""
    hidden = {n.lower() for n in secret_names} | {"webhook-signature"}
    return {k: (MASK if k.lower() in hidden else v) for k, v in headers.items()}


_W = t.webhooks.c
_D = t.webhook_deliveries.c
_ANY_WEBHOOK = (
    sa.select(_W.id)
    .select_from(t.webhooks.join(t.namespaces))
    .where(t.namespaces.c.name == sa.bindparam("namespace"))
    .limit(1)
)
"""Built once: asked for every event (every push)."""


class WebhookService:
    def __init__(
        self,
        db: Database,
        changes: Changes,
        jobs: JobQueue,
        secrets: SecretBox,
        guard: AddressGuard,
        *,
        region: str,
        tz: tzinfo,
        retry_delays: Sequence[float],
        timeout: float,
    ) -> None:
        self.db = db
        self.changes = changes
        self.jobs = jobs
        self.secrets = secrets
        self.guard = guard
        self.region = region
        self.tz = tz
        self.retry_delays = list(retry_delays) or [60.0]
        self.timeout = timeout
        self._client: WebhookClient | None = None
        self._batch: GroupCommit[_Record, str | None] | None = None

    @property
    def client(self) -> WebhookClient:
        if self._client is None:
            self._client = WebhookClient(self.guard, timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- settings --------------------------------------------------------------------

    def _scope_ids(self, conn: Connection, scope: Scope) -> tuple[int, int | None, int | None]:
        """(namespace id, repository id or None, owning account) of ``scope``."""
        ns = conn.execute(
            sa.select(t.namespaces.c.id, t.namespaces.c.account_id).where(
                t.namespaces.c.name == scope.namespace
            )
        ).first()
        if ns is None:
            raise NotFound(f"namespace {scope.namespace!r} does not exist")
        if scope.repository is None:
            return int(ns.id), None, ns.account_id
        repo = conn.execute(
            sa.select(t.repositories.c.id).where(
                t.repositories.c.namespace_id == ns.id,
                t.repositories.c.name == scope.repository,
            )
        ).scalar()
        if repo is None:
            raise NotFound(f"repository {scope.label} does not exist")
        return int(ns.id), int(repo), ns.account_id

    def _row(self, conn: Connection, scope: Scope, webhook_id: int) -> Any:
        ns_id, repo_id, _ = self._scope_ids(conn, scope)
        q = sa.select(t.webhooks).where(_W.id == webhook_id, _W.namespace_id == ns_id)
        q = q.where(_W.repository_id.is_(None) if repo_id is None else _W.repository_id == repo_id)
        row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist on {scope.label}")
        return row

    def check_url(self, url: str) -> None:
        """Refuse a URL the delivery guard would refuse (resolves its host: blocking),
        with the guard's messages (its length bound, too, is said in one place)."""
        self.guard.check_url(url)

    def create(self, origin: Origin, scope: Scope, spec: WebhookInput) -> tuple[Webhook, str]:
        """Create a webhook; returns it and its signing secret (shown this once)."""
        if spec.name is None or spec.url is None:
            raise Invalid("name and url are required")
        _check_name(spec.name)
        self.check_url(spec.url)
        events = _check_events((PUSH,) if spec.events is None else spec.events)
        fmt = spec.format or "acr"
        if fmt not in FORMATS:
            raise Invalid(f'format: "acr" or "cloudevents", not {fmt!r}')
        headers = _check_headers(spec.headers or {})
        secret = new_secret()
        now = utcnow()
        with self.changes.open(origin) as change:
            ns_id, repo_id, _ = self._scope_ids(change.conn, scope)
            res = change.conn.execute(
                sa.insert(t.webhooks).values(
                    namespace_id=ns_id,
                    repository_id=repo_id,
                    name=spec.name,
                    url=spec.url,
                    trigger=json.dumps((spec.trigger or Trigger("all")).to_json()),
                    events=json.dumps(list(events)),
                    format=fmt,
                    headers=self.secrets.seal_json(headers) if headers else None,
                    secret=self.secrets.seal(secret),
                    enabled=True if spec.enabled is None else spec.enabled,
                    created_at=now,
                    updated_at=now,
                )
            )
            pk = res.inserted_primary_key
            assert pk is not None
        return self.get(scope, int(pk[0])), secret

    def update(self, origin: Origin, scope: Scope, webhook_id: int, spec: WebhookInput) -> Webhook:
        values: dict[str, Any] = {}
        if spec.name is not None:
            _check_name(spec.name)
            values["name"] = spec.name
        if spec.url is not None:
            self.check_url(spec.url)
            values["url"] = spec.url
        if spec.trigger is not None:
            values["trigger"] = json.dumps(spec.trigger.to_json())
        if spec.events is not None:
            values["events"] = json.dumps(list(_check_events(spec.events)))
        if spec.format is not None:
            if spec.format not in FORMATS:
                raise Invalid(f'format: "acr" or "cloudevents", not {spec.format!r}')
            values["format"] = spec.format
        if spec.headers is not None:
            headers = _check_headers(spec.headers)
            values["headers"] = self.secrets.seal_json(headers) if headers else None
        if spec.enabled is not None:
            values["enabled"] = spec.enabled
        with self.changes.open(origin) as change:
            row = self._row(change.conn, scope, webhook_id)
            if spec.enabled and not row.enabled:  # turned on again: a fresh start
                values["disabled_reason"] = ""
                values["failing_since"] = None
            if values:
                change.conn.execute(
                    sa.update(t.webhooks)
                    .where(_W.id == row.id)
                    .values(**values, updated_at=utcnow())
                )
        return self.get(scope, webhook_id)

    def delete(self, origin: Origin, scope: Scope, webhook_id: int) -> None:
        """Delete the webhook with its delivery history."""
        with self.changes.open(origin) as change:
            row = self._row(change.conn, scope, webhook_id)
            change.conn.execute(sa.delete(t.webhooks).where(_W.id == row.id))

    def rotate_secret(self, origin: Origin, scope: Scope, webhook_id: int) -> str:
        """A new signing secret; the previous one keeps signing beside it for 24 hours,
        so receivers can switch without missing a delivery."""
        secret = new_secret()
        now = utcnow()
        with self.changes.open(origin) as change:
            row = self._row(change.conn, scope, webhook_id)
            change.conn.execute(
                sa.update(t.webhooks)
                .where(_W.id == row.id)
                .values(
                    secret=self.secrets.seal(secret),
                    previous_secret=row.secret,
                    previous_secret_expires_at=now + ROTATION_OVERLAP,
                    updated_at=now,
                )
            )
        return secret

    def get(self, scope: Scope, webhook_id: int) -> Webhook:
        with self.db.read() as conn:
            row = self._row(conn, scope, webhook_id)
            return self._webhooks(conn, [row], scope)[0]

    def find(self, scope: Scope, *, limit: int = 100, after: int | None = None) -> list[Webhook]:
        """The webhooks of ``scope`` itself (a namespace's do not list its
        repositories'), oldest first."""
        with self.db.read() as conn:
            ns_id, repo_id, _ = self._scope_ids(conn, scope)
            q = sa.select(t.webhooks).where(_W.namespace_id == ns_id).order_by(_W.id).limit(limit)
            q = q.where(
                _W.repository_id.is_(None) if repo_id is None else _W.repository_id == repo_id
            )
            if after is not None:
                q = q.where(_W.id > after)
            return self._webhooks(conn, conn.execute(q).all(), scope)

    def _webhooks(self, conn: Connection, rows: Sequence[Any], scope: Scope) -> list[Webhook]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        latest = (
            sa.select(_D.webhook_id, sa.func.max(_D.id).label("id"))
            .where(_D.webhook_id.in_(ids))
            .group_by(_D.webhook_id)
            .subquery()
        )
        last = {
            r.webhook_id: (r.status, as_utc(r.updated_at))
            for r in conn.execute(
                sa.select(_D.webhook_id, _D.status, _D.updated_at).join(
                    latest, latest.c.id == _D.id
                )
            )
        }
        owner = conn.execute(
            sa.select(t.namespaces.c.account_id).where(t.namespaces.c.name == scope.namespace)
        ).scalar()
        out = []
        for r in rows:
            names = tuple(self.secrets.open_json(r.headers)) if r.headers else ()
            status, at = last.get(r.id, (None, None))
            out.append(
                Webhook(
                    id=int(r.id),
                    namespace=scope.namespace,
                    repository=scope.repository,
                    account_id=owner,
                    name=r.name,
                    url=r.url,
                    trigger=_trigger(r.trigger),
                    events=tuple(json.loads(r.events)),
                    format=r.format,
                    header_names=names,
                    enabled=bool(r.enabled),
                    disabled_reason=r.disabled_reason,
                    created_at=as_utc(r.created_at),
                    updated_at=as_utc(r.updated_at),
                    last_delivery_status=status,
                    last_delivery_at=at,
                )
            )
        return out

    # -- deliveries ------------------------------------------------------------------

    def deliveries(
        self,
        scope: Scope,
        webhook_id: int,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[Delivery]:
        """Newest first."""
        if status is not None and status not in DELIVERY_STATES:
            raise Invalid(f"status is one of {', '.join(DELIVERY_STATES)}")
        with self.db.read() as conn:
            row = self._row(conn, scope, webhook_id)
            q = (
                sa.select(t.webhook_deliveries)
                .where(_D.webhook_id == row.id)
                .order_by(_D.id.desc())
                .limit(limit)
            )
            if status is not None:
                q = q.where(_D.status == status)
            if before is not None:
                q = q.where(_D.id < before)
            return [_delivery(r) for r in conn.execute(q)]

    def delivery(self, scope: Scope, webhook_id: int, delivery_id: int) -> Delivery:
        with self.db.read() as conn:
            row = self._row(conn, scope, webhook_id)
            return self._delivery_with_attempts(conn, row.id, delivery_id)

    @staticmethod
    def _delivery_with_attempts(conn: Connection, webhook_id: int, delivery_id: int) -> Delivery:
        found = conn.execute(
            sa.select(t.webhook_deliveries).where(_D.id == delivery_id, _D.webhook_id == webhook_id)
        ).first()
        if found is None:
            raise NotFound(f"delivery {delivery_id} does not exist")
        attempts = tuple(
            AttemptRecord(as_utc(a.at), a.status, a.duration_ms, a.error)
            for a in conn.execute(
                sa.select(t.webhook_attempts)
                .where(t.webhook_attempts.c.delivery_id == delivery_id)
                .order_by(t.webhook_attempts.c.id)
            )
        )
        return _delivery(found, attempts)

    def redeliver(
        self, origin: Origin, scope: Scope, webhook_id: int, delivery_id: int
    ) -> Delivery:
        """Send a delivery again (same body, same ``webhook-id``) with a fresh set of
        attempts."""
        with self.changes.open(origin) as change:
            row = self._row(change.conn, scope, webhook_id)
            found = self._delivery_with_attempts(change.conn, row.id, delivery_id)
            if not found.request_body:
                raise Invalid(f"delivery {delivery_id} was never sent (it is untriggered)")
            change.conn.execute(
                sa.update(t.webhook_deliveries)
                .where(_D.id == delivery_id)
                .values(status="pending", reason="redelivery requested", updated_at=utcnow())
            )
            enqueue(
                change.conn,
                DELIVER,
                {"delivery_id": delivery_id},
                priority=1,
                concurrency_key=f"webhook:{row.id}",
            )
        self.jobs.notify()
        return self.delivery(scope, webhook_id, delivery_id)

    async def test(self, origin: Origin, scope: Scope, webhook_id: int) -> Delivery:
        """Send a sample push now, once, and return its delivery."""

        def prepare() -> int:
            with self.changes.open(origin) as change:
                row = self._row(change.conn, scope, webhook_id)
                repo = None
                if scope.repository is not None:
                    repo = change.conn.execute(
                        sa.select(t.repositories.c.is_public, t.repositories.c.created_at).where(
                            t.repositories.c.id == row.repository_id
                        )
                    ).one()
                owner = change.conn.execute(
                    sa.select(t.namespaces.c.account_id).where(
                        t.namespaces.c.id == row.namespace_id
                    )
                ).scalar()
                event = sample_push_event(
                    scope.namespace,
                    scope.repository or "example",
                    public=bool(repo.is_public) if repo is not None else False,
                    created_at=as_utc(repo.created_at) if repo is not None else utcnow(),
                    account_id=owner,
                )
                made = self._insert_delivery(change.conn, row, event, "pending", "test")
                assert made is not None  # a sample event (id 0) always makes a new one
                return made

        delivery_id = await to_thread.run_sync(prepare)
        await self._attempt(delivery_id, last=True)
        return await to_thread.run_sync(self.delivery, scope, webhook_id, delivery_id)

    # -- fan-out (inside the events.fanout job's transaction) ---------------------------

    @staticmethod
    def wants(conn: Connection, _type: str, subject: Subject) -> bool:
        """Whether the event's namespace has any webhook (asked as the event is written:
        without one, no fan-out job is queued, and a webhook made later gets only later
        events anyway)."""
        return conn.execute(_ANY_WEBHOOK, {"namespace": subject.namespace}).first() is not None

    def fan_out(self, conn: Connection, event: Event) -> None:
        """One delivery per webhook of the event's repository and namespace that listens
        for its type: pending (with its job) or untriggered (with the reason). Running
        twice for one event adds nothing (deliveries are unique per webhook and event)."""
        ns_id = conn.execute(
            sa.select(t.namespaces.c.id).where(t.namespaces.c.name == event.namespace)
        ).scalar()
        if ns_id is None:
            return
        repo_id = None
        if event.repository:
            repo_id = conn.execute(
                sa.select(t.repositories.c.id).where(
                    t.repositories.c.namespace_id == ns_id,
                    t.repositories.c.name == event.repository,
                )
            ).scalar()
        scopes = [_W.repository_id.is_(None)]
        if repo_id is not None:
            scopes.append(_W.repository_id == repo_id)
        hooks = conn.execute(
            sa.select(t.webhooks).where(_W.namespace_id == ns_id, sa.or_(*scopes)).order_by(_W.id)
        ).all()
        for hook in hooks:
            if event.type not in json.loads(hook.events):
                continue
            if as_utc(hook.created_at) > event.at:
                continue  # the event happened before the webhook existed
            if not hook.enabled:
                status, reason = "untriggered", f"the webhook is disabled {hook.disabled_reason}"
            else:
                fires, reason = _trigger(hook.trigger).match(event.tag)
                status = "pending" if fires else "untriggered"
            delivery_id = self._insert_delivery(conn, hook, event, status, reason.strip())
            if delivery_id is None:
                continue  # made by an earlier run of this fan-out
            if status == "pending":
                enqueue(
                    conn,
                    DELIVER,
                    {"delivery_id": delivery_id},
                    concurrency_key=f"webhook:{hook.id}",
                )

    def _insert_delivery(
        self, conn: Connection, hook: Any, event: Event, status: str, reason: str
    ) -> int | None:
        """The new delivery's id; None when the webhook has one for this event already."""
        now = utcnow()
        body = b""
        if status == "pending":
            source = f"dockyard://{self.region}/{event.repository_full_name}"
            fmt: PayloadFormat = "cloudevents" if hook.format == "cloudevents" else "acr"
            body = render(event, fmt, region=self.region, tz=self.tz, source=source)
        values = {
            "webhook_id": hook.id,
            "event_id": event.id or None,
            "event_type": event.type,
            "status": status,
            "reason": reason,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "request_url": hook.url,
            "request_body": body.decode(),
        }
        if event.id:
            new = conn.execute(
                dialect_insert(conn, t.webhook_deliveries)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                .returning(_D.id)
            ).scalar()
            return None if new is None else int(new)
        res = conn.execute(sa.insert(t.webhook_deliveries).values(**values))
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    # -- delivery (the webhooks.deliver job) ------------------------------------------

    def handler(self) -> Handler:
        async def run(job: Job, owner: str) -> str | None:
            delivery_id = int(job.payload["delivery_id"])
            delay = self.retry_delays[min(job.attempts, len(self.retry_delays)) - 1]
            return await self._attempt(
                delivery_id,
                last=job.attempts >= job.max_attempts,
                job=_JobTurn(job, owner, delay * _jitter()),
            )

        return Handler(DELIVER, run)

    async def _attempt(
        self, delivery_id: int, *, last: bool, job: _JobTurn | None = None
    ) -> str | None:
        """One attempt, recorded with ``job``'s outcome in one transaction; returns the
        job's new state (None: nothing was sent, the worker settles the job)."""
        prepared = await to_thread.run_sync(self._prepare_attempt, delivery_id)
        if prepared is None:
            return None
        url, headers, body, secret_names, failing = prepared
        attempt = await self.client.post(url, headers, body)
        record = _Record(
            delivery_id, attempt, mask_headers(headers, secret_names), last, job, failing
        )
        if job is None:
            return (await to_thread.run_sync(self._record_all, [record]))[0]
        if self._batch is None:
            self._batch = GroupCommit(self._record_all)
        return await self._batch.submit(record)

    def _prepare_attempt(
        self, delivery_id: int
    ) -> tuple[str, dict[str, str], bytes, list[str], bool] | None:
        """What an attempt sends: URL, headers (signed now), body, the names of the
        user's secret headers, and whether the webhook's deliveries are failing."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    _D.id,
                    _D.request_body,
                    t.webhooks.c.url,
                    t.webhooks.c.enabled,
                    t.webhooks.c.disabled_reason,
                    t.webhooks.c.headers,
                    t.webhooks.c.secret,
                    t.webhooks.c.previous_secret,
                    t.webhooks.c.previous_secret_expires_at,
                    t.webhooks.c.failing_since,
                )
                .select_from(t.webhook_deliveries.join(t.webhooks))
                .where(_D.id == delivery_id)
            ).first()
        if row is None:
            raise Fail(f"delivery {delivery_id} no longer exists (its webhook was deleted)")
        if not row.enabled:
            with self.db.write() as conn:
                conn.execute(
                    sa.update(t.webhook_deliveries)
                    .where(_D.id == delivery_id)
                    .values(
                        status="failed",
                        reason=f"the webhook was disabled {row.disabled_reason}".strip(),
                        updated_at=utcnow(),
                    )
                )
            return None
        secrets = [self.secrets.open(row.secret)]
        expires = row.previous_secret_expires_at
        if row.previous_secret and expires is not None and as_utc(expires) > utcnow():
            secrets.append(self.secrets.open(row.previous_secret))
        body = row.request_body.encode()
        extra: dict[str, str] = self.secrets.open_json(row.headers) if row.headers else {}
        headers = extra | delivery_headers(
            secrets, f"msg_{delivery_id}", int(time.time()), body, version=__version__
        )
        return row.url, headers, body, list(extra), row.failing_since is not None

    def _record_attempt(
        self,
        delivery_id: int,
        attempt: Attempt,
        sent_headers: dict[str, str],
        *,
        last: bool,
        job: _JobTurn | None = None,
        failing: bool = True,
    ) -> str | None:
        """Record one attempt (and settle its job) in a transaction of its own."""
        record = _Record(delivery_id, attempt, sent_headers, last, job, failing)
        return self._record_all([record])[0]

    def _record_all(self, records: Sequence[_Record]) -> list[str | None]:
        """Record attempts, and settle their jobs, in one transaction: the worker's
        finished deliveries are written together (group commit), which holds SQLite's
        write lock once instead of once each. With jobs, the transaction does not wait
        for the disk: a power loss that takes a record takes its job's outcome too,
        and the delivery is sent again (receivers drop duplicates by webhook-id)."""
        durable = any(r.job is None for r in records)
        with self.db.write(durable=durable) as conn:
            return [self._record_in(conn, r) for r in records]

    def _record_in(self, conn: Connection, r: _Record) -> str | None:
        now = utcnow()
        attempt = r.attempt
        if attempt.ok:
            status, reason = "succeeded", ""
        elif attempt.status == 410:
            status, reason = "failed", "the receiver answered 410 Gone: the webhook is disabled"
        else:
            status = "failed" if r.last else "retrying"
            reason = attempt.error or f"the receiver answered {attempt.status}"
            if r.last:
                reason += "; no attempts left"
        conn.execute(
            sa.insert(t.webhook_attempts).values(
                delivery_id=r.delivery_id,
                at=attempt.at,
                status=attempt.status,
                duration_ms=attempt.duration_ms,
                error=attempt.error[:2000],
            )
        )
        webhook_id = conn.execute(
            sa.update(t.webhook_deliveries)
            .where(_D.id == r.delivery_id)
            .values(
                status=status,
                reason=reason[:2000],
                attempts=_D.attempts + 1,
                updated_at=now,
                request_headers=json.dumps(r.sent_headers),
                response_status=attempt.status,
                response_headers=json.dumps(attempt.response_headers),
                response_body=attempt.response_body,
            )
            .returning(_D.webhook_id)
        ).scalar()
        if webhook_id is not None and (r.failing or not attempt.ok):
            self._note_health(conn, webhook_id, attempt, now)
        if r.job is None:
            return None
        if attempt.ok or attempt.status == 410 or webhook_id is None:
            return settle(conn, r.job.job, r.job.owner)  # done, or never to be done
        return settle(conn, r.job.job, r.job.owner, error=reason[:2000], retry_in=r.job.retry_in)

    @staticmethod
    def _note_health(conn: Connection, webhook_id: int, attempt: Attempt, now: datetime) -> None:
        """Disable a webhook whose receiver is gone (410) or has failed for 3 days."""
        hook = sa.update(t.webhooks).where(_W.id == webhook_id)
        if attempt.ok:
            conn.execute(hook.where(_W.failing_since.is_not(None)).values(failing_since=None))
            return
        if attempt.status == 410:
            conn.execute(
                hook.values(
                    enabled=False,
                    disabled_reason=f"(the receiver answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC)",
                    updated_at=now,
                )
            )
            return
        conn.execute(hook.where(_W.failing_since.is_(None)).values(failing_since=now))
        since = conn.execute(sa.select(_W.failing_since).where(_W.id == webhook_id)).scalar()
        if since is not None and now - as_utc(since) >= DISABLE_AFTER:
            conn.execute(
                hook.values(
                    enabled=False,
                    disabled_reason=(
                        f"(every delivery failed from {as_utc(since):%Y-%m-%d %H:%M} UTC "
                        f"for {DISABLE_AFTER.days} days)"
                    ),
                    updated_at=now,
                )
            )


@dataclass(frozen=True, slots=True)
class _Record:
    """One finished attempt, to be recorded."""

    delivery_id: int
    attempt: Attempt
    sent_headers: dict[str, str]
    last: bool
    job: _JobTurn | None
    failing: bool


@dataclass(frozen=True, slots=True)
class _JobTurn:
    """The job an attempt runs for: settled with the attempt's record."""

    job: Job
    owner: str
    retry_in: float


def _jitter() -> float:
    return random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


def _trigger(stored: str) -> Trigger:
    value = json.loads(stored)
    return Trigger(value["type"], tuple(value.get("tags", ())), value.get("regex", ""))


def _delivery(row: Any, attempts: tuple[AttemptRecord, ...] = ()) -> Delivery:
    return Delivery(
        id=int(row.id),
        webhook_id=int(row.webhook_id),
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        reason=row.reason,
        attempts=int(row.attempts),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        request_url=row.request_url,
        request_headers=json.loads(row.request_headers),
        request_body=row.request_body,
        response_status=row.response_status,
        response_headers=json.loads(row.response_headers),
        response_body=row.response_body,
        attempt_log=attempts,
    )


def retry_delays(setting: str) -> list[float]:
    """``DOCKYARD_WEBHOOK_RETRY_DELAYS``: comma-separated seconds."""
    try:
        delays = [float(x) for x in setting.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"webhook_retry_delays must be comma-separated seconds, not {setting!r}"
        ) from exc
    if any(d < 0 for d in delays):
        raise ConfigError("webhook_retry_delays must not be negative")
    return delays
