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

import re
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dockyard.iam import actions
from dockyard.iam.policy import (
    Policy,
    PrefixMatch,
    RequestFacts,
    evaluate,
    prefix_match,
    wildcard_match,
)


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


def allowed_actions(
    principal: Principal,
    candidates: Sequence[str],
    resources: Sequence[Resource],
    context: Context | None = None,
) -> list[tuple[str, ...]]:
    """For each resource, the ``candidates`` the principal may do on it (in their order):
    what a listing says the caller may do with each item it returns.

    The same decision as :func:`is_allowed`, made once per *class* of resources rather
    than once per resource: resources the decision cannot tell apart (see
    :func:`resource_class`) share one evaluation of every candidate. A page of 100
    repositories under one ``cr:Get*`` policy costs one pass of resource patterns per
    repository and one evaluation of the candidates, not 100 of them.
    """
    decided: dict[Hashable, tuple[str, ...]] = {}
    found: list[tuple[str, ...]] = []
    for resource in resources:
        key = resource_class(principal, resource)
        allowed = decided.get(key)
        if allowed is None:
            allowed = tuple(a for a in candidates if is_allowed(principal, a, resource, context))
            decided[key] = allowed
        found.append(allowed)
    return found


def resource_class(principal: Principal, resource: Resource) -> Hashable:
    """What :func:`is_allowed` looks at in a resource, for this principal: whether it is
    public, whether it is in the principal's account, and which policy statements'
    ``Resource`` patterns match its ARN. Two resources with the same class get the same
    decision for every action (the action, the conditions and the expiry do not depend
    on the resource)."""
    if principal.is_admin:
        return ()
    account = resource_account(resource.arn)
    own = account in ("*", str(principal.account_id))
    if principal.is_root or principal.account_id is None:
        return (resource.public, own)
    documents = principal.policies
    if principal.session_policy is not None:
        documents = (*documents, principal.session_policy)
    matched = tuple(
        any(wildcard_match(pattern, resource.arn) for pattern in statement.resources)
        for policy in documents
        for statement in policy.statements
    )
    return (resource.public, own, matched)


class ScopedDecisions:
    """:func:`is_allowed` of one action for many resources whose ARNs share prefixes
    (``…:repository/ns/`` for the repositories of a namespace), decided once per prefix
    where the principal's policies cannot tell the resources under it apart.

    That is the case when the prefix fixes the resource's account (its ARN field) and
    every policy statement's ``Resource`` patterns either match every ARN made of the
    prefix and a non-empty rest of ``chars`` (a repository name), or none
    (:func:`policy.prefix_match`); the action, the conditions and the expiry do not
    depend on the resource. A catalog of 1,000 repositories in three namespaces then
    costs three evaluations, not 1,000. Under any other prefix (a pattern such as
    ``repository/ns/app-*``), or for a rest of other characters, each resource is
    decided on its own, so the answers are always those of :func:`is_allowed`.
    """

    def __init__(
        self,
        principal: Principal,
        action: str,
        context: Context | None = None,
        *,
        chars: frozenset[str] | None = None,
    ):
        self.principal = principal
        self.action = action
        self.context = context
        self.chars = chars
        self._rest = re.compile(
            ".+" if chars is None else "[" + re.escape("".join(sorted(chars))) + "]+", re.DOTALL
        )
        self._decided: dict[tuple[str, bool], bool] = {}
        self._uniform: dict[str, bool] = {}

    def is_allowed(self, prefix: str, rest: str, *, public: bool = False) -> bool:
        """``is_allowed(principal, action, Resource(prefix + rest, public), context)``."""
        key = (prefix, public)
        fits = self._rest.fullmatch(rest) is not None
        if fits:
            known = self._decided.get(key)
            if known is not None:
                return known
        allowed = is_allowed(
            self.principal, self.action, Resource(prefix + rest, public), self.context
        )
        if fits:
            uniform = self._uniform.get(prefix)
            if uniform is None:
                uniform = self._uniform[prefix] = self._is_uniform(prefix)
            if uniform:
                self._decided[key] = allowed
        return allowed

    def _is_uniform(self, prefix: str) -> bool:
        """Whether every resource under ``prefix`` (with a rest that fits) gets the same
        decision, given the same ``public``."""
        if prefix.count(":") < 4:
            return False  # the account field may not be whole yet
        principal = self.principal
        if principal.is_admin or principal.is_root or principal.account_id is None:
            return True  # only the account and ``public`` count
        documents = principal.policies
        if principal.session_policy is not None:
            documents = (*documents, principal.session_policy)
        for policy in documents:
            for statement in policy.statements:
                found = {prefix_match(p, prefix, self.chars) for p in statement.resources}
                if PrefixMatch.ALL not in found and found != {PrefixMatch.NONE}:
                    return False
        return True


def resource_account(arn: str) -> str:
    """The account field of ``acs:cr:$region:$account:…`` ("" when it is not an ARN)."""
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 and parts[0] == "acs" else ""
