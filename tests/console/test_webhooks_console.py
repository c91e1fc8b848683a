"""The console's webhook pages in a real browser (headless Chromium through Playwright),
against a real Dockyard server whose webhooks may reach loopback, with a real receiving
HTTP server on loopback that checks signatures with its own implementation.

The browser fixtures and helpers are those of ``test_console``; this module's server
differs only in letting webhooks reach loopback and retry fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from dockyard.console.views.webhooks import field_of, headers_to_send
from tests.console import test_console
from tests.console.test_console import (
    ACCOUNT,
    ACCOUNT_PASSWORD,
    SHOTS,
    confirm,
    expect_flash,
    sign_in,
)
from tests.fixtures.oci import push_image
from tests.fixtures.server import DockyardServer, running_server
from tests.webhooks.receiver import receiver, verify
from tests.webhooks.test_webhooks import FAST

pytestmark = pytest.mark.clients

# test_console's browser, page and API client fixtures, over this module's ``server``.
playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page
acme = test_console.acme
skopeo = test_console.skopeo

REGISTRY_PASSWORD = "hooks-registry-pw"
MASK = "********"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """As ``test_console``'s, with webhooks allowed to loopback and fast retries."""
    base = tmp_path_factory.mktemp("console-webhooks")
    with running_server(base, FAST, remove=True, namespace=None) as found:
        with found.client() as admin:
            account = {"name": ACCOUNT, "password": ACCOUNT_PASSWORD, "namespace_quota": 10}
            r = admin.post("/api/v1/accounts", json=account)
            assert r.status_code == 201, r.text
        with found.client(auth=(ACCOUNT, ACCOUNT_PASSWORD)) as owner:
            r = owner.put("/api/v1/me/registry-password", json={"password": REGISTRY_PASSWORD})
            assert r.is_success, r.text
        yield found


def make_repository(acme: httpx.Client, namespace: str, name: str = "app") -> None:
    assert acme.post("/api/v1/namespaces", json={"name": namespace}).status_code == 201
    r = acme.post("/api/v1/repositories", json={"namespace": namespace, "name": name})
    assert r.status_code == 201, r.text


def reload_until(page: Page, locator: Locator, text: str, timeout: float = 30) -> None:
    """Reload until ``locator`` contains ``text`` (deliveries are sent in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        if text in (locator.first.inner_text() if locator.count() else ""):
            return
        assert time.monotonic() < deadline, f"{text!r} never appeared"
        time.sleep(0.3)
        page.reload()


def fits_a_phone(page: Page, path: str) -> None:
    """``path`` at 390 px wide: nothing sticks out sideways (the page does not scroll
    horizontally)."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path)
    widest = page.evaluate("document.documentElement.scrollWidth")
    assert widest <= 390, f"{path} is {widest} px wide at 390 px"
    where = urlsplit(path)
    name = f"{where.path}-{where.query}".strip("/-").replace("/", "-").replace("=", "-")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)


def fill_header(page: Page, index: int, name: str, value: str) -> None:
    page.fill(f"input[name=header_name_{index}]", name)
    page.fill(f"input[name=header_value_{index}]", value)


# -- a repository's webhook, end to end ---------------------------------------------------


