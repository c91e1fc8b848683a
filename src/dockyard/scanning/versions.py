"""Version ordering for each OSV ecosystem, delegated to well-kept libraries.

Every ecosystem orders its versions by its own rules; this module picks the right rules
from the ecosystem name and exposes them through one small API:

* :func:`compare` — ``-1``, ``0`` or ``1`` for two version strings of an ecosystem;
* :func:`parse` / :func:`sort_key` — an orderable :class:`VersionKey`, for sorting;
* :func:`ordering` — the :class:`Ordering` object itself, and :data:`SEMVER` for OSV
  ranges of type ``SEMVER`` whatever their ecosystem.

The ecosystem may carry a release or other qualifier after a colon (``Debian:12``,
``Alpine:v3.18``, ``Rocky Linux:9``, ``Ubuntu:22.04:LTS``): only the part before the
first colon picks the ordering.

* Debian, Ubuntu: dpkg rules — epochs, ``~``, revisions (``univers.debian``, its
  string comparison applied to the parts that differ); the same answers as
  ``dpkg --compare-versions``.
* Alpine, Wolfi, Chainguard: apk rules, implemented here (:func:`apk_key`) after the
  algorithm of apk-tools' ``apk_version_compare``, as no maintained Python library
  implements them.
* Red Hat, Rocky Linux, AlmaLinux, Fedora, CentOS, openSUSE, SUSE, Mageia, openEuler,
  Photon OS, Oracle Linux, Azure Linux, Amazon Linux: rpmvercmp with epoch
  (``univers.rpm``).
* PyPI: PEP 440 (``packaging``).
* npm, crates.io, Go, SwiftURL, Pub, Hex, and every OSV range of type ``SEMVER``:
  SemVer 2.0 precedence (``semver``), build metadata ignored, a leading ``v`` dropped.
* Maven, NuGet, RubyGems: ``univers``' class for each.

A version the rules cannot read raises :class:`UnparseableVersion` and an ecosystem
without known rules raises :class:`UnsupportedEcosystem`; both are :class:`ValueError`
subclasses, so a caller can treat either as "cannot decide" without crashing.

The apk rules
-------------
An apk version is ``digits{.digits}[letter]{_suffix[digits]}[~hash][-rdigits]``:

* the first number compares numerically (``006`` is 6); a later dotted number compares
  numerically too, unless one of the two starts with ``0``: then both compare as
  strings, so ``1.05`` < ``1.1`` < ``1.5`` and ``1.0`` < ``1.00`` (a fraction, as
  apk-tools does);
* one lowercase letter may follow the numbers (``1.2.3a`` > ``1.2.3``);
* any number of suffixes, each with an optional number, in the order ``_alpha`` <
  ``_beta`` < ``_pre`` < ``_rc`` < (no suffix) < ``_cvs`` < ``_svn`` < ``_git`` <
  ``_hg`` < ``_p``;
* a commit hash ``~`` + lowercase hex digits (compared as a string), then the package
  revision ``-rN``.

The two versions are compared part by part while their parts are of the same kind.
Where one goes on with a kind of part the other does not have there (or ends), the one
going on with a pre-release suffix (``_alpha`` … ``_rc``) is older; otherwise the one
whose next part comes later in the list above is older, an end counting as coming after
everything: ``1.0_rc1`` < ``1.0`` < ``1.0-r0`` < ``1.0_p1`` < ``1.0a`` < ``1.0.1``. A
string outside this grammar — a second letter (``0.9.8zh``), digits after the letter
(``1.2a3``), an unknown suffix (``_foo``), uppercase, ``-r`` without a number — raises
:class:`UnparseableVersion` ("cannot decide"), where apk-tools would still place it
by its fallback rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

import semver
from packaging.version import InvalidVersion as _InvalidPep440
from packaging.version import Version as _Pep440Version
from univers import debian as _debian
from univers import rpm as _rpm
from univers import versions as _univers

__all__ = [
    "SEMVER",
    "Ordering",
    "UnparseableVersion",
    "UnsupportedEcosystem",
    "VersionError",
    "VersionKey",
    "apk_key",
    "base_ecosystem",
    "compare",
    "is_supported",
    "ordering",
    "parse",
    "sort_key",
]


class VersionError(ValueError):
    """A version comparison that cannot be decided."""


class UnsupportedEcosystem(VersionError):
    """No ordering rules are known for this ecosystem."""

    def __init__(self, ecosystem: str) -> None:
        super().__init__(f"no version ordering is known for ecosystem {ecosystem!r}")
        self.ecosystem = ecosystem


class UnparseableVersion(VersionError):
    """A version string that its ecosystem's rules cannot read."""

    def __init__(self, scheme: str, version: str, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"{version!r} is not a valid {scheme} version{detail}")
        self.scheme = scheme
        self.version = version


