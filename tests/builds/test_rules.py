"""Build rules: ref patterns (plain and RE2, both named-group syntaxes), tag templates,
field validation, the built-in release rule's precedence, and linear-time matching."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.builds.rules import (
    BUILTIN_RELEASE_RULE,
    RefMatch,
    RuleError,
    RuleSpec,
    compile_ref,
    is_regex,
    locate,
    matching_rules,
    render_tags,
    validate_templates,
)

SHA = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
WHEN = datetime(2026, 12, 3, 22, 5, 9, tzinfo=UTC)


def test_plain_names_match_exactly() -> None:
    assert not is_regex("main")
    assert not is_regex("release/v1.0")
    match = compile_ref("v1.0")
    assert match("v1.0") == RefMatch("v1.0", {})
    assert match("v1x0") is None  # '.' in a plain name is a dot, not "any character"
    assert match("v1.0.1") is None
    assert compile_ref("main")("mainline") is None


@pytest.mark.parametrize(
    "pattern", ["release-(?<version>.*)", "release-(?P<version>.*)", r"release-(?<version>\d.*)"]
)
def test_named_groups_in_both_syntaxes(pattern: str) -> None:
    assert is_regex(pattern)
    match = compile_ref(pattern)
    assert match("release-1.2.3") == RefMatch("release-1.2.3", {"version": "1.2.3"})
    assert match("pre-release-1.2.3") is None  # the whole name must match
    assert match("release-1.2.3-x") == RefMatch("release-1.2.3-x", {"version": "1.2.3-x"})


def test_regex_rules() -> None:
    match = compile_ref("(feature|fix)/(?<topic>[a-z-]+)")
    assert match("feature/login-page") == RefMatch("feature/login-page", {"topic": "login-page"})
    assert match("chore/x") is None
    optional = compile_ref("v(?<major>\\d+)(\\.(?<minor>\\d+))?")
    assert optional("v3") == RefMatch("v3", {"major": "3", "minor": ""})
    # "(?<" inside a class or after an escape is left as written
    literal = compile_ref(r"a[(?<]b\(?<x>")
    assert literal("a<b<x>") is not None
    # a ref literally named like the pattern still matches it
    assert compile_ref("feature+x")("feature+x") is not None
    assert compile_ref("feature+x")("featurex") is not None


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("", "ref must be"),
        ("release-(?<version>.*", "not a valid regular expression"),
        ("(?<=v)1", "not a valid regular expression"),
        (r"(a)\1", "not a valid regular expression"),
        ("(?<branch>.*)", "reserved"),
        ("x" * 256, "at most 255"),
        ("ma\nin", "control characters"),
        ("(a{1000}){1000}", "not a valid regular expression"),
    ],
)
def test_invalid_patterns_named(pattern: str, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_ref(pattern)
    assert words in caught.value.message
    assert caught.value.field == "ref"


def test_redos_pattern_stays_fast() -> None:
    evil = compile_ref("(a+)+$")
    name = "a" * 100_000 + "!"
    started = time.perf_counter()
    assert evil(name) is None
    for _ in range(50):
        compile_ref("(x+x+)+y")("x" * 5000)
    assert time.perf_counter() - started < 2.0


def test_templates_render() -> None:
    match = compile_ref("release-(?<version>.+)")("release-2.1.0")
    assert match is not None
    tags = render_tags(
        ["${version}", "${version}-${commit:7}", "build-${build_time:%Y%m%d%H%M}"],
        match=match,
        kind="tag",
        commit=SHA,
        build_time=WHEN,
    )
    assert tags == ["2.1.0", "2.1.0-a94a8fe", "build-202612032205"]
    branch = compile_ref("main")("main")
    assert branch is not None
    assert render_tags(
        ["${branch}", "${commit}", "${branch}", "t${build_time}"],
        match=branch,
        kind="branch",
        commit=SHA.upper(),
        build_time=WHEN,
    ) == ["main", SHA, "t20261203220509"]
    tag = compile_ref("v1")("v1")
    assert tag is not None
    assert render_tags(["${tag}-x"], match=tag, kind="tag", commit=SHA, build_time=WHEN) == ["v1-x"]


def test_a_result_that_is_no_tag_names_its_template() -> None:
    match = compile_ref("feature/(?<topic>.+)")("feature/a/b")
    assert match is not None
    with pytest.raises(RuleError) as caught:
        render_tags(["ok", "${topic}"], match=match, kind="branch", commit=SHA, build_time=WHEN)
    assert caught.value.message.startswith("image tag template '${topic}' made 'a/b'")
    branch = compile_ref("feature/.+")("feature/login")
    assert branch is not None
    with pytest.raises(RuleError) as caught:
        render_tags(["${branch}"], match=branch, kind="branch", commit=SHA, build_time=WHEN)
    assert "'${branch}' made 'feature/login'" in caught.value.message
    with pytest.raises(RuleError) as caught:
        render_tags(["${tag}"], match=branch, kind="branch", commit=SHA, build_time=WHEN)
    assert "but this is a branch rule" in caught.value.message
    too_long = compile_ref("(?<v>.+)")("v" * 130)
    assert too_long is not None
    with pytest.raises(RuleError) as caught:
        render_tags(["${v}"], match=too_long, kind="tag", commit=SHA, build_time=WHEN)
    assert "'${v}'" in caught.value.message


@pytest.mark.parametrize(
    ("templates", "words"),
    [
        ([], "1 to 3 templates"),
        (["a", "b", "c", "d"], "1 to 3 templates"),
        ("latest", "must be a list"),
        ([""], "non-empty string"),
        (["${nope}"], "no group named 'nope'"),
        (["${commit:0}"], "length from 1 to 64"),
        (["${commit:abc}"], "length from 1 to 64"),
        (["${build_time:%s}"], "build_time:FORMAT"),
        (["${build_time:%Y/%m}"], "build_time:FORMAT"),
        (["${tag}"], "but this is a branch rule"),
        (["${branch:x}"], "takes no argument"),
        (["${}"], "is not a placeholder"),
        (["${a-b}"], "is not a placeholder"),
        (["cost$5"], "'$' that starts no"),
        (["$version"], "'$' that starts no"),
        (["my tag"], "'my tag' made 'my tag', which is not a valid tag"),
        (["-${branch}"], "not a valid tag"),
        (["x" * 129], "not a valid tag"),
    ],
)
def test_invalid_templates_named(templates: list[str], words: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate_templates(templates, groups=["version"], kind="branch")
    assert words in caught.value.message
    assert caught.value.field == "image_tags"


def test_valid_templates() -> None:
    validate_templates(["latest", "${branch}-${commit:7}", "${build_time:%Y%m%d.%H%M}"])
    validate_templates(["${anygroup}"])  # without the groups, any group name may come
    validate_templates(["${version}"], groups=["version"], kind="tag")


def test_rule_fields_validated_and_normalised() -> None:
    rule = RuleSpec.from_json(
        {
            "type": "tag",
            "ref": "release-(?<version>.*)",
            "dockerfile_dir": "docker/app/",
            "dockerfile_name": "./build/Dockerfile.prod",
            "image_tags": ["${version}", "latest"],
            "build_args": {"GO_VERSION": "1.22", "go_version": "1.21"},
        }
    )
    assert rule.dockerfile_dir == "/docker/app"
    assert rule.dockerfile_name == "build/Dockerfile.prod"
    assert rule.image_tags == ("${version}", "latest")
    assert rule.build_args == {"GO_VERSION": "1.22", "go_version": "1.21"}
    assert RuleSpec().checked().dockerfile_dir == "/"
    assert RuleSpec(dockerfile_dir="").checked().dockerfile_dir == "/"
    patched = RuleSpec.from_json({"enabled": False}, base=rule)
    assert patched.enabled is False
    assert patched.ref == rule.ref
    shown = rule.to_json()
    assert shown["regex"] is True
    assert shown["image_tags"] == ["${version}", "latest"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "pull"}, "type", "branch or tag"),
        ({"type": 1}, "type", "must be a string"),
        ({"ref": "(unclosed"}, "ref", "not a valid regular expression"),
        ({"dockerfile_dir": "../outside"}, "dockerfile_dir", "'..'"),
        ({"dockerfile_dir": "/a/../../etc"}, "dockerfile_dir", "'..'"),
        ({"dockerfile_dir": "a\\b"}, "dockerfile_dir", "backslashes"),
        ({"dockerfile_name": "/etc/passwd"}, "dockerfile_name", "relative"),
        ({"dockerfile_name": "../Dockerfile"}, "dockerfile_name", "'..'"),
        ({"dockerfile_name": ""}, "dockerfile_name", "file name"),
        ({"dockerfile_name": "."}, "dockerfile_name", "must name a file"),
        ({"image_tags": "latest"}, "image_tags", "list of 1 to 3"),
        ({"image_tags": ["${version}"]}, "image_tags", "no group named 'version'"),
        ({"build_args": {f"K{i}": "v" for i in range(21)}}, "build_args", "at most 20"),
        ({"build_args": {"1BAD": "v"}}, "build_args", "'1BAD'"),
        ({"build_args": {"A-B": "v"}}, "build_args", "'A-B'"),
        ({"build_args": {"A": 1}}, "build_args", "string value"),
        ({"build_args": {"A": "x" * 5000}}, "build_args", "at most 4096"),
        ({"build_args": ["A=1"]}, "build_args", "an object"),
        ({"enabled": "yes"}, "enabled", "true or false"),
    ],
)
def test_invalid_rule_fields_named(body: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        RuleSpec.from_json(body)
    assert caught.value.field == field
    assert words in caught.value.message


def test_locate_stays_inside_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "docker").mkdir(parents=True)
    (checkout / "Dockerfile").write_text("FROM scratch\n")
    (checkout / "docker" / "Dockerfile.prod").write_text("FROM scratch\n")
    outside = tmp_path / "server-data"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM secrets\n")
    (checkout / "escape").symlink_to(outside)
    (checkout / "docker" / "link").symlink_to(outside / "Dockerfile")

    assert locate(checkout, RuleSpec().checked()) == (
        checkout.resolve(),
        checkout.resolve() / "Dockerfile",
    )
    rule = RuleSpec(dockerfile_dir="/docker", dockerfile_name="Dockerfile.prod").checked()
    assert locate(checkout, rule)[1] == checkout.resolve() / "docker" / "Dockerfile.prod"
    cases = [
        (RuleSpec(dockerfile_dir="/escape"), "leads out of the repository"),
        (RuleSpec(dockerfile_dir="/docker", dockerfile_name="link"), "leads out of the"),
        (RuleSpec(dockerfile_dir="/missing"), "is not a folder in this commit"),
        (RuleSpec(dockerfile_dir="/docker"), "no Dockerfile at /docker/Dockerfile"),
    ]
    for spec, words in cases:
        with pytest.raises(RuleError) as caught:
            locate(checkout, spec.checked())
        assert words in caught.value.message


def _tag_rule(ref: str, *, enabled: bool = True, rule_id: int = 1) -> RuleSpec:
    return RuleSpec(id=rule_id, type="tag", ref=ref, enabled=enabled, image_tags=("x",))


def test_builtin_release_rule_and_its_precedence() -> None:
    assert BUILTIN_RELEASE_RULE.checked() == BUILTIN_RELEASE_RULE
    found = matching_rules([], "tag", "release-v1.4.2")
    assert found == [(BUILTIN_RELEASE_RULE, RefMatch("release-v1.4.2", {"version": "1.4.2"}))]
    assert render_tags(
        BUILTIN_RELEASE_RULE.image_tags,
        match=found[0][1],
        kind="tag",
        commit=SHA,
        build_time=WHEN,
    ) == ["1.4.2"]
    assert matching_rules([], "tag", "release-v") == []
    assert matching_rules([], "branch", "release-v1") == []  # tags only
    assert matching_rules([], "tag", "v1.4.2") == []

    custom = _tag_rule("release-v(?<v>.+)")
    assert matching_rules([custom], "tag", "release-v1.4.2") == [
        (custom, RefMatch("release-v1.4.2", {"v": "1.4.2"}))
    ]
    # A custom rule for those tags, switched off, builds nothing, and nor does the built-in.
    assert matching_rules([_tag_rule("release-v.*", enabled=False)], "tag", "release-v2") == []
    # A custom rule for other tags leaves the built-in to its own.
    other = _tag_rule("v(?<v>.+)")
    assert [r for r, _ in matching_rules([other], "tag", "release-v3")] == [BUILTIN_RELEASE_RULE]
    # The built-in rule among the given rules is not counted twice.
    assert len(matching_rules([BUILTIN_RELEASE_RULE], "tag", "release-v3")) == 1


def test_matching_rules_by_kind_and_enabled() -> None:
    main = RuleSpec(id=1, type="branch", ref="main")
    features = RuleSpec(id=2, type="branch", ref="feature/(?<topic>.+)", image_tags=("${topic}",))
    off = RuleSpec(id=3, type="branch", ref="main", enabled=False)
    tags = _tag_rule("main", rule_id=4)
    broken = RuleSpec(id=5, type="branch", ref="(main")
    rules = [main, features, off, tags, broken]
    assert matching_rules(rules, "branch", "main") == [(main, RefMatch("main", {}))]
    assert matching_rules(rules, "branch", "feature/x") == [
        (features, RefMatch("feature/x", {"topic": "x"}))
    ]
    assert matching_rules(rules, "tag", "main") == [(tags, RefMatch("main", {}))]
    assert matching_rules(rules, "branch", "dev") == []
