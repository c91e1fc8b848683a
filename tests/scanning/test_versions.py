"""Version ordering per OSV ecosystem (dockyard.scanning.versions)."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from functools import cmp_to_key

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from univers import debian as univers_debian

from dockyard.scanning import versions
from dockyard.scanning.versions import (
    SEMVER,
    UnparseableVersion,
    UnsupportedEcosystem,
    apk_key,
    compare,
    is_supported,
    parse,
    sort_key,
)

DPKG = shutil.which("dpkg")


@pytest.mark.parametrize(
    ("ecosystem", "a", "b", "expected"),
    [
        # dpkg: the epoch beats everything after it
        ("Debian:12", "1:1.0", "2.0", 1),
        ("Debian", "2:0.1-1", "1:9.9-9", 1),
        ("Debian", "0:1.0", "1.0", 0),
        # dpkg: '~' sorts before anything, even the end
        ("Debian", "1.0~rc1", "1.0", -1),
        ("Debian", "1.0~~", "1.0~", -1),
        ("Debian", "1.0~rc1-1", "1.0-1", -1),
        # dpkg: revisions, binNMUs and security updates
        ("Debian", "1.2-3", "1.2-3+b1", -1),
        ("Debian", "1.2-3+deb12u1", "1.2-3", 1),
        ("Debian", "1.0", "1.0-0", 0),
        ("Debian", "1.0-1", "1.0-10", -1),
        ("Debian", "1.0a", "1.0+", -1),  # letters sort before non-letters
        ("Ubuntu:22.04", "2.35-0ubuntu3.1", "2.35-0ubuntu3", 1),
        # apk
        ("Alpine:v3.18", "1.36.1-r10", "1.36.1-r9", 1),
        ("Alpine", "1.0_rc1", "1.0", -1),
        ("Alpine", "1.0_p1", "1.0", 1),
        ("Alpine", "1.2.3a-r0", "1.2.3-r5", 1),
        # rpm
        ("Rocky Linux:9", "1:1.0-1.el9", "2.0-1.el9", 1),
        ("Red Hat:enterprise_linux:9::baseos", "4.4.20-1.el9_0", "4.4.20-1.el9_1", -1),
        ("openSUSE:Leap 15.5", "1.0~beta-1", "1.0-1", -1),
        ("AlmaLinux:8", "2.0-1", "10.0-1", -1),
        # PEP 440
        ("PyPI", "1.0rc1", "1.0", -1),
        ("PyPI", "1.0.post1", "1.0", 1),
        ("PyPI", "1.0", "1.0.0", 0),
        ("PyPI", "2.0.dev1", "2.0a1", -1),
        ("PyPI", "1!0.1", "9.9", 1),
        # SemVer
        ("npm", "1.0.0-alpha", "1.0.0", -1),
        ("npm", "1.0.0-alpha.10", "1.0.0-alpha.9", 1),
        ("npm", "1.0.0+build.1", "1.0.0+build.2", 0),
        ("Go", "v1.2.3", "1.2.4", -1),
        ("crates.io", "0.10.0", "0.9.9", 1),
        # others through univers
        ("Maven", "1.0-SNAPSHOT", "1.0", -1),
        ("NuGet", "1.0.0-beta", "1.0.0", -1),
        ("RubyGems", "1.0.0.pre", "1.0.0", -1),
    ],
)
def test_compare(ecosystem: str, a: str, b: str, expected: int) -> None:
    assert compare(ecosystem, a, b) == expected
    assert compare(ecosystem, b, a) == -expected


def test_release_suffix_and_case_do_not_change_the_ordering() -> None:
    assert versions.ordering("Debian:12") is versions.ordering("debian")
    assert versions.ordering("Ubuntu:22.04:LTS") is versions.ordering("Debian")
    assert versions.ordering("Alpine:v3.18") is versions.ordering("Wolfi")
    assert versions.base_ecosystem("Rocky Linux:9") == "Rocky Linux"
    assert is_supported("PyPI")
    assert not is_supported("Hackage")


def test_sort_key_sorts_by_the_ecosystem_rules() -> None:
    unsorted = ["2.0", "1:0.1", "1.0~b1", "1.0", "1.0-1", "1.0+b1"]
    assert sorted(unsorted, key=sort_key("Debian:12")) == [
        "1.0~b1",
        "1.0",
        "1.0-1",
        "1.0+b1",
        "2.0",
        "1:0.1",
    ]
    assert sorted(["1.0.0", "1.0.0-rc.1", "0.9.0"], key=sort_key("npm")) == [
        "0.9.0",
        "1.0.0-rc.1",
        "1.0.0",
    ]


def test_version_keys_compare_within_one_scheme_only() -> None:
    deb = parse("Debian", "1.0")
    assert deb == parse("Debian:12", "1.0-0")
    assert deb < parse("Debian", "1.0-1") <= parse("Debian", "1.0-1")
    assert parse("Debian", "2.0") > deb >= parse("Debian", "1.0~")
    assert deb != parse("PyPI", "1.0")  # different schemes are never equal…
    with pytest.raises(TypeError):
        assert deb < parse("PyPI", "1.0")  # …and do not order
    with pytest.raises(TypeError):
        hash(deb)
    assert deb.version == "1.0"
    assert "dpkg" in repr(deb)


@pytest.mark.parametrize(
    ("ecosystem", "version"),
    [
        ("Debian", "abc"),
        ("Debian", ""),
        ("Debian", "1.0 2"),
        ("PyPI", "not a version"),
        ("npm", "1.0"),
        ("npm", "one.two.three"),
        ("Alpine", "1.0-r"),
        ("Alpine", "1.2.4_foo-r4"),  # not an apk suffix
        ("Rocky Linux", "x:1.0"),
        ("Red Hat", ":"),
        ("NuGet", "abc"),
    ],
)
def test_unparseable_versions_raise_a_value_error(ecosystem: str, version: str) -> None:
    with pytest.raises(UnparseableVersion) as info:
        compare(ecosystem, version, "1.0.0")
    assert isinstance(info.value, ValueError)
    assert repr(version) in str(info.value)
    with pytest.raises(UnparseableVersion):
        compare(ecosystem, version, version)  # equal strings are still checked


def test_unsupported_ecosystem_raises_a_value_error() -> None:
    with pytest.raises(UnsupportedEcosystem) as info:
        compare("Hackage", "1.0", "1.1")
    assert isinstance(info.value, ValueError)
    assert "Hackage" in str(info.value)


def test_semver_ordering_is_available_for_semver_ranges() -> None:
    assert SEMVER.compare("1.2.3-beta.2", "1.2.3-beta.11") == -1
    assert SEMVER.compare("2.0.0", "10.0.0") == -1


# --- agreement with dpkg itself ------------------------------------------------------

needs_dpkg = pytest.mark.skipif(DPKG is None, reason="dpkg is not installed")

# Compares pairs given as arguments, printing <, = or > per pair, in one process.
_DPKG_SCRIPT = """
while [ "$#" -gt 0 ]; do
    if dpkg --compare-versions "$1" lt "$2"; then echo "<"
    elif dpkg --compare-versions "$1" eq "$2"; then echo "="
    else echo ">"; fi
    shift 2
