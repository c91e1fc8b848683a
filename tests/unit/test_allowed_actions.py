"""``iam.authz.allowed_actions``: what a listing says the caller may do with each item.

It must say exactly what :func:`is_allowed` says for each (action, resource) — checked
against the naive one-by-one decision for random policies, principals and resources —
while evaluating policies once per class of resources, not once per resource.
"""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.iam import actions
from dockyard.iam.arn import repository_arn
from dockyard.iam.authz import (
    Principal,
    Resource,
    allowed_actions,
    is_allowed,
    resource_class,
)
from dockyard.iam.policy import READ_ONLY_ACCESS, Policy, parse_policy
from tests.unit.strategies import policies

ACCOUNT = 7


def _repos(count: int, namespace: str = "team", account: int = ACCOUNT) -> list[Resource]:
    return [
        Resource(repository_arn("local", account, namespace, f"app{i}"), public=i % 5 == 0)
        for i in range(count)
    ]


def _ram_user(*policies: Policy, session: Policy | None = None) -> Principal:
    return Principal(
        "user",
        "reader",
        user_id=3,
        account_id=ACCOUNT,
        policies=policies,
        session_policy=session,
    )


def test_a_read_only_user_gets_the_read_actions_on_every_repository() -> None:
    reader = _ram_user(READ_ONLY_ACCESS)
    resources = _repos(100)
    found = allowed_actions(reader, actions.REPOSITORY_ACTIONS, resources)
    assert len(found) == 100
    expected = {a for a in actions.REPOSITORY_ACTIONS if a.startswith(("cr:Get", "cr:List"))}
    expected.add(actions.PULL)
    assert all(set(a) == expected for a in found)
    # One class of resources for the policy (public or not: the read-only policy allows
    # the pull anyway, but the class keeps them apart, which costs one more pass).
    assert len({resource_class(reader, r) for r in resources}) == 2


def test_one_repository_denied_is_told_apart() -> None:
    deny_one = parse_policy(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "cr:*", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": "cr:Delete*",
                    "Resource": "acs:cr:*:*:repository/team/app3",
                },
            ],
        }
    )
    user = _ram_user(deny_one)
    found = allowed_actions(user, actions.REPOSITORY_ACTIONS, _repos(10))
    assert "cr:DeleteRepository" not in found[3]
    assert all("cr:DeleteRepository" in a for i, a in enumerate(found) if i != 3)


def test_roots_and_the_administrator() -> None:
    root = Principal("user", "acme", user_id=1, account_id=ACCOUNT, is_root=True)
    admin = Principal("user", "admin", user_id=2, account_id=1, is_admin=True, is_root=True)
    mine, theirs = _repos(3), _repos(3, account=ACCOUNT + 1)
    assert (
        allowed_actions(root, actions.REPOSITORY_ACTIONS, mine) == [actions.REPOSITORY_ACTIONS] * 3
    )
    # Another account's repositories: a public one may be pulled, nothing else.
    assert allowed_actions(root, actions.REPOSITORY_ACTIONS, theirs) == [(actions.PULL,), (), ()]
    assert (
        allowed_actions(admin, actions.REPOSITORY_ACTIONS, theirs)
        == [actions.REPOSITORY_ACTIONS] * 3
    )


def test_grouping_saves_the_evaluations() -> None:
    """A figure, not a limit: the grouped answer against the naive one for 100
    repositories under a policy of several statements."""
    policy = parse_policy(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": ["cr:Get*", "cr:List*"], "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "cr:*",
                    "Resource": "acs:cr:*:*:repository/team/*",
                },
                {"Effect": "Deny", "Action": "cr:Delete*", "Resource": "acs:cr:*:*:repository/x/*"},
            ],
        }
    )
    user = _ram_user(policy)
    resources = _repos(100)
    started = time.perf_counter()
    grouped = allowed_actions(user, actions.REPOSITORY_ACTIONS, resources)
    grouped_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive = [
        tuple(a for a in actions.REPOSITORY_ACTIONS if is_allowed(user, a, r)) for r in resources
    ]
    naive_seconds = time.perf_counter() - started
    assert grouped == naive
    print(
        f"100 repositories: grouped {grouped_seconds * 1e3:.2f} ms, "
        f"naive {naive_seconds * 1e3:.2f} ms"
    )


_POLICIES = policies(
    [
        "*",
        "acs:cr:*:*:repository/team/*",
        "acs:cr:*:*:repository/team/app1",
        "acs:cr:*:*:repository/other/*",
        "acs:cr:*:7:repository/*/app?",
        "acs:cr:local:8:repository/team/*",
    ],
    ["cr:*", "cr:Get*", "cr:Delete*", "cr:PullRepository", "cr:Push*"],
)


@settings(max_examples=150, deadline=None)
@given(
    policies=st.lists(_POLICIES, min_size=0, max_size=2),
    session=st.none() | _POLICIES,
    kind=st.sampled_from(["ram", "root", "other-root", "anonymous"]),
    namespaces=st.lists(st.sampled_from(["team", "other"]), min_size=1, max_size=6),
    accounts=st.lists(st.sampled_from([7, 8]), min_size=1, max_size=6),
)
def test_the_same_answer_as_one_by_one(
    policies: list[Policy],
    session: Policy | None,
    kind: str,
    namespaces: list[str],
    accounts: list[int],
) -> None:
    principal = {
        "ram": _ram_user(*policies, session=session),
        "root": Principal("user", "acme", user_id=1, account_id=7, is_root=True),
        "other-root": Principal("user", "globex", user_id=9, account_id=8, is_root=True),
        "anonymous": Principal("anonymous", ""),
    }[kind]
    resources = [
        Resource(repository_arn("local", account, ns, f"app{i}"), public=i % 2 == 0)
        for i, (ns, account) in enumerate(zip(namespaces, accounts * 6, strict=False))
    ]
    found = allowed_actions(principal, actions.REPOSITORY_ACTIONS, resources)
    naive = [
        tuple(a for a in actions.REPOSITORY_ACTIONS if is_allowed(principal, a, r))
        for r in resources
    ]
    assert found == naive
