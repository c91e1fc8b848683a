"""Accessibility: axe-core checks every console page, signed in as the administrator, in
a real browser against a real server holding one of everything (an image, an index, an
artifact with referrers, RAM users, groups, roles, policies, permissions, a webhook), and
finds no serious or critical violation. Keyboard use is checked too: a skip link first,
then the menu, and a focus that shows.

The pages are found by following the console's own links from the start page, so a page
added later is walked without this test changing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.builds.support import build_env
from tests.console import test_console
from tests.console.axe import assert_accessible, describe, violations
from tests.console.test_console import sign_in
from tests.fixtures.gitserver import GitServer
from tests.fixtures.oci import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_manifest,
    put_manifest,
)
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server
from tests.webhooks.test_webhooks import FAST

pytestmark = pytest.mark.clients

playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page

MOST_PAGES = 150
"""A bound on the walk (it finds about half as many)."""
SKIPPED = ("/console/static/", "/raw", "/download", "/sign-out")
"""Links that are no pages: files to save, and signing out."""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, git_server: GitServer
) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("console-a11y")
    env = {**FAST, **build_env(base), "DOCKYARD_ALLOW_SIGNUP": "true"}
    with running_server(base, env, remove=True, namespace=None) as found:
        with found.client() as admin:
            seed(admin)
            seed_build(admin, git_server)
        yield found


def _ok(r: httpx.Response) -> None:
    assert r.is_success, r.text


def _image(admin: httpx.Client, name: str, tag: str, arch: str = "amd64") -> dict[str, object]:
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["A=1"], "Cmd": ["/bin/sh"], "Labels": {"team": "a11y"}},
            "history": [{"created_by": "ADD a /"}, {"created_by": "ENV A=1", "empty_layer": True}],
        }
    ).encode()
    layers = [(OCI_LAYER, os.urandom(2000))]
    _, manifest = push_manifest(admin, name, tag, (OCI_CONFIG, config), layers)
    return descriptor(OCI_MANIFEST, json.dumps(manifest).encode())


def seed(admin: httpx.Client) -> None:
    """One of everything a console page shows."""
    _ok(admin.post("/api/v1/namespaces", json={"name": "a11y"}))
    _ok(admin.post("/api/v1/repositories", json={"namespace": "a11y", "name": "app"}))
    subject = _image(admin, "a11y/app", "1.0")
    platforms = []
    for arch in ("amd64", "arm64"):
        platforms.append(
            {
                **_image(admin, "a11y/app", f"part-{arch}", arch),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": platforms}
    _ok(put_manifest(admin, "a11y/app", "multi", index, OCI_INDEX))
    sig_type = "application/vnd.dev.cosign.artifact.sig.v1+json"
    push_manifest(
        admin,
        "a11y/app",
        "sig",
        (OCI_EMPTY, b"{}"),
        [(sig_type, os.urandom(64))],
        artifactType=sig_type,
        subject=subject,
        annotations={"signer": "a11y"},
    )
    _ok(admin.post("/api/v1/accounts", json={"name": "tenant", "password": "tenant-password"}))
    _ok(admin.post("/api/v1/ram/users", json={"name": "dev"}))
    _ok(admin.post("/api/v1/ram/groups", json={"name": "devs"}))
    _ok(admin.put("/api/v1/ram/groups/devs/members/dev"))
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "cr:GetRepository", "Resource": "*"}],
    }
    _ok(admin.post("/api/v1/ram/policies", json={"name": "ReadA11y", "document": document}))
    _ok(admin.put("/api/v1/ram/users/dev/policies/ReadA11y"))
    _ok(admin.post("/api/v1/ram/users/dev/access-keys"))
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::*:root"]},
            }
        ],
    }
    _ok(admin.post("/api/v1/ram/roles", json={"name": "deployer", "trust_policy": trust}))
    _ok(admin.put("/api/v1/repositories/a11y/app/permissions/dev", json={"role": "read-only"}))
    _ok(admin.put("/api/v1/namespaces/a11y/permissions/group:devs", json={"role": "write"}))
    # After the pushes: no delivery is ever made (and none leaves loopback).
    hook = {"name": "deploy", "url": "http://127.0.0.1:9/hook"}
    _ok(admin.post("/api/v1/repositories/a11y/app/webhooks", json=hook))
    _ok(admin.post("/api/v1/namespaces/a11y/webhooks", json=hook))


def seed_build(admin: httpx.Client, git_server: GitServer) -> None:
    """A git source with a rule and a build that stays pending (its pool has no worker),
    and a scan result: the Build tab, a build's page, a scan report."""
    code = git_server.make_repo("a11y-app", {"Dockerfile": "FROM scratch\n"})
    repo = "/api/v1/repositories/a11y/app"
    source = {
        "type": "git",
        "url": code.http_url,
        "credentials": {"username": git_server.username, "token": git_server.token},
        "auto_build": False,
        "build_pool": "idle",
    }
    _ok(admin.put(f"{repo}/source", json=source))
    rule = admin.post(f"{repo}/build-rules", json={"type": "branch", "ref": "main"})
    _ok(rule)
    _ok(admin.post(f"{repo}/build-rules/{rule.json()['id']}/build", json={}))


