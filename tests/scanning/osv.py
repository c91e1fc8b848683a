"""OSV records and archives for the vulnerability database's tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8


def osv_record(
    vuln_id: str,
    ecosystem: str,
    name: str,
    fixed: str,
    *,
    modified: str = "2024-01-01T00:00:00Z",
    **fields: Any,
) -> dict[str, Any]:
    """An OSV record: *name* in *ecosystem* affected below *fixed*."""
    return {
        "id": vuln_id,
        "modified": modified,
        "summary": f"{name} before {fixed} is vulnerable",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
        "severity": [{"type": "CVSS_V3", "score": CRITICAL_V3}],
        **fields,
    }


def many_records(count: int, ecosystem: str = "Debian:12", prefix: str = "DSA") -> list[Any]:
    """``count`` records on distinct packages ``pkg0`` … (fixed in 2.0)."""
    return [osv_record(f"{prefix}-{i}", ecosystem, f"pkg{i}", "2.0") for i in range(count)]


def write_zip(path: Path, records: list[Any]) -> Path:
    """An osv.dev-style archive: one JSON member per record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, record in enumerate(records):
            name = record.get("id", f"record-{index}") if isinstance(record, dict) else index
            archive.writestr(f"{name}.json", json.dumps(record))
    return path


def write_json(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


INVALID_RECORD: dict[str, Any] = {"id": "BAD-1", "modified": "yesterday", "affected": []}
"""A record with an unreadable ``modified`` time: reported, skipped."""
