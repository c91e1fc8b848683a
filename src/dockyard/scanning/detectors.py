"""Find the installed packages in an image's file view.

Each detector declares up front which paths it reads (:func:`select` is the union the
image reader is given), then turns the files into :class:`Package` records:

========== ================================================ ===========================
ecosystem  files                                            recorded
========== ================================================ ===========================
Debian     ``/var/lib/dpkg/status``, ``status.d/*``          name, version, source name
/ Ubuntu                                                    and version (``Source:``)
Alpine     ``/lib/apk/db/installed``                        name, version, origin
RPM        ``/var/lib/rpm/rpmdb.sqlite`` (also               name, [epoch:]version-
           ``/usr/lib/sysimage/rpm/rpmdb.sqlite``)           release, source RPM name
PyPI       ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, PEP 503 name, version
           ``*.egg-info`` files
npm        ``node_modules/NAME/package.json``,              name, version
           ``node_modules/@SCOPE/NAME/package.json``
========== ================================================ ===========================

The operating system comes from ``/etc/os-release`` (else ``/usr/lib/os-release``) and
decides the ecosystem of the OS packages (:func:`os_ecosystem`).

Each package records the layer that added it. For the dpkg and apk databases — one file
rewritten by every layer that installs something — that is the *first* layer from which
on every version of the database lists the package at the same version ("the layer
that introduced it"); for every other record it is the layer that wrote the file seen
in the final image. A package removed in a later layer (its record whited out, or
dropped from the database) is not reported.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dockyard.scanning.image import FileView, MiB, Node, Want
from dockyard.scanning.model import OperatingSystem, Package

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_INSTALLED = "lib/apk/db/installed"
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_UNSUPPORTED = (
    "var/lib/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
)
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")

_DATABASE = Want(64 * MiB, history=True)
_SMALL = Want(4 * MiB)
_HEADERS = Want(256 * 1024, head=True)
"""Python metadata: only the headers at the top are needed."""
_PRESENCE = Want(0, head=True)
"""Kept without content: only whether the file exists matters."""

FIXED: dict[str, Want] = {
    DPKG_STATUS: _DATABASE,
    APK_INSTALLED: _DATABASE,
    **dict.fromkeys(RPM_SQLITE, Want(64 * MiB)),
    **dict.fromkeys(RPM_UNSUPPORTED, _PRESENCE),
    **dict.fromkeys(OS_RELEASE, Want(64 * 1024)),
}
"""Paths read by name, and what is kept of them."""
_TAILS = {"/".join(path.split("/")[-2:]): want for path, want in FIXED.items()}
"""The same files wherever they are: the directories above may be symbolic links
(``/lib`` → ``usr/lib``, ``/var/lib/rpm`` → ``../../usr/lib/sysimage/rpm``)."""

_PYTHON_NAMES = ("METADATA", "PKG-INFO")


def select(path: str) -> Want | None:
    """What the detectors keep of ``path`` (normalized, no leading ``/``)."""
    want = FIXED.get(path)
    if want is not None:
        return want
    directory, _, base = path.rpartition("/")
    want = _TAILS.get(f"{directory.rpartition('/')[2]}/{base}")
    if want is not None:
        return want
    if base == "package.json":
        return _SMALL if _is_npm_package_dir(directory) else None
    if base in _PYTHON_NAMES:
        if base == "METADATA" and directory.endswith(".dist-info"):
            return _HEADERS
        if base == "PKG-INFO" and directory.endswith(".egg-info"):
            return _HEADERS
        return None
    if base.endswith(".egg-info"):
        return _HEADERS
    if directory == DPKG_STATUS_D[:-1]:
        return _SMALL
    return None


def lookup_paths() -> list[str]:
    """The fixed paths the detectors look up by name (links resolved)."""
    return list(FIXED)


def _is_npm_package_dir(directory: str) -> bool:
    parent, _, name = directory.rpartition("/")
    if not name or name.startswith("."):
        return False
    grand, _, parent_name = parent.rpartition("/")
    if parent_name == "node_modules":
        return True
    return parent_name.startswith("@") and grand.rpartition("/")[2] == "node_modules"


# -- operating system -----------------------------------------------------------------------


def parse_os_release(data: bytes) -> dict[str, str]:
    """KEY=value lines, shell-quoted values unquoted."""
    fields = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        fields[key.strip()] = " ".join(words)
    return fields


def detect_os(view: FileView) -> OperatingSystem | None:
    for path in OS_RELEASE:
        data = view.read(path)
        if data is not None:
            fields = parse_os_release(data)
            family = fields.get("ID", "").lower()
            if family:
                return OperatingSystem(family, fields.get("VERSION_ID", ""))
    return None


def os_ecosystem(os: OperatingSystem | None) -> str:
    """The OSV ecosystem of the packages of ``os``; ``""`` when there is none.

    ``debian`` 12 → ``Debian:12``; ``ubuntu`` 22.04 → ``Ubuntu:22.04``; ``alpine``
    3.18.4 → ``Alpine:v3.18``; ``rocky`` 9.3 → ``Rocky Linux:9``; ``almalinux`` 9.3 →
    ``AlmaLinux:9``; ``rhel`` → ``Red Hat``; ``wolfi`` → ``Wolfi``; ``chainguard`` →
    ``Chainguard``. Without a ``VERSION_ID`` (Debian testing) the bare name.
    """
    if os is None:
        return ""
    numbers = re.findall(r"\d+", os.version)
    major = numbers[0] if numbers else ""
    match os.family:
        case "debian":
            return f"Debian:{major}" if major else "Debian"
        case "ubuntu":
            return f"Ubuntu:{os.version}" if os.version else "Ubuntu"
        case "alpine":
            return f"Alpine:v{numbers[0]}.{numbers[1]}" if len(numbers) >= 2 else "Alpine"
        case "rocky":
            return f"Rocky Linux:{major}" if major else "Rocky Linux"
        case "almalinux":
            return f"AlmaLinux:{major}" if major else "AlmaLinux"
        case "rhel":
            return "Red Hat"
        case "wolfi":
            return "Wolfi"
        case "chainguard":
            return "Chainguard"
    return ""


# -- shared ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    name: str
    version: str
    source_name: str
    source_version: str


def _stanzas(data: bytes) -> Iterable[dict[str, str]]:
    """Blank-line separated ``Key: value`` paragraphs (continuation lines folded in)."""
    fields: dict[str, str] = {}
    key = ""
    for raw in data.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, ""
            continue
        if raw[0] in " \t":
            if key:
                fields[key] += "\n" + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            key = ""
            continue
        key = key.strip()
        fields[key] = value.strip()
    if fields:
        yield fields


def _introduced_in(
    view: FileView,
    path: str,
    parse: Callable[[bytes], list[_Record]],
    final: tuple[str, Node],
) -> dict[_Record, int]:
    """For each record in the final database, the first layer from which on every
    version of the database holds it."""
    versions = view.versions(path)
    node = final[1]
    if not versions or versions[-1][1] is not node.data:
        return dict.fromkeys(parse(node.data or b""), node.layer)
    parsed = [(layer, set(parse(data)) if data is not None else set()) for layer, data in versions]
    out = {}
    for record in parse(versions[-1][1] or b""):
        layer = parsed[-1][0]
        for earlier, records in reversed(parsed[:-1]):
            if record not in records:
                break
            layer = earlier
        out[record] = layer
    return out


# -- dpkg ----------------------------------------------------------------------------------


def _source(fields: dict[str, str], name: str, version: str) -> tuple[str, str]:
    source = fields.get("Source", "").strip()
    if not source:
        return name, version
    match = re.fullmatch(r"(\S+)\s*\(\s*([^)\s]+)\s*\)", source)
    if match:
        return match.group(1), match.group(2)
    return source.split()[0], version


def parse_dpkg_status(data: bytes, *, require_status: bool = True) -> list[_Record]:
    """Installed packages of a dpkg status file: those whose ``Status`` says the package
    is ``installed`` (``install ok installed``, also ``hold ok installed``). Files of
    ``status.d`` (distroless images) usually have no ``Status`` and then count."""
    out = []
    for fields in _stanzas(data):
        name = fields.get("Package", "")
        version = fields.get("Version", "")
        if not name or not version:
            continue
        status = fields.get("Status")
        if status is None:
            if require_status:
                continue
        else:
            words = status.split()
            if len(words) != 3 or words[2] != "installed":
                continue
        source_name, source_version = _source(fields, name, version)
        out.append(_Record(name, version, source_name, source_version))
    return out


def detect_dpkg(view: FileView, ecosystem: str) -> list[Package]:
    out = []
    final = view.lookup(DPKG_STATUS)
    if final is not None:
        layers = _introduced_in(view, DPKG_STATUS, parse_dpkg_status, final)
        out += [_package(r, ecosystem, view.layers[layer], final[0]) for r, layer in layers.items()]
    for path, node in view.files():
        directory, _, base = path.rpartition("/")
        if directory != DPKG_STATUS_D[:-1] or base.endswith(".md5sums") or node.data is None:
            continue
        for record in parse_dpkg_status(node.data, require_status=False):
            out.append(_package(record, ecosystem, view.layer_of(node), path))
    return out


def _package(record: _Record, ecosystem: str, layer: str, path: str) -> Package:
    return Package(
        name=record.name,
        version=record.version,
        ecosystem=ecosystem,
        source_name=record.source_name,
        source_version=record.source_version,
        layer=layer,
        path=f"/{path}",
    )


# -- apk -----------------------------------------------------------------------------------


def parse_apk_installed(data: bytes) -> list[_Record]:
    """``P:`` name, ``V:`` version, ``o:`` origin (the source package) of each stanza."""
    out = []
    fields: dict[str, str] = {}
    for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
        if not line.strip():
            name, version = fields.get("P", ""), fields.get("V", "")
            if name and version:
                out.append(_Record(name, version, fields.get("o") or name, version))
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1 and key not in fields:
            fields[key] = value.strip()
    return out


def detect_apk(view: FileView, ecosystem: str) -> list[Package]:
    final = view.lookup(APK_INSTALLED)
    if final is None:
        return []
    layers = _introduced_in(view, APK_INSTALLED, parse_apk_installed, final)
    return [_package(r, ecosystem, view.layers[layer], final[0]) for r, layer in layers.items()]


# -- rpm -----------------------------------------------------------------------------------

RPMTAG_NAME = 1000
RPMTAG_VERSION = 1001
RPMTAG_RELEASE = 1002
RPMTAG_EPOCH = 1003
RPMTAG_SOURCERPM = 1044
_RPM_TAGS = {RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_SOURCERPM}
_RPM_INT32 = 4
_RPM_STRING = 6
_RPM_STRING_ARRAY = 8
_RPM_I18NSTRING = 9
_RPM_MAX_ENTRIES = 0xFFFF
_RPM_MAX_DATA = 0x0FFFFFFF


class RpmHeaderError(ValueError):
    """A header blob that does not follow the format."""


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The name, version, release, epoch and source RPM tags of one header blob.

    The blob is the header as the rpm database stores it: the entry count ``il`` and the
    data length ``dl`` (32-bit big-endian), ``il`` index entries of 16 bytes (tag, type,
    offset into the data, count) and ``dl`` bytes of data. Every offset and string is
    checked against the bounds; a violation raises :class:`RpmHeaderError`.
    """
    if len(blob) < 8:
        raise RpmHeaderError("header shorter than its intro")
    il, dl = struct.unpack_from(">II", blob, 0)
    if not 1 <= il <= _RPM_MAX_ENTRIES or dl > _RPM_MAX_DATA:
        raise RpmHeaderError(f"implausible header sizes ({il} entries, {dl} bytes)")
    start = 8 + 16 * il
    if start + dl > len(blob):
        raise RpmHeaderError("header truncated")
    data = blob[start : start + dl]
    out: dict[int, str | int] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in _RPM_TAGS:
            continue
        if offset < 0 or offset >= dl or count < 1:
            raise RpmHeaderError(f"tag {tag}: offset {offset} outside the data")
        if kind == _RPM_INT32:
            if offset + 4 > dl:
                raise RpmHeaderError(f"tag {tag}: value outside the data")
            (out[tag],) = struct.unpack_from(">I", data, offset)
        elif kind in (_RPM_STRING, _RPM_STRING_ARRAY, _RPM_I18NSTRING):
            end = data.find(b"\0", offset)
            if end < 0:
                raise RpmHeaderError(f"tag {tag}: unterminated string")
            out[tag] = data[offset:end].decode("utf-8", "replace")
        else:
            raise RpmHeaderError(f"tag {tag}: unexpected type {kind}")
    return out


