"""The local OSV database: import, status, matching and severity (dockyard.scanning.vulndb)."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.scanning import versions
from dockyard.scanning.model import Finding, Package
from dockyard.scanning.vulndb import (
    EcosystemStatus,
    ImportStats,
    VulnDB,
    _in_range,
    severity_of,
)

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM_V3 = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"  # 5.5
LOW_V3 = "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"  # 1.6


def affected(
    ecosystem: str,
    name: str,
    *events: dict[str, str],
    range_type: str = "ECOSYSTEM",
    versions: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``affected[]`` entry with (at most) one range of *events*."""
    entry: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}, **extra}
    if events:
        entry["ranges"] = [{"type": range_type, "events": list(events)}]
    if versions is not None:
        entry["versions"] = versions
    return entry


def record(
    vuln_id: str,
    *entries: dict[str, Any],
    modified: str = "2024-01-01T00:00:00Z",
    **fields: Any,
) -> dict[str, Any]:
    """An OSV record."""
    return {"id": vuln_id, "modified": modified, "affected": list(entries), **fields}


def deb(name: str, version: str, source: str = "", source_version: str = "") -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem="Debian:12",
        source_name=source,
        source_version=source_version,
    )


def write(path: Path, *records: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records[0] if len(records) == 1 else list(records)))
    return path


def rows(findings: list[Finding]) -> list[tuple[str, str, str, str, str]]:
    """(id, package name, installed version, fixed version, severity) per finding."""
    return [
        (f.id, f.package.name, f.package.version, f.fixed_version, f.severity) for f in findings
    ]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[VulnDB]:
    with VulnDB(tmp_path / "vulndb") as database:
        yield database


def load(db: VulnDB, tmp_path: Path, *records: dict[str, Any]) -> ImportStats:
    target = tmp_path / "records"
    for index, rec in enumerate(records):
        write(target / f"{index:04d}.json", rec)
    problems: list[tuple[str, str]] = []
    stats = db.import_paths([target], on_invalid=lambda what, why: problems.append((what, why)))
    assert problems == []
    return stats


# --- Debian: epochs, binNMUs, releases, source packages --------------------------------


def test_epoch_makes_a_smaller_looking_version_larger(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record("DSA-1", affected("Debian:12", "foo", {"introduced": "0"}, {"fixed": "2.0-1"})),
        record("DSA-2", affected("Debian:12", "foo", {"introduced": "0"}, {"fixed": "1:1.1-1"})),
    )
    installed = deb("foo", "1:1.0-1", "foo", "1:1.0-1")
    # 1:1.0-1 is newer than 2.0-1 (the fix of DSA-1) but older than 1:1.1-1.
    assert rows(db.match([installed])) == [("DSA-2", "foo", "1:1.0-1", "1:1.1-1", "Unknown")]