done
"""


def dpkg_compare_all(pairs: list[tuple[str, str]]) -> list[int]:
    """dpkg's own answers for each (a, b) pair: -1, 0 or 1."""
    args = [v for pair in pairs for v in pair]
    out = subprocess.run(
        ["sh", "-c", _DPKG_SCRIPT, "sh", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stderr == "", out.stderr  # dpkg warns about versions it dislikes
    return [{"<": -1, "=": 0, ">": 1}[line] for line in out.stdout.split()]


@needs_dpkg
def test_known_tricky_versions_agree_with_dpkg() -> None:
    tricky = [
        "1:1.0",
        "2.0",
        "1.0~rc1",
        "1.0",
        "1.0-0",
        "1.0+b1",
        "1.0-1",
        "1.0-1+b1",
        "1.0-1~bpo1",
        "1.0a",
        "1.0+",
        "1.0.",
        "1.0~",
        "1.0~~",
        "0:1.0",
        "1.00",
        "1.0-1.1",
        "1.0-a",
        "10:0",
        "1.0-1-1",
        "2.36.1-8+deb12u1",
        "2.36.1-8",
        "9",
        "10",
    ]
    pairs = [(a, b) for a in tricky for b in tricky]
    expected = dpkg_compare_all(pairs)
    assert [compare("Debian", a, b) for a, b in pairs] == expected


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_upstream_tail = st.text(alphabet=_ALNUM + ".+~", max_size=8)
_revision = st.text(alphabet=_ALNUM + ".+~", min_size=1, max_size=6)


@st.composite
def debian_versions(draw: st.DrawFn) -> str:
    """Valid Debian versions: [epoch:]upstream[-revision], upstream starting with a digit.

    The small alphabets make equal prefixes, '~' and hyphens common, where orderings
    disagree if they are going to.
    """
    epoch = draw(st.one_of(st.just(""), st.integers(0, 3).map(lambda n: f"{n}:")))
    first = draw(st.sampled_from("0123456789"))
    upstream = first + draw(_upstream_tail)
    revision = draw(st.one_of(st.just(""), _revision))
    if revision:
        # A hyphen inside upstream is allowed only when a revision follows.
        middle = draw(st.one_of(st.just(""), st.text(alphabet="1a.~", min_size=1, max_size=3)))
        if middle:
            upstream = f"{upstream}-{middle}"
        return f"{epoch}{upstream}-{revision}"
    return f"{epoch}{upstream}"


@needs_dpkg
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(debian_versions(), debian_versions()), min_size=1, max_size=4))
def test_debian_ordering_agrees_with_dpkg(pairs: list[tuple[str, str]]) -> None:
    # Also compare each version with a close neighbour, where orderings differ most.
    pairs = pairs + [(a, a + "~") for a, _ in pairs] + [(a, a + "+b1") for a, _ in pairs]
    assert [compare("Debian:12", a, b) for a, b in pairs] == dpkg_compare_all(pairs)


