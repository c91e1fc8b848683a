"""SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning and the like).

No maintained Python library writes SARIF (``sarif-om`` stopped in 2019 and needs a
separate serializer), so the JSON is written here and tests hold it to the OASIS schema.

One run. ``tool.driver.rules`` has one rule per vulnerability id: its help text is the
record's summary, advisory links and the fixed versions, ``properties.security-severity``
the highest CVSS score among its findings (a number inside the level's band when the
record gave words only), which dashboards turn into Critical/High/Medium/Low. Each
finding is one result: High → ``error``, Medium → ``warning``, Low and Unknown →
``note``, located at the package's record in the image (``var/lib/dpkg/status``, a
``METADATA`` file, …) and fingerprinted by (id, package, version, path) so that a
dashboard follows it from scan to scan.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final
from urllib.parse import quote

from dockyard.scanning.formats.common import (
    SCANNER_NAME,
    SCANNER_VERSION,
    ReportContext,
    is_language,
    level,
    links,
    numeric_severity,
    utc_timestamp,
)
from dockyard.scanning.model import Finding, ScanResult
from dockyard.scanning.report import sort_findings

MEDIA_TYPE = "application/sarif+json"
SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://osv.dev"
_LEVELS: Final = {"High": "error", "Medium": "warning", "Low": "note", "Unknown": "note"}
_FINGERPRINT: Final = "dockyardFinding/v1"


def _location_uri(finding: Finding) -> str:
    """The package's record as a path relative to the image root, percent-encoded into
    a relative URI reference (a ``:`` or space in a path would otherwise break it)."""
    path = finding.package.path.lstrip("/")
    path = path or f"{finding.package.ecosystem or 'packages'}/{finding.package.name}"
    return quote(path, safe="/")


def _help(rule_id: str, findings: list[Finding]) -> tuple[str, str]:
    """(plain text, Markdown) help for a rule: summary, affected packages, links."""
    first = findings[0]
    title = first.summary or rule_id
    text = [title, ""]
    markdown = [f"**{title}**", ""]
    if first.aliases:
        text.append(f"Also known as: {', '.join(first.aliases)}")
        markdown.append(f"Also known as: {', '.join(first.aliases)}")
    markdown += ["", "| Package | Installed | Fixed | Level |", "| --- | --- | --- | --- |"]
    for f in findings:
        fixed = f.fixed_version or "no fix known"
        fix_text = f"fixed in {f.fixed_version}" if f.fixed_version else "no fix known"
        text.append(f"{f.package.name} {f.package.version}: {level(f)}, {fix_text}")
        markdown.append(f"| {f.package.name} | {f.package.version} | {fixed} | {level(f)} |")
    text += ["", *links(first)]
    markdown += ["", *(f"- <{url}>" for url in links(first))]
    return "\n".join(text), "\n".join(markdown)


def _rule(rule_id: str, findings: list[Finding]) -> dict[str, Any]:
    worst = max(findings, key=numeric_severity)
    text, markdown = _help(rule_id, findings)
    summary = worst.summary or f"{rule_id} in {worst.package.name}"
    return {
        "id": rule_id,
        "name": "LanguageSpecificPackageVulnerability"
        if is_language(worst.package)
        else "OsPackageVulnerability",
        "shortDescription": {"text": summary},
        "fullDescription": {"text": summary},
        "helpUri": links(worst)[0],
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": _LEVELS[level(worst)]},
        "properties": {
            "security-severity": f"{numeric_severity(worst):.1f}",
            "precision": "very-high",
            "tags": ["vulnerability", "security", level(worst).upper()],
        },
    }


def _result(finding: Finding, rule_index: int, context: ReportContext) -> dict[str, Any]:
    package = finding.package
    layer = context.layer(package.layer)
    fixed = f"; fixed in {finding.fixed_version}" if finding.fixed_version else "; no fix known"
    where = f"layer {layer.digest}" if layer.digest else "the image"
    if layer.created_by:
        where += f" ({layer.created_by})"
    identity = "\0".join((finding.id, package.name, package.version, package.path))
    properties: dict[str, Any] = {
        "package": package.name,
        "installedVersion": package.version,
        "fixedVersion": finding.fixed_version,
        "ecosystem": package.ecosystem,
        "layer": layer.digest,
    }
    if layer.diff_id:
        properties["diffId"] = layer.diff_id
    return {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": _LEVELS[level(finding)],
        "message": {
            "text": f"{package.name} {package.version} is affected by {finding.id} "
            f"({level(finding)}{fixed}), installed by {where} of {context.artifact_name}"
        },
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _location_uri(finding)},
                    "region": {"startLine": 1, "startColumn": 1},
                },
                "message": {"text": f"{package.name} {package.version}, from {where}"},
            }
        ],
        "partialFingerprints": {_FINGERPRINT: hashlib.sha256(identity.encode()).hexdigest()},
        "properties": properties,
    }


def report(result: ScanResult, context: ReportContext) -> dict[str, Any]:
    findings = sort_findings(result.findings)
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.id, []).append(finding)
    rule_ids = sorted(by_rule)
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": SCANNER_NAME,
                        "version": SCANNER_VERSION,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(rule_id, by_rule[rule_id]) for rule_id in rule_ids],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "endTimeUtc": utc_timestamp(context.generated_at, fraction=True),
                    }
                ],
                "results": [_result(f, index[f.id], context) for f in findings],
                "properties": {
                    "artifact": context.artifact_name,
                    "repository": context.repository,
                    "digest": context.digest,
                    "mediaType": context.mime_type,
                    **({"platform": context.platform} if context.platform else {}),
                    **context.database_properties(),
                },
            }
        ],
    }
