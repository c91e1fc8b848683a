"""axe-core in the browser tests: inject it into a console page and check the page.

axe-core (MIT, from npm) is installed by the Makefile's test set-up (``make axe-core``:
``npm install`` into ``.venv/npm``); ``DOCKYARD_AXE_JS`` may name another copy of
``axe.min.js``. A missing copy fails the test with how to install it, as a missing
client tool does.

Every console test may call :func:`assert_accessible` on the page it is looking at; the
walk over every console page (``test_console_accessibility``) does so for each.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AXE = ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
"""The impacts a console page must not have."""


@cache
def axe_source() -> str:
    path = Path(os.environ.get("DOCKYARD_AXE_JS") or DEFAULT_AXE)
    if not path.is_file():
        pytest.fail(
            f"axe-core is not installed ({path} is missing), and the accessibility checks "
            "need it: run `make axe-core` (npm install axe-core into .venv/npm), or point "
            "DOCKYARD_AXE_JS at an axe.min.js",
            pytrace=False,
        )
    return path.read_text(encoding="utf-8")


def violations(page: Page, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe-core's violations of ``impacts`` on the page as it is now (WCAG 2.x A and AA
    rules and axe's best practices)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_source())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, {
                runOnly: {type: "tag", values: [
                    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"
                ]},
                resultTypes: ["violations"],
            });
            return result.violations.map(v => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in impacts]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"{v['impact']}: {v['id']} ({v['help']})")
        lines += [f"    {n['target']}: {n['summary']}" for n in v["nodes"][:5]]
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    found = violations(page)
    assert not found, f"{page.url} has accessibility violations:\n{describe(found)}"
