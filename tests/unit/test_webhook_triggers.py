"""Webhook triggers: validation of user input, matching, and RE2's linear time."""

from __future__ import annotations

import time

import pytest

from dockyard.errors import Invalid
from dockyard.webhooks.triggers import Trigger, TriggerError


def test_all_fires_for_every_event_even_without_a_tag() -> None:
    trigger = Trigger.parse({"type": "all"})
    assert trigger == Trigger("all")
    assert trigger.match("1.0") == (True, "")
    assert trigger.match("") == (True, "")


def test_tag_list_fires_for_listed_tags_and_explains_the_rest() -> None:
    trigger = Trigger.parse({"type": "tag_list", "tags": ["1.0", "latest"]})
    assert trigger.tags == ("1.0", "latest")
    assert trigger.match("latest") == (True, "")
    assert trigger.match("dev") == (
        False,
        "tag 'dev' is not in the webhook's tag list (1.0, latest)",
    )
    assert trigger.match("") == (False, "the event has no tag")


def test_tag_regex_must_match_the_whole_tag() -> None:
    trigger = Trigger.parse({"type": "tag_regex", "regex": "release-v.*"})
    assert trigger.match("release-v1.2") == (True, "")
    assert trigger.match("dev") == (
        False,
        "tag 'dev' does not match the regular expression 'release-v.*'",
    )
    assert not trigger.match("my-release-v1")[0]  # no implicit search
    assert Trigger.parse({"type": "tag_regex", "regex": "v1"}).match("v10")[0] is False
    assert trigger.match("") == (False, "the event has no tag")


@pytest.mark.parametrize(
    "value",
    [
        {"type": "all"},
        {"type": "tag_list", "tags": ["a", "b_c", "1.0-rc.1"]},
        {"type": "tag_regex", "regex": "^v[0-9]+$"},
    ],
)
def test_to_json_round_trips(value: dict[str, object]) -> None:
    assert Trigger.parse(value).to_json() == value
    assert Trigger.parse(Trigger.parse(value).to_json()) == Trigger.parse(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "trigger: must be an object"),
        (["all"], "trigger: must be an object"),
        ({}, "trigger.type: missing"),
        ({"type": "some"}, "trigger.type: 'some' is not"),
        ({"type": 1}, "trigger.type: 1 is not"),
        ({"type": "all", "tags": ["a"]}, r"trigger.tags: unknown field \(a all trigger"),
        ({"type": "tag_list", "tags": ["a"], "regex": "a"}, "trigger.regex: unknown field"),
        ({"type": "tag_regex", "regex": "a", "color": 1}, "trigger.color: unknown field"),
        ({"type": "tag_list"}, "trigger.tags: missing"),
        ({"type": "tag_list", "tags": "latest"}, "trigger.tags: must be a list"),
        ({"type": "tag_list", "tags": []}, "trigger.tags: must list 1 to 10 tags, not 0"),
        (
            {"type": "tag_list", "tags": [f"t{i}" for i in range(11)]},
            "trigger.tags: must list 1 to 10 tags, not 11",
        ),
        ({"type": "tag_list", "tags": ["a", "b", "-bad"]}, r"trigger.tags\[2\]: tag '-bad'"),
        ({"type": "tag_list", "tags": ["a", 3]}, r"trigger.tags\[1\]: must be a string"),
        ({"type": "tag_list", "tags": ["a", "b", "a"]}, r"trigger.tags\[2\]: 'a' is listed twice"),
        ({"type": "tag_list", "tags": ["x" * 129]}, r"trigger.tags\[0\]: tag"),
        ({"type": "tag_regex"}, "trigger.regex: missing"),
        ({"type": "tag_regex", "regex": 5}, "trigger.regex: must be a string"),
        ({"type": "tag_regex", "regex": ""}, "trigger.regex: must be 1 to 256 characters, not 0"),
        ({"type": "tag_regex", "regex": "a" * 257}, "trigger.regex: must be 1 to 256 .* not 257"),
        ({"type": "tag_regex", "regex": "(unclosed"}, "trigger.regex: '\\(unclosed' is not a"),
    ],
)
def test_invalid_triggers_name_the_field(value: object, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        Trigger.parse(value)


def test_trigger_errors_are_400s() -> None:
    assert issubclass(TriggerError, Invalid)
    assert TriggerError.status == 400


def test_longest_regex_is_accepted() -> None:
    assert Trigger.parse({"type": "tag_regex", "regex": "a" * 256}).match("a" * 256)[0]


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [
        ("(a)\\1", "invalid escape sequence"),
        ("v(?=1)", "invalid perl operator"),
        ("(?<!x)v", "invalid"),
    ],
)
def test_patterns_re2_rejects_are_refused_with_the_reason(pattern: str, detail: str) -> None:
    with pytest.raises(TriggerError) as caught:
        Trigger.parse({"type": "tag_regex", "regex": pattern})
    message = str(caught.value)
    assert message.startswith(f"trigger.regex: {pattern!r} is not a pattern RE2 accepts")
    assert detail in message
    assert "no backreferences or look-around" in message


@pytest.mark.parametrize("pattern", ["(?P<major>[0-9]+)\\.x", "(?<major>[0-9]+)\\.x"])
def test_both_named_group_syntaxes_are_accepted(pattern: str) -> None:
    trigger = Trigger.parse({"type": "tag_regex", "regex": pattern})
    assert trigger.match("12.x") == (True, "")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*b", "(a*)*c?d"])
def test_catastrophic_backtracking_patterns_run_in_linear_time(pattern: str) -> None:
    # A backtracking engine (Python's re) takes longer than the age of the universe here.
    trigger = Trigger.parse({"type": "tag_regex", "regex": pattern})
    started = time.perf_counter()
    fires, _ = trigger.match("a" * 50_000 + "c")
    assert not fires
    assert time.perf_counter() - started < 1.0
