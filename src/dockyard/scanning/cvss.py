"""CVSS base scores, computed from vector strings: v3.0/v3.1 and v4.0.

This module owns everything CVSS in Dockyard; :mod:`dockyard.scanning.vulndb` turns the
scores into a finding's level.

CVSS v3.0 / v3.1
----------------
:func:`cvss3_base_score` applies the base-score formula of the FIRST CVSS v3.1
specification (section 7.1, with the float-safe Roundup of Appendix A); v3.0 vectors use
the same base equations. Temporal and environmental metrics are ignored.

CVSS v4.0
---------
:func:`cvss4_base_score` follows the FIRST *Common Vulnerability Scoring System v4.0:
Specification Document*, section 8 ("CVSS v4.0 Scoring"):

1. The metric values in effect are found: a modified environmental metric (``MAV``,
   ``MSI``, …) other than ``X`` replaces its base metric; threat and security
   requirement metrics that are absent or ``X`` take their defaults, the highest
   severity (``E:A``, ``CR:H``, ``IR:H``, ``AR:H``). A vector with only the eleven base
   metrics is therefore scored as CVSS-B; supplemental metrics (``S``, ``AU``, ``R``,
   ``V``, ``RE``, ``U``) are validated but never change the score.
2. With no impact at all (``VC VI VA SC SI SA`` all ``N``) the score is 0.0.
3. Six equivalence classes (EQ1 exploitability, EQ2 complexity, EQ3 vulnerable-system
   impact, EQ4 subsequent-system impact, EQ5 exploit maturity, EQ6 security
   requirements combined with vulnerable-system impact) put the vector into a
   *MacroVector*, six digits, whose score is looked up in the table FIRST published
   with the standard (:data:`MACROVECTOR_SCORES`).
4. That score is lowered by interpolation. For each class (EQ3 and EQ6 are taken
   together) the vector's *severity distance* from the class's highest-severity
   vectors (:data:`_HIGHEST_SEVERITY`, the first of them that is at least as severe in
   every metric) is divided by the class's depth (:data:`_DEPTH`) and multiplied by
   the score drop to the next-lower MacroVector of that class; classes without a lower
   MacroVector are left out, and the mean of the rest is subtracted. The result is
   clamped to 0 to 10 and rounded half up to one decimal.

The arithmetic is exact (:class:`fractions.Fraction`), so ties such as x.x5 round up
without floating-point noise — the answer FIRST's calculator gives.

Vectors are validated strictly: the ``CVSS:4.0/`` prefix, every one of the eleven base
metrics ``AV AC AT PR UI VC VI VA SC SI SA`` exactly once, no metric twice, no unknown
metric, and only the values the specification defines for each (the order of the
metrics is not enforced). Anything else raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Final

__all__ = ["MACROVECTOR_SCORES", "cvss3_base_score", "cvss4_base_score"]


# --- CVSS v3 ---------------------------------------------------------------------------

_CVSS3_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR: Final[dict[str, dict[str, float]]] = {
    # Privileges Required weighs more when the scope changes.
    "U": {"N": 0.85, "L": 0.62, "H": 0.27},
    "C": {"N": 0.85, "L": 0.68, "H": 0.5},
}


def _roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, float-safe."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10


@lru_cache(maxsize=4096)
def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of *vector* (``CVSS:3.1/AV:N/AC:L/…``).

    Temporal and environmental metrics in the vector are ignored. Raises
    :class:`ValueError` for a vector that is not CVSS v3 or lacks a base metric.
    """
    parts = vector.strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep or key in metrics:
            raise ValueError(f"malformed CVSS v3 vector: {vector!r}")
        metrics[key] = value
    try:
        scope = metrics["S"]
        pr = _CVSS3_PR[scope][metrics["PR"]]
        w = {name: table[metrics[name]] for name, table in _CVSS3_WEIGHTS.items()}
    except KeyError as exc:
        raise ValueError(f"CVSS v3 vector lacks or misstates {exc}: {vector!r}") from exc
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    changed = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    impact = 6.42 * iss if scope == "U" else changed
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    if scope == "U":
        return _roundup(min(impact + exploitability, 10))
    return _roundup(min(1.08 * (impact + exploitability), 10))


