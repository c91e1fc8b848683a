"""CVSS base scores (v3.x formula, v4.0 MacroVectors) and the levels they give findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.scanning.cvss import MACROVECTOR_SCORES, cvss3_base_score, cvss4_base_score
from dockyard.scanning.model import Package
from dockyard.scanning.vulndb import VulnDB, severity_of

# --- CVSS v3 -------------------------------------------------------------------------

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM_V3 = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"  # 5.5
LOW_V3 = "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"  # 1.6


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        (CRITICAL_V3, 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        (MEDIUM_V3, 5.5),
        (LOW_V3, 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O", 9.8),
    ],
)
def test_cvss3_base_score(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_cvss3_rejects_bad_vectors(vector: str) -> None:
    with pytest.raises(ValueError, match="CVSS"):
        cvss3_base_score(vector)


# --- CVSS v4.0 -----------------------------------------------------------------------

# Vector and score pairs as FIRST publishes them, with the source of each group:
# FIRST's "CVSS v4.0 Examples" page (https://www.first.org/cvss/v4.0/examples), and
# scores of FIRST's CVSS v4.0 calculator recorded in Red Hat's cvss test data
# (tests/vectors_simple4, vectors_threat4, vectors_security4 and the JSON-schema tests
# of github.com/RedHatProductSecurity/cvss).
FIRST_EXAMPLES = [
    ("CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.3),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.7),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U", 5.2),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N", 8.3),
    (
        "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N"
        "/CR:H/IR:L/AR:L/MAV:N/MAC:H/MVC:H/MVI:L/MVA:L",
        8.1,
    ),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", 4.6),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N", 5.1),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N", 6.9),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:N/VI:N/VA:N/SC:H/SI:N/SA:N", 5.9),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 9.4),
    ("CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:H/SA:N/S:P/V:D", 8.3),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N/E:A", 8.7),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A", 10.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A", 9.3),
    ("CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:H/SI:N/SA:H", 6.4),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/R:I", 9.3),
    ("CVSS:4.0/AV:L/AC:L/AT:P/PR:H/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/R:I", 8.7),
    ("CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 8.6),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 7.1),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 8.2),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L", 8.7),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L/E:U", 6.6),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N", 5.1),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 7.7),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N", 8.3),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/E:U", 5.6),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 8.5),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A", 9.2),
    ("CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 5.4),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 8.7),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N", 6.9),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:L/SA:N", 6.9),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/S:P", 8.5),
    (
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/S:P/AU:Y/V:C/RE:L",
        9.4,
    ),
    (
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:H/AR:L"
        "/MAV:L/MAC:H/MAT:N/MPR:N/MUI:N/MVC:N/MVI:H/MVA:L/MSC:N/MSI:S/MSA:L",
        7.0,
    ),
    (
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MAV:A/MAC:H/MAT:N"
        "/MPR:L/MUI:N/MVC:L/MVI:H/MVA:H/MSC:L/MSI:S/MSA:S/CR:L/IR:H/AR:H/E:P",
        7.4,
    ),
    (
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MAV:N/MAC:H/MAT:N"
        "/MPR:L/MUI:N/MVC:H/MVI:H/MVA:H/MSC:H/MSI:S/MSA:H/CR:M/IR:H/AR:M/E:P",
        8.7,
    ),
    ("CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/S:P", 8.6),
    ("CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/MSI:S/S:P", 9.7),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/V:C", 8.7),
]
CALCULATOR_SCORES = [
    # CVSS-B, every band down to Low
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 10.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:H/VA:L/SC:N/SI:H/SA:L", 9.2),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:L/SI:H/SA:L", 9.4),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:H/SI:N/SA:L", 7.8),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:N/VC:H/VI:L/VA:H/SC:H/SI:H/SA:L", 7.3),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:N/VI:L/VA:L/SC:H/SI:L/SA:L", 7.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:L/VI:L/VA:N/SC:H/SI:L/SA:L", 6.4),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:N/VC:H/VI:N/VA:L/SC:L/SI:L/SA:L", 6.0),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:N/VC:N/VI:L/VA:L/SC:H/SI:H/SA:H", 5.5),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:A/VC:N/VI:L/VA:L/SC:H/SI:H/SA:L", 5.0),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:L/VI:L/VA:N/SC:H/SI:N/SA:N", 4.9),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:A/VC:L/VI:N/VA:L/SC:L/SI:H/SA:N", 4.3),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:H/SA:N", 4.0),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:N/VI:N/VA:N/SC:N/SI:L/SA:N", 2.3),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:N/SA:N", 2.1),
    ("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:P/VC:L/VI:N/VA:L/SC:N/SI:N/SA:N", 2.1),
    ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:N/SA:N", 1.8),
    # no impact at all: 0.0, whatever the rest
    ("CVSS:4.0/AV:A/AC:H/AT:P/PR:L/UI:P/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/E:A", 0.0),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/CR:H/IR:H/AR:H", 0.0),
    # threat metric (exploit maturity)
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A", 7.3),
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P", 5.9),
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U", 4.1),
    # environmental metrics: security requirements and modified base metrics
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/CR:H/IR:H/AR:M", 7.2),
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/CR:H/IR:M/AR:L", 7.1),
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/CR:M/IR:M/AR:M", 5.5),
    ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/CR:L/IR:L/AR:L", 5.4),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", 8.7),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/AR:L", 7.9),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/MSI:H", 7.7),
]


@pytest.mark.parametrize(("vector", "score"), FIRST_EXAMPLES + CALCULATOR_SCORES)
def test_cvss4_score_agrees_with_first(vector: str, score: float) -> None:
    assert cvss4_base_score(vector) == score


def test_the_macrovector_table_is_complete() -> None:
    eq3eq6 = ("00", "01", "10", "11", "21")  # EQ6 0 needs a High impact: EQ3 below 2
    expected = {
        f"{eq1}{eq2}{e36[0]}{eq4}{eq5}{e36[1]}"
        for eq1 in "012"
        for eq2 in "01"
        for e36 in eq3eq6
        for eq4 in "012"
        for eq5 in "012"
    }
    assert set(MACROVECTOR_SCORES) == expected
    assert len(MACROVECTOR_SCORES) == 270
    assert MACROVECTOR_SCORES["000000"] == 10
    assert MACROVECTOR_SCORES["212221"] * 10 == 1


BASE = "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 7.7


@pytest.mark.parametrize(
    "same",
    [
        # undefined (X) threat and environmental metrics are their defaults
        BASE + "/E:X",
        BASE + "/E:A",
        BASE + "/CR:X/IR:X/AR:X",
        BASE + "/CR:H/IR:H/AR:H",
        BASE + "/MAV:X/MAC:X/MAT:X/MPR:X/MUI:X/MVC:X/MVI:X/MVA:X/MSC:X/MSI:X/MSA:X",
        # a modified metric equal to its base metric changes nothing
        BASE + "/MAV:N/MVC:H",
        # supplemental metrics never count
        BASE + "/S:P/AU:Y/R:I/V:C/RE:H/U:Red",
        BASE + "/S:X/AU:X/R:X/V:X/RE:X/U:X",
        # the order of the metrics is not enforced; outer whitespace is ignored
        "CVSS:4.0/SA:N/SI:N/SC:N/VA:H/VI:H/VC:H/UI:P/PR:N/AT:P/AC:L/AV:N",
        f"  {BASE}\n",
    ],
)
def test_cvss4_defaults_and_supplemental_metrics(same: str) -> None:
    assert cvss4_base_score(same) == cvss4_base_score(BASE) == 7.7


def test_cvss4_modified_metrics_replace_base_metrics() -> None:
    # The same vector as if its base metrics had been the modified ones.
    assert cvss4_base_score(BASE + "/MAV:P/MUI:N") == cvss4_base_score(
        BASE.replace("AV:N", "AV:P").replace("UI:P", "UI:N")
    )
    # Safety (S) exists only as a modified subsequent-system metric.
    assert cvss4_base_score(BASE + "/MSI:S") > cvss4_base_score(BASE + "/MSI:H")


@pytest.mark.parametrize(
    "vector",
    [
        "",
        "CVSS:4.0",
        "CVSS:4.0/",
        "CVSS:3.1/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "cvss:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        # a base metric missing
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
        "CVSS:4.0/AV:N/AC:L/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A",
        # a metric twice, even with the same value
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/SA:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/E:U",
        # unknown metrics and values
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/JJ:H",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:J",
        "CVSS:4.0/AV:X/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/MSC:S",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Z",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:red",
        "CVSS:4.0/AV:n/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        # malformed parts
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N:H",
    ],
)
def test_cvss4_rejects_bad_vectors(vector: str) -> None:
    with pytest.raises(ValueError, match="CVSS"):
        cvss4_base_score(vector)


# --- levels from v4 vectors ----------------------------------------------------------

HIGH_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3
MEDIUM_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N"  # 5.1
LOW_V4 = "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:N/SA:N"  # 2.1
NO_IMPACT_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N"  # 0.0
BAD_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N"  # SA missing


def v4(vector: str) -> dict[str, str]:
    return {"type": "CVSS_V4", "score": vector}


def v3(vector: str) -> dict[str, str]:
    return {"type": "CVSS_V3", "score": vector}


@pytest.mark.parametrize(
    ("rec", "level"),
    [
        ({"severity": [v4(HIGH_V4)]}, "High"),
        ({"severity": [v4(MEDIUM_V4)]}, "Medium"),
        ({"severity": [v4(LOW_V4)]}, "Low"),
        ({"severity": [v4(NO_IMPACT_V4)]}, "Low"),
        # Critical (9.0 and above) counts as High
        (
            {"severity": [v4("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H")]},
            "High",
        ),
        # a threat metric in the vector counts: 7.7 with E:A, 5.2 with E:U
        ({"severity": [v4(BASE)]}, "High"),
        ({"severity": [v4(BASE + "/E:U")]}, "Medium"),
        # with several v4 vectors the highest counts, over the database's word
        (
            {
                "severity": [v4(LOW_V4), v4(MEDIUM_V4)],
                "database_specific": {"severity": "CRITICAL"},
            },
            "Medium",
        ),
        # the newest CVSS version decides, whichever order the entries come in
        ({"severity": [v3(CRITICAL_V3), v4(LOW_V4)]}, "Low"),
        ({"severity": [v4(LOW_V4), v3(CRITICAL_V3)]}, "Low"),
        ({"severity": [v3(LOW_V3), v4(HIGH_V4)]}, "High"),
        # an invalid v4 vector falls through: to the v3 vector, else the database's word
        ({"severity": [v4(BAD_V4), v3(MEDIUM_V3)]}, "Medium"),
        ({"severity": [v4(BAD_V4)], "database_specific": {"severity": "LOW"}}, "Low"),
        ({"severity": [v4(BAD_V4)]}, "Unknown"),
        ({"severity": [v4("garbage"), {"type": ["CVSS_V4"], "score": HIGH_V4}]}, "Unknown"),
        # package-level v4 vectors, asked about the whole record: the worst
        (
            {"affected": [{"severity": [v4(LOW_V4)]}, {"severity": [v4(HIGH_V4)]}]},
            "High",
        ),
    ],
)
def test_severity_of_a_record_with_v4_vectors(rec: dict[str, Any], level: str) -> None:
    assert severity_of({"id": "X", "modified": "2024-01-01T00:00:00Z", **rec}) == level


def test_an_affected_entrys_own_v4_vector_counts_for_its_package() -> None:
    low = {"severity": [v4(LOW_V4)]}
    plain: dict[str, Any] = {}
    rec = {"id": "X", "affected": [low, plain], "severity": [v4(HIGH_V4)]}
    assert severity_of(rec, low) == "Low"
    assert severity_of(rec, plain) == "High"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[VulnDB]:
    with VulnDB(tmp_path / "vulndb") as database:
        yield database


def test_match_levels_records_by_their_v4_vectors(db: VulnDB, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    cases = {"HIGH": HIGH_V4, "MEDIUM": MEDIUM_V4, "LOW": LOW_V4, "BAD": BAD_V4}
    for name, vector in cases.items():
        record = {
            "id": f"GHSA-{name}",
            "modified": "2024-01-01T00:00:00Z",
            "severity": [v4(vector)],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "requests"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}
                    ],
                }
            ],
        }
        (records / f"{name}.json").write_text(json.dumps(record))
    problems: list[tuple[str, str]] = []
    db.import_paths([records], on_invalid=lambda what, why: problems.append((what, why)))
    assert problems == []
    installed = Package(name="requests", version="2.31.0", ecosystem="PyPI")
    found = [(f.id, f.severity, f.fixed_version) for f in db.match([installed])]
    assert found == [
        ("GHSA-HIGH", "High", "2.32.0"),
        ("GHSA-MEDIUM", "Medium", "2.32.0"),
        ("GHSA-LOW", "Low", "2.32.0"),
        ("GHSA-BAD", "Unknown", "2.32.0"),
    ]
