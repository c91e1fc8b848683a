"""Hypothesis strategies shared by the policy tests."""

from __future__ import annotations

from hypothesis import strategies as st

from dockyard.iam.policy import Policy, parse_policy


def policies(patterns: list[str], actions: list[str]) -> st.SearchStrategy[Policy]:
    """Policy documents of one to four statements, each an Allow or a Deny of one to
    three of ``actions`` on one or two of the ``Resource`` ``patterns``."""
    statements = st.fixed_dictionaries(
        {
            "Effect": st.sampled_from(["Allow", "Deny"]),
            "Action": st.lists(st.sampled_from(actions), min_size=1, max_size=3),
            "Resource": st.lists(st.sampled_from(patterns), min_size=1, max_size=2),
        }
    )
    return st.builds(
        lambda found: parse_policy({"Version": "1", "Statement": found}),
        st.lists(statements, min_size=1, max_size=4),
    )