# --- CVSS v4.0: metrics ----------------------------------------------------------------

_V4_PREFIX: Final = "CVSS:4.0"

# Each metric's values, most severe first: a value's position is its severity level,
# and the difference of two levels is the "severity distance" of the specification
# (counted in whole steps here, where FIRST's calculator counts steps of 0.1).
_V4_BASE: Final[dict[str, tuple[str, ...]]] = {
    "AV": ("N", "A", "L", "P"),
    "AC": ("L", "H"),
    "AT": ("N", "P"),
    "PR": ("N", "L", "H"),
    "UI": ("N", "P", "A"),
    "VC": ("H", "L", "N"),
    "VI": ("H", "L", "N"),
    "VA": ("H", "L", "N"),
    "SC": ("H", "L", "N"),
    "SI": ("H", "L", "N"),
    "SA": ("H", "L", "N"),
}
_V4_OPTIONAL: Final[dict[str, tuple[str, ...]]] = {
    # Threat
    "E": ("X", "A", "P", "U"),
    # Environmental: security requirements, then the modified base metrics
    "CR": ("X", "H", "M", "L"),
    "IR": ("X", "H", "M", "L"),
    "AR": ("X", "H", "M", "L"),
    "MAV": ("X", "N", "A", "L", "P"),
    "MAC": ("X", "L", "H"),
    "MAT": ("X", "N", "P"),
    "MPR": ("X", "N", "L", "H"),
    "MUI": ("X", "N", "P", "A"),
    "MVC": ("X", "H", "L", "N"),
    "MVI": ("X", "H", "L", "N"),
    "MVA": ("X", "H", "L", "N"),
    "MSC": ("X", "H", "L", "N"),
    "MSI": ("X", "S", "H", "L", "N"),
    "MSA": ("X", "S", "H", "L", "N"),
    # Supplemental: never part of the score
    "S": ("X", "N", "P"),
    "AU": ("X", "N", "Y"),
    "R": ("X", "A", "U", "I"),
    "V": ("X", "D", "C"),
    "RE": ("X", "L", "M", "H"),
    "U": ("X", "Clear", "Green", "Amber", "Red"),
}
# Threat and requirement metrics default to their highest severity.
_V4_DEFAULTS: Final[dict[str, str]] = {"E": "A", "CR": "H", "IR": "H", "AR": "H"}

# Severity levels of the values in effect (after modification: SI and SA can be
# Safety, S, through MSI/MSA).
_LEVELS: Final[dict[str, dict[str, int]]] = {
    **{name: {v: i for i, v in enumerate(values)} for name, values in _V4_BASE.items()},
    "SI": {"S": 0, "H": 1, "L": 2, "N": 3},
    "SA": {"S": 0, "H": 1, "L": 2, "N": 3},
    "E": {"A": 0, "P": 1, "U": 2},
    "CR": {"H": 0, "M": 1, "L": 2},
    "IR": {"H": 0, "M": 1, "L": 2},
    "AR": {"H": 0, "M": 1, "L": 2},
}
_IMPACT: Final = ("VC", "VI", "VA", "SC", "SI", "SA")


# --- CVSS v4.0: the data of the standard -----------------------------------------------

