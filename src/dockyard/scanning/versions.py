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

* Debian, Ubuntu: dpkg rules — epochs, ``~``, revisions (``univers.debian``); the same
  answers as ``dpkg --compare-versions``.
* Alpine, Wolfi, Chainguard: apk rules (``univers`` ``AlpineLinuxVersion``).
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

Known limit: the apk ordering comes from ``univers``, whose grammar is Gentoo's. It
rejects apk suffixes Gentoo does not have (``_git``, ``_svn``, ``_cvs``, ``_hg``),
multi-letter final parts (``0.9.8zh``) and leading zeros (``006``); such versions raise
:class:`UnparseableVersion`.
"""

from __future__ import annotations

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

    def _cmp(self, other: object) -> int:
        if not isinstance(other, VersionKey) or other._ordering is not self._ordering:
            raise TypeError(f"cannot compare {self!r} with {other!r}")
        return self._ordering._compare_values(self._value, other._value)

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


def _cmp_dpkg(a: Any, b: Any) -> int:
    result: int = _debian.compare_versions(a, b)  # type: ignore[no-untyped-call]
    return result


def _parse_rpm(version: str) -> Any:
    value = _rpm.RpmVersion.from_string(version.strip())  # type: ignore[no-untyped-call]
    if not value.version:
        raise UnparseableVersion("rpm", version, "no version part")
    return value


def _cmp_rpm(a: Any, b: Any) -> int:
    return _rpm.compare_rpm_versions(a, b)


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
_APK: Final = Ordering("apk", _univers_parser(_univers.AlpineLinuxVersion), _cmp_rich)
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