class Ordering:
    """The ordering rules of one version scheme (dpkg, apk, rpm, PEP 440, SemVer, …).

    ``parse`` turns a string into the library's own value (cached, since a scan parses
    the same strings many times) and ``compare`` orders two strings.
    """

    __slots__ = ("_cmp", "_parse", "name")

    def __init__(
        self,
        name: str,
        parse: Callable[[str], Any],
        cmp: Callable[[Any, Any], int],
    ) -> None:
        self.name = name
        self._cmp = cmp

        def checked(version: str) -> Any:
            if not isinstance(version, str) or not version.strip():
                raise UnparseableVersion(name, str(version), "empty version")
            try:
                return parse(version)
            except UnparseableVersion:
                raise
            except Exception as exc:
                # The libraries signal bad input with exceptions of their own (not all
                # of them ValueError) or fail deeper inside on odd strings; all of them
                # mean "cannot read" here.
                raise UnparseableVersion(name, version, str(exc)) from exc

        self._parse = lru_cache(maxsize=65536)(checked)

    def __repr__(self) -> str:
        return f"Ordering({self.name!r})"

    def parse(self, version: str) -> VersionKey:
        """Return an orderable key for *version*; raise :class:`UnparseableVersion`."""
        return VersionKey(self, version, self._parse(version))

    def compare(self, a: str, b: str) -> int:
        """Return ``-1``, ``0`` or ``1`` as *a* sorts before, equal to or after *b*."""
        if a == b:
            self._parse(a)  # still reject an unreadable version
            return 0
        return self._compare_values(self._parse(a), self._parse(b))

    def _compare_values(self, a: Any, b: Any) -> int:
        result = self._cmp(a, b)
        return (result > 0) - (result < 0)


class VersionKey:
    """A parsed version that orders by its scheme's rules (for :func:`sorted`).

    Keys of different schemes do not compare. Keys are not hashable: two different
    strings may be equal versions (``1.0`` and ``1.0-0`` in dpkg).
    """

    __slots__ = ("_ordering", "_value", "version")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, ordering: Ordering, version: str, value: Any) -> None:
        self._ordering = ordering
        self._value = value
        self.version = version

    def __repr__(self) -> str:
        return f"VersionKey({self._ordering.name!r}, {self.version!r})"

    def compare(self, other: VersionKey) -> int:
        """``-1``, ``0`` or ``1`` as this version sorts before, equal to or after *other*.

        Raises :class:`TypeError` for a key of another scheme.
        """
        if not isinstance(other, VersionKey) or other._ordering is not self._ordering:
            raise TypeError(f"cannot compare {self!r} with {other!r}")
        return self._ordering._compare_values(self._value, other._value)

    _cmp = compare

    def compare_to(self, version: str) -> int:
        """:meth:`compare` with *version* read by this key's scheme.

        Raises :class:`UnparseableVersion` when the scheme cannot read *version*.
        """
        ordering = self._ordering
        return ordering._compare_values(self._value, ordering._parse(version))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionKey):
            return NotImplemented
        return other._ordering is self._ordering and self._cmp(other) == 0

    def __lt__(self, other: VersionKey) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: VersionKey) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: VersionKey) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: VersionKey) -> bool:
        return self._cmp(other) >= 0


# --- the schemes ---------------------------------------------------------------------


def _parse_dpkg(version: str) -> Any:
    return _debian.Version.from_string(version)  # type: ignore[no-untyped-call]


_dpkg_compare_strings: Final[Callable[[str, str], int]] = _debian.compare_strings
"""dpkg's comparison of an upstream version or a revision (``univers.debian``)."""