def test_repository_webhook_secret_deliveries_test_and_redeliver(
    page: Page,
    context: BrowserContext,
    acme: httpx.Client,
    server: DockyardServer,
    skopeo: test_console.Skopeo,
) -> None:
    make_repository(acme, "hooks")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_in(page)
    page.goto("/console/repositories/hooks/app?tab=webhooks")
    expect(page.locator(".tabs a.active")).to_have_text("Webhooks")
    expect(page.locator("#webhooks [data-testid=empty]")).to_contain_text("No webhooks yet")
    page.get_by_role("link", name="Create Webhook").first.click()
    expect(page.locator("h1")).to_have_text("Create Webhook")

    with receiver() as rx:
        page.fill("#f-name", "deploy")
        page.fill("#f-url", rx.url)
        expect(page.locator("input[name=event_push]")).to_be_checked()
        fill_header(page, 0, "X-Token", "t0p-secret")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Create Webhook").click()
        assert answer.value.status == 201
        assert answer.value.headers["cache-control"] == "no-store"

        # The secret, once, with a copy button; the address bar shows the webhook's page.
        panel = page.locator("[data-testid=new-secret]")
        expect(panel).to_contain_text("will not be shown again")
        secret = page.locator("[data-testid=webhook-secret]").inner_text()
        assert secret.startswith("whsec_")
        [hook] = acme.get("/api/v1/repositories/hooks/app/webhooks").json()["items"]
        hook_url = f"/console/repositories/hooks/app/webhooks/{hook['id']}"
        assert urlsplit(page.url).path == hook_url
        assert secret not in page.url
        assert all(secret not in c["value"] for c in context.cookies())
        panel.get_by_role("button", name="Copy").click()
        expect(panel.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        assert hook["headers"] == {"X-Token": MASK}
        # Reloading shows the webhook's page: the secret is gone for good.
        page.reload()
        expect(page.locator("[data-testid=webhook-title]")).to_contain_text("deploy")
        expect(page.locator("[data-testid=new-secret]")).to_have_count(0)
        assert secret not in page.content()

        # A push with skopeo is delivered, signed with that secret and with the extra
        # header.
        _, digest = skopeo.push(
            skopeo.layout("v1"),
            f"docker://{server.host}/hooks/app:v1",
            f"{ACCOUNT}:{REGISTRY_PASSWORD}",
        )
        [got] = rx.wait_for(1)
        assert verify(secret, got.headers, got.body)
        assert got.headers["x-token"] == "t0p-secret"
        assert got.json()["push_data"] == {
            "digest": digest,
            "pushed_at": got.json()["push_data"]["pushed_at"],
            "tag": "v1",
        }

        # The tab lists it with its last delivery.
        page.goto("/console/repositories/hooks/app?tab=webhooks")
        row = page.locator("tr[data-webhook=deploy]")
        expect(row).to_contain_text(rx.url)
        expect(row).to_contain_text("All tags")
        expect(row).to_contain_text("push")
        expect(row).to_contain_text("Enabled")
        reload_until(page, row.locator("[data-testid=last-delivery]"), "Succeeded")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "webhooks-tab.png"), full_page=True)

        # Its history: the delivery succeeded; its detail shows request and response.
        row.get_by_role("link", name="deploy").click()
        deliveries = page.locator("[data-testid=deliveries] tbody tr")
        expect(deliveries).to_have_count(1)
        expect(deliveries.first).to_contain_text("Succeeded")
        deliveries.first.get_by_role("link", name="Details").click()
        expect(page.locator("[data-testid=delivery-title]")).to_contain_text("Succeeded")
        expect(page.locator("[data-testid=attempts] tbody tr")).to_have_count(1)
        expect(page.locator("[data-testid=attempts] tbody tr")).to_contain_text("200")
        expect(page.locator("[data-testid=request-url]")).to_have_text(rx.url)
        body = page.locator("[data-testid=request-body]")
        expect(body).to_contain_text(digest)
        assert json.loads(body.inner_text()) == got.json()
        assert '\n  "push_data"' in body.inner_text()  # pretty-printed
        headers = page.locator("[data-testid=request-headers]")
        expect(headers.locator("tr", has_text="webhook-id")).to_contain_text(
            got.headers["webhook-id"]
        )
        expect(headers.locator("tr", has_text="X-Token")).to_contain_text(MASK)
        expect(headers.locator("tr", has_text="webhook-signature")).to_contain_text(MASK)
        expect(page.locator("[data-testid=response-status]")).to_have_text("200")
        expect(page.locator("[data-testid=response-body]")).to_contain_text('"n": 1')
        page.screenshot(path=str(SHOTS / "webhook-delivery.png"), full_page=True)
        first_delivery = page.url

        # On a phone (390 px) every webhook page fits its width: long URLs, headers and
        # bodies wrap or scroll inside their own boxes.
        for path in (
            first_delivery,
            hook_url,
            "/console/repositories/hooks/app?tab=webhooks",
            f"{hook_url}/edit",
            "/console/repositories/hooks/app/webhooks/new",
        ):
            fits_a_phone(page, path)
        page.set_viewport_size({"width": 1360, "height": 900})
        page.goto(first_delivery)

        # Test: a sample push, sent now, shown as a new delivery.
        page.get_by_test_id("test-webhook").click()
        expect_flash(page, "Test delivery sent: succeeded (HTTP 200).")
        assert page.url != first_delivery
        expect(page.locator("[data-testid=delivery-title]")).to_contain_text("Succeeded")
        expect(page.locator("h1 + p")).to_contain_text("test delivery")
        tested = rx.wait_for(2)[1]
        assert verify(secret, tested.headers, tested.body)

        # Redeliver the first: the same message again, followed until it is sent.
        page.goto(first_delivery)
        page.get_by_test_id("redeliver").click()
        expect_flash(page, "Redelivery queued")
        again = rx.wait_for(3)[2]
        assert again.headers["webhook-id"] == got.headers["webhook-id"]
        assert again.body == got.body
        expect(page.locator("[data-testid=attempts] tbody tr")).to_have_count(2)
        expect(page.locator("[data-testid=delivery-title]")).to_contain_text("Succeeded")

        # The history, filtered by status.
        page.goto(hook_url)
        expect(page.locator("[data-testid=deliveries] tbody tr")).to_have_count(2)
        page.select_option("#f-status", "failed")
        expect(page.locator("[data-testid=empty]")).to_contain_text("No failed deliveries")
        assert "status=failed" in page.url
        page.select_option("#f-status", "succeeded")
        expect(page.locator("[data-testid=deliveries] tbody tr")).to_have_count(2)

        # Editing: untouched header rows keep the stored (unshown) value.
        page.get_by_role("link", name="Edit").click()
        expect(page.locator("input[name=header_name_0]")).to_have_value("X-Token")
        expect(page.locator("input[name=header_value_0]")).to_have_value("")
        expect(page.locator("form[data-testid=webhook-form]")).to_contain_text(
            "leave these rows as they are to keep them"
        )
        page.get_by_role("button", name="Add header").click()
        fill_header(page, 2, "X-Extra", "more")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("[data-testid=error-headers]")).to_contain_text(
            "Enter the value of X-Token again"
        )
        extra = page.locator("[data-row]").filter(has=page.locator("input[value=X-Extra]"))
        extra.get_by_role("button", name="Remove").click()
        expect(page.locator("input[value=X-Extra]")).to_have_count(0)
        page.fill("#f-name", "deploy-prod")
        page.get_by_role("button", name="Save").click()
        expect_flash(page, "Webhook deploy-prod saved.")
        changed = acme.get(f"/api/v1/repositories/hooks/app/webhooks/{hook['id']}").json()
        assert changed["name"] == "deploy-prod"
        assert changed["headers"] == {"X-Token": MASK}
        page.get_by_test_id("test-webhook").click()
        expect_flash(page, "succeeded")
        assert rx.wait_for(4)[3].headers["x-token"] == "t0p-secret"