def test_binnmu_binaries_match_by_source_version_and_all_binaries_report(
    db: VulnDB, tmp_path: Path
) -> None:
    load(
        db,
        tmp_path,
        # The fix is the source version the binNMU was rebuilt from: still vulnerable.
        record(
            "DEBIAN-CVE-2024-0001",
            affected("Debian:12", "openssl", {"introduced": "0"}, {"fixed": "3.0.11-1~deb12u3"}),
            severity=[{"type": "CVSS_V3", "score": CRITICAL_V3}],
        ),
        # Fixed exactly at the installed source version: not vulnerable, although the
        # binary version 3.0.11-1~deb12u2+b1 is smaller than nothing here.
        record(
            "DEBIAN-CVE-2024-0002",
            affected("Debian:12", "openssl", {"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}),
        ),
        # Named by exact version: the source version, not the binary one.
        record(
            "DEBIAN-CVE-2024-0003",
            affected("Debian:12", "openssl", versions=["3.0.11-1~deb12u2"]),
        ),
        # A record naming the binary package does not apply: Debian records name sources.
        record(
            "DEBIAN-CVE-2024-0004",
            affected("Debian:12", "libssl3", {"introduced": "0"}, {"fixed": "9.9-1"}),
        ),
    )
    libssl = deb("libssl3", "3.0.11-1~deb12u2+b1", "openssl", "3.0.11-1~deb12u2")
    openssl = deb("openssl", "3.0.11-1~deb12u2+b1", "openssl", "3.0.11-1~deb12u2")
    unrelated = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1")
    assert rows(db.match([libssl, openssl, unrelated])) == [
        ("DEBIAN-CVE-2024-0001", "libssl3", "3.0.11-1~deb12u2+b1", "3.0.11-1~deb12u3", "High"),
        ("DEBIAN-CVE-2024-0001", "openssl", "3.0.11-1~deb12u2+b1", "3.0.11-1~deb12u3", "High"),
        ("DEBIAN-CVE-2024-0003", "libssl3", "3.0.11-1~deb12u2+b1", "", "Unknown"),
        ("DEBIAN-CVE-2024-0003", "openssl", "3.0.11-1~deb12u2+b1", "", "Unknown"),
    ]


def test_binary_without_source_falls_back_to_its_own_name_without_binnmu(
    db: VulnDB, tmp_path: Path
) -> None:
    load(db, tmp_path, record("DSA-3", affected("Debian:12", "bash", versions=["5.2.15-2"])))
    assert rows(db.match([deb("bash", "5.2.15-2+b2")])) == [
        ("DSA-3", "bash", "5.2.15-2+b2", "", "Unknown")
    ]


def test_record_for_another_release_does_not_match(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record("DLA-11", affected("Debian:11", "curl", {"introduced": "0"}, {"fixed": "9"})),
        record("DSA-12", affected("Debian:12", "curl", {"introduced": "0"}, {"fixed": "9"})),
        record("DEB-ANY", affected("Debian", "curl", {"introduced": "0"}, {"fixed": "9"})),
        record("UBU-1", affected("Ubuntu:22.04", "curl", {"introduced": "0"}, {"fixed": "9"})),
    )
    curl12 = deb("curl", "7.88.1-10+deb12u5", "curl", "7.88.1-10+deb12u5")
    assert [f.id for f in db.match([curl12])] == ["DEB-ANY", "DSA-12"]
    # A package whose release is unknown meets only records without a release.
    no_release = Package("curl", "7.88.1-10", "Debian", "curl", "7.88.1-10")
    assert [f.id for f in db.match([no_release])] == ["DEB-ANY"]


def test_ubuntu_lts_suffix_is_ignored_but_pro_is_not(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "UBUNTU-CVE-2024-1",
            affected(
                "Ubuntu:22.04:LTS", "glibc", {"introduced": "0"}, {"fixed": "2.35-0ubuntu3.6"}
            ),
            affected(
                "Ubuntu:Pro:22.04:LTS", "glibc", {"introduced": "0"}, {"fixed": "2.35-0ubuntu3.9"}
            ),
            severity=[{"type": "Ubuntu", "score": "medium"}],
        ),
    )
    libc6 = Package("libc6", "2.35-0ubuntu3.5", "Ubuntu:22.04", "glibc", "2.35-0ubuntu3.5")
    assert rows(db.match([libc6])) == [
        ("UBUNTU-CVE-2024-1", "libc6", "2.35-0ubuntu3.5", "2.35-0ubuntu3.6", "Medium")
    ]


# --- range events ------------------------------------------------------------------


def test_last_affected_is_inclusive_and_has_no_fix(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "GHSA-last",
            affected("PyPI", "demo", {"introduced": "1.0"}, {"last_affected": "1.5"}),
        ),
    )
    found = db.match(
        [Package(name="demo", version=v, ecosystem="PyPI") for v in ("0.9", "1.0", "1.5", "1.5.1")]
    )
    assert rows(found) == [
        ("GHSA-last", "demo", "1.0", "", "Unknown"),
        ("GHSA-last", "demo", "1.5", "", "Unknown"),
    ]


def test_fix_older_than_installed_gives_no_finding(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "DSA-old", affected("Debian:12", "vim", {"introduced": "0"}, {"fixed": "2:9.0.1378-1"})
        ),
    )
    assert db.match([deb("vim", "2:9.0.1378-2", "vim", "2:9.0.1378-2")]) == []
    assert db.match([deb("vim", "2:9.0.1378-1", "vim", "2:9.0.1378-1")]) == []
    assert [f.id for f in db.match([deb("vim", "2:9.0.1378-1~rc1", "vim")])] == ["DSA-old"]


def test_limit_events_bound_the_range(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record("LIMIT-1", affected("npm", "lib", {"introduced": "1.0.0"}, {"limit": "2.0.0"})),
        record("LIMIT-STAR", affected("npm", "other", {"introduced": "3.0.0"}, {"limit": "*"})),
        record(
            "LIMIT-2",
            affected(
                "npm",
                "both",
                {"introduced": "0"},
                {"fixed": "5.0.0"},
                {"limit": "1.0.0"},
                {"limit": "3.0.0"},
            ),
        ),
    )
    packages = (
        [Package("lib", v, "npm") for v in ("0.9.0", "1.0.0", "1.9.9", "2.0.0", "2.1.0")]
        + [Package("other", v, "npm") for v in ("2.9.9", "3.0.0", "99.0.0")]
        + [Package("both", v, "npm") for v in ("0.5.0", "2.5.0", "4.0.0")]
    )
    assert sorted(
        (f.id, f.package.name, f.package.version, f.fixed_version) for f in db.match(packages)
    ) == [
        ("LIMIT-1", "lib", "1.0.0", ""),
        ("LIMIT-1", "lib", "1.9.9", ""),
        ("LIMIT-2", "both", "0.5.0", "5.0.0"),
        ("LIMIT-2", "both", "2.5.0", "5.0.0"),
        ("LIMIT-STAR", "other", "3.0.0", ""),
        ("LIMIT-STAR", "other", "99.0.0", ""),
    ]