def _cmp_dpkg(a: Any, b: Any) -> int:
    """``univers``' dpkg comparison, part by part, skipping what cannot differ.

    The epoch, upstream version and revision are compared in that order by
    ``univers.debian.compare_strings``, as ``univers.debian.compare_versions`` does;
    equal parts are skipped and so is the common start of two parts up to its last
    non-digit character (see :func:`_differing_tails`). Both shortcuts give exactly
    the library's answer, several times faster on the usual pairs (a security update
    against the installed version of the same upstream release).
    """
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    if a.upstream != b.upstream:
        result = _dpkg_compare_strings(*_differing_tails(a.upstream, b.upstream))
        if result:
            return result
    if a.revision != b.revision:
        return _dpkg_compare_strings(*_differing_tails(a.revision, b.revision))
    return 0


def _differing_tails(a: str, b: str) -> tuple[str, str]:
    """*a* and *b* without their common start, cut just after a non-digit character.

    dpkg compares alternating runs of non-digits (character by character) and of digits
    (as numbers). Up to the cut both strings hold the same runs, except that the
    non-digit run the cut falls in continues past it; comparing that run character by
    character, its common head decides nothing. Cutting inside a digit run would
    change numbers (``19`` and ``100`` share ``1``), hence the cut after a non-digit.
    """
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    while common and a[common - 1].isdigit():
        common -= 1
    return a[common:], b[common:]


def _parse_rpm(version: str) -> Any:
    value = _rpm.RpmVersion.from_string(version.strip())  # type: ignore[no-untyped-call]
    if not value.version:
        raise UnparseableVersion("rpm", version, "no version part")
    return value


def _cmp_rpm(a: Any, b: Any) -> int:
    return _rpm.compare_rpm_versions(a, b)


# apk: each part of a version becomes two items of a tuple, a rank then a value, so that
# Python's tuple comparison gives apk's answer. The ranks follow apk-tools' part kinds:
# where two versions go on with parts of different kinds (or one ends), the one whose
# next part has the lower rank is older; a pre-release suffix ranks lowest of all.
_APK_INITIAL: Final = 0
_APK_DIGIT: Final = -1
_APK_LETTER: Final = -2
_APK_SUFFIX: Final = -3
_APK_SUFFIX_NUMBER: Final = -4
_APK_HASH: Final = -5
_APK_REVISION: Final = -6
_APK_END: Final = -7
_APK_PRE_RELEASE: Final = -8
_APK_SUFFIXES: Final = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    # 4 would be "no suffix"
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_APK_NO_SUFFIX: Final = 4
_APK_GRAMMAR: Final = re.compile(
    r"(?P<first>[0-9]+)(?P<dotted>(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_[a-z]+[0-9]*)*)(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>[0-9]+))?"
)
_APK_SUFFIX_PART: Final = re.compile(r"_([a-z]+)([0-9]*)")


def apk_key(version: str) -> tuple[Any, ...]:
    """An orderable tuple for an apk *version*: keys compare as apk-tools orders versions.

    The rules are in this module's docstring. Raises :class:`UnparseableVersion` for a
    string outside apk's version grammar.
    """
    match = _APK_GRAMMAR.fullmatch(version)
    if match is None:
        raise UnparseableVersion(
            "apk", version, "not digits{.digits}[letter]{_suffix[N]}[~hash][-rN]"
        )
    key: list[Any] = [_APK_INITIAL, int(match["first"])]
    for number in match["dotted"].split(".")[1:]:
        # A leading zero makes both sides compare as strings; a string starting with
        # "0" sorts before any starting with another digit, hence the flag first.
        key += (_APK_DIGIT, (0, number) if number[0] == "0" else (1, int(number)))
    if match["letter"]:
        key += (_APK_LETTER, match["letter"])
    for name, number in _APK_SUFFIX_PART.findall(match["suffixes"]):
        order = _APK_SUFFIXES.get(name)
        if order is None:
            raise UnparseableVersion("apk", version, f"unknown suffix _{name}")
        key += (_APK_PRE_RELEASE if order < _APK_NO_SUFFIX else _APK_SUFFIX, order)
        if number:
            key += (_APK_SUFFIX_NUMBER, int(number))
    if match["hash"]:
        key += (_APK_HASH, match["hash"])
    if match["revision"] is not None:
        key += (_APK_REVISION, int(match["revision"]))
    key += (_APK_END, 0)
    return tuple(key)


def _univers_parser(cls: type[_univers.Version]) -> Callable[[str], Any]:
    def parse(version: str) -> Any:
        return cls(version)

    return parse


