"""Webhook payloads: the acr push body key for key, CloudEvents, rendering, the sample."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dockyard.events.model import CLOUDEVENT_TYPES, EVENT_TYPES, Event
from dockyard.oci.digest import Digest
from dockyard.oci.mediatypes import OCI_MANIFEST
from dockyard.webhooks.payloads import (
    acr_payload,
    cloudevent,
    render,
    sample_push_event,
)

DIGEST = "sha256:" + "ab" * 32
SHANGHAI = timezone(timedelta(hours=8))

PUSH = Event(
    id=42,
    type="push",
    at=datetime(2026, 12, 3, 0, 12, 45, 123456, tzinfo=UTC),
    account_id=7,
    namespace="team",
    repository="app",
    tag="1.0",
    digest=DIGEST,
    media_type=OCI_MANIFEST,
    size=1234,
    actor="alice",
    request_id="req-1",
    client_address="203.0.113.9",
    repository_public=False,
    repository_created_at=datetime(2026, 11, 30, 2, 2, 11, tzinfo=UTC),
)


def test_acr_payload_is_exactly_the_acr_shape() -> None:
    assert acr_payload(PUSH, region="local", tz=SHANGHAI) == {
        "push_data": {"digest": DIGEST, "pushed_at": "2026-12-03 08:12:45", "tag": "1.0"},
        "repository": {
            "date_created": "2026-11-30 10:02:11",
            "name": "app",
            "namespace": "team",
            "region": "local",
            "repo_authentication_type": "NO_CERTIFIED",
            "repo_full_name": "team/app",
            "repo_origin_type": "NO_CERTIFIED",
            "repo_type": "PRIVATE",
        },
    }


def test_acr_times_follow_the_zone_and_fall_back_to_the_event_time() -> None:
    event = replace(PUSH, repository_created_at=None, repository_public=True)
    in_utc = acr_payload(event, region="eu-1", tz=UTC)
    assert in_utc["push_data"]["pushed_at"] == "2026-12-03 00:12:45"
    assert in_utc["repository"]["date_created"] == "2026-12-03 00:12:45"
    assert in_utc["repository"]["repo_type"] == "PUBLIC"
    assert in_utc["repository"]["region"] == "eu-1"
    west = acr_payload(event, region="x", tz=timezone(timedelta(hours=-5)))
    assert west["push_data"]["pushed_at"] == "2026-12-02 19:12:45"  # the day before


def test_naive_times_are_taken_as_utc() -> None:
    naive = replace(PUSH, at=datetime(2026, 12, 3, 0, 12, 45), repository_created_at=None)
    assert acr_payload(naive, region="r", tz=SHANGHAI)["push_data"]["pushed_at"] == (
        "2026-12-03 08:12:45"
    )
    assert cloudevent(naive, source="s")["time"] == "2026-12-03T00:12:45Z"


def test_acr_payload_is_for_push_events_only() -> None:
    with pytest.raises(ValueError, match="push events only"):
        acr_payload(replace(PUSH, type="tag_delete"), region="r", tz=UTC)


def test_cloudevent_is_a_structured_cloudevent() -> None:
    event = cloudevent(PUSH, source="https://registry.example/team")
    assert event == {
        "specversion": "1.0",
        "id": "42",
        "source": "https://registry.example/team",
        "type": "com.dockyard.image.pushed",
        "time": "2026-12-03T00:12:45.123456Z",
        "datacontenttype": "application/json",
        "subject": "team/app:1.0",
        "data": PUSH.data(),
    }


def test_cloudevent_time_is_utc_whatever_the_input_zone() -> None:
    event = replace(PUSH, at=datetime(2026, 12, 3, 8, 12, 45, tzinfo=SHANGHAI))
    assert cloudevent(event, source="s")["time"] == "2026-12-03T00:12:45Z"


@pytest.mark.parametrize(
    ("tag", "digest", "repository", "subject"),
    [
        ("1.0", DIGEST, "app", "team/app:1.0"),
        ("", DIGEST, "app", f"team/app@{DIGEST}"),
        ("", "", "app", "team/app"),
        ("", "", "", "team"),
    ],
)
def test_cloudevent_subject(tag: str, digest: str, repository: str, subject: str) -> None:
    event = replace(PUSH, type="manifest_push", tag=tag, digest=digest, repository=repository)
    assert cloudevent(event, source="s")["subject"] == subject


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_cloudevent_type(event_type: str) -> None:
    event = replace(PUSH, type=event_type)
    assert cloudevent(event, source="s")["type"] == CLOUDEVENT_TYPES[event_type]


def test_render_is_compact_utf8_json() -> None:
    body = render(PUSH, "acr", region="local", tz=SHANGHAI, source="s")
    assert b", " not in body
    assert b": " not in body
    assert body.startswith(b'{"push_data":{"digest":"sha256:')
    assert json.loads(body) == acr_payload(PUSH, region="local", tz=SHANGHAI)
    unicode = replace(PUSH, actor="zoë")
    assert "zoë".encode() in render(unicode, "cloudevents", region="r", tz=UTC, source="s")


def test_render_sends_cloudevents_for_what_acr_has_no_payload_for() -> None:
    deleted = replace(PUSH, type="tag_delete")
    acr = json.loads(render(deleted, "acr", region="r", tz=UTC, source="src"))
    assert acr == cloudevent(deleted, source="src")
    ce = json.loads(render(PUSH, "cloudevents", region="r", tz=UTC, source="src"))
    assert ce == cloudevent(PUSH, source="src")


def test_sample_push_event_has_the_push_shape() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = sample_push_event("team", "app", public=True, created_at=created, account_id=7)
    assert (event.id, event.type, event.tag, event.actor) == (0, "push", "test", "dockyard")
    assert event.media_type == OCI_MANIFEST
    assert str(Digest.parse(event.digest)) == event.digest
    assert event.repository_full_name == "team/app"
    assert event.at.tzinfo is not None
    payload = acr_payload(event, region="local", tz=UTC)
    assert payload["repository"]["repo_type"] == "PUBLIC"
    assert payload["repository"]["date_created"] == "2026-01-02 03:04:05"
    assert payload["push_data"]["tag"] == "test"