def test_several_intervals_report_the_fix_that_closes_the_matched_one(
    db: VulnDB, tmp_path: Path
) -> None:
    load(
        db,
        tmp_path,
        record(
            "MULTI",
            affected(
                "npm",
                "pkg",
                # Deliberately out of order: events are sorted before the walk.
                {"introduced": "3.0.0"},
                {"fixed": "1.0.2"},
                {"fixed": "3.2.5"},
                {"introduced": "1.0.0"},
            ),
        ),
    )
    found = db.match(
        [Package("pkg", v, "npm") for v in ("0.1.0", "1.0.1", "2.0.0", "3.1.0", "3.2.5")]
    )
    assert [(f.package.version, f.fixed_version) for f in found] == [
        ("1.0.1", "1.0.2"),
        ("3.1.0", "3.2.5"),
    ]


def test_exact_versions_list(db: VulnDB, tmp_path: Path) -> None:
    load(db, tmp_path, record("VERS", affected("Hackage", "aeson", versions=["1.0.3", "1.0.5"])))
    found = db.match([Package("aeson", v, "Hackage") for v in ("1.0.3", "1.0.4", "1.0.5")])
    assert [(f.package.version, f.fixed_version) for f in found] == [("1.0.3", ""), ("1.0.5", "")]


def test_semver_ranges_for_npm(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "GHSA-npm",
            affected(
                "npm",
                "elliptic",
                {"introduced": "0"},
                {"fixed": "6.5.4"},
                range_type="SEMVER",
            ),
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N"}],
        ),
        # SEMVER ranges decide even where the ecosystem has no ordering of its own.
        record("SEMVER-ANY", affected("Hex", "plug", {"introduced": "1.0.0"}, range_type="SEMVER")),
    )
    packages = [
        Package("elliptic", "6.5.4-beta.1", "npm"),  # a prerelease sorts before 6.5.4
        Package("elliptic", "6.5.4", "npm"),
        Package("elliptic", "6.5.10", "npm"),  # numeric, not lexical
        Package("elliptic", "6.5.3+build.7", "npm"),
        Package("plug", "1.2.0", "Hex"),
    ]
    assert rows(db.match(packages)) == [
        ("GHSA-npm", "elliptic", "6.5.3+build.7", "6.5.4", "Medium"),
        ("GHSA-npm", "elliptic", "6.5.4-beta.1", "6.5.4", "Medium"),
        ("SEMVER-ANY", "plug", "1.2.0", "", "Unknown"),
    ]


def test_pypi_pep440_and_normalized_names(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "PYSEC-1",
            affected("PyPI", "Zope.Interface_Extra", {"introduced": "0"}, {"fixed": "2.0"}),
            database_specific={"severity": "MODERATE"},
        ),
    )
    packages = [
        Package("zope-interface-extra", "2.0rc1", "PyPI"),  # a release candidate precedes 2.0
        Package("zope-interface-extra", "2.0.0", "PyPI"),  # equal to 2.0
        Package("zope-interface-extra", "1.9.post3", "PyPI"),
        Package("Zope_Interface.extra", "1.0", "PyPI"),
    ]
    assert rows(db.match(packages)) == [
        ("PYSEC-1", "Zope_Interface.extra", "1.0", "2.0", "Medium"),
        ("PYSEC-1", "zope-interface-extra", "1.9.post3", "2.0", "Medium"),
        ("PYSEC-1", "zope-interface-extra", "2.0rc1", "2.0", "Medium"),
    ]


def test_alpine_records_match_the_origin_package(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "ALPINE-CVE-1",
            affected("Alpine:v3.18", "openssl", {"introduced": "0"}, {"fixed": "3.1.4-r1"}),
            database_specific={"severity": "HIGH"},
        ),
    )
    packages = [
        Package("libcrypto3", "3.1.4-r0", "Alpine:v3.18", "openssl", "3.1.4-r0"),
        Package("libssl3", "3.1.4-r0", "Alpine:v3.18", "openssl", "3.1.4-r0"),
        Package("libssl3", "3.1.4-r10", "Alpine:v3.19", "openssl", "3.1.4-r10"),
        Package("musl", "1.2.4-r2", "Alpine:v3.18", "musl", "1.2.4-r2"),
    ]
    assert rows(db.match(packages)) == [
        ("ALPINE-CVE-1", "libcrypto3", "3.1.4-r0", "3.1.4-r1", "High"),
        ("ALPINE-CVE-1", "libssl3", "3.1.4-r0", "3.1.4-r1", "High"),
    ]