_MACROVECTOR_TABLE: Final = """
000000 10   000001 9.9  000010 9.8  000011 9.5  000020 9.5  000021 9.2
000100 10   000101 9.6  000110 9.3  000111 8.7  000120 9.1  000121 8.1
000200 9.3  000201 9    000210 8.9  000211 8    000220 8.1  000221 6.8
001000 9.8  001001 9.5  001010 9.5  001011 9.2  001020 9    001021 8.4
001100 9.3  001101 9.2  001110 8.9  001111 8.1  001120 8.1  001121 6.5
001200 8.8  001201 8    001210 7.8  001211 7    001220 6.9  001221 4.8
002001 9.2  002011 8.2  002021 7.2
002101 7.9  002111 6.9  002121 5
002201 6.9  002211 5.5  002221 2.7
010000 9.9  010001 9.7  010010 9.5  010011 9.2  010020 9.2  010021 8.5
010100 9.5  010101 9.1  010110 9    010111 8.3  010120 8.4  010121 7.1
010200 9.2  010201 8.1  010210 8.2  010211 7.1  010220 7.2  010221 5.3
011000 9.5  011001 9.3  011010 9.2  011011 8.5  011020 8.5  011021 7.3
011100 9.2  011101 8.2  011110 8    011111 7.2  011120 7    011121 5.9
011200 8.4  011201 7    011210 7.1  011211 5.2  011220 5    011221 3
012001 8.6  012011 7.5  012021 5.2
012101 7.1  012111 5.2  012121 2.9
012201 6.3  012211 2.9  012221 1.7
100000 9.8  100001 9.5  100010 9.4  100011 8.7  100020 9.1  100021 8.1
100100 9.4  100101 8.9  100110 8.6  100111 7.4  100120 7.7  100121 6.4
100200 8.7  100201 7.5  100210 7.4  100211 6.3  100220 6.3  100221 4.9
101000 9.4  101001 8.9  101010 8.8  101011 7.7  101020 7.6  101021 6.7
101100 8.6  101101 7.6  101110 7.4  101111 5.8  101120 5.9  101121 5
101200 7.2  101201 5.7  101210 5.7  101211 5.2  101220 5.2  101221 2.5
102001 8.3  102011 7    102021 5.4
102101 6.5  102111 5.8  102121 2.6
102201 5.3  102211 2.1  102221 1.3
110000 9.5  110001 9    110010 8.8  110011 7.6  110020 7.6  110021 7
110100 9    110101 7.7  110110 7.5  110111 6.2  110120 6.1  110121 5.3
110200 7.7  110201 6.6  110210 6.8  110211 5.9  110220 5.2  110221 3
111000 8.9  111001 7.8  111010 7.6  111011 6.7  111020 6.2  111021 5.8
111100 7.4  111101 5.9  111110 5.7  111111 5.7  111120 4.7  111121 2.3
111200 6.1  111201 5.2  111210 5.7  111211 2.9  111220 2.4  111221 1.6
112001 7.1  112011 5.9  112021 3
112101 5.8  112111 2.6  112121 1.5
112201 2.3  112211 1.3  112221 0.6
200000 9.3  200001 8.7  200010 8.6  200011 7.2  200020 7.5  200021 5.8
200100 8.6  200101 7.4  200110 7.4  200111 6.1  200120 5.6  200121 3.4
200200 7    200201 5.4  200210 5.2  200211 4    200220 4    200221 2.2
201000 8.5  201001 7.5  201010 7.4  201011 5.5  201020 6.2  201021 5.1
201100 7.2  201101 5.7  201110 5.5  201111 4.1  201120 4.6  201121 1.9
201200 5.3  201201 3.6  201210 3.4  201211 1.9  201220 1.9  201221 0.8
202001 6.4  202011 5.1  202021 2
202101 4.7  202111 2.1  202121 1.1
202201 2.4  202211 0.9  202221 0.4
210000 8.8  210001 7.5  210010 7.3  210011 5.3  210020 6    210021 5
210100 7.3  210101 5.5  210110 5.9  210111 4    210120 4.1  210121 2
210200 5.4  210201 4.3  210210 4.5  210211 2.2  210220 2    210221 1.1
211000 7.5  211001 5.5  211010 5.8  211011 4.5  211020 4    211021 2.1
211100 6.1  211101 5.1  211110 4.8  211111 1.8  211120 2    211121 0.9
211200 4.6  211201 1.8  211210 1.7  211211 0.7  211220 0.8  211221 0.2
212001 5.3  212011 2.4  212021 1.4
212101 2.4  212111 1.2  212121 0.5
212201 1    212211 0.3  212221 0.1
"""


def _parse_table(text: str) -> dict[str, Fraction]:
    cells = text.split()
    return {macro: Fraction(score) for macro, score in zip(cells[::2], cells[1::2], strict=True)}


MACROVECTOR_SCORES: Final[Mapping[str, Fraction]] = _parse_table(_MACROVECTOR_TABLE)
"""The score of each of the 270 CVSS v4.0 MacroVectors (digits EQ1…EQ6).

Source: FIRST, *Common Vulnerability Scoring System v4.0: Specification Document*,
section 8 — the MacroVector scores are data published with the standard in FIRST's
CVSS v4.0 calculator (``cvss_lookup.js``, FIRST / Red Hat and contributors,
BSD-2-Clause), transcribed here as data, in that file's order.
"""

