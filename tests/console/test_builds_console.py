"""The console's Build tab in a real browser (headless Chromium through Playwright): bind a
git source from the loopback git server, add a rule, Build Now, watch the log grow while
the build runs (Server-Sent Events), see the tag; create a repository with a git source
in its second step; cancel a running build.

The browser fixtures and helpers are those of ``test_console``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.builds.support import BUSYBOX, build_env, sleeper
from tests.console import test_console
from tests.console.test_console import (
    ACCOUNT,
    ACCOUNT_PASSWORD,
    confirm,
    expect_flash,
    sign_in,
)
from tests.console.test_webhooks_console import make_repository
from tests.fixtures.gitserver import GitServer, MakeRepo
from tests.fixtures.server import DockyardServer, running_server

pytestmark = pytest.mark.clients
RULES = "/api/v1/repositories/web/app/build-rules"

playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page
acme = test_console.acme

SLOW = (
    "FROM scratch\n"
    "COPY --chmod=755 busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "sh", "-c", '
    '"for i in 1 2 3 4 5 6; do echo step-$i; /bin/busybox sleep 0.7; done"]\n'
    "LABEL made-by=console\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("console-builds")
    with running_server(base, build_env(base), remove=True, namespace=None) as found:
        with found.client() as admin:
            account = {"name": ACCOUNT, "password": ACCOUNT_PASSWORD, "namespace_quota": 10}
            r = admin.post("/api/v1/accounts", json=account)
            assert r.status_code == 201, r.text
        yield found


def _fill_source(page: Page, git_server: GitServer, url: str) -> None:
    page.fill("#f-url", url)
    page.fill("#f-username", git_server.username)
    page.fill("#f-token", git_server.token)


def test_bind_add_rule_build_now_and_watch_the_log(
    page: Page, acme: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("console", {"Dockerfile": SLOW, "busybox": BUSYBOX})
    make_repository(acme, "web")
    sign_in(page)
    page.goto("/console/repositories/web/app?tab=build")
    expect(page.locator("[data-testid=build-tab]")).to_have_class("active")

    # bind the source: the hook URL and its secret are shown once
    form = page.locator("[data-testid=source-form]")
    _fill_source(page, git_server, git.http_url)
    form.locator("button[type=submit]").click()
    secret = page.locator("[data-testid=hook-secret]").inner_text()
    assert len(secret) >= 32
    page.click("text=Done")
    expect(page.locator("[data-testid=source-url]")).to_have_text(git.http_url)
    assert git_server.token not in page.content()
    assert secret not in page.content()

    # add a rule
    page.click("[data-testid=add-rule]")
    rules = page.locator("[data-testid=rule-form]")
    rules.locator("[data-testid=rule-ref]").fill("main")
    rules.locator("[data-testid=rule-tags]").fill("latest, ${commit:7}")
    rules.locator("button[type=submit]").click()
    expect_flash(page, "Rule added")
    row = page.locator("[data-testid=build-rules] tr", has_text="${commit:7}")
    expect(row).to_be_visible()

    # Build Now: the build page follows the log as it grows, then shows the tags
    row.locator("[data-testid=build-now]").click()
    expect_flash(page, "queued")
    log = page.locator("[data-testid=build-log]")
    expect(log).to_contain_text("step-2", timeout=60_000)
    assert "step-6" not in log.inner_text()  # seen while it ran, not after
    expect(log).to_contain_text("step-6", timeout=60_000)
    status = page.locator("[data-testid=build-status]")
    expect(status).to_have_attribute("data-status", "success", timeout=60_000)
    head = git.head()
    expect(page.locator("[data-testid=build-tags]")).to_contain_text(head[:7])
    expect(page.locator("[data-testid=build-digest]")).to_contain_text("sha256:")

    # the history lists it, and the tag is in the repository
    page.goto("/console/repositories/web/app?tab=build")
    expect(page.locator("[data-testid=builds] [data-testid=build-status]").first).to_have_text(
        "success"
    )
    page.goto("/console/repositories/web/app?tab=tags")
    expect(page.locator(f"tr[data-tag='{head[:7]}']")).to_be_visible()
    expect(page.locator("tr[data-tag='latest']")).to_be_visible()

    # edit the rule (disable it), then delete it
    page.goto("/console/repositories/web/app?tab=build")
    row = page.locator("[data-testid=build-rules] tr", has_text="${commit:7}")
    row.locator("summary", has_text="Edit").click()
    row.locator("input[name=enabled]").uncheck()
    row.locator("button", has_text="Save rule").click()
    expect_flash(page, "Rule saved")
    [stored] = [r for r in acme.get(RULES).json()["items"] if not r["builtin"]]
    assert stored["enabled"] is False
    assert stored["image_tags"] == ["latest", "${commit:7}"]
    row = page.locator("[data-testid=build-rules] tr", has_text="${commit:7}")
    row.locator("button", has_text="Delete").click()
    confirm(page)
    expect_flash(page, "Rule deleted")
    assert [r["builtin"] for r in acme.get(RULES).json()["items"]] == [True]


def test_create_a_repository_with_a_git_source_and_cancel_a_build(
    page: Page, acme: httpx.Client, git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    git = git_repo_factory("created", sleeper(120))
    assert acme.post("/api/v1/namespaces", json={"name": "made"}).status_code == 201
    sign_in(page)
    page.goto("/console/repositories/new?namespace=made")
    page.fill("#f-name", "built")
    page.click("button:has-text('Next')")
    page.check("[data-testid=source-git]")
    _fill_source(page, git_server, git.http_url)
    page.click("button:has-text('Create Repository')")
    expect(page.locator("[data-testid=hook-url]")).to_contain_text("/api/v1/hooks/git/")
    source = acme.get("/api/v1/repositories/made/built/source").json()
    assert source["url"] == git.http_url
    assert source["credentials"] == {"kind": "token"}
    rule = acme.post("/api/v1/repositories/made/built/build-rules", json={"ref": "main"}).json()

    page.goto("/console/repositories/made/built?tab=build")
    page.locator(f"tr[data-rule='{rule['id']}'] [data-testid=build-now]").click()
    expect(page.locator("[data-testid=build-log]")).to_contain_text("sleeping", timeout=60_000)
    started = time.monotonic()
    page.click("[data-testid=cancel-build]")
    expect_flash(page, "Cancel requested")
    expect(page.locator("[data-testid=build-status]")).to_have_attribute(
        "data-status", "canceled", timeout=15_000
    )
    assert time.monotonic() - started < 12
    expect(page.locator("[data-testid=cancel-build]")).to_have_count(0)
