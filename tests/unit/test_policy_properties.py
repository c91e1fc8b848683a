"""Property tests of the policy engine: wildcard matching against an independent reference
matcher, and the evaluation rules (an explicit Deny beats any Allow, nothing allowed means
denied) for random sets of statements in any order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dockyard.iam.policy import Decision, Policy, evaluate, parse_policy, wildcard_match


def reference_match(pattern: str, value: str) -> bool:
    """``*`` any run (empty too), ``?`` one character, everything else itself: a dynamic
    programme over (pattern prefix, value prefix), with no regular expressions."""
    # matched[j]: the pattern so far matches value[:j].
    matched = [True] + [False] * len(value)
    for p in pattern:
        if p == "*":
            # Any prefix that matched before still matches, extended by any run.
            seen = False
            for j in range(len(value) + 1):
                seen = seen or matched[j]
                matched[j] = seen
        else:
            matched = [False] + [
                matched[j] and (p == "?" or p == value[j]) for j in range(len(value))
            ]
    return matched[len(value)]


def test_the_reference_matcher_itself() -> None:
    assert reference_match("", "")
    assert not reference_match("", "a")
    assert reference_match("*", "")
    assert reference_match("a*b", "ab")
    assert reference_match("a*b", "axxb")
    assert not reference_match("a*b", "axxbc")
    assert reference_match("a?c", "abc")
    assert not reference_match("a?c", "ac")
    assert reference_match("**?", "x")
    assert not reference_match("**?", "")


# Characters that mean something to regular expressions or to fnmatch, and a newline:
# the engine must treat all of them literally.
LITERALS = "ab:/.[]()+\\$^{}|-!\n"
patterns = st.text(st.sampled_from([*LITERALS, "*", "?"]), max_size=10)
values = st.text(st.sampled_from(LITERALS), max_size=12)


@given(patterns, values)
def test_wildcard_match_agrees_with_the_reference(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value) is reference_match(pattern, value)


@given(patterns, values)
def test_a_value_with_wildcards_is_matched_literally_too(pattern: str, value: str) -> None:
    """Wildcards in the value are ordinary characters."""
    value = value + pattern
    assert wildcard_match(pattern, value) is reference_match(pattern, value)


@given(st.text(max_size=30))
def test_star_matches_everything(value: str) -> None:
    assert wildcard_match("*", value)
    assert wildcard_match("**", value)
    assert wildcard_match("*", value, ignore_case=True)


@given(st.text(st.sampled_from(LITERALS), max_size=10), values)
def test_a_pattern_without_wildcards_matches_only_itself(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, pattern)
    assert wildcard_match(pattern, value) is (pattern == value)
    assert not wildcard_match(pattern, pattern + "a")


@given(st.integers(min_value=0, max_value=6), values)
def test_question_marks_match_exactly_that_many_characters(n: int, value: str) -> None:
    assert wildcard_match("?" * n, value) is (len(value) == n)


ascii_patterns = st.text(st.sampled_from("aAbB:*?"), max_size=8)
ascii_values = st.text(st.sampled_from("aAbB:"), max_size=8)


@given(ascii_patterns, ascii_values)
def test_ignore_case(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value, ignore_case=True) is reference_match(
        pattern.lower(), value.lower()
    )
    assert wildcard_match(pattern, value) is reference_match(pattern, value)


# -- evaluation ---------------------------------------------------------------------------

# Actions look like service:Verb (letters, digits, * and ?); they match without regard
# to case. Resources match exactly.
action_patterns = st.one_of(
    st.just("*"),
    st.builds(
        "{}:{}".format,
        st.text(st.sampled_from("cCr*?"), min_size=1, max_size=3),
        st.text(st.sampled_from("pPuU*?"), min_size=1, max_size=4),
    ),
)
resource_patterns = st.text(st.sampled_from("ab/:*?"), min_size=1, max_size=6)
actions = st.builds(
    "{}:{}".format,
    st.text(st.sampled_from("cCr"), min_size=1, max_size=3),
    st.text(st.sampled_from("pPuU"), min_size=1, max_size=4),
)
resources = st.text(st.sampled_from("ab/:"), min_size=1, max_size=6)
statements = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.lists(action_patterns, min_size=1, max_size=3),
        "Resource": st.lists(resource_patterns, min_size=1, max_size=3),
    }
)
documents = st.lists(statements, min_size=1, max_size=4)


def _policy(raw: list[dict[str, Any]]) -> Policy:
    return parse_policy({"Version": "1", "Statement": raw})


def _statement_matches(statement: dict[str, Any], action: str, resource: str) -> bool:
    return any(reference_match(a.lower(), action.lower()) for a in statement["Action"]) and any(
        reference_match(r, resource) for r in statement["Resource"]
    )


def reference_evaluate(docs: list[list[dict[str, Any]]], action: str, resource: str) -> Decision:
    matching = [s["Effect"] for doc in docs for s in doc if _statement_matches(s, action, resource)]
    if "Deny" in matching:
        return Decision.DENY
    if "Allow" in matching:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


@given(st.lists(documents, max_size=4), actions, resources)
def test_evaluate_follows_deny_then_allow_then_implicit_deny(
    docs: list[list[dict[str, Any]]], action: str, resource: str
) -> None:
    decision = evaluate([_policy(d) for d in docs], action, resource)
    assert decision is reference_evaluate(docs, action, resource)
    assert decision.allowed is (decision is Decision.ALLOW)


@given(st.lists(documents, max_size=4), actions, resources, st.data())
def test_a_matching_deny_wins_wherever_it_is(
    docs: list[list[dict[str, Any]]], action: str, resource: str, data: st.DataObject
) -> None:
    """Put a Deny that matches (by a wildcard or literally) anywhere among any statements,
    Allow ones included: the decision is DENY."""
    deny = {
        "Effect": "Deny",
        "Action": [data.draw(st.sampled_from(["*", action, action.swapcase(), "*:*"]))],
        "Resource": [data.draw(st.sampled_from(["*", resource, resource[:1] + "*"]))],
    }
    allow_everything = {"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}
    all_docs = [*docs, [allow_everything]]
    where = data.draw(st.integers(min_value=0, max_value=len(all_docs) - 1))
    at = data.draw(st.integers(min_value=0, max_value=len(all_docs[where])))
    all_docs[where] = [*all_docs[where][:at], deny, *all_docs[where][at:]]
    assert evaluate([_policy(d) for d in all_docs], action, resource) is Decision.DENY


@given(st.lists(documents, min_size=1, max_size=4), actions, resources, st.randoms())
def test_evaluate_does_not_depend_on_order(
    docs: list[list[dict[str, Any]]], action: str, resource: str, rnd: Any
) -> None:
    expected = evaluate([_policy(d) for d in docs], action, resource)
    shuffled = [rnd.sample(d, len(d)) for d in docs]
    rnd.shuffle(shuffled)
    assert evaluate([_policy(d) for d in shuffled], action, resource) is expected
    # Nor on how statements are grouped into policies.
    merged = [s for d in shuffled for s in d]
    assert evaluate([_policy(merged)], action, resource) is expected
    assert evaluate([_policy([s]) for s in merged], action, resource) is expected


@given(st.lists(statements.filter(lambda s: s["Effect"] == "Allow"), max_size=6), actions)
def test_without_a_deny_an_allow_is_enough(allows: list[dict[str, Any]], action: str) -> None:
    resource = "a/b"
    everything = {"Effect": "Allow", "Action": [action.upper()], "Resource": ["a/*"]}
    policies = [_policy([s]) for s in [*allows, everything]]
    assert evaluate(policies, action, resource) is Decision.ALLOW


def test_no_policies_mean_implicit_deny() -> None:
    assert evaluate([], "cr:PullRepository", "acs:cr:local:1:repository/a/b") is (
        Decision.IMPLICIT_DENY
    )