def dpkg_library_answer(a: str, b: str) -> int:
    """``univers``' own answer, without the shortcuts of :mod:`versions`."""
    result: int = univers_debian.compare_versions(a, b)  # type: ignore[no-untyped-call]
    return result


@settings(max_examples=300, deadline=None)
@given(debian_versions(), debian_versions(), st.text(alphabet="019a.+~", max_size=4))
def test_debian_shortcuts_give_the_library_answer(a: str, b: str, tail: str) -> None:
    # Equal parts and common starts are skipped by the shortcuts: pairs that share a
    # start (a + tail, a with its last character changed) exercise them most.
    pairs = [(a, b), (a, a), (a, a + tail), (a + tail, a)]
    if a[-1:].isalnum():
        pairs.append((a, a[:-1] + ("9" if a[-1].isalpha() else "z")))
    for x, y in pairs:
        if univers_debian.is_valid_debian_version(x) and univers_debian.is_valid_debian_version(y):
            assert compare("Debian", x, y) == dpkg_library_answer(x, y), (x, y)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("19", "100", -1),  # a common "1" must not be cut off a number
        ("1.0-19", "1.0-100", -1),
        ("1.0-1+deb12u9", "1.0-1+deb12u10", -1),
        ("2.36-9+deb12u4", "2.36-9+deb12u4~bench1", 1),
        ("1.0a", "1.0ab", -1),
        ("1.0~a", "1.0~", 1),
        ("1.0-1", "1.0-1.1", -1),
        ("1:1.0-1", "1:1.0-1", 0),
    ],
)
def test_debian_common_starts(a: str, b: str, expected: int) -> None:
    assert compare("Debian", a, b) == expected == dpkg_library_answer(a, b)
    assert compare("Debian", b, a) == -expected


# --- apk ----------------------------------------------------------------------------------

