"""What a webhook POSTs: the ``acr`` push payload or a CloudEvent (pure, no I/O).

The ``acr`` format copies the payload Alibaba Cloud Container Registry sends on push,
key for key, so receivers written for it (CI triggers, deploy bots) work unchanged;
that is why it carries constants such as ``repo_origin_type`` and why its times are
local wall-clock strings without a zone. Everything else is a CloudEvents 1.0
structured-mode event, whose ``data`` is the event as the API shows it.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Final, Literal

from dockyard.events.model import CLOUDEVENT_TYPES, PUSH, Event
from dockyard.oci.mediatypes import OCI_MANIFEST

PayloadFormat = Literal["acr", "cloudevents"]
ACR_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
SAMPLE_TAG: Final = "test"
SAMPLE_DIGEST: Final = "sha256:" + "0123456789abcdef" * 4
"""Well formed, so a receiver that parses digests accepts it, and recognisably fake."""
SAMPLE_ACTOR: Final = "dockyard"


def _aware(moment: datetime.datetime) -> datetime.datetime:
    """Event times are UTC; some databases (SQLite) hand them back without a zone, and
    ``astimezone`` would then take them for the server's local time."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def _acr_time(moment: datetime.datetime, tz: datetime.tzinfo) -> str:
    return _aware(moment).astimezone(tz).strftime(ACR_TIME_FORMAT)


def acr_payload(event: Event, *, region: str, tz: datetime.tzinfo) -> dict[str, Any]:
    """The ``acr`` body of a push event, exactly the keys ACR sends and no more.

    ``tz`` is the zone the times are written in (ACR writes its region's local time),
    since the format has no field for one.
    """
    if event.type != PUSH:
        raise ValueError(f"the acr format describes push events only, not {event.type}")
    created = event.repository_created_at or event.at
    return {
        "push_data": {
            "digest": event.digest,
            "pushed_at": _acr_time(event.at, tz),
            "tag": event.tag,
        },
        "repository": {
            "date_created": _acr_time(created, tz),
            "name": event.repository,
            "namespace": event.namespace,
            "region": region,
            "repo_authentication_type": "NO_CERTIFIED",
            "repo_full_name": event.repository_full_name,
            "repo_origin_type": "NO_CERTIFIED",
            "repo_type": "PUBLIC" if event.repository_public else "PRIVATE",
        },
    }


def _rfc3339_utc(moment: datetime.datetime) -> str:
    utc = _aware(moment).astimezone(datetime.UTC)
    return utc.replace(tzinfo=None).isoformat() + "Z"


def cloudevent(event: Event, *, source: str) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object.

    ``subject`` names the repository and, when the event has one, the tag
    (``team/app:1.0``) or else the digest (``team/app@sha256:…``), so a receiver can
    route on it without opening ``data``.
    """
    subject = event.repository_full_name
    if event.tag:
        subject += f":{event.tag}"
    elif event.digest:
        subject += f"@{event.digest}"
    return {
        "specversion": "1.0",
        "id": str(event.id),
        "source": source,
        "type": CLOUDEVENT_TYPES[event.type],
        "time": _rfc3339_utc(event.at),
        "datacontenttype": "application/json",
        "subject": subject,
        "data": event.data(),
    }


def render(
    event: Event,
    fmt: PayloadFormat,
    *,
    region: str,
    tz: datetime.tzinfo,
    source: str,
) -> bytes:
    """The delivery body: compact UTF-8 JSON, the bytes that are signed and sent.

    A webhook set to ``acr`` still receives events ACR has no payload for (deletions,
    scans) as CloudEvents rather than not at all; the ``type`` key tells them apart.
    """
    if fmt == "acr" and event.type == PUSH:
        payload = acr_payload(event, region=region, tz=tz)
    else:
        payload = cloudevent(event, source=source)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sample_push_event(
    namespace: str,
    repository: str,
    *,
    public: bool,
    created_at: datetime.datetime | None,
    account_id: int | None,
) -> Event:
    """A push event for the console's "test" button: it shows a receiver the real shape
    without anything having been pushed. Its id is 0, which no stored event has."""
    return Event(
        id=0,
        type=PUSH,
        at=datetime.datetime.now(datetime.UTC),
        account_id=account_id,
        namespace=namespace,
        repository=repository,
        tag=SAMPLE_TAG,
        digest=SAMPLE_DIGEST,
        media_type=OCI_MANIFEST,
        size=0,
        actor=SAMPLE_ACTOR,
        request_id="",
        client_address="",
        repository_public=public,
        repository_created_at=created_at,
    )