def srpm_name(filename: str) -> tuple[str, str]:
    """(name, version-release) of a source RPM file name such as
    ``glibc-2.34-60.el9.src.rpm``; empty strings when it is not one."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], f"{parts[1]}-{parts[2]}"
    return "", ""


def _rpm_record(tags: dict[int, str | int]) -> _Record | None:
    name, version, release = (tags.get(t) for t in (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE))
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    evr = f"{version}-{release}" if isinstance(release, str) and release else version
    epoch = tags.get(RPMTAG_EPOCH)
    prefix = f"{epoch}:" if isinstance(epoch, int) else ""
    source_name, source_vr = srpm_name(str(tags.get(RPMTAG_SOURCERPM, "")))
    return _Record(name, prefix + evr, source_name, prefix + source_vr if source_vr else "")


def parse_rpmdb_sqlite(data: bytes) -> tuple[list[_Record], list[str]]:
    """The packages of an ``rpmdb.sqlite`` file, read in memory; (records, problems)."""
    image = bytearray(data)
    if len(image) >= 20 and image[:16] == b"SQLite format 3\0":
        image[18:20] = b"\x01\x01"  # WAL mode cannot be opened from memory; the data is whole
    problems: list[str] = []
    records = []
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(image))
        conn.execute("PRAGMA query_only = ON")
        rows = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
        for hnum, blob in rows:
            if not isinstance(blob, bytes):
                problems.append(f"rpm header {hnum}: not a blob")
                continue
            try:
                record = _rpm_record(parse_rpm_header(blob))
            except RpmHeaderError as exc:
                problems.append(f"rpm header {hnum}: {exc}")
                continue
            if record is None:
                problems.append(f"rpm header {hnum}: no name or version")
            else:
                records.append(record)
    except sqlite3.DatabaseError as exc:
        problems.append(f"the rpm database cannot be read: {exc}")
    finally:
        conn.close()
    return records, problems


def detect_rpm(view: FileView, ecosystem: str, warn: Callable[[str], None]) -> list[Package]:
    out = []
    seen = set()
    for path in RPM_SQLITE:
        found = view.lookup(path)
        if found is None or found[0] in seen:
            continue
        real, node = found
        seen.add(real)
        records, problems = parse_rpmdb_sqlite(node.data or b"")
        for problem in problems:
            warn(f"/{real}: {problem}")
        out += [_package(r, ecosystem, view.layer_of(node), real) for r in records]
    if not seen:
        for path in RPM_UNSUPPORTED:
            if view.lookup(path) is not None:
                warn(f"/{path}: Berkeley DB and ndb rpm databases are not read; packages missed")
                break
    return out


# -- Python --------------------------------------------------------------------------------


def normalize_pypi(name: str) -> str:
    """The PEP 503 normalized form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_python_metadata(data: bytes) -> tuple[str, str] | None:
    """(Name, Version) from the headers of a METADATA / PKG-INFO file."""
    name = version = ""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if not sep or line[0] in " \t":
            continue
        key = key.strip().lower()
        if key == "name" and not name:
            name = value.strip()
        elif key == "version" and not version:
            version = value.strip()
    if not name or not version:
        return None
    return normalize_pypi(name), version