def test_alpine_git_snapshots_and_suffixes_match(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "ALPINE-MUSL",
            affected(
                "Alpine:v3.19", "musl", {"introduced": "0"}, {"fixed": "1.2.4_git20230717-r5"}
            ),
        ),
        record(
            "ALPINE-OPENSSH",
            affected(
                "Alpine:v3.19", "openssh", {"introduced": "9.4_p1-r0"}, {"fixed": "9.6_p1-r0"}
            ),
        ),
    )
    packages = [
        Package("musl", "1.2.4_git20230717-r4", "Alpine:v3.19", "musl", "1.2.4_git20230717-r4"),
        Package("musl-utils", "1.2.4_git20230717-r5", "Alpine:v3.19", "musl", ""),
        Package("openssh-client", "9.6_p1-r0", "Alpine:v3.19", "openssh", "9.6_p1-r0"),
        Package("openssh-server", "9.6_rc1-r0", "Alpine:v3.19", "openssh", "9.6_rc1-r0"),
    ]
    assert rows(db.match(packages)) == [
        ("ALPINE-MUSL", "musl", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5", "Unknown"),
        ("ALPINE-OPENSSH", "openssh-server", "9.6_rc1-r0", "9.6_p1-r0", "Unknown"),
    ]


def test_rpm_records_match_source_or_binary_with_epochs(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "RLSA-1",
            affected(
                "Rocky Linux:9", "bind", {"introduced": "0"}, {"fixed": "32:9.16.23-14.el9_3"}
            ),
        ),
    )
    packages = [
        Package("bind-libs", "32:9.16.23-11.el9", "Rocky Linux:9", "bind", "32:9.16.23-11.el9"),
        Package("bind-utils", "32:9.16.23-15.el9", "Rocky Linux:9", "bind", "32:9.16.23-15.el9"),
        Package("bind", "9.16.23-11.el9", "Rocky Linux:9"),  # epoch 0: older than 32:…
    ]
    assert rows(db.match(packages)) == [
        ("RLSA-1", "bind", "9.16.23-11.el9", "32:9.16.23-14.el9_3", "Unknown"),
        ("RLSA-1", "bind-libs", "32:9.16.23-11.el9", "32:9.16.23-14.el9_3", "Unknown"),
    ]


def test_undecidable_ranges_and_git_ranges_record_nothing(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "BAD-FIX", affected("Debian:12", "pkg", {"introduced": "0"}, {"fixed": "not!valid"})
        ),
        record(
            "GIT-ONLY",
            {
                "package": {"ecosystem": "Debian:12", "name": "pkg"},
                "ranges": [
                    {
                        "type": "GIT",
                        "repo": "https://example.invalid/r",
                        "events": [{"introduced": "0"}],
                    }
                ],
            },
        ),
        record("ANY", affected("Debian:12", "pkg", {"introduced": "0"})),
        record("UNKNOWN-ECO", affected("Hackage", "pkg", {"introduced": "0"}, {"fixed": "2"})),
    )
    assert [f.id for f in db.match([deb("pkg", "1.0-1", "pkg", "1.0-1")])] == ["ANY"]
    # A range that would match with an unreadable bound elsewhere is undecidable too.
    load(
        db,
        tmp_path,
        record(
            "BAD-LIMIT",
            affected("Debian:12", "pkg", {"introduced": "0"}, {"fixed": "3"}, {"limit": "?"}),
        ),
        record(
            "BAD-LAST",
            affected("Debian:12", "pkg", {"introduced": "1"}, {"last_affected": "2:x y"}),
        ),
    )
    assert [f.id for f in db.match([deb("pkg", "1.0-1", "pkg", "1.0-1")])] == ["ANY"]
    # An installed version the ordering cannot read decides no range.
    assert db.match([deb("pkg", "garbage", "pkg", "garbage")]) == []
    assert db.match([Package("pkg", "1", "Hackage")]) == []


# --- range evaluation against the OSV walk ----------------------------------------------


