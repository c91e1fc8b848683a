"""The one authorization decision: may this principal do this action on this resource?

Every check in Dockyard — registry operations, token issuance, the management API,
the console and the CLI — calls :func:`is_allowed`. Today it knows the instance
administrator (everything) and anonymous callers (pull of public repositories); the
policy engine replaces its insides without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dockyard.iam import actions


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["anonymous", "user"]
    name: str
    user_id: int | None = None
    account_id: int | None = None
    is_admin: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous", "")


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action is done to: its ARN, plus facts the decision may depend on."""

    arn: str
    public: bool = False
    """A public repository: anyone may pull it."""


@dataclass(frozen=True, slots=True)
class Context:
    """Request facts policy conditions look at (source address, TLS, time)."""

    source_ip: str | None = None
    secure_transport: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def is_allowed(
    principal: Principal, action: str, resource: Resource, context: Context | None = None
) -> bool:
    if action not in actions.BY_NAME:
        raise ValueError(f"unknown action {action!r}; add it to dockyard.iam.actions")
    if principal.is_admin:
        return True
    return action == actions.PULL and resource.public
