"""Who makes a change, and through which door.

Every write that others may react to carries an :class:`Origin`: the change, its audit
record and its event row then commit in one transaction (see :mod:`dockyard.changes`),
whatever the door it came through (management API, console, registry, CLI, a worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.audit import Decision


@dataclass(slots=True)
class Origin:
    actor: str = "system"
    """The login name of who acts (``anonymous`` for nobody signed in)."""
    account_id: int | None = None
    """The actor's own account."""
    request_id: str = ""
    client_address: str = ""
    decision: Decision | None = None
    """The authorization decision that let the change happen: written as the change's
    audit record, in its transaction."""
    status: int = 200
    """The outcome recorded with the audit record when the change commits (the HTTP
    status the route answers with)."""
    recorded: bool = field(default=False)
    """Set once a committed change has written the audit record, so that the request's
    middleware does not write it a second time."""
