"""The webhook service on both databases: fan-out idempotence, disabling, retention."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dockyard.catalog.service import CatalogService, parse_repository_name
from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.events.outbox import EventLog, Subject
from dockyard.jobs.queue import JobQueue
from dockyard.origin import Origin
from dockyard.secretbox import SecretBox
from dockyard.webhooks.client import Attempt
from dockyard.webhooks.guard import AddressGuard
from dockyard.webhooks.service import Scope, WebhookInput, WebhookService
from dockyard.webhooks.triggers import Trigger

SCOPE = Scope("team", "app")


@pytest.fixture
def world(database: Database) -> tuple[CatalogService, WebhookService, EventLog]:
    jobs = JobQueue(database)
    changes = Changes(database, jobs)
    catalog = CatalogService(database, changes)
    hooks = WebhookService(
        database,
        changes,
        jobs,
        SecretBox.load_or_create(database),
        AddressGuard([ipaddress.ip_network("127.0.0.0/8")]),
        region="local",
        tz=UTC,
        retry_delays=[0.1],
        timeout=1,
    )
    events = EventLog(database, jobs)
    events.listen(hooks.fan_out)
    catalog.create_namespace(Origin(), "team")
    catalog.create_repository(Origin(), parse_repository_name("team/app"))
    return catalog, hooks, events


def _pending_jobs(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(t.jobs.c.kind == "webhooks.deliver")
            ).scalar_one()
        )


def test_fan_out_twice_makes_one_delivery(
    world: tuple[CatalogService, WebhookService, EventLog],
) -> None:
    catalog, hooks, events = world
    hook, _ = hooks.create(Origin(), SCOPE, WebhookInput(name="h", url="http://127.0.0.1:9/"))
    with catalog.changes.open(Origin(actor="pusher")) as change:
        pushed = change.emit("push", Subject(None, "team", "app", tag="1.0", digest="sha256:x"))
    events.fan_out(pushed)
    events.fan_out(pushed)  # a job may run twice after a lease expiry
    [delivery] = hooks.deliveries(SCOPE, hook.id)
    assert delivery.status == "pending"
    assert delivery.event_id == pushed
    assert _pending_jobs(catalog.db) == 1


def test_events_from_before_a_webhook_existed_are_not_delivered(
    world: tuple[CatalogService, WebhookService, EventLog],
) -> None:
    _, hooks, events = world
    [created] = events.list(None, types=["repository_create"])  # before the webhook
    hook, _ = hooks.create(
        Origin(),
        SCOPE,
        WebhookInput(name="h", url="http://127.0.0.1:9/", events=("repository_create",)),
    )
    events.fan_out(created.id)
    assert hooks.deliveries(SCOPE, hook.id) == []


def test_three_days_of_failures_disable_the_webhook(
    world: tuple[CatalogService, WebhookService, EventLog],
) -> None:
    catalog, hooks, events = world
    hook, _ = hooks.create(
        Origin(), SCOPE, WebhookInput(name="h", url="http://127.0.0.1:9/", trigger=Trigger("all"))
    )
    with catalog.db.write() as conn:
        conn.execute(
            sa.update(t.webhooks).values(failing_since=utcnow() - timedelta(days=3, minutes=1))
        )
        delivery_id = conn.execute(
            sa.insert(t.webhook_deliveries).values(
                webhook_id=hook.id,
                event_type="push",
                status="retrying",
                created_at=utcnow(),
                updated_at=utcnow(),
                request_body="{}",
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    failed = Attempt(datetime.now(UTC), 503, 12)
    hooks._record_attempt(delivery_id, failed, {}, last=False)
    found = hooks.get(SCOPE, hook.id)
    assert not found.enabled
    assert "for 3 days" in found.disabled_reason

    # Events for a disabled webhook are recorded, not sent.
    with catalog.changes.open(Origin(actor="pusher")) as change:
        event_id = change.emit("push", Subject(None, "team", "app", tag="1.0", digest="sha256:x"))
    events.fan_out(event_id)
    newest = hooks.deliveries(SCOPE, hook.id)[0]
    assert (newest.status, newest.event_id) == ("untriggered", event_id)
    assert "disabled" in newest.reason

    # Turned on again, it starts afresh.
    again = hooks.update(Origin(), SCOPE, hook.id, WebhookInput(enabled=True))
    assert again.enabled
    assert not again.disabled_reason


def test_retention_forgets_old_events_with_their_deliveries(
    world: tuple[CatalogService, WebhookService, EventLog],
) -> None:
    catalog, hooks, events = world
    hook, _ = hooks.create(
        Origin(),
        SCOPE,
        WebhookInput(name="h", url="http://127.0.0.1:9/"),
    )
    with catalog.changes.open(Origin(actor="pusher")) as change:
        pushed = change.emit("push", Subject(None, "team", "app", tag="1.0", digest="sha256:x"))
    events.fan_out(pushed)
    assert len(hooks.deliveries(SCOPE, hook.id)) == 1
    assert events.purge(utcnow() - timedelta(days=1)) == 0
    assert events.purge(utcnow() + timedelta(seconds=1)) == 2
    assert events.list(None) == []
    assert hooks.deliveries(SCOPE, hook.id) == []
