"""The one authorization decision: may this principal do this action on this resource?

Every check in Dockyard — registry operations, token issuance, the management API,
the console and the CLI — calls :func:`is_allowed`. Today it knows the instance
administrator (everything), each account's root user (everything in its own account,
nothing in others') and anonymous callers (pull of public repositories); RAM users and
the policy engine (``iam.policy``) come next, without changing the callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dockyard.iam import actions
from dockyard.iam.policy import Policy, RequestFacts, evaluate


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["anonymous", "user"]
    name: str
    user_id: int | None = None
    account_id: int | None = None
    is_admin: bool = False
    """The instance administrator (root of the built-in account ``admin``)."""
    is_root: bool = False
    """The root user of ``account_id``: everything in that account, nothing elsewhere."""
    policies: tuple[Policy, ...] = ()
    """A RAM user's attached policies; they apply within its own account only."""

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
    if action == actions.PULL and resource.public:
        return True
    if principal.account_id is None:
        return False
    in_own_account = resource_account(resource.arn) in ("*", str(principal.account_id))
    if principal.is_root:
        return in_own_account
    if not in_own_account or not principal.policies:
        return False
    facts = RequestFacts(
        source_ip=context.source_ip if context else None,
        secure_transport=context.secure_transport if context else False,
        extra=context.extra if context else {},
    )
    return evaluate(principal.policies, action, resource.arn, facts).allowed


def resource_account(arn: str) -> str:
    """The account field of ``acs:cr:$region:$account:…`` ("" when it is not an ARN)."""
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 and parts[0] == "acs" else ""
