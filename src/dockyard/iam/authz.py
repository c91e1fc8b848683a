"""The one authorization decision: may this principal do this action on this resource?

Every check in Dockyard — registry operations, token issuance, the management API,
the console and the CLI — calls :func:`is_allowed`:

- the instance administrator may do everything;
- anyone may pull a public repository (and nothing else without other permission);
- an account's root user may do everything in its own account and nothing in others';
- a RAM user may do what the policies attached to it and to its groups allow, within its
  own account (repository and namespace permissions are such policies, managed by the
  system); an explicit Deny beats any Allow;
- STS credentials act as their role (its attached policies) in the role's account, and
  an inline session policy can only narrow that: both must allow. Expired credentials
  may do nothing.
"""

from __future__ import annotations

import time
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
    """A RAM user's policies (its own and its groups'), or an STS session's role's; they
    apply within the principal's own account only."""
    session_policy: Policy | None = None
    """STS: the inline policy given to AssumeRole, which can only narrow."""
    expires_at: float | None = None
    """STS: when the credentials stop working (epoch seconds)."""
    account_name: str = ""
    arn: str = ""
    """The identity's ARN: ``acs:ram::$account:root``, ``…:user/$name`` or
    ``…:assumed-role/$role/$session`` (what trust policies and the audit log name)."""

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
    if principal.expires_at is not None and principal.expires_at <= time.time():
        return False
    # Assuming a role is asked of one's own account (may I assume roles?) whatever
    # account the role is in; the role's trust policy then decides on the other side.
    in_own_account = action in CROSS_ACCOUNT_ACTIONS or resource_account(resource.arn) in (
        "*",
        str(principal.account_id),
    )
    if principal.is_root:
        return in_own_account
    if not in_own_account or not principal.policies:
        return False
    facts = RequestFacts(
        source_ip=context.source_ip if context else None,
        secure_transport=context.secure_transport if context else False,
        extra=context.extra if context else {},
    )
    if not evaluate(principal.policies, action, resource.arn, facts).allowed:
        return False
    session = principal.session_policy
    return session is None or evaluate((session,), action, resource.arn, facts).allowed


CROSS_ACCOUNT_ACTIONS = frozenset({"sts:AssumeRole"})


def resource_account(arn: str) -> str:
    """The account field of ``acs:cr:$region:$account:…`` ("" when it is not an ARN)."""
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 and parts[0] == "acs" else ""
