"""Policy documents: parse, validate and evaluate, with no I/O.

A document is ``{"Version": "1", "Statement": [...]}``; each statement has ``Effect``
(``Allow`` or ``Deny``), ``Action`` and ``Resource`` (a string or a list; ``*`` matches
any run of characters and ``?`` one character), and optionally ``Condition``:
``{"<Operator>": {"<key>": value or [values]}}``. Operators: ``IpAddress`` and
``NotIpAddress`` (on ``acs:SourceIp``, addresses or CIDR blocks), ``DateLessThan`` and
``DateGreaterThan`` (on ``acs:CurrentTime``, ISO 8601), ``Bool`` (on
``acs:SecureTransport``), ``StringEquals`` and ``StringLike`` (any key). Within a
condition every operator and every key must hold; a key with several values holds when
any value matches (for the ``Not…`` operator: when none does).

Evaluation: an explicit Deny beats any Allow; no matching Allow means denied. Actions
match without regard to case (``cr:pullrepository`` is ``cr:PullRepository``); resource
names match exactly.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard import jsontext

VERSION = "1"
MAX_DOCUMENT_BYTES = 6 * 1024


class PolicyError(ValueError):
    """A policy document is malformed; the message names the bad field."""


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    """An explicit Deny statement matched."""
    IMPLICIT_DENY = "implicit-deny"
    """No statement allowed the request."""

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What conditions may look at; keys are the ``acs:`` condition keys."""

    source_ip: str | None = None
    secure_transport: bool = False
    current_time: datetime | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        lowered = key.lower()
        if lowered == "acs:sourceip":
            return self.source_ip
        if lowered == "acs:securetransport":
            return "true" if self.secure_transport else "false"
        if lowered == "acs:currenttime":
            return (self.current_time or datetime.now(UTC)).isoformat()
        return self.extra.get(key)