# Ordered pairs from apk-tools' own test vectors (test/version.data), valid ones only.
APK_VECTORS = [
    ("2.34", ">", "0.1.0_alpha"),
    ("0.1.0_alpha2", ">", "0.1.0_alpha"),
    ("1.0.4-r3", "<", "1.0.4-r4"),
    ("1.1", ">", "1.1_alpha1"),
    ("1.3_alpha", "<", "1.3_alpha2"),
    ("0.8_beta1", "<", "0.8_beta2"),
    ("2.3.0b-r1", "<", "2.3.0b-r2"),
    ("3.10.18-r1", ">", "2.3.0b-r1"),
    ("0.12.3", ">", "0.12"),
    ("0.13_beta5", ">", "0.9.12"),
    ("1.2.12.1", "<", "1.2.13"),
    ("3.1_p16", "<", "3.1_p17"),
    ("1.06-r6", "<", "006"),
    ("006", ">", "1.0.0"),
    ("1.2.2-r1", ">", "1.2.2"),
    ("3.9.8-r5", ">", "2.01.01_alpha10"),
    ("1.39", ">", "1.00_beta2"),
    ("4.2.52_p2-r1", "<", "4.2.52_p4-r2"),
    ("1.02.07", "<", "1.02.10-r1"),
    ("20060720", ">", "3.0.20060720"),
    ("2.5.1-r8", "<", "2.5.1a-r1"),
    ("2.0.0_rc3-r1", ">", "1.5"),
    ("021109-r3", "<", "20060512"),
    ("3.9_pre20060124", ">", "0.01"),
    ("0.10.0", "<", "0.10.1_rc1"),
    ("0.15.1b-r2", ">", "0.15.1b"),
    ("2.1_pre20", "<", "2.1_pre26"),
    ("2.10.1", ">", "02.08.01b"),
    ("1.2.07.8", "<", "1.2.12.04"),
    ("0.1_pre20060810", "<", "0.1_pre20060817"),
    ("0.59s-r11", "<", "0.65"),
    ("0.20070118", "<", "0.20070207_rc1"),
    ("4.5_p1-r1", ">", "4.5_p1"),
    ("0.9.8c-r1", "<", "0.9.8d"),
    ("2.9.11_pre20051101-r3", ">", "2.9.11_pre20051101"),
    ("1.6.8_p12-r1", ">", "1.6.8_p9-r2"),
    ("0.9.28.1", "<", "087-r1"),
    ("2.12r-r4", "<", "2.12r-r5"),
    ("7.0.17", "<", "7.0.174"),
    ("1.3_pre1-r1", "<", "1.3.2"),
    ("1.0_p10-r0", ">", "1.0_p9-r0"),
    ("0.1.0_alpha_pre2", "<", "0.1.0_alpha"),
    ("1.0.0_pre20191002222144-r0", "<", "1.0.0_pre20210530193627-r0"),
    ("6.0_pre1", "<", "6.0"),
    ("6.0_p1", ">", "6.0"),
    ("1.7", "<", "1.7b"),
    ("1.8.5", "<", "1.8.5_p2"),
    ("2.16.1-r3", "=", "2.16.1-r3"),
    ("0.2.0-r1", "=", "0.2.0-r1"),
]
_SIGN = {"<": -1, "=": 0, ">": 1}


@pytest.mark.parametrize(("a", "op", "b"), APK_VECTORS)
def test_apk_tools_vectors(a: str, op: str, b: str) -> None:
    assert compare("Alpine:v3.19", a, b) == _SIGN[op]
    assert compare("Alpine", b, a) == -_SIGN[op]


def test_apk_suffix_order_and_real_versions() -> None:
    chain = [
        "1.0_alpha",
        "1.0_alpha1",
        "1.0_beta",
        "1.0_pre2",
        "1.0_rc1",
        "1.0",
        "1.0-r0",
        "1.0-r1",
        "1.0_cvs",
        "1.0_svn20200101",
        "1.0_git20230717",
        "1.0_hg1",
        "1.0_p1",
        "1.0_p1-r2",
        "1.0a",
        "1.0.0",
        "1.00",
        "1.01",
        "1.1",
    ]
    for older, newer in itertools.pairwise(chain):
        assert compare("Alpine", older, newer) == -1, (older, newer)
    assert sorted(chain[1::2] + chain[::2], key=sort_key("Wolfi")) == chain
    # Leading zeros after the first number compare as strings (a fraction).
    assert compare("Alpine", "1.05", "1.1") == -1
    assert compare("Alpine", "1.1", "1.5") == -1
    assert compare("Alpine", "1.0", "1.00") == -1
    assert compare("Alpine", "006", "6") == 0  # the first number is a number
    # Real Alpine package versions that Gentoo-grammar parsers reject.
    musl = "1.2.4_git20230717-r4"
    assert compare("Alpine:v3.19", musl, "1.2.4_git20230717-r5") == -1
    assert compare("Alpine", "1.2.4-r4", musl) == -1
    assert compare("Alpine", musl, "1.2.5-r0") == -1
    assert compare("Alpine", "9.4_p1-r0", "9.4-r9") == 1
    assert compare("Alpine", "1.36.1~abc123-r1", "1.36.1-r1") == 1  # a hash, then -r
    assert compare("Chainguard", "2.0_rc1_p3", "2.0_rc1") == 1


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1.0-r",
        "0.9.8zh-r0",  # one letter only
        "1.2a3",  # no digits after the letter
        "23_foo",
        "1.0bc",
        "1.0_ALPHA",
        "1.0.a",
        "1..0",
        ".1",
        "1.0-1",
        "1.0-r1-r2",
        "1.0_p1.2",
        "1.0~xyz",
        "1.0~",
        "v1.0",
        "1.0 ",
        "1.0\n",
        "\u0661.\u0662",  # Arabic-Indic digits are not apk digits
    ],
)
def test_apk_invalid_versions_raise(version: str) -> None:
    with pytest.raises(UnparseableVersion):
        apk_key(version)
    with pytest.raises(UnparseableVersion):
        compare("Alpine", version, "1.0")