def detect_python(view: FileView) -> list[Package]:
    out = []
    for path, node in view.files():
        directory, _, base = path.rpartition("/")
        is_metadata = (base == "METADATA" and directory.endswith(".dist-info")) or (
            base == "PKG-INFO" and directory.endswith(".egg-info")
        )
        if not is_metadata and not base.endswith(".egg-info"):
            continue
        found = parse_python_metadata(node.data or b"")
        if found is not None:
            record = _Record(found[0], found[1], "", "")
            out.append(_package(record, "PyPI", view.layer_of(node), path))
    return out


# -- npm -----------------------------------------------------------------------------------


def detect_npm(view: FileView) -> list[Package]:
    out = []
    for path, node in view.files():
        directory, _, base = path.rpartition("/")
        if base != "package.json" or not _is_npm_package_dir(directory):
            continue
        try:
            doc = json.loads(node.data or b"")
        except (ValueError, UnicodeError):
            continue
        if not isinstance(doc, dict):
            continue
        name, version = doc.get("name"), doc.get("version")
        if isinstance(name, str) and isinstance(version, str) and name and version:
            record = _Record(name, version, "", "")
            out.append(_package(record, "npm", view.layer_of(node), path))
    return out


# -- all -----------------------------------------------------------------------------------


def detect_packages(
    view: FileView, os: OperatingSystem | None, warn: Callable[[str], None]
) -> list[Package]:
    """Every package the detectors find, in a stable order, without duplicates."""
    ecosystem = os_ecosystem(os)
    found = [
        *detect_dpkg(view, ecosystem),
        *detect_apk(view, ecosystem),
        *detect_rpm(view, ecosystem, warn),
    ]
    if found and not ecosystem:
        where = f"{os.family} {os.version}".strip() if os else "an unknown operating system"
        warn(f"no vulnerability data ecosystem is known for {where}: OS packages not matched")
    found += detect_python(view)
    found += detect_npm(view)
    unique = dict.fromkeys(found)
    return sorted(unique, key=lambda p: (p.ecosystem, p.name, p.version, p.path, p.layer))