@functools.lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters (none included), ``?`` exactly one."""
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


class PrefixMatch(enum.Enum):
    """How a wildcard pattern treats every value that starts with a given prefix."""

    ALL = "all"
    """It matches every one of them."""
    NONE = "none"
    """It matches none of them."""
    SOME = "some"
    """It may match some and not others (or all, in a way this cannot tell)."""


@functools.lru_cache(maxsize=4096)
def prefix_match(pattern: str, prefix: str, chars: frozenset[str] | None = None) -> PrefixMatch:
    """Whether :func:`wildcard_match` of ``pattern`` against ``prefix + rest`` is the same
    for every non-empty ``rest`` made of ``chars`` (None: of any characters), and which
    way.

    Runs the pattern's automaton over the prefix: the positions in the pattern it can be
    at after reading it. One with only ``*`` after it: every rest matches (the star
    takes whatever follows). None from which the end can be reached on a non-empty rest
    (the pattern's remaining literals must all be in ``chars``; ``?`` and ``*`` take
    any): no rest matches. Anything else can go either way, depending on the rest.
    ``ALL`` and ``NONE`` are exact; ``SOME`` is the cautious answer, so callers decide
    such values one by one. Listings use this to decide once for a whole namespace
    (every ARN ``…:repository/ns/`` followed by a repository name, which has no ``:``
    nor ``/``, so that ``acs:cr:*:*:repository/other/*`` matches none of them).
    """
    size = len(pattern)

    def closure(states: set[int]) -> set[int]:
        # A star may match nothing: being before it is also being after it.
        todo, seen = list(states), set(states)
        while todo:
            at = todo.pop()
            if at < size and pattern[at] == "*" and at + 1 not in seen:
                seen.add(at + 1)
                todo.append(at + 1)
        return seen

    states = closure({0})
    for char in prefix:
        step: set[int] = set()
        for at in states:
            if at == size:
                continue
            wanted = pattern[at]
            if wanted == "*":
                step.add(at)
            elif wanted in ("?", char):
                step.add(at + 1)
        if not step:
            return PrefixMatch.NONE
        states = closure(step)
    tails = [pattern[at:] for at in states if at < size]
    if any(tail == "*" * len(tail) for tail in tails):
        return PrefixMatch.ALL
    if chars is not None:
        tails = [tail for tail in tails if all(c in "*?" or c in chars for c in tail)]
    return PrefixMatch.SOME if tails else PrefixMatch.NONE


# -- conditions ------------------------------------------------------------------------


def _parse_time(text: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PolicyError(f"{where}: {text!r} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_network(text: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PolicyError(f"{where}: {text!r} is not an IP address or CIDR block") from exc


def _in_networks(value: str, networks: tuple[Any, ...]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in net for net in networks)


@dataclass(frozen=True, slots=True)
class _Test:
    """One operator applied to one key: holds when ``check(facts)`` is true."""

    key: str
    check: Callable[[str | None], bool]


def _operator_test(operator: str, key: str, values: tuple[str, ...], where: str) -> _Test:
    op = operator.lower()
    if op in ("ipaddress", "notipaddress"):
        networks = tuple(_parse_network(v, where) for v in values)
        negate = op == "notipaddress"
        return _Test(key, lambda v: v is not None and (_in_networks(v, networks) != negate))
    if op in ("datelessthan", "dategreaterthan"):
        times = tuple(_parse_time(v, where) for v in values)
        less = op == "datelessthan"

        def check_time(v: str | None) -> bool:
            if v is None:
                return False
            now = _parse_time(v, where)
            return any(now < t if less else now > t for t in times)

        return _Test(key, check_time)
    if op == "bool":
        for v in values:
            if v.lower() not in ("true", "false"):
                raise PolicyError(f"{where}: Bool takes true or false, not {v!r}")
        wanted = {v.lower() for v in values}
        return _Test(key, lambda v: v is not None and v.lower() in wanted)
    if op == "stringequals":
        return _Test(key, lambda v: v is not None and v in values)
    if op == "stringnotequals":
        return _Test(key, lambda v: v is None or v not in values)
    if op == "stringlike":
        return _Test(key, lambda v: v is not None and any(wildcard_match(p, v) for p in values))
    raise PolicyError(
        f"{where}: unknown condition operator {operator!r} (IpAddress, NotIpAddress, "
        "DateLessThan, DateGreaterThan, Bool, StringEquals, StringNotEquals, StringLike)"
    )


# -- statements and documents ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    tests: tuple[_Test, ...] = ()
    principals: tuple[str, ...] = ()
    """Trust policies only: the identity ARNs (``acs:ram::$account:root``,
    ``acs:ram::$account:user/$name``, wildcards allowed) the statement is about."""

    def matches(self, action: str, resource: str, facts: RequestFacts) -> bool:
        return (
            any(wildcard_match(a, action, ignore_case=True) for a in self.actions)
            and any(wildcard_match(r, resource) for r in self.resources)
            and all(test.check(facts.value(test.key)) for test in self.tests)
        )


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]
    document: dict[str, Any]
    """The document as given (for display), after validation."""

    @property
    def document_json(self) -> str:
        return json.dumps(self.document)


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{where} must be a string or a non-empty list of strings")
    for item in raw:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"{where} must hold non-empty strings")
    return tuple(raw)


def _principals(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f'{where} must be an object such as {{"RAM": ["acs:ram::ACCOUNT:root"]}}')
    unknown = sorted(set(raw) - {"RAM"})
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]} is not a principal type (RAM)")
    arns = _strings(raw["RAM"], f"{where}.RAM")
    for arn in arns:
        if not re.fullmatch(r"acs:ram::[0-9*?]+:(root|user/.+|assumed-role/.+)", arn):
            raise PolicyError(
                f"{where}.RAM: {arn!r} must be acs:ram::ACCOUNT:root or acs:ram::ACCOUNT:user/NAME"
            )
    return arns


def _statement(raw: Any, where: str, *, trust: bool = False) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    allowed_keys = {"Effect", "Action", "Condition", "Sid"}
    allowed_keys |= {"Principal"} if trust else {"Resource"}
    unknown = sorted(set(raw) - allowed_keys)
    if unknown:
        raise PolicyError(
            f"{where}.{unknown[0]} is not a statement field ({', '.join(sorted(allowed_keys))})"
        )
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}.Effect must be "Allow" or "Deny"')
    actions = _strings(raw.get("Action"), f"{where}.Action")
    for action in actions:
        if action != "*" and not re.fullmatch(r"[A-Za-z0-9*?]+:[A-Za-z0-9*?]+", action):
            raise PolicyError(
                f"{where}.Action: {action!r} must look like service:Verb (e.g. cr:PullRepository)"
            )
    if trust:
        principals = _principals(raw.get("Principal"), f"{where}.Principal")
        resources: tuple[str, ...] = ("*",)
    else:
        principals = ()
        resources = _strings(raw.get("Resource"), f"{where}.Resource")
    tests: list[_Test] = []
    condition = raw.get("Condition")
    if condition is not None:
        if not isinstance(condition, dict) or not condition:
            raise PolicyError(f"{where}.Condition must be a non-empty object")
        for operator, block in condition.items():
            here = f"{where}.Condition.{operator}"
            if not isinstance(block, dict) or not block:
                raise PolicyError(f"{here} must map condition keys to values")
            for key, raw_value in block.items():
                # JSON true/false are accepted for Bool conditions, as "true"/"false".
                value = str(raw_value).lower() if isinstance(raw_value, bool) else raw_value
                values = _strings(value, f"{here}.{key}")
                tests.append(_operator_test(operator, key, values, f"{here}.{key}"))
    return Statement(effect, actions, resources, tuple(tests), principals)


def parse_policy(document: str | bytes | dict[str, Any], *, trust: bool = False) -> Policy:
    """Validate a policy document; raise :class:`PolicyError` naming the bad field.

    ``trust=True`` reads a role's trust policy: statements name a ``Principal``
    (``{"RAM": [identity ARNs]}``) instead of a ``Resource``, and the action is
    ``sts:AssumeRole``.
    """
    if isinstance(document, str | bytes):
        if len(document) > MAX_DOCUMENT_BYTES:
            raise PolicyError(f"a policy document has at most {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = jsontext.loads(document)
        except jsontext.TooDeep as exc:
            raise PolicyError(f"the policy document is refused: its {exc}") from exc
        except ValueError as exc:
            raise PolicyError(f"the policy document is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError("the policy document must be a JSON object")
    unknown = sorted(set(document) - {"Version", "Statement"})
    if unknown:
        raise PolicyError(f"{unknown[0]} is not a policy field (Version, Statement)")
    if document.get("Version") != VERSION:
        raise PolicyError(f'Version must be "{VERSION}"')
    raw = document.get("Statement")
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Statement must be a non-empty list")
    statements = tuple(_statement(s, f"Statement[{i}]", trust=trust) for i, s in enumerate(raw))
    return Policy(statements, document)


def evaluate(
    policies: Iterable[Policy], action: str, resource: str, facts: RequestFacts | None = None
) -> Decision:
    """Explicit Deny beats Allow; nothing allowed means denied."""
    facts = facts or RequestFacts()
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            if not statement.matches(action, resource, facts):
                continue
            if statement.effect == "Deny":
                return Decision.DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def trusts(
    trust_policy: Policy, caller_arns: Iterable[str], facts: RequestFacts | None = None
) -> bool:
    """Whether a role's trust policy lets any of the caller's identity ARNs assume it:
    an explicit Deny beats any Allow, nothing allowed means no."""
    facts = facts or RequestFacts()
    arns = tuple(caller_arns)
    allowed = False
    for statement in trust_policy.statements:
        if not (
            any(wildcard_match(a, "sts:AssumeRole", ignore_case=True) for a in statement.actions)
            and any(wildcard_match(p, arn) for p in statement.principals for arn in arns)
            and all(test.check(facts.value(test.key)) for test in statement.tests)
        ):
            continue
        if statement.effect == "Deny":
            return False
        allowed = True
    return allowed


FULL_ACCESS = parse_policy(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:*", "Resource": "*"}]}
)
READ_ONLY_ACCESS = parse_policy(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["cr:Get*", "cr:List*", "cr:PullRepository"],
                "Resource": "*",
            }
        ],
    }
)
SYSTEM_POLICIES = {
    "AliyunContainerRegistryFullAccess": FULL_ACCESS,
    "AliyunContainerRegistryReadOnlyAccess": READ_ONLY_ACCESS,
}