def walk_sorted_events(version: str, events: list[list[str]]) -> str | None:
    """The OSV evaluation as its specification writes it: sort the events, then walk them.

    The reference for ``vulndb._in_range``, which gets the same answer without sorting.
    ``None`` when unaffected or undecidable (an unreadable version), as both record
    nothing.
    """
    ordering = versions.ordering("Debian")
    try:
        key = ordering.parse(version)
        bounds = [
            None
            if (kind == "introduced" and value == "0") or (kind == "limit" and "*" in value)
            else ordering.parse(value)
            for kind, value in events
        ]
    except versions.VersionError:
        return None

    def position(index: int) -> tuple[int, versions.VersionKey | None]:
        kind, value = events[index]
        if kind == "introduced" and value == "0":
            return (0, None)
        if kind == "limit" and "*" in value:
            return (2, None)
        return (1, bounds[index])

    def before(i: int, j: int) -> int:
        (rank_i, key_i), (rank_j, key_j) = position(i), position(j)
        if rank_i != rank_j or key_i is None or key_j is None:
            return rank_i - rank_j
        return key_i.compare(key_j)

    limits = [bounds[i] for i, (kind, _) in enumerate(events) if kind == "limit"]
    if limits and not any(limit is None or key < limit for limit in limits):
        return None
    affected = False
    fix = None
    for index in sorted(range(len(events)), key=cmp_to_key(before)):  # stable
        kind, value = events[index]
        bound = bounds[index]
        if kind == "introduced" and (bound is None or key >= bound):
            affected = True
        elif kind == "fixed" and bound is not None:
            if key >= bound:
                affected = False
            elif affected and fix is None:
                fix = value
        elif kind == "last_affected" and bound is not None and key > bound:
            affected = False
    return (fix or "") if affected else None


# Few distinct versions, some equal under dpkg rules though written differently
# ("1.0" = "1.0-0", "2" = "0:2"), and one that cannot be read.
_POOL = ["0.9", "1.0", "1.0-0", "1.0-1", "1.1~rc1", "1.1", "2", "0:2", "3:0.1", "x!"]


@st.composite
def event_lists(draw: st.DrawFn) -> list[list[str]]:
    kinds = st.sampled_from(["introduced", "fixed", "last_affected", "limit"])
    events = draw(
        st.lists(st.tuples(kinds, st.sampled_from([*_POOL, "0", "*"])), min_size=1, max_size=6)
    )
    checked = [
        [kind, value]
        for kind, value in events
        if not (value == "0" and kind != "introduced") and not (value == "*" and kind != "limit")
    ]
    if not any(kind == "introduced" for kind, _ in checked):
        checked.insert(
            draw(st.integers(0, len(checked))), ["introduced", draw(st.sampled_from(["0", *_POOL]))]
        )
    if any(kind == "fixed" for kind, _ in checked):  # the import refuses both kinds
        checked = [[kind, value] for kind, value in checked if kind != "last_affected"]
    return checked


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([*_POOL[:-1], "1.0~", "1.0-2", "5"]), event_lists())
def test_range_evaluation_agrees_with_sorting_and_walking(
    version: str, events: list[list[str]]
) -> None:
    ordering = versions.ordering("Debian:12")
    try:
        found = _in_range(ordering, ordering.parse(version), events)
    except versions.VersionError:
        found = None
    assert found == walk_sorted_events(version, events)


def test_one_finding_per_record_and_package(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "DUP",
            affected("npm", "x", {"introduced": "0"}, versions=["1.0.0"]),
            affected("npm", "x", {"introduced": "0"}, {"fixed": "2.0.0"}),
        ),
    )
    assert rows(db.match([Package("x", "1.0.0", "npm")])) == [
        ("DUP", "x", "1.0.0", "2.0.0", "Unknown")
    ]


def test_withdrawn_records_do_not_match(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record("GONE", affected("npm", "x", {"introduced": "0"}), withdrawn="2024-02-01T00:00:00Z"),
    )
    assert db.match([Package("x", "1.0.0", "npm")]) == []
    assert db.record_count() == 1
    assert db.status() == []  # a withdrawn record counts for no ecosystem


def test_findings_carry_aliases_summary_and_sort_worst_first(db: VulnDB, tmp_path: Path) -> None:
    load(
        db,
        tmp_path,
        record(
            "B-LOW",
            affected("npm", "x", {"introduced": "0"}),
            severity=[{"type": "CVSS_V3", "score": LOW_V3}],
        ),
        record(
            "C-HIGH",
            affected("npm", "x", {"introduced": "0"}),
            severity=[{"type": "CVSS_V3", "score": CRITICAL_V3}],
            aliases=["CVE-2024-1"],
            summary="Remote code execution",
        ),
        record("A-UNKNOWN", affected("npm", "x", {"introduced": "0"}), details="First line\nmore"),
    )
    found = db.match([Package("x", "1.0.0", "npm")])
    assert [(f.id, f.severity, f.aliases, f.summary) for f in found] == [
        ("C-HIGH", "High", ("CVE-2024-1",), "Remote code execution"),
        ("B-LOW", "Low", (), ""),
        ("A-UNKNOWN", "Unknown", (), "First line"),
    ]