# The highest-severity vectors of each equivalence class, per class level (EQ3 and
# EQ6 together, keyed by the two digits ``eq3 eq6``), and the depth of each class
# level (its largest severity distance plus one). Source: the same published data of
# the standard (``max_composed.js`` and ``max_severity.js`` of FIRST's calculator),
# transcribed as data.
_HIGHEST_SEVERITY_TEXT: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "eq1": {
        "0": ("AV:N/PR:N/UI:N",),
        "1": ("AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"),
        "2": ("AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"),
    },
    "eq2": {
        "0": ("AC:L/AT:N",),
        "1": ("AC:H/AT:N", "AC:L/AT:P"),
    },
    "eq3eq6": {
        "00": ("VC:H/VI:H/VA:H/CR:H/IR:H/AR:H",),
        "01": ("VC:H/VI:H/VA:L/CR:M/IR:M/AR:H", "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M"),
        "10": ("VC:L/VI:H/VA:H/CR:H/IR:H/AR:H", "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H"),
        "11": (
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ),
        "21": ("VC:L/VI:L/VA:L/CR:H/IR:H/AR:H",),
    },
    "eq4": {
        "0": ("SC:H/SI:S/SA:S",),
        "1": ("SC:H/SI:H/SA:H",),
        "2": ("SC:L/SI:L/SA:L",),
    },
    "eq5": {
        "0": ("E:A",),
        "1": ("E:P",),
        "2": ("E:U",),
    },
}
_DEPTH: Final[dict[str, dict[str, int]]] = {
    "eq1": {"0": 1, "1": 4, "2": 5},
    "eq2": {"0": 1, "1": 2},
    "eq3eq6": {"00": 7, "01": 6, "10": 8, "11": 8, "21": 10},
    "eq4": {"0": 6, "1": 5, "2": 4},
    "eq5": {"0": 1, "1": 1, "2": 1},
}


def _partial(text: str) -> dict[str, int]:
    """``"AV:N/PR:L"`` as severity levels, ``{"AV": 0, "PR": 1}``."""
    pairs = (part.split(":") for part in text.split("/"))
    return {name: _LEVELS[name][value] for name, value in pairs}


_HIGHEST_SEVERITY: Final[dict[str, dict[str, tuple[dict[str, int], ...]]]] = {
    eq: {level: tuple(_partial(v) for v in vectors) for level, vectors in levels.items()}
    for eq, levels in _HIGHEST_SEVERITY_TEXT.items()
}


# --- CVSS v4.0: scoring ----------------------------------------------------------------


