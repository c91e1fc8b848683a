"""The batch authorization check: may the caller do these actions on these resources?

What ``POST /api/v1/authz/check`` answers, so that a client (the console first) shows
only what its user may do. Each check names an action of the catalogue and, in short
form, the resource it would be done to; the answer is :func:`iam.authz.is_allowed` on
the same ARN the route of that action would check, so a check and the route never
disagree. Resources, by the kind of action:

- namespace actions: ``namespace`` (absent: a namespace of any name, ``…/*``);
- repository actions: ``namespace/repository``, or ``namespace`` for a repository of
  any name in it (``…/namespace/*``: may I create repositories there?), absent for any
  repository; the permission actions on ``namespace`` ask about the namespace itself,
  as its permission routes do;
- RAM actions: a user, group, role or policy name of the caller's account (absent: any
  name); attaching and detaching policies: ``user/NAME``, ``group/NAME`` or ``role/NAME``;
- the audit log, the events and the instance's actions: no resource.

A resource that does not exist is the caller's account's, as a route would treat it
(creating it would make it so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.errors import Invalid
from dockyard.iam import actions
from dockyard.iam.arn import (
    audit_arn,
    events_arn,
    instance_arn,
    namespace_arn,
    ram_arn,
    repository_arn,
)
from dockyard.iam.authz import Context, Principal, Resource, is_allowed
from dockyard.oci.reference import NameError_, RepositoryName, check_component

MAX_CHECKS = 100
"""The most checks one request may ask: enough for any console page."""
MAX_RESOURCE_LENGTH = 300

Lookup = Callable[[str, str | None], tuple[int | None, bool]]
"""(namespace, repository or None) → (the owning account's id, None when the namespace
does not exist; whether the repository is public)."""

_RAM_KINDS = {
    actions.RAM_USER_ARN: "user",
    actions.RAM_GROUP_ARN: "group",
    actions.RAM_ROLE_ARN: "role",
    actions.RAM_POLICY_ARN: "policy",
}
_HOLDER_KINDS = ("user", "group", "role")
_ON_NAMESPACE = frozenset({actions.LIST_PERMISSIONS, actions.SET_PERMISSIONS})


@dataclass(frozen=True, slots=True)
class Check:
    action: str
    resource: str | None = None


def parse_checks(body: dict[str, Any]) -> list[Check]:
    """The ``checks`` of a request body; :class:`Invalid` naming the first bad item."""
    unknown = sorted(set(body) - {"checks"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}; the fields are checks")
    raw = body.get("checks")
    if not isinstance(raw, list) or not raw:
        raise Invalid('checks (a non-empty list of {"action": …, "resource": …}) is required')
    if len(raw) > MAX_CHECKS:
        raise Invalid(f"at most {MAX_CHECKS} checks per request, not {len(raw)}")
    found: list[Check] = []
    for index, item in enumerate(raw):
        where = f"checks[{index}]"
        if not isinstance(item, dict):
            raise Invalid(f"{where} must be an object with action and resource")
        extra = sorted(set(item) - {"action", "resource"})
        if extra:
            raise Invalid(f"{where}.{extra[0]} is not a check field (action, resource)")
        action, resource = item.get("action"), item.get("resource")
        if not isinstance(action, str) or action not in actions.BY_NAME:
            raise Invalid(f"{where}.action must be an action of the catalogue, not {action!r}")
        if resource is not None and (
            not isinstance(resource, str) or not 0 < len(resource) <= MAX_RESOURCE_LENGTH
        ):
            raise Invalid(
                f"{where}.resource must be a name of 1 to {MAX_RESOURCE_LENGTH} characters"
            )
        found.append(Check(action, resource))
    return found


class CheckService:
    """Answers checks for a principal: the resource named, resolved to the ARN the
    action's route checks (owners looked up once per name), then the one decision."""

    def __init__(self, region: str, lookup: Lookup) -> None:
        self.region = region
        self.lookup = lookup

    def check(
        self, principal: Principal, checks: list[Check], context: Context | None = None
    ) -> list[bool]:
        owners: dict[tuple[str, str | None], tuple[int | None, bool]] = {}

        def owner(namespace: str, repository: str | None) -> tuple[int | None, bool]:
            key = (namespace, repository)
            if key not in owners:
                owners[key] = self.lookup(namespace, repository)
            return owners[key]

        found = []
        for index, item in enumerate(checks):
            try:
                resource = self._resource(principal, item, owner)
            except (Invalid, NameError_) as exc:
                raise Invalid(f"checks[{index}].resource: {exc}") from exc
            found.append(is_allowed(principal, item.action, resource, context))
        return found

    def _resource(self, principal: Principal, item: Check, owner: Lookup) -> Resource:
        spec = actions.BY_NAME[item.action].resource
        mine: int | str = principal.account_id if principal.account_id is not None else "*"
        if spec in (actions.NAMESPACE_ARN, actions.REPOSITORY_ARN):
            return self._catalog(item, spec, mine, owner)
        if spec in _RAM_KINDS or spec == actions.RAM_ANY_ARN:
            return Resource(self._ram(item, spec, mine))
        if item.resource is not None:
            raise Invalid(f"{item.action} takes no resource")
        if spec == actions.AUDIT_ARN:
            return Resource(audit_arn(self.region, mine))
        if spec == actions.EVENTS_ARN:
            return Resource(events_arn(self.region, mine))
        return Resource(instance_arn(self.region))

    def _catalog(self, item: Check, spec: str, mine: int | str, owner: Lookup) -> Resource:
        on_namespace = spec == actions.NAMESPACE_ARN
        if item.resource is None:
            if on_namespace:
                return Resource(namespace_arn(self.region, mine, "*"))
            return Resource(repository_arn(self.region, mine, "*", "*"))
        namespace, slash, _ = item.resource.partition("/")
        if not slash:
            check_component(namespace, "namespace")
            account = owner(namespace, None)[0]
            where = mine if account is None else account
            if on_namespace or item.action in _ON_NAMESPACE:
                return Resource(namespace_arn(self.region, where, namespace))
            return Resource(repository_arn(self.region, where, namespace, "*"))
        if on_namespace:
            raise Invalid(f"{item.action} is done to a namespace: name one, not a repository")
        name = RepositoryName.parse(item.resource)
        account, public = owner(name.namespace, name.repository)
        where = mine if account is None else account
        arn = repository_arn(self.region, where, name.namespace, name.repository)
        return Resource(arn, public=public)

    @staticmethod
    def _ram(item: Check, spec: str, mine: int | str) -> str:
        text = item.resource
        if spec == actions.RAM_ANY_ARN:
            kind, slash, name = (text or "user/*").partition("/")
            if not slash or kind not in _HOLDER_KINDS or not name:
                raise Invalid(f"{item.action} takes user/NAME, group/NAME or role/NAME")
            return ram_arn(mine, kind, name)
        name = text or "*"
        if "/" in name:
            raise Invalid(f"{item.action} takes a {_RAM_KINDS[spec]} name")
        return ram_arn(mine, _RAM_KINDS[spec], name)
