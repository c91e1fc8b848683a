"""Listings decide once per namespace: ``policy.prefix_match`` and
``authz.ScopedDecisions``.

The shortcut must give exactly :func:`is_allowed`'s answer for every repository; checked
against the one-by-one decision for random patterns, policies, principals and
repositories, including patterns that tell a namespace's repositories apart.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.catalog.service import RepositoryEntry, repository_check
from dockyard.iam import actions
from dockyard.iam.arn import repository_arn
from dockyard.iam.authz import Principal, Resource, ScopedDecisions, is_allowed
from dockyard.iam.policy import (
    READ_ONLY_ACCESS,
    Policy,
    PrefixMatch,
    parse_policy,
    prefix_match,
    wildcard_match,
)
from dockyard.oci.reference import COMPONENT_CHARS
from tests.unit.strategies import policies

PREFIX = "acs:cr:local:7:repository/team/"


def test_prefix_match_on_the_patterns_policies_use() -> None:
    def match(pattern: str) -> PrefixMatch:
        return prefix_match(pattern, PREFIX, COMPONENT_CHARS)

    assert match("*") is PrefixMatch.ALL
    assert match("acs:cr:*:*:repository/team/*") is PrefixMatch.ALL
    assert match("acs:cr:*:*:repository/*") is PrefixMatch.ALL
    assert match("acs:cr:*:7:repository/*/*") is PrefixMatch.ALL
    assert match("acs:cr:*:*:repository/te*") is PrefixMatch.ALL
    assert match("acs:cr:*:*:repository/tea?/*") is PrefixMatch.ALL
    # A repository name has no ":" nor "/": the stars cannot reach another namespace.
    assert match("acs:cr:*:*:repository/other/*") is PrefixMatch.NONE
    assert match("acs:cr:local:8:repository/team/*") is PrefixMatch.NONE
    assert match("acs:cr:*:*:repository/team") is PrefixMatch.NONE
    assert match("acs:cr:*:*:repository/team/") is PrefixMatch.NONE
    assert match("acs:cr:*:*:repository/team/*/x") is PrefixMatch.NONE
    # Of any characters, a rest could hold ":" and "/": nothing to say.
    assert prefix_match("acs:cr:*:*:repository/other/*", PREFIX) is PrefixMatch.SOME
    # These depend on the repository's own name.
    assert match("acs:cr:*:*:repository/team/app-*") is PrefixMatch.SOME
    assert match("acs:cr:*:*:repository/team/app?") is PrefixMatch.SOME
    assert match("acs:cr:*:7:repository/*/app") is PrefixMatch.SOME
    assert match("*/x") is PrefixMatch.SOME


_REST_CHARS = "ab."
_ALPHABET = _REST_CHARS + "/:"


@settings(max_examples=1500, deadline=None)
@given(
    pattern=st.text(alphabet=_ALPHABET + "*?", max_size=8),
    prefix=st.text(alphabet=_ALPHABET, max_size=6),
    rests=st.lists(st.text(alphabet=_REST_CHARS, min_size=1, max_size=5), min_size=1),
    any_rests=st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=5), min_size=1),
)
def test_prefix_match_is_exact_when_it_says_all_or_none(
    pattern: str, prefix: str, rests: list[str], any_rests: list[str]
) -> None:
    for chars, tried in ((frozenset(_REST_CHARS), rests), (None, rests + any_rests)):
        found = prefix_match(pattern, prefix, chars)
        matched = {wildcard_match(pattern, prefix + rest) for rest in tried}
        if found is PrefixMatch.ALL:
            assert matched == {True}
        elif found is PrefixMatch.NONE:
            assert matched == {False}


def _ram_user(*policies: Policy, session: Policy | None = None) -> Principal:
    return Principal(
        "user", "reader", user_id=3, account_id=7, policies=policies, session_policy=session
    )


def test_one_evaluation_per_namespace_under_namespace_wide_policies() -> None:
    policy = parse_policy(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cr:PullRepository",
                    "Resource": ["acs:cr:*:*:repository/team/*", "acs:cr:*:*:repository/x/*"],
                },
                {"Effect": "Deny", "Action": "cr:*", "Resource": "acs:cr:*:*:repository/x/*"},
            ],
        }
    )
    decisions = ScopedDecisions(
        _ram_user(policy, READ_ONLY_ACCESS), actions.PULL, chars=COMPONENT_CHARS
    )
    for namespace, allowed in (("team", True), ("x", False), ("other", True)):
        prefix = repository_arn("local", 7, namespace, "")
        assert all(decisions.is_allowed(prefix, f"app{i}") is allowed for i in range(100))
    # Three namespaces, not public: three decisions remembered, one per namespace.
    assert len(decisions._decided) == 3


def test_a_pattern_within_a_namespace_is_decided_per_repository() -> None:
    policy = parse_policy(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "cr:*", "Resource": "acs:cr:*:*:repository/team/*"},
                {
                    "Effect": "Deny",
                    "Action": "cr:Pull*",
                    "Resource": "acs:cr:*:*:repository/team/secret-*",
                },
            ],
        }
    )
    decisions = ScopedDecisions(_ram_user(policy), actions.PULL, chars=COMPONENT_CHARS)
    prefix = repository_arn("local", 7, "team", "")
    names = ["app", "secret-1", "secrets", "secret-", "z"]
    assert [decisions.is_allowed(prefix, n) for n in names] == [True, False, True, False, True]
    assert not decisions._decided


_POLICIES = policies(
    [
        "*",
        "acs:cr:*:*:repository/team/*",
        "acs:cr:*:*:repository/team/app1",
        "acs:cr:*:*:repository/team/app?",
        "acs:cr:*:*:repository/team/b*",
        "acs:cr:*:*:repository/other/*",
        "acs:cr:*:*:repository/*/app?",
        "acs:cr:*:7:repository/*/app?",
        "acs:cr:*:*:repository/t*",
        "acs:cr:local:8:repository/team/*",
        "acs:cr:*:*:repository/*",
    ],
    ["cr:*", "cr:Get*", "cr:Delete*", "cr:PullRepository", "cr:List*"],
)
_ENTRIES = st.lists(
    st.tuples(
        st.sampled_from(["team", "other", "tx"]),
        st.sampled_from(["app1", "app2", "b", "bx", "c", "", "B:x", "a/b"]),
        st.sampled_from([7, 8, None]),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    policies=st.lists(_POLICIES, min_size=0, max_size=2),
    session=st.none() | _POLICIES,
    kind=st.sampled_from(["ram", "ram", "ram", "root", "other-root", "admin", "anonymous"]),
    action=st.sampled_from([actions.PULL, actions.LIST_REPOSITORY, "cr:DeleteRepository"]),
    entries=_ENTRIES,
)
def test_the_same_answer_as_one_by_one(
    policies: list[Policy],
    session: Policy | None,
    kind: str,
    action: str,
    entries: list[tuple[str, str, int | None, bool]],
) -> None:
    principal = {
        "ram": _ram_user(*policies, session=session),
        "root": Principal("user", "acme", user_id=1, account_id=7, is_root=True),
        "other-root": Principal("user", "globex", user_id=9, account_id=8, is_root=True),
        "admin": Principal("user", "admin", user_id=2, account_id=1, is_admin=True),
        "anonymous": Principal("anonymous", ""),
    }[kind]
    decisions = ScopedDecisions(principal, action, chars=COMPONENT_CHARS)
    for namespace, name, account, public in entries:
        arn = repository_arn("local", account or 0, namespace, name)
        expected = is_allowed(principal, action, Resource(arn, public))
        prefix = repository_arn("local", account or 0, namespace, "")
        assert decisions.is_allowed(prefix, name, public=public) is expected
    # The catalog's check: any of several actions, an unowned namespace's account.
    wanted = (action, "cr:GetRepository")
    check = repository_check("local", principal, wanted, None, unowned=0)
    for index, (namespace, name, account, public) in enumerate(entries):
        entry = RepositoryEntry(f"{namespace}/{name}", index, account, public)
        arn = repository_arn("local", account if account is not None else 0, namespace, name)
        resource = Resource(arn, public)
        assert check(entry) is any(is_allowed(principal, a, resource) for a in wanted)
