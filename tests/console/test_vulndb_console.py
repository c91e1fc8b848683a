"""The console's vulnerability database page (Playwright, Debian's chromium): the
administrator finds it in the navigation, uploads OSV files and watches the imports end
without reloading; other users neither see the link nor the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console import test_console
from tests.console.test_console import ACCOUNT, ACCOUNT_PASSWORD, expect_flash, sign_in
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server
from tests.scanning.osv import INVALID_RECORD, many_records, osv_record, write_zip

# test_console's browser and page fixtures, over this module's ``server``.
playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """An instance whose uploads may have 1 MiB at most, with the account ``acme``."""
    base = tmp_path_factory.mktemp("console-vulndb")
    env = {"DOCKYARD_VULNDB_UPLOAD_LIMIT": "1"}
    with running_server(base, env, remove=True, namespace=None) as found:
        with found.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": ACCOUNT, "password": ACCOUNT_PASSWORD})
            assert r.status_code == 201, r.text
        yield found


def test_the_administrator_uploads_and_follows_imports(
    page: Page, server: DockyardServer, tmp_path: Path
) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.click("nav >> text=Vulnerability database")
    expect(page).to_have_url(f"{server.url}/console/vulndb")
    expect(page.locator("[data-testid=vulndb-empty]")).to_contain_text(
        "No vulnerability data: import some"
    )
    expect(page.locator("[data-testid=stat-records]")).to_have_text("0")

    archive = write_zip(tmp_path / "all.zip", many_records(3000))
    page.set_input_files("#f-file", str(archive))
    page.click("[data-testid=upload]")
    expect_flash(page, "Received all.zip: import #1 is queued.")
    # The page follows the import by itself (no reload here) until it has ended.
    row = page.locator("[data-testid=import-1]")
    expect(row.locator("[data-field=state]")).to_have_text("succeeded", timeout=60_000)
    expect(row.locator("[data-field=imported]")).to_contain_text("3000 (3000 new, 0 updated)")
    expect(page.locator("[data-testid=stat-records]")).to_have_text("3000")
    expect(page.locator("[data-testid=ecosystems]")).to_contain_text("Debian")
    expect(page.locator("[data-testid=stat-version]")).to_have_text("1")
    expect(page.locator("[data-testid=vulndb-empty]")).to_have_count(0)

    document = tmp_path / "more.json"
    document.write_text(json.dumps([osv_record("PYSEC-1", "PyPI", "flask", "2.0"), INVALID_RECORD]))
    page.set_input_files("#f-file", str(document))
    page.click("[data-testid=upload]")
    row = page.locator("[data-testid=import-2]")
    expect(row.locator("[data-field=state]")).to_have_text("succeeded", timeout=60_000)
    expect(row.locator("[data-field=invalid]")).to_contain_text("1")
    row.locator("summary", has_text="why").click()
    expect(row.locator(".import-errors")).to_contain_text("BAD-1")
    expect(page.locator("[data-testid=ecosystems]")).to_contain_text("PyPI")
    # The polled JSON is the API's.
    found = page.request.get("/console/vulndb/imports/2").json()
    assert (found["state"], found["added"], found["invalid"]) == ("succeeded", 1, 1)

    # Too large (the limit is 1 MiB), and not OSV data: clear refusals, nothing queued.
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    page.set_input_files("#f-file", str(big))
    page.click("[data-testid=upload]")
    expect(page.locator("h1")).to_have_text("File too large")
    page.goto("/console/vulndb")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x7fELF not osv")
    page.set_input_files("#f-file", str(junk))
    page.click("[data-testid=upload]")
    expect(page.locator("[data-testid=form-error]")).to_contain_text(
        "neither a zip archive nor JSON"
    )
    expect(page.locator("[data-testid=imports] tbody tr")).to_have_count(2)


def test_other_users_neither_see_nor_open_the_page(page: Page) -> None:
    sign_in(page)
    expect(page.locator("nav")).not_to_contain_text("Vulnerability database")
    page.goto("/console/vulndb")
    expect(page.locator("h1")).to_have_text("Not allowed")
