"""The policy engine: document validation, wildcard matching, conditions, Deny first."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.iam.policy import (
    FULL_ACCESS,
    READ_ONLY_ACCESS,
    Decision,
    PolicyError,
    RequestFacts,
    evaluate,
    parse_policy,
    wildcard_match,
)

REPO = "acs:cr:local:1001:repository/team/app"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(action: Any = "cr:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "cr:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# -- wildcards -------------------------------------------------------------------------


def _reference_match(pattern: str, value: str) -> bool:
    """A deliberately naive matcher to compare against."""
    if not pattern:
        return not value
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(_reference_match(rest, value[i:]) for i in range(len(value) + 1))
    if not value:
        return False
    return (head in ("?", value[0])) and _reference_match(rest, value[1:])


alphabet = st.sampled_from(list("ab:/*?.[]()+\\$^"))


@given(
    st.text(alphabet, max_size=8), st.text(st.sampled_from(list("ab:/.[]()+\\$^*?")), max_size=8)
)
def test_wildcards_match_like_the_reference(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value) == _reference_match(pattern, value)


@given(st.text(max_size=20))
def test_star_matches_everything_and_a_literal_itself(value: str) -> None:
    assert wildcard_match("*", value)
    literal = value.replace("*", "").replace("?", "")
    assert wildcard_match(literal, literal)


def test_actions_ignore_case_resources_do_not() -> None:
    policy = parse_policy(doc(allow("cr:pullrepository", "acs:cr:*:*:repository/team/*")))
    assert evaluate([policy], "cr:PullRepository", REPO).allowed
    assert not evaluate([policy], "cr:PullRepository", REPO.replace("team", "TEAM")).allowed


# -- evaluation ------------------------------------------------------------------------


def test_nothing_allowed_means_denied() -> None:
    assert evaluate([], "cr:PullRepository", REPO) is Decision.IMPLICIT_DENY
    policy = parse_policy(doc(allow("cr:PushRepository")))
    assert evaluate([policy], "cr:PullRepository", REPO) is Decision.IMPLICIT_DENY


def test_system_policies() -> None:
    for action in ("cr:PullRepository", "cr:PushRepository", "cr:CreateNamespace"):
        assert evaluate([FULL_ACCESS], action, REPO).allowed
    for action in ("cr:PullRepository", "cr:GetRepository", "cr:ListNamespace"):
        assert evaluate([READ_ONLY_ACCESS], action, REPO).allowed
    for action in ("cr:PushRepository", "cr:DeleteRepositoryImage", "cr:CreateNamespace"):
        assert evaluate([READ_ONLY_ACCESS], action, REPO) is Decision.IMPLICIT_DENY


actions = st.sampled_from(
    ["cr:PullRepository", "cr:PushRepository", "cr:GetRepository", "cr:ListRepository"]
)
patterns = st.sampled_from(["cr:*", "cr:Pull*", "cr:?ushRepository", "*", "cr:Get*"])
resources = st.sampled_from(
    [REPO, "acs:cr:local:1001:repository/team/other", "acs:cr:local:2002:repository/x/y"]
)
resource_patterns = st.sampled_from(
    ["*", "acs:cr:*:1001:repository/team/*", "acs:cr:*:*:repository/*/app", REPO]
)
statements = st.builds(
    lambda effect, action, resource: {"Effect": effect, "Action": action, "Resource": resource},
    st.sampled_from(["Allow", "Deny"]),
    patterns,
    resource_patterns,
)


@given(st.lists(statements, min_size=1, max_size=6), actions, resources)
def test_an_explicit_deny_always_wins(
    stmts: list[dict[str, Any]], action: str, resource: str
) -> None:
    policies = [parse_policy(doc(s)) for s in stmts]
    decision = evaluate(policies, action, resource)
    matching = [
        s
        for s in stmts
        if wildcard_match(s["Action"], action, ignore_case=True)
        and wildcard_match(s["Resource"], resource)
    ]
    if any(s["Effect"] == "Deny" for s in matching):
        assert decision is Decision.DENY
    elif matching:
        assert decision is Decision.ALLOW
    else:
        assert decision is Decision.IMPLICIT_DENY
    # Adding a matching Deny anywhere turns any answer into DENY.
    blocker = parse_policy(doc(deny(action, resource)))
    assert evaluate([*policies, blocker], action, resource) is Decision.DENY
    assert evaluate([blocker, *policies], action, resource) is Decision.DENY


# -- conditions ------------------------------------------------------------------------


def test_ip_conditions() -> None:
    policy = parse_policy(
        doc(allow(Condition={"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.0.2.7"]}}))
    )
    assert evaluate([policy], "cr:PullRepository", REPO, RequestFacts("10.1.2.3")).allowed
    assert evaluate([policy], "cr:PullRepository", REPO, RequestFacts("192.0.2.7")).allowed
    assert not evaluate([policy], "cr:PullRepository", REPO, RequestFacts("192.0.2.8")).allowed
    assert not evaluate([policy], "cr:PullRepository", REPO, RequestFacts(None)).allowed
    fence = parse_policy(doc(deny(Condition={"NotIpAddress": {"acs:SourceIp": "127.0.0.0/8"}})))
    both = [FULL_ACCESS, fence]
    assert evaluate(both, "cr:PushRepository", REPO, RequestFacts("127.0.0.1")).allowed
    assert evaluate(both, "cr:PushRepository", REPO, RequestFacts("8.8.8.8")) is Decision.DENY


def test_time_and_transport_conditions() -> None:
    window = parse_policy(
        doc(
            allow(
                Condition={
                    "DateGreaterThan": {"acs:CurrentTime": "2026-01-01T00:00:00Z"},
                    "DateLessThan": {"acs:CurrentTime": "2026-12-31T23:59:59+00:00"},
                    "Bool": {"acs:SecureTransport": True},
                }
            )
        )
    )
    inside = datetime(2026, 6, 1, tzinfo=UTC)
    after = datetime(2027, 1, 2, tzinfo=UTC)
    assert evaluate([window], "cr:PullRepository", REPO, RequestFacts(None, True, inside)).allowed
    assert not evaluate(
        [window], "cr:PullRepository", REPO, RequestFacts(None, False, inside)
    ).allowed
    assert not evaluate(
        [window], "cr:PullRepository", REPO, RequestFacts(None, True, after)
    ).allowed


def test_string_conditions() -> None:
    policy = parse_policy(
        doc(
            allow(
                Condition={
                    "StringEquals": {"acs:UserAgent": ["podman", "skopeo"]},
                    "StringLike": {"cr:Tag": "release-*"},
                }
            )
        )
    )
    ok = RequestFacts(extra={"acs:UserAgent": "podman", "cr:Tag": "release-1.2"})
    assert evaluate([policy], "cr:PushRepository", REPO, ok).allowed
    wrong_tag = RequestFacts(extra={"acs:UserAgent": "podman", "cr:Tag": "dev"})
    assert not evaluate([policy], "cr:PushRepository", REPO, wrong_tag).allowed
    missing = RequestFacts(extra={"cr:Tag": "release-1"})
    assert not evaluate([policy], "cr:PushRepository", REPO, missing).allowed


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"Statement": [allow()]}, 'Version must be "1"'),
        ({"Version": "2", "Statement": [allow()]}, 'Version must be "1"'),
        ({"Version": "1"}, "Statement must be a non-empty list"),
        ({"Version": "1", "Statement": []}, "Statement must be a non-empty list"),
        ({"Version": "1", "Statement": [allow()], "Extra": 1}, "Extra is not a policy field"),
        (doc({"Effect": "Maybe", "Action": "cr:*", "Resource": "*"}), "Statement[0].Effect"),
        (doc(allow(), {"Effect": "Allow", "Resource": "*"}), "Statement[1].Action"),
        (doc(allow(action=[])), "Statement[0].Action"),
        (doc(allow(action="PullRepository")), "must look like service:Verb"),
        (doc(allow(resource=5)), "Statement[0].Resource"),
        (doc(allow(Principal="x")), "Statement[0].Principal is not a statement field"),
        (
            doc(allow(Condition={"IpAddress": {"acs:SourceIp": "300.1.1.1"}})),
            "Statement[0].Condition.IpAddress.acs:SourceIp",
        ),
        (
            doc(allow(Condition={"DateLessThan": {"acs:CurrentTime": "tomorrow"}})),
            "not an ISO 8601 time",
        ),
        (
            doc(allow(Condition={"Bool": {"acs:SecureTransport": "yes"}})),
            "Bool takes true or false",
        ),
        (doc(allow(Condition={"Fuzzy": {"k": "v"}})), "unknown condition operator 'Fuzzy'"),
        (doc(allow(Condition={})), "Condition must be a non-empty object"),
        ("x" * 7000, "at most"),
    ],
)
def test_malformed_documents_name_the_bad_field(document: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(document)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_raises_anything_but_policy_error(document: Any) -> None:
    for candidate in (document, {"Version": "1", "Statement": [document]}):
        with contextlib.suppress(PolicyError):
            parse_policy(
                candidate
                if isinstance(candidate, dict)
                else {"Version": "1", "Statement": candidate}
            )
