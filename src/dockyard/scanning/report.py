"""Render a scan result: a table for people, a JSON document for programs."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from dockyard.scanning.model import SEVERITIES, Finding, Package, ScanResult

_RANK = {level: rank for rank, level in enumerate(SEVERITIES)}


def parse_levels(text: str) -> tuple[str, ...]:
    """``High,Medium`` → the levels named (case ignored), most severe first.

    Raises :class:`ValueError` naming an unknown level.
    """
    by_name = {level.lower(): level for level in SEVERITIES}
    levels = set()
    for raw in text.split(","):
        word = raw.strip()
        if not word:
            continue
        level = by_name.get(word.lower())
        if level is None:
            raise ValueError(f"unknown severity {word!r} (use {', '.join(SEVERITIES)})")
        levels.add(level)
    if not levels:
        raise ValueError(f"no severity given (use {', '.join(SEVERITIES)})")
    return tuple(sorted(levels, key=_RANK.__getitem__))


def at_or_above(findings: Collection[Finding], level: str) -> bool:
    """Whether some finding is at ``level`` or more severe (Unknown is the lowest)."""
    return any(_RANK.get(f.severity, len(SEVERITIES)) <= _RANK[level] for f in findings)


def sort_findings(findings: Collection[Finding]) -> list[Finding]:
    """High first, then by id, then by package (name, version, ecosystem, layer)."""
    return sorted(
        findings,
        key=lambda f: (
            _RANK.get(f.severity, len(SEVERITIES)),
            f.id,
            f.package.name,
            f.package.version,
            f.package.ecosystem,
            f.package.layer,
        ),
    )


def _sorted_packages(packages: Collection[Package]) -> list[Package]:
    return sorted(packages, key=lambda p: (p.ecosystem, p.name, p.version, p.layer, p.path))


def summary(findings: Collection[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity if finding.severity in counts else "Unknown"] += 1
    return counts


def as_json(result: ScanResult, findings: Collection[Finding] | None = None) -> dict[str, Any]:
    """The JSON report; ``findings`` replaces the result's (a filtered selection)."""
    chosen = sort_findings(result.findings if findings is None else findings)
    return {
        "artifact": {"name": result.name, "digest": result.digest},
        "os": {
            "family": result.os.family if result.os else "",
            "version": result.os.version if result.os else "",
        },
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "ecosystem": p.ecosystem,
                "source_name": p.source_name,
                "source_version": p.source_version,
                "layer": p.layer,
            }
            for p in _sorted_packages(result.packages)
        ],
        "vulnerabilities": [
            {
                "id": f.id,
                "aliases": list(f.aliases),
                "package": f.package.name,
                "ecosystem": f.package.ecosystem,
                "installed_version": f.package.version,
                "fixed_version": f.fixed_version,
                "severity": f.severity if f.severity in _RANK else "Unknown",
                "source_name": f.package.source_name,
                "layer": f.package.layer,
                "summary": f.summary,
            }
            for f in chosen
        ],
        "summary": summary(chosen),
    }


def render_json(result: ScanResult, findings: Collection[Finding] | None = None) -> str:
    return json.dumps(as_json(result, findings), indent=2, ensure_ascii=False) + "\n"


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab…`` → ``0123456789ab``."""
    return digest.partition(":")[2][:12] if ":" in digest else digest[:12]


def render_table(result: ScanResult, findings: Collection[Finding] | None = None) -> str:
    """A heading, a summary line of counts per level, then one row per finding."""
    chosen = sort_findings(result.findings if findings is None else findings)
    os_name = f"{result.os.family} {result.os.version}".strip() if result.os else "unknown OS"
    lines = [
        f"{result.name} ({short_digest(result.digest)}, {os_name}, "
        f"{len(result.packages)} packages)",
        "  ".join(f"{level}: {count}" for level, count in summary(chosen).items()),
    ]
    if not chosen:
        lines.append("No vulnerabilities found.")
        return "\n".join(lines) + "\n"
    rows = [("LEVEL", "ID", "PACKAGE", "INSTALLED", "FIXED", "LAYER")]
    rows += [
        (
            f.severity,
            f.id,
            f.package.name,
            f.package.version,
            f.fixed_version or "-",
            short_digest(f.package.layer),
        )
        for f in chosen
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"
