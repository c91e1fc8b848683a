"""What happened: the event types and the shape of one event (pure, no I/O).

An event is written in the same transaction as the change it tells of (the
transactional outbox, :mod:`dockyard.events.outbox`), so a committed change always has
its event and a rolled-back one has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

EventType = Literal[
    "push",
    "manifest_push",
    "tag_delete",
    "manifest_delete",
    "repository_create",
    "repository_delete",
    "scan_completed",
    "build_completed",
]

PUSH: Final = "push"
"""A tag now points at a manifest."""
MANIFEST_PUSH: Final = "manifest_push"
"""A manifest pushed by digest alone (no tag moved)."""
TAG_DELETE: Final = "tag_delete"
MANIFEST_DELETE: Final = "manifest_delete"
REPOSITORY_CREATE: Final = "repository_create"
REPOSITORY_DELETE: Final = "repository_delete"
SCAN_COMPLETED: Final = "scan_completed"
BUILD_COMPLETED: Final = "build_completed"

EVENT_TYPES: Final[tuple[str, ...]] = (
    PUSH,
    MANIFEST_PUSH,
    TAG_DELETE,
    MANIFEST_DELETE,
    REPOSITORY_CREATE,
    REPOSITORY_DELETE,
    SCAN_COMPLETED,
    BUILD_COMPLETED,
)

CLOUDEVENT_TYPES: Final[dict[str, str]] = {
    PUSH: "com.dockyard.image.pushed",
    MANIFEST_PUSH: "com.dockyard.manifest.pushed",
    TAG_DELETE: "com.dockyard.tag.deleted",
    MANIFEST_DELETE: "com.dockyard.manifest.deleted",
    REPOSITORY_CREATE: "com.dockyard.repository.created",
    REPOSITORY_DELETE: "com.dockyard.repository.deleted",
    SCAN_COMPLETED: "com.dockyard.scan.completed",
    BUILD_COMPLETED: "com.dockyard.build.completed",
}
"""The CloudEvents ``type`` of each event type."""


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event. Empty strings (and ``size`` 0) stand for fields that do not
    apply to the type: a repository event has no tag or digest."""

    id: int
    type: str
    at: datetime
    """When the change committed (UTC)."""
    account_id: int | None
    namespace: str
    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    actor: str
    """The login name of who made the change (``anonymous`` for nobody signed in)."""
    request_id: str
    client_address: str
    repository_public: bool = False
    """Whether the repository was public when the event was written."""
    repository_created_at: datetime | None = None
    """When the repository was created (the ``acr`` webhook payload says so)."""
    detail: dict[str, Any] | None = None
    """What the type tells beyond the fields above (a build's status, tags, duration)."""

    @property
    def repository_full_name(self) -> str:
        return f"{self.namespace}/{self.repository}" if self.repository else self.namespace

    def data(self) -> dict[str, Any]:
        """The event's fields as JSON (the API's shape and CloudEvents ``data``)."""
        return {
            "id": self.id,
            "type": self.type,
            "time": _iso(self.at),
            "account_id": self.account_id,
            "namespace": self.namespace,
            "repository": self.repository,
            "tag": self.tag or None,
            "digest": self.digest or None,
            "media_type": self.media_type or None,
            "size": self.size or None,
            "actor": self.actor,
            "request_id": self.request_id or None,
            "client_address": self.client_address or None,
            **({"detail": self.detail} if self.detail else {}),
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
