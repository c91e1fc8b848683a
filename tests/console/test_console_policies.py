"""RAM policies in the console (a real browser against a real server): managed permission
policies live under their resource, not in the attach pickers or the general list; the
policy editor points at a JSON mistake's line as you type, and the server still checks.

The browser fixtures and helpers are ``test_console``'s; the account (``policies``) is
this module's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console import test_console
from tests.console.axe import assert_accessible
from tests.console.test_console import sign_in
from tests.fixtures.server import DockyardServer, running_server

pytestmark = pytest.mark.clients

playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page

OWNER, PASSWORD = "policies", "policies-console-pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("console-policies")
    with running_server(base, remove=True, namespace=None) as found:
        with found.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": OWNER, "password": PASSWORD})
            assert r.status_code == 201, r.text
        yield found


@pytest.fixture
def owner(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=(OWNER, PASSWORD)) as client:
        yield client


def test_managed_policies_are_listed_under_their_resource(page: Page, owner: httpx.Client) -> None:
    for path, body in (
        ("/api/v1/namespaces", {"name": "team"}),
        ("/api/v1/repositories", {"namespace": "team", "name": "tools"}),
        ("/api/v1/ram/users", {"name": "dev"}),
        ("/api/v1/ram/groups", {"name": "devs"}),
        (
            "/api/v1/ram/roles",
            {
                "name": "ci",
                "trust_policy": {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"RAM": ["acs:ram::*:root"]},
                        }
                    ],
                },
            },
        ),
    ):
        r = owner.post(path, json=body)
        assert r.status_code == 201, r.text
    r = owner.put("/api/v1/repositories/team/tools/permissions/dev", json={"role": "read-only"})
    assert r.status_code == 200, r.text
    managed = r.json()["policy"]
    assert managed.startswith("RepositoryReadOnly-team.tools-")
    r = owner.put("/api/v1/namespaces/team/permissions/group:devs", json={"role": "write"})
    assert r.status_code == 200, r.text
    managed_ns = r.json()["policy"]

    sign_in(page, OWNER, PASSWORD)
    # The pickers offer what a person attaches: system and custom, never a managed one.
    for url in ("/console/ram/users/dev", "/console/ram/groups/devs", "/console/ram/roles/ci"):
        page.goto(url)
        options = page.locator("#f-policy option")
        expect(options.first).to_be_attached()
        values = [o.get_attribute("value") for o in options.all()]
        assert "AliyunContainerRegistryReadOnlyAccess" in values
        assert managed not in values
        assert managed_ns not in values

    # The general list leaves them out and says where they are; the filter shows them.
    page.goto("/console/ram/policies")
    table = page.get_by_test_id("policies")
    expect(table).to_contain_text("AliyunContainerRegistryFullAccess")
    expect(table).not_to_contain_text(managed)
    expect(page.get_by_test_id("managed-note")).to_contain_text("Managed by permissions")
    page.select_option("#f-type", "managed")
    expect(table.locator("tbody tr")).to_have_count(2)
    row = table.locator("tr", has_text=managed)
    expect(row.get_by_test_id("managed-resource")).to_have_text(
        "read-only on repository team/tools"
    )
    # From the policy to its resource, and back from the resource's permissions.
    row.get_by_test_id("managed-resource").locator("a").click()
    permissions = page.get_by_test_id("permissions")
    expect(permissions).to_contain_text("dev@policies")
    permissions.get_by_test_id("managed-policy").click()
    expect(page.get_by_test_id("managed-by")).to_have_text(
        "Managed by the read-only permission on repository team/tools: change or revoke it there."
    )
    expect(page.locator("#f-document")).to_have_attribute("readonly", "")
    page.goto("/console/namespaces/team")
    expect(page.get_by_test_id("permissions").get_by_test_id("managed-policy")).to_have_text(
        managed_ns
    )
    # An unknown filter is the default one.
    page.goto("/console/ram/policies?type=bogus")
    expect(page.get_by_test_id("policies")).not_to_contain_text(managed)


BROKEN = """{
  "Version": "1",
  "Statement": [
    {"Effect": "Allow" "Action": "cr:PullRepository", "Resource": "*"}
  ]
}"""


def test_the_editor_points_at_the_line_of_a_json_mistake_as_you_type(
    page: Page, owner: httpx.Client
) -> None:
    sign_in(page, OWNER, PASSWORD)
    page.goto("/console/ram/policies/new")
    page.fill("#f-name", "LiveCheck")
    editor = page.locator("#f-document")
    error = page.get_by_test_id("json-error")
    gutter = page.get_by_test_id("json-gutter")
    expect(error).to_be_hidden()
    expect(gutter.locator("span")).to_have_count(len(editor.input_value().split("\n")))

    editor.fill(BROKEN)
    expect(error).to_have_text(
        "Invalid JSON at line 4, column 24: expected ',' or '}' after the property's value, "
        "found '\"'."
    )
    expect(gutter.locator("span")).to_have_count(6)
    expect(gutter.locator(".error-line")).to_have_text("4")
    expect(editor).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    # The message takes the caret to the mistake; typing the comma there mends it.
    error.click()
    assert editor.evaluate("e => e.selectionStart") == BROKEN.index('"Action"')
    page.keyboard.type(",")
    expect(error).to_be_hidden()
    expect(gutter.locator(".error-line")).to_have_count(0)
    expect(editor).to_have_attribute("aria-invalid", "false")

    for text, where, words in (
        ('{"Version": "1",\n}', "line 2, column 1", "a comma before '}': remove it"),
        ('{"Version": "1"', "line 1, column 16", "expected ',' or '}'"),
        ('{"Version": "1\n"}', "line 1, column 15", 'a string must end (with ") on the line'),
        ("{\n  Version: 1}", "line 2, column 3", "expected a property name in double quotes"),
        ('{"a": [1, 2,]}', "line 1, column 13", "a comma before ']'"),
        ('{"a": tru}', "line 1, column 7", "expected a value"),
        ('{"a": 1} x', "line 1, column 10", "unexpected 'x' after the end of the document"),
    ):
        editor.fill(text)
        expect(error).to_contain_text(f"Invalid JSON at {where}: {words}")
    # Broken JSON is not sent at all.
    editor.fill(BROKEN)
    page.get_by_role("button", name="Create", exact=True).click()
    expect(error).to_be_visible()
    assert page.url.endswith("/console/ram/policies/new")
    assert owner.get("/api/v1/ram/policies/LiveCheck").status_code == 404


def test_the_server_still_checks_the_json_without_the_script(
    browser: Browser, server: DockyardServer, owner: httpx.Client
) -> None:
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, OWNER, PASSWORD)
        page.goto("/console/ram/policies/new")
        page.fill("#f-name", "NoScript")
        page.fill("#f-document", BROKEN)
        page.get_by_role("button", name="Create", exact=True).click()
        expect(page.get_by_test_id("error-document")).to_contain_text("(line 4, column 24)")
        expect(page.locator("#f-document")).to_have_value(BROKEN)
        assert owner.get("/api/v1/ram/policies/NoScript").status_code == 404
    finally:
        context.close()