def test_regex_trigger_live_check_and_the_servers_refusal(
    page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    make_repository(acme, "hooks-re")
    sign_in(page)
    page.goto("/console/repositories/hooks-re/app/webhooks/new")
    regex_panel = page.locator("[data-trigger-panel=tag_regex]")
    tags_panel = page.locator("[data-trigger-panel=tag_list]")
    expect(regex_panel).to_be_hidden()
    page.select_option("#f-trigger_type", "tag_regex")
    expect(regex_panel).to_be_visible()
    expect(tags_panel).to_be_hidden()
    expect(regex_panel).to_contain_text("the server checks the pattern with RE2")

    # As the user types: which example tags fully match (RE2's named groups translated).
    page.fill("#f-examples", "v1.2, v10.0, latest, v1.2.3")
    page.fill("#f-regex", r"v(?P<major>\d+)\.\d+")
    preview = page.locator("[data-testid=regex-preview]")
    expect(preview.locator("[data-match=yes]")).to_have_text(["v1.2", "v10.0"])
    expect(preview.locator("[data-match=no]")).to_have_text(["latest", "v1.2.3"])
    expect(preview).to_contain_text("2 of 4 match")
    page.locator("#f-regex").press_sequentially(r"(\.\d+)?")
    expect(preview.locator("[data-match=yes]")).to_have_text(["v1.2", "v10.0", "v1.2.3"])
    page.fill("#f-regex", "v(")
    expect(preview).to_contain_text("Your browser cannot read this pattern")

    # A pattern JavaScript accepts and RE2 does not: the server's refusal, in the form.
    page.fill("#f-name", "releases")
    page.fill("#f-url", "http://127.0.0.1:9/hook")
    page.fill("#f-regex", "(?!dev).*")
    expect(preview.locator("[data-match=yes]")).to_have_count(4)
    page.get_by_role("button", name="Create Webhook").click()
    error = page.locator("[data-testid=error-trigger]")
    expect(error).to_contain_text("trigger.regex")
    expect(error).to_contain_text("RE2")
    expect(page.locator("#f-name")).to_have_value("releases")
    expect(page.locator("#f-trigger_type")).to_have_value("tag_regex")
    expect(page.locator("#f-regex")).to_have_value("(?!dev).*")
    expect(regex_panel).to_be_visible()
    assert acme.get("/api/v1/repositories/hooks-re/app/webhooks").json()["items"] == []

    # Other refusals land next to their fields too; no event is no webhook.
    page.fill("#f-regex", r"v\d+(\.\d+)*")
    page.fill("#f-url", "ftp://127.0.0.1/hook")
    page.get_by_role("button", name="Create Webhook").click()
    expect(page.locator("[data-testid=error-url]")).to_contain_text("http:// or https://")
    page.fill("#f-url", "http://127.0.0.1:9/hook")
    page.uncheck("input[name=event_push]")
    page.get_by_role("button", name="Create Webhook").click()
    expect(page.locator("[data-testid=error-events]")).to_contain_text("at least one")
    page.check("input[name=event_push]")
    page.get_by_role("button", name="Create Webhook").click()
    expect(page.locator("[data-testid=webhook-secret]")).to_contain_text("whsec_")
    [hook] = acme.get("/api/v1/repositories/hooks-re/app/webhooks").json()["items"]
    assert hook["trigger"] == {"type": "tag_regex", "regex": r"v\d+(\.\d+)*"}
    page.goto("/console/repositories/hooks-re/app?tab=webhooks")
    row = page.locator("tr[data-webhook=releases]")
    expect(row).to_contain_text(r"Regex v\d+(\.\d+)*")

    # A push the pattern skips: an untriggered delivery, saying why, with nothing to resend.
    with server.client(auth=(ACCOUNT, REGISTRY_PASSWORD)) as registry:
        push_image(registry, "hooks-re/app", "latest")
    reload_until(page, row.locator("[data-testid=last-delivery]"), "Untriggered")
    row.get_by_role("link", name="releases").click()
    page.locator("[data-testid=deliveries]").get_by_role("link", name="Details").click()
    expect(page.locator("[data-testid=delivery-reason]")).to_contain_text(
        "does not match the regular expression"
    )
    expect(page.locator("[data-testid=attempts]")).to_have_count(0)
    expect(page.locator("[data-testid=request]")).to_contain_text("Nothing was sent.")
    expect(page.get_by_test_id("redeliver")).to_have_count(0)


# -- a namespace's webhook ----------------------------------------------------------------


def test_namespace_webhook_create_rotate_and_delete(page: Page, acme: httpx.Client) -> None:
    assert acme.post("/api/v1/namespaces", json={"name": "hooks-ns"}).status_code == 201
    sign_in(page)
    page.goto("/console/namespaces/hooks-ns")
    section = page.locator("#webhooks")
    expect(section).to_contain_text("any repository of namespace hooks-ns")
    section.get_by_role("link", name="Create Webhook").first.click()
    expect(page.locator(".crumbs")).to_contain_text("Namespaces")
    page.fill("#f-name", "chat")
    page.fill("#f-url", "http://127.0.0.1:9/hook")
    page.select_option("#f-trigger_type", "tag_list")
    page.fill("#f-tags", "latest, stable")
    page.check("input[name=event_tag_delete]")
    page.select_option("#f-format", "cloudevents")
    page.get_by_role("button", name="Create Webhook").click()
    first = page.locator("[data-testid=webhook-secret]").inner_text()
    assert first.startswith("whsec_")
    [hook] = acme.get("/api/v1/namespaces/hooks-ns/webhooks").json()["items"]
    assert hook["trigger"] == {"type": "tag_list", "tags": ["latest", "stable"]}
    assert hook["events"] == ["push", "tag_delete"]
    assert hook["format"] == "cloudevents"
    page.get_by_role("link", name="Done").click()
    expect(page.locator("[data-testid=webhook-title]")).to_contain_text("chat")
    expect(page.locator("[data-testid=webhook-props]")).to_contain_text("Tags latest stable")

    # Rotate the secret, after confirming: the new one is shown once.
    page.get_by_role("button", name="Rotate secret").click()
    confirm(page)
    expect(page.locator("[data-testid=new-secret]")).to_contain_text("Signing secret rotated")
    second = page.locator("[data-testid=webhook-secret]").inner_text()
    assert second.startswith("whsec_")
    assert second != first

    page.goto("/console/namespaces/hooks-ns")
    row = page.locator("tr[data-webhook=chat]")
    expect(row).to_contain_text("Tags latest stable")
    expect(row).to_contain_text("cloudevents")
    expect(row.locator("[data-testid=last-delivery]")).to_have_text("Never")
    # Delete it, after confirming.
    row.get_by_role("button", name="Delete").click()
    confirm(page)
    expect_flash(page, "Webhook deleted")
    expect(page.locator("h1")).to_have_text("hooks-ns")
    expect(page.locator("#webhooks [data-testid=empty]")).to_be_visible()
    assert acme.get("/api/v1/namespaces/hooks-ns/webhooks").json()["items"] == []


def test_the_apis_refusals_are_shown(page: Page, acme: httpx.Client) -> None:
    """A read-only RAM user sees the webhooks; what it may not do, the API says why."""
    make_repository(acme, "hooks-ro")
    r = acme.post(
        "/api/v1/repositories/hooks-ro/app/webhooks",
        json={"name": "ci", "url": "http://127.0.0.1:9/"},
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    r = acme.post("/api/v1/ram/users", json={"name": "viewer", "password": "viewer-pw-1"})
    assert r.status_code == 201, r.text
    r = acme.put(
        f"/api/v1/repositories/hooks-ro/app/permissions/user:viewer@{ACCOUNT}",
        json={"role": "read-only"},
    )
    assert r.is_success, r.text
    hook_id = hook["id"]
    sign_in(page, f"viewer@{ACCOUNT}", "viewer-pw-1")
    page.goto("/console/repositories/hooks-ro/app?tab=webhooks")
    # Listed, with no button the viewer may not use; a test sent anyway is refused.
    row = page.locator("tr[data-webhook=ci]")
    expect(row).to_be_visible()
    for label in ("Test", "Edit", "Delete"):
        expect(row.get_by_role("button", name=label)).to_have_count(0)
        expect(row.get_by_role("link", name=label)).to_have_count(0)
    expect(page.locator("#webhooks").get_by_role("link", name="Create Webhook")).to_have_count(0)
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token is not None
    url = f"/console/repositories/hooks-ro/app/webhooks/{hook_id}/test"
    page.request.post(url, form={"csrf": token}, max_redirects=0)
    page.goto("/console/repositories/hooks-ro/app?tab=webhooks")
    expect(page.locator("[data-testid=flash]")).to_contain_text("cr:UpdateRepoWebhook")
    page.goto("/console/repositories/hooks-ro/app/webhooks/new")
    page.fill("#f-name", "mine")
    page.fill("#f-url", "http://127.0.0.1:9/")
    page.get_by_role("button", name="Create Webhook").click()
    expect(page.locator("[data-testid=form-error]")).to_contain_text("cr:CreateRepoWebhook")
    # Where it may see the namespace but not list its webhooks, the section is left out
    # (the API says it may not: allowed_actions has no cr:ListNamespaceWebhook).
    assert acme.post("/api/v1/namespaces", json={"name": "hooks-closed"}).status_code == 201
    document = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "cr:GetNamespace",
                "Resource": "acs:cr:*:*:repository/hooks-closed",
            }
        ],
    }
    r = acme.post("/api/v1/ram/policies", json={"name": "SeeHooksClosed", "document": document})
    assert r.status_code == 201, r.text
    assert acme.put("/api/v1/ram/users/viewer/policies/SeeHooksClosed").is_success
    page.goto("/console/namespaces/hooks-closed")
    expect(page.locator("h1")).to_have_text("hooks-closed")
    expect(page.locator("#webhooks")).to_have_count(0)
    r = acme.get("/api/v1/namespaces/hooks-closed")
    assert r.status_code == 200
    with httpx.Client(base_url=str(acme.base_url), auth=(f"viewer@{ACCOUNT}", "viewer-pw-1")) as v:
        allowed = v.get("/api/v1/namespaces/hooks-closed").json()["allowed_actions"]
        assert allowed == ["cr:GetNamespace"]
        assert v.get("/api/v1/namespaces/hooks-closed/webhooks").status_code == 403


