"""JSON text from outside: nesting is bounded before the parser recurses."""

from __future__ import annotations

import pytest

from dockyard import jsontext
from dockyard.iam.policy import PolicyError, parse_policy


def test_depth_counts_arrays_and_objects_not_brackets_in_strings() -> None:
    assert not jsontext.depth_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert jsontext.depth_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert jsontext.depth_exceeds('{"a":' * 33 + "1" + "}" * 33, 32)
    quoted = '{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[[[["}'
    assert jsontext.loads(quoted, 2) == {"a": "[" * 39 + '"[[[['}


def test_too_deep_is_a_value_error_not_a_recursion_error() -> None:
    with pytest.raises(jsontext.TooDeep, match="nest deeper than 32 levels"):
        jsontext.loads(b"[" * 100_000)


def test_half_a_surrogate_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        jsontext.loads('"\\ud800"')
    assert jsontext.loads('"\\ud83d\\udea2"') == "\U0001f6a2"


def test_a_policy_document_given_as_text_is_bounded_too() -> None:
    with pytest.raises(PolicyError, match="nest deeper"):
        parse_policy("[" * 6000)