def test_findings_carry_references_cwe_ids_and_the_deciding_vectors(
    db: VulnDB, tmp_path: Path
) -> None:
    """Reports need the record's links, weaknesses and CVSS vectors: the vectors are the
    affected entry's when it has its own, else the record's; junk entries are skipped."""
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    load(
        db,
        tmp_path,
        record(
            "GHSA-1",
            affected("npm", "x", {"introduced": "0"}),
            affected(
                "npm",
                "y",
                {"introduced": "0"},
                severity=[{"type": "CVSS_V3", "score": LOW_V3}],
            ),
            severity=[
                {"type": "CVSS_V3", "score": CRITICAL_V3},
                {"type": "CVSS_V4", "score": v4},
                {"type": "Ubuntu", "score": "high"},
                {"type": "CVSS_V2", "score": 7},
            ],
            references=[
                {"type": "ADVISORY", "url": "https://example.test/a"},
                {"type": "WEB"},
                "junk",
                {"type": "FIX", "url": "https://example.test/fix"},
            ],
            database_specific={"cwe_ids": ["CWE-79", 5, "CWE-89"], "severity": "HIGH"},
        ),
        record("PLAIN-1", affected("npm", "x", {"introduced": "0"}), database_specific=[]),
    )
    found = {
        (f.id, f.package.name): f
        for f in db.match([Package("x", "1.0.0", "npm"), Package("y", "1.0.0", "npm")])
    }
    x = found[("GHSA-1", "x")]
    assert x.references == ("https://example.test/a", "https://example.test/fix")
    assert x.cwe_ids == ("CWE-79", "CWE-89")
    assert x.cvss == (("CVSS_V3", CRITICAL_V3), ("CVSS_V4", v4))
    y = found[("GHSA-1", "y")]
    assert (y.cvss, y.severity, y.cwe_ids) == ((("CVSS_V3", LOW_V3),), "Low", x.cwe_ids)
    plain = found[("PLAIN-1", "x")]
    assert (plain.references, plain.cwe_ids, plain.cvss) == ((), (), ())