def _cmp_rich(a: Any, b: Any) -> int:
    """Compare two values that implement ``<`` and ``>`` (the libraries' objects)."""
    if a < b:
        return -1
    if a > b:
        return 1
    return 0


def _parse_pep440(version: str) -> Any:
    try:
        return _Pep440Version(version)
    except _InvalidPep440 as exc:
        raise UnparseableVersion("PEP 440", version, str(exc)) from exc


def _parse_semver(version: str) -> Any:
    # Go module versions and some npm metadata carry a leading "v" (or npm's "=");
    # SemVer itself has none.
    text = version.strip()
    if text[:1] in ("v", "V", "="):
        text = text[1:]
    return semver.Version.parse(text)


def _cmp_semver(a: Any, b: Any) -> int:
    # SemVer 2.0 §10: build metadata does not take part in precedence; semver's
    # compare() already ignores it.
    result: int = a.compare(b)
    return result


_DPKG: Final = Ordering("dpkg", _parse_dpkg, _cmp_dpkg)
_APK: Final = Ordering("apk", apk_key, _cmp_rich)
_RPM: Final = Ordering("rpm", _parse_rpm, _cmp_rpm)
_PEP440: Final = Ordering("PEP 440", _parse_pep440, _cmp_rich)
SEMVER: Final = Ordering("SemVer", _parse_semver, _cmp_semver)
"""The ordering of OSV ranges of type ``SEMVER``, and of SemVer ecosystems."""
_MAVEN: Final = Ordering("Maven", _univers_parser(_univers.MavenVersion), _cmp_rich)
_NUGET: Final = Ordering("NuGet", _univers_parser(_univers.NugetVersion), _cmp_rich)
_GEM: Final = Ordering("RubyGems", _univers_parser(_univers.RubygemsVersion), _cmp_rich)

_BY_ECOSYSTEM: Final[dict[str, Ordering]] = {
    "debian": _DPKG,
    "ubuntu": _DPKG,
    "alpine": _APK,
    "wolfi": _APK,
    "chainguard": _APK,
    "red hat": _RPM,
    "rocky linux": _RPM,
    "almalinux": _RPM,
    "fedora": _RPM,
    "centos": _RPM,
    "opensuse": _RPM,
    "suse": _RPM,
    "mageia": _RPM,
    "openeuler": _RPM,
    "photon os": _RPM,
    "oracle linux": _RPM,
    "azure linux": _RPM,
    "amazon linux": _RPM,
    "pypi": _PEP440,
    "npm": SEMVER,
    "crates.io": SEMVER,
    "go": SEMVER,
    "swifturl": SEMVER,
    "pub": SEMVER,
    "hex": SEMVER,
    "maven": _MAVEN,
    "nuget": _NUGET,
    "rubygems": _GEM,
}


def base_ecosystem(ecosystem: str) -> str:
    """The ecosystem without its release: ``"Debian:12"`` → ``"Debian"``."""
    return ecosystem.partition(":")[0].strip()


def ordering(ecosystem: str) -> Ordering:
    """The :class:`Ordering` for *ecosystem* (release suffix allowed, case ignored).

    Raises :class:`UnsupportedEcosystem` when no rules are known.
    """
    found = _BY_ECOSYSTEM.get(base_ecosystem(ecosystem).lower())
    if found is None:
        raise UnsupportedEcosystem(ecosystem)
    return found


def is_supported(ecosystem: str) -> bool:
    """Whether :func:`ordering` knows rules for *ecosystem*."""
    return base_ecosystem(ecosystem).lower() in _BY_ECOSYSTEM


def compare(ecosystem: str, a: str, b: str) -> int:
    """Compare two versions of *ecosystem*: ``-1`` if *a* < *b*, ``0`` if equal, else ``1``.

    Raises :class:`UnsupportedEcosystem` or :class:`UnparseableVersion` (both
    :class:`ValueError`) when the answer cannot be decided.
    """
    return ordering(ecosystem).compare(a, b)


def parse(ecosystem: str, version: str) -> VersionKey:
    """An orderable :class:`VersionKey` for *version* in *ecosystem*."""
    return ordering(ecosystem).parse(version)


def sort_key(ecosystem: str) -> Callable[[str], VersionKey]:
    """A ``key=`` function for :func:`sorted` over version strings of *ecosystem*."""
    return ordering(ecosystem).parse
