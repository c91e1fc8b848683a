"""The console's scan pages, driven with Playwright (Debian's chromium): an image pushed
with skopeo gets its counts in the tag table, the report opens and filters; the empty
database says so; the namespace's security settings page blocks pulls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from dockyard.scanning.formats import REPORT_FORMATS, SBOM_FORMATS
from tests.console.test_console import CHROMIUM_ARGS, sign_in
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer
from tests.scanning.registry_helpers import push, scan_server, wait_scan
from tests.scanning.test_cli import build_image
from tests.scanning.test_formats import (
    assert_valid_cyclonedx,
    assert_valid_sarif,
    assert_valid_spdx,
)

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        yield _launch(p)


def _launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


def _page(browser: Browser, server: DockyardServer) -> Page:
    context = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    return page


def test_counts_appear_in_the_tag_table_and_the_report_filters(
    tmp_path: Path, browser: Browser
) -> None:
    with scan_server(tmp_path / "server") as server, server.client() as c:
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        page = _page(browser, server)
        page.goto("/console/repositories/library/app?tab=tags")
        row = page.locator("tr[data-tag=v1]")
        # The scan runs on its own; the page shows it once done.
        for _ in range(60):
            if "Scanned" in row.locator("[data-testid=scan-status]").inner_text():
                break
            page.wait_for_timeout(500)
            page.reload()
        counts = row.locator("[data-testid=scan-counts]")
        expect(counts.locator("[data-level=High]")).to_have_text("H 1")
        expect(counts.locator("[data-level=Medium]")).to_have_text("M 3")
        expect(counts.locator("[data-level=Low]")).to_have_text("L 1")
        expect(counts.locator("[data-level=Unknown]")).to_have_text("U 1")

        expect(row.locator("[data-testid=scan-button]")).to_be_visible()
        row.locator("[data-testid=scan-report]").click()
        expect(page).to_have_url(
            f"{server.url}/console/repositories/library/app/scans/{digest}?tag=v1"
        )
        table = page.locator("[data-testid=vulnerabilities] tbody tr")
        expect(table).to_have_count(6)
        link = page.locator("tr[data-id=DSA-EPOCH-2] a").first
        expect(link).to_have_attribute("href", "https://osv.dev/vulnerability/DSA-EPOCH-2")
        expect(page.locator("[data-testid=summary-bar] span")).to_have_count(4)

        page.select_option("[data-testid=filter-level]", "Medium")
        page.click("[data-testid=report-filters] button")
        expect(table).to_have_count(3)
        page.check("[data-testid=filter-fixable]")
        page.click("[data-testid=report-filters] button")
        expect(table).to_have_count(1)
        expect(table.first).to_have_attribute("data-id", "GHSA-npm")

        # Every report format and both SBOMs download as the API serves them.
        downloads = page.locator("[data-testid=downloads]")
        for name in (*REPORT_FORMATS, *(f"sbom-{f}" for f in SBOM_FORMATS)):
            expect(downloads.locator(f"[data-testid=download-{name}]")).to_be_visible()
        for testid, check in (
            ("download-sarif", lambda text: assert_valid_sarif(json.loads(text))),
            ("download-cyclonedx", assert_valid_cyclonedx),
            ("download-sbom-spdx", lambda text: assert_valid_spdx(json.loads(text))),
        ):
            with page.expect_download() as info:
                downloads.locator(f"[data-testid={testid}]").click()
            saved = Path(info.value.path()).read_text()
            check(saved)
            assert info.value.suggested_filename.startswith("app-"), info.value.suggested_filename
        with page.expect_download() as info:
            downloads.locator("[data-testid=download-harbor]").click()
        harbor = json.loads(Path(info.value.path()).read_text())
        api = c.get(f"/api/v1/repositories/library/app/manifests/{digest}/scan?format=harbor")
        assert harbor == api.json()

        # Scan again from the report: queued, then complete again.
        page.click("[data-testid=scan-again]")
        expect(page.locator("[data-testid=flash]")).to_contain_text("Scan of v1 queued")
        wait_scan(c, "/api/v1/repositories/library/app/tags/v1/scan", ended=("complete",))

        # The namespace's security settings block the pull.
        page.goto("/console/namespaces/library")
        page.click("[data-testid=security-link]")
        page.select_option("[data-testid=block-level]", "high")
        page.fill("[data-testid=allowlist]", "DSA-BINNMU, 2099-01-01, triaged")
        page.click("[data-testid=security-form] button[type=submit]")
        expect(page.locator("[data-testid=flash]")).to_contain_text("Security settings saved")
        settings = c.get("/api/v1/namespaces/library/security").json()
        assert settings["block_pull_severity"] == "high"
        assert settings["allowlist"] == [
            {"id": "DSA-BINNMU", "expires_at": "2099-01-01T23:59:59Z", "comment": "triaged"}
        ]
        r = c.get(
            "/v2/library/app/manifests/v1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 403
        # The repository's own scan on push, on its Information tab.
        page.goto("/console/repositories/library/app?tab=info")
        section = page.locator("[data-testid=repo-security]")
        expect(section).to_contain_text("As the namespace (on)")
        section.locator("input[value=off]").check()
        section.locator("button[type=submit]").click()
        expect(page.locator("[data-testid=flash]")).to_contain_text("Scan on push saved")
        own = c.get("/api/v1/repositories/library/app/security").json()
        assert own["scan_on_push"] is False

        page.goto("/console/namespaces/library/security")
        page.fill("[data-testid=allowlist]", "not an id line")
        page.click("[data-testid=security-form] button[type=submit]")
        expect(page.locator("[data-testid=form-error]")).to_contain_text("Line 1")


def test_an_empty_database_asks_for_data(tmp_path: Path, browser: Browser) -> None:
    with scan_server(tmp_path / "server", records=False) as server, server.client() as c:
        build_image(tmp_path / "layout")
        digest = push(server, tmp_path, f"oci:{tmp_path / 'layout'}:latest", "app:v1")
        wait_scan(c, "/api/v1/repositories/library/app/tags/v1/scan")
        page = _page(browser, server)
        page.goto(f"/console/repositories/library/app/scans/{digest}")
        expect(page.locator("[data-testid=no-data]")).to_contain_text(
            "No vulnerability data: import some"
        )
        page.goto("/console/repositories/library/app?tab=tags")
        expect(page.locator("tr[data-tag=v1] [data-testid=scan-status]")).to_have_text("No data")