# An independent apk comparison, written as apk-tools describes it (token by token),
# to check the tuple keys of versions.apk_key against.
_KINDS = ["digit", "letter", "suffix", "suffix_number", "hash", "revision", "end"]
_PRE = ["alpha", "beta", "pre", "rc"]
_POST = ["cvs", "svn", "git", "hg", "p"]
_TOKEN = re.compile(r"\.([0-9]+)|([a-z])|_([a-z]+)|([0-9]+)|~([0-9a-f]+)|-r([0-9]+)")


def _apk_tokens(version: str) -> list[tuple[str, str]]:
    first = re.match(r"[0-9]+", version)
    assert first is not None
    tokens = [("initial", first.group())]
    position = first.end()
    while position < len(version):
        found = _TOKEN.match(version, position)
        assert found is not None
        kind = ["digit", "letter", "suffix", "suffix_number", "hash", "revision"][
            found.lastindex - 1  # type: ignore[operator]
        ]
        tokens.append((kind, found.group(found.lastindex)))  # type: ignore[arg-type]
        position = found.end()
    return [*tokens, ("end", "")]


def _suffix_order(name: str) -> int:
    return _PRE.index(name) - 10 if name in _PRE else _POST.index(name)


def reference_apk_compare(a: str, b: str) -> int:
    def sign(x: int | str, y: int | str) -> int:
        return (x > y) - (x < y)  # type: ignore[operator]

    for (kind_a, text_a), (kind_b, text_b) in zip(_apk_tokens(a), _apk_tokens(b), strict=False):
        if kind_a != kind_b:
            if kind_a == "suffix" and text_a in _PRE:
                return -1
            if kind_b == "suffix" and text_b in _PRE:
                return 1
            rank = ["initial", *_KINDS]
            return sign(rank.index(kind_b), rank.index(kind_a))
        if kind_a == "end":
            return 0
        if kind_a == "digit" and (text_a[0] == "0" or text_b[0] == "0"):
            result = sign(text_a, text_b)
        elif kind_a in ("initial", "digit", "suffix_number", "revision"):
            result = sign(int(text_a), int(text_b))
        elif kind_a == "suffix":
            result = sign(_suffix_order(text_a), _suffix_order(text_b))
        else:
            result = sign(text_a, text_b)
        if result:
            return result
    raise AssertionError("unreachable: both token lists end with 'end'")


_number = st.text(alphabet="0012", min_size=1, max_size=3)


@st.composite
def apk_versions(draw: st.DrawFn) -> str:
    """Valid apk versions over small alphabets, so that equal starts are common."""
    version = draw(_number) + "".join("." + n for n in draw(st.lists(_number, max_size=3)))
    version += draw(st.sampled_from(["", "", "a", "z"]))
    for suffix in draw(st.lists(st.sampled_from(_PRE + _POST), max_size=2)):
        version += "_" + suffix + draw(st.sampled_from(["", "", "1", "2", "01"]))
    version += draw(st.sampled_from(["", "", "~0a", "~1f"]))
    version += draw(st.sampled_from(["", "", "-r0", "-r1", "-r10"]))
    return version


@settings(max_examples=400, deadline=None)
@given(apk_versions(), apk_versions())
def test_apk_keys_agree_with_a_token_by_token_comparison(a: str, b: str) -> None:
    assert compare("Alpine", a, b) == reference_apk_compare(a, b)


def alpine_compare(a: str, b: str) -> int:
    return compare("Alpine", a, b)


@settings(max_examples=300, deadline=None)
@given(apk_versions(), apk_versions(), apk_versions())
def test_apk_ordering_is_antisymmetric_and_transitive(a: str, b: str, c: str) -> None:
    assert compare("Alpine", a, a) == 0
    assert compare("Alpine", a, b) == -compare("Alpine", b, a)
    ordered = sorted([a, b, c], key=cmp_to_key(alpine_compare))
    x, y, z = ordered
    assert compare("Alpine", x, y) <= 0
    assert compare("Alpine", y, z) <= 0
    assert compare("Alpine", x, z) <= 0
    if compare("Alpine", x, y) == 0 and compare("Alpine", y, z) == 0:
        assert compare("Alpine", x, z) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(apk_versions(), min_size=2, max_size=8))
def test_apk_compare_is_consistent_with_sorting(items: list[str]) -> None:
    ordered = sorted(items, key=sort_key("Alpine"))
    for i, earlier in enumerate(ordered):
        for later in ordered[i + 1 :]:
            assert compare("Alpine", earlier, later) <= 0
            assert parse("Alpine", earlier) <= parse("Alpine", later)