def _key(url: str) -> tuple[str, str, frozenset[str]]:
    """Pages alike for this walk: the same path and tab, the same query names (a sort
    order or a filter value changes the rows, not the page's make-up)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return parts.path, query.get("tab", ""), frozenset(query)


def _links(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
            continue
        if any(skip in parts.path for skip in SKIPPED):
            continue
        query = urlencode(parse_qsl(parts.query))
        found.append(parts.path + (f"?{query}" if query else ""))
    return found


def test_every_console_page_has_no_serious_accessibility_violation(page: Page) -> None:
    failures: list[str] = []

    def check(url: str) -> None:
        found = violations(page)
        if found:
            failures.append(f"{url}:\n{describe(found)}")

    # Signed out: the sign-in and sign-up pages.
    for path in ("/console/sign-in", "/console/sign-up"):
        page.goto(path)
        check(path)
    sign_in(page, "admin", ADMIN_PASSWORD)
    todo = [
        "/console/",
        "/console/namespaces?create=1",
        "/console/no-such-page",
        "/console/repositories/a11y/app/tags/no-such-tag",
    ]
    seen: set[tuple[str, str, frozenset[str]]] = set()
    walked: list[str] = []
    while todo and len(walked) < MOST_PAGES:
        url = todo.pop(0)
        key = _key(url)
        if key in seen:
            continue
        seen.add(key)
        page.goto(url)
        walked.append(url)
        check(url)
        todo += [link for link in _links(page) if _key(link) not in seen]
    # The walk reached the pages of every kind of thing seeded.
    for expected in (
        "/console/repositories/a11y/app/tags/1.0",
        "/console/repositories/a11y/app/tags/multi",
        "/console/ram/users/dev",
        "/console/ram/groups/devs",
        "/console/ram/roles/deployer",
        "/console/ram/policies/ReadA11y",
        "/console/accounts",
        "/console/audit",
        "/console/vulndb",
        "/console/namespaces/a11y/security",
    ):
        assert expected in walked, f"the walk never reached {expected}"
    assert any("/manifests/sha256" in url for url in walked)
    assert any("/webhooks/" in url for url in walked)
    assert any("/builds/" in url for url in walked)
    assert any("/scans/sha256" in url for url in walked)
    assert not failures, "\n\n".join(failures)
    print(f"\naxe-core: {len(walked)} console pages, no serious or critical violation")


def test_pages_in_their_states_have_no_serious_violation(page: Page) -> None:
    """What the walk does not see: a form's errors, the open user menu and confirmation
    dialog, the JSON editor's mistake, the phone-width drawer."""
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/console/ram/policies/new")
    page.fill("#f-name", "   ")  # the browser lets it through; the server says it is missing
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_test_id("error-name")).to_be_visible()
    page.fill("#f-document", '{"Version": "1",,}')
    expect(page.get_by_test_id("json-error")).to_be_visible()
    assert_accessible(page)
    page.goto("/console/repositories/a11y/app/tags/1.0")
    page.get_by_test_id("user-menu").click()
    assert_accessible(page)
    page.get_by_role("button", name="Delete tag").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert_accessible(page)
    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_test_id("nav-toggle").click()
    assert_accessible(page)


def test_the_keyboard_reaches_a_skip_link_first_and_focus_shows(page: Page) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/console/repositories/a11y/app")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    assert page.url.endswith("#content")
    # The next Tab goes into the page's own content, not back to the menu.
    page.keyboard.press("Tab")
    inside = page.evaluate("document.activeElement.closest('main') !== null")
    assert inside, "after the skip link, the focus should move into the main content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "a focused element must show its focus"
    # Landmarks: one banner, one navigation for the menu, one main.
    expect(page.get_by_role("banner")).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Console")).to_have_count(1)
