"""The local vulnerability database: OSV records imported into SQLite, matched offline.

Importing
---------
:meth:`VulnDB.import_paths` reads OSV JSON files (one record, or a JSON array of
records), folders of them (searched recursively, ``.json`` and ``.zip`` files), and the
zip archives osv.dev publishes per ecosystem (one JSON record per member). Records are
keyed by ``id``: importing a record again replaces the stored one in place, unless the
stored record's ``modified`` time is strictly newer — then the stored one is kept (an
old archive never rolls the database back). An invalid record — not JSON, no ``id``, no
parseable ``modified``, malformed ``affected``/``ranges``/``events``/``versions`` — is
reported through ``on_invalid(id or file name, reason)`` and skipped; the rest import.
One import is one transaction: it lands whole or, on an I/O error, not at all.
Withdrawn records (``withdrawn`` set) are stored, so that an older copy cannot come
back, but they have no affected packages: they never match and :meth:`VulnDB.status`
does not count them.

Matching
--------
:meth:`VulnDB.match` follows the OSV evaluation rules. An ``affected[]`` entry applies to
a package when its ``package.ecosystem`` and ``package.name`` agree:

* the part of the ecosystem before the first ``:`` must be equal (case ignored); the
  release after it must be equal too, except that a record without a release
  (``Debian``) applies to every release, while a package without a release only meets
  records without one. A record for ``Debian:11`` never matches a ``Debian:12``
  package. Ubuntu's ``:LTS`` suffix is ignored (``Ubuntu:22.04:LTS`` is release
  ``22.04``); ``Ubuntu:Pro:…`` records only match packages that say ``Pro`` too.
* PyPI names compare in their PEP 503 normalized form; other names compare exactly.
* Debian, Ubuntu and Alpine records name *source* packages: the package's
  ``source_name``/``source_version`` are matched (falling back to the binary name and
  version, without a Debian binNMU ``+bN`` suffix, when the source is unknown) and the
  finding is reported on every installed binary built from that source. RPM records
  (Rocky Linux, AlmaLinux, SUSE, …) are tried with both the source and binary names.

A version is affected when it is in the entry's ``versions`` list (exact string), or in
a range of type ``ECOSYSTEM`` (the ecosystem's own ordering, see
:mod:`dockyard.scanning.versions`) or ``SEMVER``: events are sorted (``introduced: "0"``
first, a ``limit`` containing ``*`` last) and walked — ``introduced`` ≤ v makes it
affected, ``fixed`` ≤ v or ``last_affected`` < v makes it unaffected — and v must be
below some ``limit`` when any is given. ``GIT`` ranges and other types are ignored. A
range whose versions cannot be read by the ordering is skipped ("cannot decide"); it
records nothing. The fixed version reported is the ``fixed`` event that closes the
matched range, or ``""`` when none is known (``last_affected``, open ranges, a match by
``versions`` only). There is one finding per (record id, installed package). Besides
its level and fixed version, a finding carries what reports show and matching never
reads: the record's aliases, summary, reference URLs, ``database_specific.cwe_ids``, and
the CVSS vectors its level is decided from (see below).

The walk's answer is computed without sorting (see ``_in_range``): each event's version
is compared with the installed one, and events with each other only where two of them
disagree. A record is decided once per distinct installed version (binaries built from
one source share it), each installed version is parsed once per call, and rows for
releases no package has are not read.

Severity level
--------------
Each finding's level is one of High, Medium, Low, Unknown, decided in this order:

1. A CVSS base score. The vectors are taken from the affected entry's ``severity[]``
   when it has one, else from the record's ``severity[]``: entries of type
   ``CVSS_V4`` and ``CVSS_V3``, scored by :mod:`dockyard.scanning.cvss` (CVSS v4.0 with
   the specification's MacroVector method — base metrics only give the CVSS-B score,
   threat and environmental metrics a vector carries are applied; CVSS v3.0/v3.1 with
   the v3.1 base formula). The newest CVSS version that yields a score decides, as
   v4.0 supersedes v3: the v4.0 vectors when any of them is valid, else the v3 ones.
   Within that version the highest score counts. 7.0 and above is High (Critical
   counts as High), 4.0 to 6.9 is Medium, below 4.0 is Low. A malformed vector is
   skipped; a record with no valid vector goes on to rule 2.
2. The database's own word: ``severity`` (and Debian's ``urgency``) in the affected
   entry's ``ecosystem_specific`` and ``database_specific``, in the record's
   ``database_specific``, and ``severity[]`` entries of type ``Ubuntu``. CRITICAL,
   HIGH and IMPORTANT are High; MODERATE and MEDIUM are Medium; LOW, NEGLIGIBLE and
   UNIMPORTANT are Low (case and trailing ``*`` ignored); the highest found counts.
3. Otherwise Unknown.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dockyard.scanning.cvss import cvss3_base_score, cvss4_base_score
from dockyard.scanning.model import SEVERITIES, Finding, Package

if TYPE_CHECKING:
    # At run time the version rules (and the libraries behind them: univers, semver,
    # packaging) are imported by the first match: importing, checking and storing
    # records, which every process that builds the services may do, never compares
    # versions.
    from dockyard.scanning import versions

__all__ = [
    "CheckedRecord",
    "EcosystemStatus",
    "ImportStats",
    "InvalidRecord",
    "VulnDB",
    "check_record",
    "cvss3_base_score",
    "documents",
    "ecosystem_base",
    "file_documents",
    "record_time",
    "records_in",
    "severity_of",
]

DB_FILENAME: Final = "osv.sqlite"
_SCHEMA_VERSION: Final = "1"
_BATCH: Final = 2000
_EVENT_KINDS: Final = ("introduced", "fixed", "last_affected", "limit")
_MATCHED_RANGE_TYPES: Final = ("ECOSYSTEM", "SEMVER")
_SOURCE_ECOSYSTEMS: Final = frozenset({"debian", "ubuntu", "alpine"})
_RPM_ECOSYSTEMS: Final = frozenset(
    {
        "red hat",
        "rocky linux",
        "almalinux",
        "opensuse",
        "suse",
        "mageia",
        "openeuler",
        "photon os",
        "fedora",
        "centos",
        "oracle linux",
        "azure linux",
        "amazon linux",
    }
)
_BINNMU: Final = re.compile(r"\+b\d+$")
_PEP503: Final = re.compile(r"[-_.]+")
_SEVERITY_RANK: Final = {level: rank for rank, level in enumerate(SEVERITIES)}


class InvalidRecord(ValueError):
    """An OSV record that does not follow the schema where the database relies on it."""


@dataclass(frozen=True, slots=True)
class ImportStats:
    """What one :meth:`VulnDB.import_paths` call did."""

    added: int = 0
    """Records whose id was not in the database."""
    updated: int = 0
    """Records that replaced a stored record with the same id."""
    kept: int = 0
    """Records skipped because the stored record has a newer ``modified`` time."""
    invalid: int = 0
    """Records (or files) reported through ``on_invalid`` and skipped."""
    seconds: float = 0.0
    """Wall-clock time of the import."""

    @property
    def imported(self) -> int:
        """Records written to the database (added or updated)."""
        return self.added + self.updated


@dataclass(frozen=True, slots=True)
class EcosystemStatus:
    """Record count and newest ``modified`` time of one ecosystem in the database."""

    ecosystem: str
    """The ecosystem without its release (``Debian`` for ``Debian:12`` records)."""
    records: int
    """Distinct records with at least one affected package in this ecosystem."""
    newest_modified: datetime | None
    """The newest ``modified`` time among them, in UTC."""


# --- severity ------------------------------------------------------------------------

# OSV severity types scored from their vectors, newest CVSS version first.
_CVSS_SCORERS: Final[dict[str, Callable[[str], float]]] = {
    "CVSS_V4": cvss4_base_score,
    "CVSS_V3": cvss3_base_score,
}


def _level_of_score(score: float) -> str:
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    return "Low"


_TEXT_LEVELS: Final = {
    "CRITICAL": "High",
    "HIGH": "High",
    "IMPORTANT": "High",
    "MODERATE": "Medium",
    "MEDIUM": "Medium",
    "LOW": "Low",
    "NEGLIGIBLE": "Low",
    "UNIMPORTANT": "Low",
}


def _highest(levels: Iterable[str]) -> str:
    return min(levels, key=_SEVERITY_RANK.__getitem__, default="Unknown")


def _severity_entries(holder: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = holder.get("severity")
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, Mapping)]


def _text_level(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _TEXT_LEVELS.get(value.strip().rstrip("*").strip().upper())


def severity_of(record: Mapping[str, Any], affected: Mapping[str, Any] | None = None) -> str:
    """The level (one of :data:`~dockyard.scanning.model.SEVERITIES`) of *record*.

    With *affected* (one of the record's ``affected[]`` entries) the level is the one
    that applies to that package. The rules are in this module's docstring.
    """
    if affected is not None and _severity_entries(affected):
        vector_holders: list[Mapping[str, Any]] = [affected]
    elif _severity_entries(record) or affected is not None:
        vector_holders = [record]
    else:
        # Record-wide question, package-level severities only: the worst of them.
        entries = record.get("affected")
        vector_holders = [a for a in entries if isinstance(a, Mapping)] if entries else []

    scores: dict[str, list[float]] = {kind: [] for kind in _CVSS_SCORERS}
    texts: list[str] = []
    for holder in vector_holders:
        for entry in _severity_entries(holder):
            kind, score = entry.get("type"), entry.get("score")
            if not isinstance(score, str):
                continue
            if isinstance(kind, str) and kind in _CVSS_SCORERS:
                try:
                    scores[kind].append(_CVSS_SCORERS[kind](score))
                except ValueError:
                    continue
            elif kind == "Ubuntu":
                level = _text_level(score)
                if level:
                    texts.append(level)
    for version_scores in scores.values():  # the newest CVSS version that scores
        if version_scores:
            return _level_of_score(max(version_scores))

    specific: list[Any] = []
    entries = [affected] if affected is not None else record.get("affected")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping):
            specific += [entry.get("ecosystem_specific"), entry.get("database_specific")]
    specific.append(record.get("database_specific"))
    for holder in specific:
        if isinstance(holder, Mapping):
            for key in ("severity", "urgency"):
                level = _text_level(holder.get(key))
                if level:
                    texts.append(level)
    return _highest(texts)


# --- validation ----------------------------------------------------------------------


def _parse_time(value: Any, field: str) -> str:
    """A sortable UTC form of an RFC 3339 timestamp; :class:`InvalidRecord` if bad."""
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"missing or non-string {field!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"{field!r} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _string_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRecord(f"{field!r} must be a list of strings")
    return value


def _check_events(events: Any, where: str) -> list[list[str]]:
    """``[[kind, version], …]`` from a range's ``events``; :class:`InvalidRecord` if bad."""
    if not isinstance(events, list) or not events:
        raise InvalidRecord(f"{where}: 'events' must be a non-empty list")
    checked: list[list[str]] = []
    for event in events:
        if not isinstance(event, Mapping) or len(event) != 1:
            raise InvalidRecord(f"{where}: each event must be an object with one key")
        ((kind, version),) = event.items()
        if kind not in _EVENT_KINDS:
            raise InvalidRecord(f"{where}: unknown event {kind!r}")
        if not isinstance(version, str) or not version:
            raise InvalidRecord(f"{where}: event {kind!r} needs a version string")
        checked.append([kind, version])
    kinds = {kind for kind, _ in checked}
    if "introduced" not in kinds:
        raise InvalidRecord(f"{where}: no 'introduced' event")
    if {"fixed", "last_affected"} <= kinds:
        raise InvalidRecord(f"{where}: both 'fixed' and 'last_affected' events")
    return checked


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A validated record in the form the tables store."""

    id: str
    modified: str
    withdrawn: bool
    aliases: list[str]
    summary: str
    affected: list[tuple[str, str, str, str, str, str]]
    """(ecosystem, release, lookup name, severity, CVSS JSON, ranges JSON) per package
    entry."""
    extra: str
    """JSON of what reports show and matching never reads: references, CWE ids."""


def _summary(record: Mapping[str, Any]) -> str:
    summary = record.get("summary")
    if isinstance(summary, str) and summary.strip():
        return summary.strip()
    details = record.get("details")
    if isinstance(details, str) and details.strip():
        first = details.strip().splitlines()[0].strip()
        return first if len(first) <= 200 else first[:199] + "…"
    return ""


_CVSS_TYPES: Final = ("CVSS_V2", "CVSS_V3", "CVSS_V4")


def _cvss_vectors(record: Mapping[str, Any], affected: Mapping[str, Any]) -> list[list[str]]:
    """``[[type, vector], …]`` for one affected entry, from where :func:`severity_of`
    takes its vectors: the entry's ``severity[]`` when it has one, else the record's."""
    holder = affected if _severity_entries(affected) else record
    return [
        [entry["type"], entry["score"]]
        for entry in _severity_entries(holder)
        if entry.get("type") in _CVSS_TYPES and isinstance(entry.get("score"), str)
    ]


def _extra(record: Mapping[str, Any]) -> str:
    """The stored ``extra`` JSON: reference URLs and CWE ids, malformed entries skipped."""
    references = record.get("references")
    urls = [
        ref["url"]
        for ref in (references if isinstance(references, list) else [])
        if isinstance(ref, Mapping) and isinstance(ref.get("url"), str) and ref["url"]
    ]
    specific = record.get("database_specific")
    cwes = specific.get("cwe_ids") if isinstance(specific, Mapping) else None
    cwe_ids = [c for c in (cwes if isinstance(cwes, list) else []) if isinstance(c, str) and c]
    return json.dumps({"references": urls, "cwe_ids": cwe_ids}, separators=(",", ":"))


def _prepare(record: Any) -> _Prepared:
    """Validate *record* and extract what the tables keep; :class:`InvalidRecord` if bad."""
    if not isinstance(record, Mapping):
        raise InvalidRecord("a record must be a JSON object")
    vuln_id = record.get("id")
    if not isinstance(vuln_id, str) or not vuln_id.strip():
        raise InvalidRecord("missing or empty 'id'")
    modified = _parse_time(record.get("modified"), "modified")
    withdrawn = record.get("withdrawn")
    aliases = _string_list(record.get("aliases"), "aliases")
    entries = record.get("affected")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise InvalidRecord("'affected' must be a list")

    rows: list[tuple[str, str, str, str, str, str]] = []
    for index, entry in enumerate(entries):
        where = f"affected[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidRecord(f"{where} must be an object")
        package = entry.get("package")
        if package is None:
            continue  # a GIT-only entry: nothing to match by package
        if not isinstance(package, Mapping):
            raise InvalidRecord(f"{where}.package must be an object")
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not ecosystem.strip():
            raise InvalidRecord(f"{where}.package has no ecosystem")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRecord(f"{where}.package has no name")
        ranges = entry.get("ranges")
        if ranges is None:
            ranges = []
        if not isinstance(ranges, list):
            raise InvalidRecord(f"{where}.ranges must be a list")
        kept_ranges: list[list[Any]] = []
        for r_index, range_ in enumerate(ranges):
            r_where = f"{where}.ranges[{r_index}]"
            if not isinstance(range_, Mapping) or not isinstance(range_.get("type"), str):
                raise InvalidRecord(f"{r_where} must be an object with a 'type'")
            events = _check_events(range_.get("events"), r_where)
            if range_["type"] in _MATCHED_RANGE_TYPES:
                kept_ranges.append([range_["type"], events])
        entry_versions = _string_list(entry.get("versions"), f"{where}.versions")
        base, release = _split_ecosystem(ecosystem)
        rows.append(
            (
                base,
                release,
                _lookup_name(base, name),
                severity_of(record, entry),
                json.dumps(_cvss_vectors(record, entry), separators=(",", ":")),
                json.dumps({"r": kept_ranges, "v": entry_versions}, separators=(",", ":")),
            )
        )
    return _Prepared(
        id=vuln_id,
        modified=modified,
        withdrawn=bool(withdrawn),
        aliases=aliases,
        summary=_summary(record),
        affected=rows,
        extra=_extra(record),
    )


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """What a store of raw records keeps beside each one (see :func:`check_record`)."""

    id: str
    modified: str
    """The record's ``modified`` time in a sortable UTC form."""
    withdrawn: bool
    ecosystems: tuple[str, ...]
    """The ecosystems (without release) of its affected packages; none when withdrawn."""


def check_record(record: Any) -> CheckedRecord:
    """Validate *record* by the rules of an import; :class:`InvalidRecord` if bad."""
    prepared = _prepare(record)
    ecosystems = () if prepared.withdrawn else tuple(sorted({row[0] for row in prepared.affected}))
    return CheckedRecord(prepared.id, prepared.modified, prepared.withdrawn, ecosystems)


def record_time(record: Any) -> str | None:
    """The record's ``modified`` time in the sortable form :func:`check_record` gives,
    or None when it has none that can be read (the record is then invalid)."""
    if not isinstance(record, Mapping):
        return None
    try:
        return _parse_time(record.get("modified"), "modified")
    except InvalidRecord:
        return None


def ecosystem_base(ecosystem: str) -> str:
    """The ecosystem without its release: ``Debian`` for ``Debian:12``."""
    return _split_ecosystem(ecosystem)[0]


# --- names and ecosystems ------------------------------------------------------------


def _split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """``("Debian", "12")`` from ``"Debian:12"``; Ubuntu's ``:LTS`` suffix dropped."""
    base, _, release = ecosystem.strip().partition(":")
    base, release = base.strip(), release.strip()
    if base.lower() == "ubuntu" and release.upper().endswith(":LTS"):
        release = release[: -len(":LTS")]
    return base, release


def _lookup_name(base: str, name: str) -> str:
    name = name.strip()
    if base.lower() == "pypi":
        return _PEP503.sub("-", name).lower()
    return name


def _targets(package: Package, base: str) -> list[tuple[str, str]]:
    """The (name, version) pairs under which records may name *package*."""
    key = base.lower()
    if key in _SOURCE_ECOSYSTEMS or key in _RPM_ECOSYSTEMS:
        version = package.source_version
        if not version:
            version = package.version
            if key in ("debian", "ubuntu"):
                version = _BINNMU.sub("", version)
        source = (package.source_name or package.name, version)
        if key in _RPM_ECOSYSTEMS and package.source_name:
            return [source, (package.name, package.version)]
        return [source]
    return [(_lookup_name(base, package.name), package.version)]


# --- range evaluation ----------------------------------------------------------------


def _after(bounds: Sequence[versions.VersionKey | None], i: int, j: int) -> bool:
    """Whether event *i* comes after event *j* once the range's events are sorted.

    The sort is stable: by version, ``introduced: "0"`` (bound ``None``) first, equal
    versions in their order in the record. Only introduced, fixed and last_affected
    events are asked about, so ``None`` always means the lowest possible version.
    """
    a, b = bounds[i], bounds[j]
    if a is None or b is None:
        return b is None and (a is not None or i > j)
    order = a.compare(b)
    return order > 0 or (order == 0 and i > j)


def _in_range(
    ordering: versions.Ordering, key: versions.VersionKey, events: list[list[str]]
) -> str | None:
    """The fix (or ``""``) if the version *key* is inside the range, ``None`` if outside.

    The OSV evaluation sorts the events and walks them: ``introduced`` <= v opens the
    range, ``fixed`` <= v or ``last_affected`` < v closes it, and the fix reported is
    the first ``fixed`` above v met while open. The answer of that walk is computed
    here without sorting: the walk ends in the state set by the last event (in sorted
    order) whose condition holds, and when that state is "affected" every event after
    it lies above v, so the fix is the lowest ``fixed`` above v. Each bound is compared
    with v once; bounds are compared with each other only when two events that hold
    disagree, or two fixes lie above v.

    Raises :class:`~dockyard.scanning.versions.VersionError` when undecidable.
    """
    if len(events) == 2 and events[0][0] == "introduced" and events[0][1] == "0":
        # The common shape, [introduced 0, fixed|last_affected X], in one comparison.
        kind, value = events[1]
        if kind == "fixed":
            return value if key.compare_to(value) < 0 else None
        if kind == "last_affected":
            return "" if key.compare_to(value) <= 0 else None

    bounds: list[versions.VersionKey | None] = [None] * len(events)
    opened: list[int] = []
    for index, (kind, value) in enumerate(events):
        if kind == "introduced":
            if value == "0":
                opened.append(index)
            else:
                bound = bounds[index] = ordering.parse(value)
                if key.compare(bound) >= 0:
                    opened.append(index)
    if not opened:
        # Outside, whatever the other events say; had one of them been unreadable, the
        # range would have been undecidable, which records nothing either.
        return None
    # Every other bound is read before the range can match: one the ordering cannot
    # read makes the range undecidable. ``None`` stays for a limit containing "*".
    limited = below_limit = False
    for index, (kind, value) in enumerate(events):
        if kind == "limit":
            limited = True
            if "*" in value:
                below_limit = True
                continue
        if kind != "introduced":
            bounds[index] = ordering.parse(value)
    for index, (kind, _) in enumerate(events):
        if kind == "limit" and not below_limit:
            limit = bounds[index]
            below_limit = limit is not None and key.compare(limit) < 0
    if limited and not below_limit:
        return None

    closed: list[int] = []
    above: list[int] = []
    for index, (kind, _) in enumerate(events):
        if kind == "fixed":
            fixed = bounds[index]
            assert fixed is not None
            (closed if key.compare(fixed) >= 0 else above).append(index)
        elif kind == "last_affected":
            last = bounds[index]
            assert last is not None
            if key.compare(last) > 0:
                closed.append(index)
    if closed:
        last_opened = functools.reduce(lambda a, b: b if _after(bounds, b, a) else a, opened)
        last_closed = functools.reduce(lambda a, b: b if _after(bounds, b, a) else a, closed)
        if _after(bounds, last_closed, last_opened):
            return None
    if not above:
        return ""
    first_fix = functools.reduce(lambda a, b: b if _after(bounds, a, b) else a, above)
    return events[first_fix][1]


class _Keys:
    """Parsed installed versions for one :meth:`VulnDB.match` call, each read once."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], versions.VersionKey | None] = {}

    def get(self, ordering: versions.Ordering, version: str) -> versions.VersionKey | None:
        """*version* parsed by *ordering*, or ``None`` when the ordering cannot read it."""
        from dockyard.scanning.versions import VersionError

        slot = (ordering.name, version)
        try:
            return self._keys[slot]
        except KeyError:
            pass
        try:
            key: versions.VersionKey | None = ordering.parse(version)
        except VersionError:
            key = None
        self._keys[slot] = key
        return key


def _evaluate(
    ordering: versions.Ordering | None, version: str, stored: Mapping[str, Any], keys: _Keys
) -> str | None:
    """The fixed version (``""`` if unknown) when *version* is affected, else ``None``."""
    from dockyard.scanning.versions import SEMVER, VersionError

    for range_type, events in stored["r"]:
        chosen = SEMVER if range_type == "SEMVER" else ordering
        if chosen is None:
            continue
        key = keys.get(chosen, version)
        if key is None:
            continue  # cannot decide this range: the installed version is unreadable
        try:
            fix = _in_range(chosen, key, events)
        except VersionError:
            continue  # cannot decide this range
        if fix is not None:
            return fix
    if version in stored["v"]:
        return ""
    return None


# --- the database --------------------------------------------------------------------

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vulns (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    withdrawn INTEGER NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
    vuln_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL COLLATE NOCASE,
    release TEXT NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    cvss TEXT NOT NULL DEFAULT '[]',
    ranges TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_package ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_vuln ON affected (vuln_id);
"""

_MATCH_QUERY: Final = (
    "SELECT vuln_id, release, name, severity, cvss, ranges FROM affected"
    " WHERE ecosystem = ? AND name IN ({marks}) AND release IN ({releases})"
)
"""Rows that may match; ``{marks}`` and ``{releases}`` become one ``?`` placeholder per
name and per release (``""``, for records of every release, and the packages' own)."""
_DETAILS_QUERY: Final = "SELECT id, aliases, summary, extra FROM vulns WHERE id IN ({marks})"
"""Aliases, summary, references and CWE ids of the matched records."""
_ADDED_COLUMNS: Final = (
    ("vulns", "extra", "TEXT NOT NULL DEFAULT '{}'"),
    ("affected", "cvss", "TEXT NOT NULL DEFAULT '[]'"),
)
"""Columns a database file written before reports needed them lacks; added on open
(records imported before then show no references, CWE ids or vectors until imported
again)."""
_CHUNK: Final = 500
"""Names or ids per ``IN (…)`` query, well below SQLite's parameter limit."""

_Document = tuple[str, bytes]
"""(label for messages, raw JSON bytes)."""


class VulnDB:
    """OSV records in ``directory/osv.sqlite``; see the module docstring for the rules.

    The connection opens on first use; :meth:`close` (or ``with VulnDB(...)``) ends it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILENAME
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite connection (it reopens on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            for table, column, definition in _ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (_SCHEMA_VERSION,),
            )
            self._conn = conn
        return self._conn

    # -- import -----------------------------------------------------------------------

    def import_paths(
        self,
        paths: Iterable[Path],
        on_invalid: Callable[[str, str], None] | None = None,
    ) -> ImportStats:
        """Import OSV records from files, folders and zip archives (module docstring).

        Raises :class:`FileNotFoundError` before importing anything if a path does not
        exist; an unreadable zip archive is reported through *on_invalid*.
        """
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"no such file or directory: {path}")

        def records(report: Callable[[str, str], None]) -> Iterator[tuple[str, Any]]:
            for label, raw in documents(paths, report):
                yield from records_in(label, raw, report)

        return self._import(records, on_invalid)

    def import_records(
        self,
        records: Iterable[tuple[str, Any]],
        on_invalid: Callable[[str, str], None] | None = None,
        *,
        reset: bool = False,
        meta: Mapping[str, str] | None = None,
    ) -> ImportStats:
        """Import parsed records, given as (label for messages, record) pairs, by the
        same rules as :meth:`import_paths`, in one transaction. With *reset* every
        stored record is forgotten first; *meta* (key → value) is written with the
        records, so that whoever keeps this database as a copy of another store knows
        exactly which version of it the records are."""
        return self._import(lambda _report: records, on_invalid, reset=reset, meta=meta)

    def meta(self, key: str) -> str | None:
        """A value written with :meth:`import_records`'s *meta*, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _import(
        self,
        source: Callable[[Callable[[str, str], None]], Iterable[tuple[str, Any]]],
        on_invalid: Callable[[str, str], None] | None,
        *,
        reset: bool = False,
        meta: Mapping[str, str] | None = None,
    ) -> ImportStats:
        started = time.perf_counter()
        invalid = added = updated = kept = 0

        def report(label: str, reason: str) -> None:
            nonlocal invalid
            invalid += 1
            if on_invalid is not None:
                on_invalid(label, reason)

        db = self._db
        pending: dict[str, _Prepared] = {}
        replaced: set[str] = set()

        def flush() -> None:
            if replaced:
                db.executemany("DELETE FROM affected WHERE vuln_id = ?", [(i,) for i in replaced])
            db.executemany(
                "INSERT OR REPLACE INTO vulns (id, modified, withdrawn, aliases, summary, extra)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (p.id, p.modified, int(p.withdrawn), json.dumps(p.aliases), p.summary, p.extra)
                    for p in pending.values()
                ],
            )
            db.executemany(
                "INSERT INTO affected (vuln_id, ecosystem, release, name, severity, cvss, ranges)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p.id, *row) for p in pending.values() if not p.withdrawn for row in p.affected],
            )
            pending.clear()
            replaced.clear()

        db.execute("BEGIN")
        try:
            if reset:
                db.execute("DELETE FROM affected")
                db.execute("DELETE FROM vulns")
            known: dict[str, str] = dict(db.execute("SELECT id, modified FROM vulns"))
            for record_label, record in source(report):
                try:
                    prepared = _prepare(record)
                except InvalidRecord as exc:
                    report(_record_name(record, record_label), str(exc))
                    continue
                stored = known.get(prepared.id)
                if stored is not None and stored > prepared.modified:
                    kept += 1
                    continue
                if stored is None:
                    added += 1
                else:
                    updated += 1
                    replaced.add(prepared.id)
                known[prepared.id] = prepared.modified
                pending[prepared.id] = prepared
                if len(pending) >= _BATCH:
                    flush()
            flush()
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return ImportStats(
            added=added,
            updated=updated,
            kept=kept,
            invalid=invalid,
            seconds=time.perf_counter() - started,
        )

    # -- status -----------------------------------------------------------------------

    def status(self) -> list[EcosystemStatus]:
        """Record counts and newest ``modified`` time per ecosystem, by ecosystem name."""
        rows = self._db.execute(
            "SELECT a.ecosystem, COUNT(DISTINCT a.vuln_id), MAX(v.modified)"
            " FROM affected a JOIN vulns v ON v.id = a.vuln_id"
            " GROUP BY a.ecosystem ORDER BY a.ecosystem"
        ).fetchall()
        return [
            EcosystemStatus(
                ecosystem=ecosystem,
                records=count,
                newest_modified=(
                    datetime.strptime(newest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                    if newest
                    else None
                ),
            )
            for ecosystem, count, newest in rows
        ]

    def record_count(self) -> int:
        """All records stored, withdrawn ones included."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM vulns").fetchone()
        return int(count)

    # -- matching ---------------------------------------------------------------------

    def match(self, packages: Sequence[Package]) -> list[Finding]:
        """Findings for *packages*: one per (record id, installed package), worst first."""
        unique = list(dict.fromkeys(packages))
        # (ecosystem, lookup name) -> [(package index, version to compare, release)]
        wanted: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        for index, package in enumerate(unique):
            base, release = _split_ecosystem(package.ecosystem)
            if not base:
                continue
            for name, version in _targets(package, base):
                if name and version:
                    wanted.setdefault((base.lower(), name), []).append((index, version, release))

        by_ecosystem: dict[str, list[str]] = {}
        releases: dict[str, set[str]] = {}
        for (ecosystem, name), entries in wanted.items():
            by_ecosystem.setdefault(ecosystem, []).append(name)
            releases.setdefault(ecosystem, {""}).update(release for _, _, release in entries)

        # (record id, package index) -> (severity, fixed version, CVSS JSON)
        found: dict[tuple[str, int], tuple[str, str, str]] = {}
        from dockyard.scanning import versions

        keys = _Keys()
        for ecosystem, names in by_ecosystem.items():
            try:
                ordering: versions.Ordering | None = versions.ordering(ecosystem)
            except versions.UnsupportedEcosystem:
                ordering = None  # SEMVER ranges and versions lists still decide
            wanted_releases = sorted(releases[ecosystem])
            for start in range(0, len(names), _CHUNK):
                chunk = names[start : start + _CHUNK]
                query = _MATCH_QUERY.format(
                    marks=",".join("?" * len(chunk)),
                    releases=",".join("?" * len(wanted_releases)),
                )
                for vuln_id, release, name, severity, cvss, ranges in self._db.execute(
                    query, (ecosystem, *chunk, *wanted_releases)
                ):
                    stored: dict[str, Any] | None = None
                    # Binaries built from one source share its version: decide once.
                    decided: dict[str, str | None] = {}
                    for index, version, package_release in wanted[(ecosystem, name)]:
                        if release and release != package_release:
                            continue
                        if version in decided:
                            fix = decided[version]
                        else:
                            if stored is None:
                                stored = json.loads(ranges)
                            fix = decided[version] = _evaluate(ordering, version, stored, keys)
                        if fix is None:
                            continue
                        previous = found.get((vuln_id, index))
                        if previous is None or (fix and not previous[1]):
                            found[(vuln_id, index)] = (severity, fix, cvss)

        details: dict[str, tuple[tuple[str, ...], str, dict[str, Any]]] = {}
        ids = list({vuln_id for vuln_id, _ in found})
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            query = _DETAILS_QUERY.format(marks=",".join("?" * len(chunk)))
            for vuln_id, aliases, summary, extra in self._db.execute(query, chunk):
                details[vuln_id] = (tuple(json.loads(aliases)), summary, json.loads(extra))
        findings = [
            Finding(
                id=vuln_id,
                package=unique[index],
                severity=severity,
                fixed_version=fix,
                aliases=details[vuln_id][0],
                summary=details[vuln_id][1],
                references=tuple(details[vuln_id][2].get("references", ())),
                cwe_ids=tuple(details[vuln_id][2].get("cwe_ids", ())),
                cvss=tuple((kind, vector) for kind, vector in json.loads(cvss)),
            )
            for (vuln_id, index), (severity, fix, cvss) in found.items()
        ]
        return sorted(
            findings,
            key=lambda f: (
                _SEVERITY_RANK.get(f.severity, len(SEVERITIES)),
                f.id,
                f.package.name,
                f.package.version,
            ),
        )


def documents(paths: Sequence[Path], report: Callable[[str, str], None]) -> Iterator[_Document]:
    """The JSON documents in *paths*: files, folders of ``.json`` and ``.zip`` files
    (searched recursively) and zip archives (one document per ``.json`` member); an
    unreadable archive is reported through *report*."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in (".json", ".zip"):
                    yield from file_documents(child, report)
        else:
            yield from file_documents(path, report)


def file_documents(path: Path, report: Callable[[str, str], None]) -> Iterator[_Document]:
    """The documents of one file: a zip archive (by suffix, or by content unless the
    name ends in ``.json``) or a JSON file."""
    suffix = path.suffix.lower()
    if suffix == ".zip" or (suffix != ".json" and zipfile.is_zipfile(path)):
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if member.is_dir() or not member.filename.lower().endswith(".json"):
                        continue
                    yield f"{path}:{member.filename}", archive.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            report(str(path), f"unreadable zip archive: {exc}")
        return
    yield str(path), path.read_bytes()


def records_in(
    label: str, raw: bytes, report: Callable[[str, str], None]
) -> Iterator[tuple[str, Any]]:
    """The records in one JSON document: an object, or an array of objects."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        report(label, f"not valid JSON: {exc}")
        return
    if isinstance(document, list):
        for index, record in enumerate(document):
            yield f"{label}[{index}]", record
    else:
        yield label, document


def _record_name(record: Any, fallback: str) -> str:
    """The record's id for messages, or where it came from when it has none."""
    if isinstance(record, Mapping):
        vuln_id = record.get("id")
        if isinstance(vuln_id, str) and vuln_id.strip():
            return vuln_id
    return fallback