def test_a_database_file_from_before_report_details_opens_and_fills_on_reimport(
    tmp_path: Path,
) -> None:
    """A file written by an earlier version lacks the report columns: opening adds them,
    its records still match (without details), and importing them again fills them."""
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / "osv.sqlite")
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE vulns (id TEXT PRIMARY KEY, modified TEXT NOT NULL,
            withdrawn INTEGER NOT NULL, aliases TEXT NOT NULL, summary TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE affected (vuln_id TEXT NOT NULL, ecosystem TEXT NOT NULL COLLATE NOCASE,
            release TEXT NOT NULL, name TEXT NOT NULL, severity TEXT NOT NULL,
            ranges TEXT NOT NULL);
        INSERT INTO vulns VALUES ('OLD-1', '2024-01-01T00:00:00.000000Z', 0, '[]', 'old');
        INSERT INTO affected VALUES ('OLD-1', 'npm', '', 'x', 'High',
            '{"r":[["SEMVER",[["introduced","0"]]]],"v":[]}');
        """
    )
    conn.commit()
    conn.close()
    with VulnDB(folder) as old:
        (found,) = old.match([Package("x", "1.0.0", "npm")])
        assert (found.id, found.severity, found.references, found.cvss) == (
            "OLD-1",
            "High",
            (),
            (),
        )
        load(
            old,
            tmp_path,
            record(
                "OLD-1",
                affected("npm", "x", {"introduced": "0"}),
                severity=[{"type": "CVSS_V3", "score": CRITICAL_V3}],
                references=[{"type": "WEB", "url": "https://example.test/old"}],
            ),
        )
        (found,) = old.match([Package("x", "1.0.0", "npm")])
        assert (found.references, found.cvss) == (
            ("https://example.test/old",),
            (("CVSS_V3", CRITICAL_V3),),
        )


# --- import ----------------------------------------------------------------------------


def test_invalid_records_are_reported_and_skipped(db: VulnDB, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write(folder / "good.json", record("GOOD", affected("npm", "x", {"introduced": "0"})))
    (folder / "broken.json").write_text("{not json")
    write(folder / "noid.json", {"modified": "2024-01-01T00:00:00Z"})
    write(folder / "nomod.json", {"id": "NOMOD"})
    write(folder / "badtime.json", record("BADTIME", modified="yesterday"))
    write(
        folder / "nested" / "twokeys.json",
        record("TWOKEYS", affected("npm", "x", {"introduced": "0", "fixed": "1.0.0"})),
    )
    write(folder / "nointro.json", record("NOINTRO", affected("npm", "x", {"fixed": "1.0.0"})))
    write(
        folder / "both.json",
        record(
            "BOTH",
            affected("npm", "x", {"introduced": "0"}, {"fixed": "1"}, {"last_affected": "2"}),
        ),
    )
    bad_versions = {"package": {"ecosystem": "npm", "name": "x"}, "versions": "1.0.0"}
    write(folder / "versions.json", record("VERSIONS", bad_versions))
    write(folder / "noname.json", record("NONAME", {"package": {"ecosystem": "npm"}}))
    (folder / "ignored.txt").write_text("not a record")
    problems: list[tuple[str, str]] = []
    stats = db.import_paths([folder], on_invalid=lambda what, why: problems.append((what, why)))

    assert (stats.added, stats.updated, stats.kept, stats.invalid) == (1, 0, 0, 9)
    assert sorted(what for what, _ in problems) == sorted(
        [
            str(folder / "broken.json"),
            str(folder / "noid.json"),
            "NOMOD",
            "BADTIME",
            "TWOKEYS",
            "NOINTRO",
            "BOTH",
            "VERSIONS",
            "NONAME",
        ]
    )
    reasons = dict(problems)
    assert "not valid JSON" in reasons[str(folder / "broken.json")]
    assert "'id'" in reasons[str(folder / "noid.json")]
    assert "'modified'" in reasons["NOMOD"]
    assert "no 'introduced'" in reasons["NOINTRO"]
    assert "both 'fixed' and 'last_affected'" in reasons["BOTH"]
    assert [f.id for f in db.match([Package("x", "0.1.0", "npm")])] == ["GOOD"]


def test_reimport_updates_in_place_and_never_rolls_back(db: VulnDB, tmp_path: Path) -> None:
    def version_of(fix: str, modified: str) -> dict[str, Any]:
        return record(
            "DSA-9", affected("npm", "x", {"introduced": "0"}, {"fixed": fix}), modified=modified
        )

    first = db.import_paths(
        [write(tmp_path / "a.json", version_of("1.1.0", "2024-01-01T00:00:00Z"))]
    )
    assert (first.added, first.updated, first.kept) == (1, 0, 0)

    newer = version_of("1.2.0", "2024-03-01T10:00:00+02:00")
    second = db.import_paths([write(tmp_path / "b.json", newer)])
    assert (second.added, second.updated, second.kept) == (0, 1, 0)
    assert [f.fixed_version for f in db.match([Package("x", "1.1.5", "npm")])] == ["1.2.0"]

    older = version_of("1.0.5", "2023-12-31T23:59:59Z")
    third = db.import_paths([write(tmp_path / "c.json", older)])
    assert (third.added, third.updated, third.kept) == (0, 0, 1)
    assert [f.fixed_version for f in db.match([Package("x", "1.1.5", "npm")])] == ["1.2.0"]
    assert db.record_count() == 1
    assert db.status() == [EcosystemStatus("npm", 1, datetime(2024, 3, 1, 8, 0, tzinfo=UTC))]


def test_reimport_that_moves_a_record_to_another_package(db: VulnDB, tmp_path: Path) -> None:
    db.import_paths(
        [write(tmp_path / "a.json", record("MOVE", affected("npm", "old", {"introduced": "0"})))]
    )
    moved = record(
        "MOVE", affected("npm", "new", {"introduced": "0"}), modified="2024-06-01T00:00:00Z"
    )
    db.import_paths([write(tmp_path / "b.json", moved)])
    assert db.match([Package("old", "1.0.0", "npm")]) == []
    assert [f.id for f in db.match([Package("new", "1.0.0", "npm")])] == ["MOVE"]


def test_zip_archive_import_and_status(db: VulnDB, tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for number in range(3):
            rec = record(
                f"DSA-{number}",
                affected("Debian:12", f"src{number}", {"introduced": "0"}, {"fixed": "2.0-1"}),
                affected("Debian:11", f"src{number}", {"introduced": "0"}, {"fixed": "1.5-1"}),
                modified=f"2024-0{number + 1}-15T12:00:00Z",
            )
            out.writestr(f"DSA-{number}.json", json.dumps(rec))
        out.writestr("broken.json", "[")
        out.writestr("README.txt", "ignored")
    single = write(
        tmp_path / "one.json",
        record("PYSEC-7", affected("PyPI", "requests", {"introduced": "0"}, {"fixed": "2.31.0"})),
    )
    problems: list[str] = []
    stats = db.import_paths([archive, single], on_invalid=lambda what, _why: problems.append(what))

    assert (stats.added, stats.invalid, stats.imported) == (4, 1, 4)
    assert stats.seconds > 0
    assert problems == [f"{archive}:broken.json"]
    assert db.status() == [
        EcosystemStatus("Debian", 3, datetime(2024, 3, 15, 12, 0, tzinfo=UTC)),
        EcosystemStatus("PyPI", 1, datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
    ]
    assert [f.fixed_version for f in db.match([deb("bin1", "1.0-1", "src1", "1.0-1")])] == ["2.0-1"]
    # Reopening the database finds the same data.
    db.close()
    assert VulnDB(db.directory).record_count() == 4


def test_json_array_files_and_missing_paths(db: VulnDB, tmp_path: Path) -> None:
    path = write(
        tmp_path / "many.json",
        record("A", affected("npm", "a", {"introduced": "0"})),
        {"id": "B"},
    )
    problems: list[tuple[str, str]] = []
    stats = db.import_paths([path], on_invalid=lambda what, why: problems.append((what, why)))
    assert (stats.added, stats.invalid) == (1, 1)
    assert [what for what, _ in problems] == ["B"]
    with pytest.raises(FileNotFoundError):
        db.import_paths([tmp_path / "missing.json"])


def test_empty_database_status(db: VulnDB) -> None:
    assert db.status() == []
    assert db.match([Package("x", "1", "npm")]) == []
    assert (db.directory / "osv.sqlite").exists()


# --- severity --------------------------------------------------------------------------


# CVSS scoring itself, and levels from CVSS v4 vectors, are tested in test_cvss.py.

V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


@pytest.mark.parametrize(
    ("rec", "level"),
    [
        ({"severity": [{"type": "CVSS_V3", "score": CRITICAL_V3}]}, "High"),
        ({"severity": [{"type": "CVSS_V3", "score": MEDIUM_V3}]}, "Medium"),
        ({"severity": [{"type": "CVSS_V3", "score": LOW_V3}]}, "Low"),
        # the highest vector counts, over the database's word
        (
            {
                "severity": [
                    {"type": "CVSS_V3", "score": LOW_V3},
                    {"type": "CVSS_V3", "score": MEDIUM_V3},
                ],
                "database_specific": {"severity": "CRITICAL"},
            },
            "Medium",
        ),
        # a v4 vector is scored (9.3) and, the newer version, wins over v3 and the word
        (
            {
                "severity": [
                    {"type": "CVSS_V3", "score": LOW_V3},
                    {"type": "CVSS_V4", "score": V4},
                ],
                "database_specific": {"severity": "LOW"},
            },
            "High",
        ),
        ({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}, "Unknown"),
        ({"database_specific": {"severity": "CRITICAL"}}, "High"),
        ({"database_specific": {"severity": "moderate"}}, "Medium"),
        ({"database_specific": {"severity": "whatever"}}, "Unknown"),
        ({"severity": [{"type": "Ubuntu", "score": "negligible"}]}, "Low"),
        (
            {"affected": [{"ecosystem_specific": {"urgency": "medium**"}}]},
            "Medium",
        ),
        # package-level vectors, asked about the whole record: the worst
        (
            {
                "affected": [
                    {"severity": [{"type": "CVSS_V3", "score": LOW_V3}]},
                    {"severity": [{"type": "CVSS_V3", "score": CRITICAL_V3}]},
                ]
            },
            "High",
        ),
        ({}, "Unknown"),
    ],
)
def test_severity_of_record(rec: dict[str, Any], level: str) -> None:
    assert severity_of({"id": "X", "modified": "2024-01-01T00:00:00Z", **rec}) == level


def test_severity_of_an_affected_entry_prefers_its_own_vectors() -> None:
    low = {"severity": [{"type": "CVSS_V3", "score": LOW_V3}]}
    plain: dict[str, Any] = {"database_specific": {"severity": "HIGH"}}
    rec = {"id": "X", "affected": [low, plain], "database_specific": {"severity": "MODERATE"}}
    assert severity_of(rec, low) == "Low"
    assert severity_of(rec, plain) == "High"
    assert severity_of(rec, {}) == "Medium"


def test_broken_archive_is_reported_and_duplicates_in_one_import_keep_the_newest(
    db: VulnDB, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    newer = record(
        "SAME",
        affected("npm", "x", {"introduced": "0"}, {"fixed": "2.0.0"}),
        modified="2024-02-02T00:00:00Z",
    )
    older = record("SAME", affected("npm", "x", {"introduced": "0"}, {"fixed": "1.0.0"}))
    problems: list[tuple[str, str]] = []
    stats = db.import_paths(
        [broken, write(tmp_path / "1.json", newer), write(tmp_path / "2.json", older)],
        on_invalid=lambda what, why: problems.append((what, why)),
    )
    assert (stats.added, stats.updated, stats.kept, stats.invalid) == (1, 0, 1, 1)
    assert [what for what, _ in problems] == [str(broken)]
    assert "zip" in problems[0][1]
    assert [f.fixed_version for f in db.match([Package("x", "1.5.0", "npm")])] == ["2.0.0"]