# -- the form's own logic -----------------------------------------------------------------


def test_api_refusals_are_placed_next_to_the_field_they_name() -> None:
    assert field_of("trigger.regex: 'a(' is not a pattern RE2 accepts") == "trigger"
    assert field_of("events[1]: 'pull' is not one of push, …") == "events"
    assert field_of("headers.X-A: a single-line string") == "headers"
    assert field_of('format: "acr" or "cloudevents", not \'xml\'') == "format"
    assert field_of("the URL must start with http:// or https://, not 'ftp'") == "url"
    assert field_of("10.0.0.1 is private; webhooks may not reach it unless …") == "url"
    assert field_of("name and url are required") == "form"
    assert field_of("not allowed: cr:CreateRepoWebhook on acs:cr:…") == "form"


def test_header_rows_left_as_shown_keep_the_stored_headers() -> None:
    row = dict[str, str]
    kept = ["X-Token", "X-Team"]
    shown = [row(name="X-Token", value=""), row(name="X-Team", value="")]
    assert headers_to_send(shown, kept) is None
    assert headers_to_send(list(reversed(shown)), kept) is None
    # Any change sends the whole set, which needs every value.
    with pytest.raises(ValueError, match="Enter the value of X-Team again"):
        headers_to_send([row(name="X-Token", value="new"), shown[1]], kept)
    assert headers_to_send([row(name="X-Token", value="new")], kept) == {"X-Token": "new"}
    assert headers_to_send([], kept) == {}
    # On create, rows are what they say; a value needs a name, a name comes once.
    assert headers_to_send([row(name="X-A", value="1")], None) == {"X-A": "1"}
    with pytest.raises(ValueError, match="needs a name"):
        headers_to_send([row(name="", value="1")], None)
    with pytest.raises(ValueError, match="once"):
        headers_to_send([row(name="X-A", value="1"), row(name="x-a", value="2")], None)