def _parse_v4(vector: str) -> dict[str, str]:
    """The metrics of a CVSS v4.0 vector, validated; :class:`ValueError` if bad."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix != _V4_PREFIX or not rest:
        raise ValueError(f"not a CVSS v4.0 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in rest.split("/"):
        name, sep, value = part.partition(":")
        allowed = _V4_BASE.get(name) or _V4_OPTIONAL.get(name)
        if not sep or allowed is None:
            raise ValueError(f"CVSS v4.0 vector has an unknown metric {part!r}: {vector!r}")
        if name in metrics:
            raise ValueError(f"CVSS v4.0 vector repeats metric {name}: {vector!r}")
        if value not in allowed:
            raise ValueError(f"CVSS v4.0 vector has a bad value {part!r}: {vector!r}")
        metrics[name] = value
    missing = [name for name in _V4_BASE if name not in metrics]
    if missing:
        raise ValueError(f"CVSS v4.0 vector lacks {'/'.join(missing)}: {vector!r}")
    return metrics


def _in_effect(metrics: Mapping[str, str]) -> dict[str, str]:
    """The values that score: modified metrics applied, defaults for the rest."""
    effective = {}
    for name in _V4_BASE:
        modified = metrics.get("M" + name, "X")
        effective[name] = metrics[name] if modified == "X" else modified
    for name, default in _V4_DEFAULTS.items():
        value = metrics.get(name, "X")
        effective[name] = default if value == "X" else value
    return effective


def _macrovector(m: Mapping[str, str]) -> str:
    """The six equivalence-class levels (0 is the most severe) as a MacroVector."""
    if m["AV"] == "N" and m["PR"] == "N" and m["UI"] == "N":
        eq1 = 0
    elif (m["AV"] == "N" or m["PR"] == "N" or m["UI"] == "N") and m["AV"] != "P":
        eq1 = 1
    else:
        eq1 = 2
    eq2 = 0 if m["AC"] == "L" and m["AT"] == "N" else 1
    if m["VC"] == "H" and m["VI"] == "H":
        eq3 = 0
    elif "H" in (m["VC"], m["VI"], m["VA"]):
        eq3 = 1
    else:
        eq3 = 2
    if m["SI"] == "S" or m["SA"] == "S":
        eq4 = 0
    elif "H" in (m["SC"], m["SI"], m["SA"]):
        eq4 = 1
    else:
        eq4 = 2
    eq5 = _LEVELS["E"][m["E"]]
    protected = (("CR", "VC"), ("IR", "VI"), ("AR", "VA"))
    eq6 = 0 if any(m[req] == "H" and m[imp] == "H" for req, imp in protected) else 1
    return f"{eq1}{eq2}{eq3}{eq4}{eq5}{eq6}"


def _lower_macrovectors(macro: str) -> dict[str, list[str]]:
    """Per class, the next-lower MacroVectors (one step less severe in that class)."""

    def bump(position: int) -> str:
        return macro[:position] + str(int(macro[position]) + 1) + macro[position + 1 :]

    eq3, eq6 = macro[2], macro[5]
    eq3eq6 = {
        "00": [bump(5), bump(2)],  # two ways down: the higher score counts
        "01": [bump(2)],
        "10": [bump(5)],
        "11": [bump(2)],
        "21": [],
    }[eq3 + eq6]
    return {
        "eq1": [bump(0)],
        "eq2": [bump(1)],
        "eq3eq6": eq3eq6,
        "eq4": [bump(3)],
        "eq5": [bump(4)],
    }


def _distance(levels: Mapping[str, int], highest: tuple[dict[str, int], ...]) -> int:
    """Severity distance to the first highest-severity vector not less severe anywhere."""
    for candidate in highest:
        steps = [levels[name] - level for name, level in candidate.items()]
        if all(step >= 0 for step in steps):
            return sum(steps)
    raise ValueError("no highest-severity vector bounds this vector")  # pragma: no cover


@lru_cache(maxsize=4096)
def cvss4_base_score(vector: str) -> float:
    """The CVSS v4.0 score of *vector* (``CVSS:4.0/AV:N/AC:L/AT:N/…``).

    With only base metrics this is the CVSS-B score; threat and environmental metrics
    in the vector are applied as the specification says (absent ones take their
    defaults). Raises :class:`ValueError` for a vector that is not a valid CVSS v4.0
    vector. The algorithm and its data are described in this module's docstring.
    """
    m = _in_effect(_parse_v4(vector))
    if all(m[name] == "N" for name in _IMPACT):
        return 0.0
    macro = _macrovector(m)
    keys = {
        "eq1": macro[0],
        "eq2": macro[1],
        "eq3eq6": macro[2] + macro[5],
        "eq4": macro[3],
        "eq5": macro[4],
    }
    levels = {name: _LEVELS[name][value] for name, value in m.items()}
    score = MACROVECTOR_SCORES[macro]
    drops: list[Fraction] = []
    for eq, lower in _lower_macrovectors(macro).items():
        lower_scores = [MACROVECTOR_SCORES[v] for v in lower if v in MACROVECTOR_SCORES]
        if not lower_scores:
            continue  # no lower MacroVector in this class: it takes no part
        distance = _distance(levels, _HIGHEST_SEVERITY[eq][keys[eq]])
        drops.append((score - max(lower_scores)) * distance / _DEPTH[eq][keys[eq]])
    if drops:
        score -= sum(drops, Fraction(0)) / len(drops)
    score = min(max(score, Fraction(0)), Fraction(10))
    return math.floor(score * 10 + Fraction(1, 2)) / 10
