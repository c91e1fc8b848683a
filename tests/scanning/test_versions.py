"""Version ordering per OSV ecosystem (dockyard.scanning.versions)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.scanning import versions
from dockyard.scanning.versions import (
    SEMVER,
    UnparseableVersion,
    UnsupportedEcosystem,
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
        ("Alpine", "1.2.4_git20230717-r4"),  # a known limit of univers' apk grammar
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
