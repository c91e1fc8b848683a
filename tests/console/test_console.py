"""The web console in a real browser (headless Chromium through Playwright), against a
real Dockyard server, walking the seed's console flows end to end.

One server and one browser for the module; each test has its own browser context
(its own cookies). Images are pushed and pulled with skopeo, the way a user would.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.e2e.images import Layout, build_image, client_env, run, sample_files, tool
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server

pytestmark = pytest.mark.clients

ACCOUNT, ACCOUNT_PASSWORD = "acme", "acme-console-password"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(tempfile.gettempdir()) / "dockyard-console-shots"


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("console")
    with running_server(base, remove=True, namespace=None) as found:
        with found.client() as admin:
            r = admin.post("/api/v1/accounts", json={"name": ACCOUNT, "password": ACCOUNT_PASSWORD})
            assert r.status_code == 201, r.text
        yield found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    found = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    yield found
    found.close()


@pytest.fixture
def context(browser: Browser, server: DockyardServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def acme(server: DockyardServer) -> Iterator[httpx.Client]:
    """The API as acme's root user, for setting up and checking what the console did."""
    with server.client(auth=(ACCOUNT, ACCOUNT_PASSWORD)) as client:
        yield client


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path)


class Skopeo:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = client_env(tmp)
        self.policy = tmp / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))

    def run(self, *args: str, check: bool = True) -> tuple[int, str]:
        result = run(
            [tool("skopeo"), "--policy", str(self.policy), *args],
            env=self.env,
            timeout=90,
            check=check,
        )
        return result.returncode, result.stdout + result.stderr

    def layout(self, tag: str) -> str:
        """An OCI layout with one fresh image tagged ``tag``; its ``oci:`` reference."""
        layout = Layout.create(self.tmp / f"layout-{tag}")
        layout.add_image(build_image(sample_files(tag, layers=2)), tag)
        return f"oci:{layout.root}:{tag}"

    def push(self, source: str, dest: str, creds: str, *, check: bool = True) -> tuple[int, str]:
        digest_file = self.tmp / "pushed-digest"
        code, out = self.run(
            "copy",
            "--digestfile",
            str(digest_file),
            "--dest-creds",
            creds,
            "--dest-tls-verify=false",
            source,
            dest,
            check=check,
        )
        return code, (digest_file.read_text().strip() if code == 0 else out)

    def pull(self, source: str, creds: str, *, check: bool = True) -> tuple[int, str]:
        out_dir = self.tmp / "pulled"
        return self.run(
            "copy",
            "--src-creds",
            creds,
            "--src-tls-verify=false",
            source,
            f"oci:{out_dir}:x",
            check=check,
        )


# -- helpers -----------------------------------------------------------------------------


def sign_in(page: Page, username: str = ACCOUNT, password: str = ACCOUNT_PASSWORD) -> None:
    page.goto("/console/sign-in")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=user-menu]")).to_contain_text(username)


def confirm(page: Page) -> None:
    """Accept the console's confirmation dialog."""
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("[data-confirm-ok]").click()


def expect_flash(page: Page, text: str) -> None:
    """The page the last action led to says ``text`` in its flash message."""
    expect(page.locator("[data-testid=flash]")).to_contain_text(text)


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# -- signing in --------------------------------------------------------------------------


def test_anonymous_visit_goes_to_sign_in_and_back(page: Page) -> None:
    page.goto("/console/ram/users")
    assert "/console/sign-in" in page.url
    assert "next=%2Fconsole%2Fram%2Fusers" in page.url
    # A wrong password: an inline error, the login name kept, no session.
    page.fill("#f-username", ACCOUNT)
    page.fill("#f-password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=form-error]")).to_have_text(
        "Incorrect login name or password."
    )
    expect(page.locator("#f-username")).to_have_value(ACCOUNT)
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]
    # The right one: back where the visit started, with an HttpOnly session cookie.
    page.fill("#f-password", ACCOUNT_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Users")
    assert page.url.endswith("/console/ram/users")
    session = next(c for c in page.context.cookies() if c["name"] == "dockyard_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/console"


def test_root_redirects_to_console_and_unknown_session_goes_to_sign_in(
    page: Page, server: DockyardServer
) -> None:
    r = httpx.get(f"{server.url}/", follow_redirects=False)
    assert r.status_code in (307, 308)
    assert r.headers["location"] == "/console/"
    page.context.add_cookies(
        [
            {
                "name": "dockyard_session",
                "value": "forged.token.value",
                "domain": "127.0.0.1",
                "path": "/console",
            }
        ]
    )
    page.goto("/console/namespaces")
    assert "/console/sign-in" in page.url
    expect(page.locator("[data-testid=flash]")).to_contain_text("session has expired")
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]


def test_sign_out_ends_the_session(page: Page) -> None:
    sign_in(page)
    page.click("[data-testid=user-menu]")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("[data-testid=flash]")).to_contain_text("signed out")
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]
    page.goto("/console/")
    assert "/console/sign-in" in page.url


def test_forms_without_the_session_csrf_token_are_refused(
    page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    sign_in(page)
    page.goto("/console/namespaces")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token is not None
    assert len(token) == 64
    # The browser's cookies, a forged token: refused, nothing created.
    r = page.request.post(
        "/console/namespaces", form={"name": "csrf-forged", "csrf": "0" * 64}, max_redirects=0
    )
    assert r.status == 403
    r = page.request.post("/console/namespaces", form={"name": "csrf-none"}, max_redirects=0)
    assert r.status == 403
    # The right token from another site's page: refused by its Origin.
    r = page.request.post(
        "/console/namespaces",
        form={"name": "csrf-origin", "csrf": token},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert r.status == 403
    names = [n["name"] for n in acme.get("/api/v1/namespaces").json()["items"]]
    assert not [n for n in names if n.startswith("csrf-")]
    # The right token from the console itself works.
    r = page.request.post(
        "/console/namespaces", form={"name": "csrf-ok", "csrf": token}, max_redirects=0
    )
    assert r.status == 303
    assert acme.get("/api/v1/namespaces/csrf-ok").status_code == 200
    assert acme.delete("/api/v1/namespaces/csrf-ok").status_code == 204


def test_sign_out_without_the_session_csrf_token_is_refused(
    page: Page, server: DockyardServer
) -> None:
    """Another site must not sign a user out: the sign-out form checks its CSRF token and
    its origin like every other form, and a refused one leaves the session working."""
    sign_in(page)
    page.goto("/console/")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token is not None
    session = next(c for c in page.context.cookies() if c["name"] == "dockyard_session")
    refused = [
        ({"csrf": "0" * 64}, {}),
        ({}, {}),
        ({"csrf": token}, {"Origin": "http://evil.example"}),
    ]
    for form, headers in refused:
        r = page.request.post("/console/sign-out", form=form, headers=headers, max_redirects=0)
        assert r.status == 403, (form, headers, r.status)
    # The session is still whole: its cookie, the console and the API session behind it.
    assert [c for c in page.context.cookies() if c["name"] == "dockyard_session"] == [session]
    page.goto("/console/credentials")
    expect(page.locator("h1")).to_have_text("Access Credential")
    me = httpx.get(
        f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {session['value']}"}
    )
    assert me.status_code == 200
    # The control: the form as the console sends it signs out.
    r = page.request.post("/console/sign-out", form={"csrf": token}, max_redirects=0)
    assert r.status == 303
    me = httpx.get(
        f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {session['value']}"}
    )
    assert me.status_code == 401


# -- the seed's flows --------------------------------------------------------------------


def test_instance_namespace_repository_push_and_tags(
    page: Page, acme: httpx.Client, server: DockyardServer, skopeo: Skopeo
) -> None:
    sign_in(page)
    # The instance page: region, edition, the registry endpoint, usage against quotas.
    page.goto("/console/")
    expect(page.locator("[data-testid=stat-region]")).to_have_text("local")
    expect(page.locator("[data-testid=registry-host]")).to_have_text(server.host)
    before = acme.get("/api/v1/me").json()["namespace_count"]
    expect(page.locator("[data-testid=stat-namespaces]")).to_contain_text(f"{before} / 3")

    # Create a namespace: the form opens from the button; a bad name is refused inline.
    page.goto("/console/namespaces")
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text(
        f"{before} of 3 namespaces used"
    )
    page.get_by_role("button", name="Create Namespace").click()
    page.fill("#f-name", "Bad Name!")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("[data-testid=error-name]")).to_be_visible()
    expect(page.locator("#f-name")).to_have_value("Bad Name!")
    page.fill("#f-name", "acme-apps")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("h1")).to_have_text("acme-apps")
    expect_flash(page, "Namespace acme-apps created.")
    created = acme.get("/api/v1/namespaces/acme-apps").json()
    assert created["auto_create_repo"] is True
    assert created["default_repo_type"] == "private"

    # Settings: turn auto-create off, default type public.
    page.check("input[name=auto_create_repo][value=off]")
    page.check("input[name=default_repo_type][value=public]")
    page.get_by_role("button", name="Save").click()
    expect_flash(page, "settings saved")
    changed = acme.get("/api/v1/namespaces/acme-apps").json()
    assert changed["auto_create_repo"] is False
    assert changed["default_repo_type"] == "public"

    # Create a repository in two steps.
    page.goto("/console/repositories")
    page.get_by_role("link", name="Create Repository").first.click()
    page.select_option("#f-namespace", "acme-apps")
    page.fill("#f-name", "web")
    page.fill("#f-summary", "<script>alert('x')</script> the web front end")
    page.check("input[name=repo_type][value=private]")
    page.fill("#f-detail", "# Web\n\nRun it with `docker run`.\n\n- fast\n- small")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".steps li.current")).to_contain_text("Code Source")
    expect(page.locator("input[name=source][value=local]")).to_be_checked()
    page.get_by_role("button", name="Create Repository").click()
    expect(page.locator("[data-testid=repo-title]")).to_contain_text("acme-apps/web")
    # The summary is text, not markup.
    expect(page.locator(".page-head p.muted")).to_contain_text("<script>alert('x')</script>")
    repo = acme.get("/api/v1/repositories/acme-apps/web").json()
    assert repo["repo_type"] == "private"
    # The pull and push commands name this instance.
    commands = page.locator("[data-testid=commands]").inner_text()
    assert f"docker login --username={ACCOUNT} {server.host}" in commands
    assert f"docker pull {server.host}/acme-apps/web:[tag]" in commands
    assert f"docker push {server.host}/acme-apps/web:[tag]" in commands
    expect(page.locator("[data-testid=empty]")).to_contain_text("No tags yet")

    # Set acme's registry password under Access Credential, then push with skopeo.
    page.goto("/console/credentials")
    page.fill("#f-password", "acme-registry-pw")
    page.fill("#f-confirm", "acme-registry-pw")
    page.get_by_role("button", name="Set Password").click()
    expect_flash(page, "Registry password set")
    dest = f"docker://{server.host}/acme-apps/web"
    _, digest = skopeo.push(skopeo.layout("v1"), f"{dest}:v1", f"{ACCOUNT}:acme-registry-pw")
    _, digest2 = skopeo.push(skopeo.layout("v2"), f"{dest}:v2", f"{ACCOUNT}:acme-registry-pw")
    # With auto-create off, a push to a missing repository is refused.
    code, out = skopeo.push(
        skopeo.layout("v3"),
        f"docker://{server.host}/acme-apps/missing:v1",
        f"{ACCOUNT}:acme-registry-pw",
        check=False,
    )
    assert code != 0, out

    # The tags table: tag, short digest (copyable), human-readable size, push time.
    page.goto("/console/repositories/acme-apps/web")
    rows = page.locator("[data-testid=tags] tbody tr")
    expect(rows).to_have_count(2)
    row = page.locator("tr[data-tag=v1]")
    expect(row.locator("code.digest")).to_have_text(digest[:19])
    assert row.locator("button[data-copy]").first.get_attribute("data-copy") == digest
    api_tag = acme.get("/api/v1/repositories/acme-apps/web/tags/v1").json()
    assert api_tag["digest"] == digest
    expect(row.locator("[data-testid=tag-size]")).to_have_text(human(api_tag["size"]))
    expect(row.locator("td").nth(3)).to_contain_text(" UTC")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "repository.png"), full_page=True)

    # Delete a tag, after confirming.
    page.locator("tr[data-tag=v2]").get_by_role("button", name="Delete").click()
    confirm(page)
    expect_flash(page, "Tag v2 deleted.")
    expect(page.locator("tr[data-tag=v2]")).to_have_count(0)
    expect(page.locator("tr[data-tag=v1]")).to_have_count(1)
    assert acme.get("/api/v1/repositories/acme-apps/web/tags/v2").status_code == 404
    assert digest2 != digest

    # The information tab renders the Markdown detail safely, and edits it.
    page.goto("/console/repositories/acme-apps/web?tab=info")
    expect(page.locator("[data-testid=repo-detail] h1")).to_have_text("Web")
    expect(page.locator("[data-testid=repo-detail] li")).to_have_count(2)
    page.fill("#f-summary", "The web front end")
    # The Edit form's Save (the security scan's card has one of its own).
    page.locator("form", has=page.locator("#f-summary")).get_by_role("button", name="Save").click()
    expect_flash(page, "Repository information saved.")
    assert acme.get("/api/v1/repositories/acme-apps/web").json()["summary"] == ("The web front end")


def test_ram_user_with_read_only_can_pull_and_not_push(
    page: Page, acme: httpx.Client, server: DockyardServer, skopeo: Skopeo
) -> None:
    # A private repository with an image in it, made through the API.
    acme.post("/api/v1/namespaces", json={"name": "acme-ro"})
    r = acme.post("/api/v1/repositories", json={"namespace": "acme-ro", "name": "app"})
    assert r.status_code == 201, r.text
    assert acme.put("/api/v1/me/registry-password", json={"password": "acme-reg"}).is_success
    dest = f"docker://{server.host}/acme-ro/app"
    skopeo.push(skopeo.layout("ro"), f"{dest}:v1", f"{ACCOUNT}:acme-reg")

    sign_in(page)
    # Create the RAM user, without a console password.
    page.goto("/console/ram/users")
    page.get_by_role("button", name="Create User").click()
    page.fill("#f-name", "puller")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("h1")).to_have_text("puller")
    # Its registry password: mismatched confirmation refused inline, then set.
    page.fill("#f-password", "puller-pw-1")
    page.fill("#f-confirm", "different")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator(".field-error")).to_contain_text("differ")
    page.fill("#f-password", "puller-pw-1")
    page.fill("#f-confirm", "puller-pw-1")
    page.get_by_role("button", name="Set password").click()
    expect_flash(page, "Registry password set.")

    creds = f"puller@{ACCOUNT}:puller-pw-1"
    code, _ = skopeo.pull(f"{dest}:v1", creds, check=False)
    assert code != 0, "a RAM user with no permission pulled a private image"

    # Grant read-only on the repository in its Permissions tab.
    page.goto("/console/repositories/acme-ro/app?tab=permissions")
    expect(page.locator("[data-testid=no-permissions]")).to_be_visible()
    page.select_option("#f-kind", "user")
    page.fill("#f-principal", "nobody-here")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("[data-testid=error-grant]")).to_contain_text("nobody-here")
    page.fill("#f-principal", "puller")
    page.select_option("#f-role", "read-only")
    page.get_by_role("button", name="Grant").click()
    expect_flash(page, "Granted read-only")
    expect(page.locator("[data-testid=permissions]")).to_contain_text(f"puller@{ACCOUNT}")

    skopeo.pull(f"{dest}:v1", creds)
    code, out = skopeo.push(skopeo.layout("evil"), f"{dest}:evil", creds, check=False)
    assert code != 0, "a read-only RAM user pushed"
    assert "denied" in out.lower() or "unauthorized" in out.lower(), out
    assert acme.get("/api/v1/repositories/acme-ro/app/tags/evil").status_code == 404

    # Revoke it: the pull stops working.
    page.locator("[data-testid=permissions]").get_by_role("button", name="Revoke").click()
    confirm(page)
    expect_flash(page, "Revoked")
    code, _ = skopeo.pull(f"{dest}:v1", creds, check=False)
    assert code != 0


def test_access_key_secret_is_shown_once(
    page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    assert acme.post("/api/v1/ram/users", json={"name": "keyholder"}).status_code == 201
    sign_in(page)
    page.goto("/console/ram/users/keyholder")
    expect(page.locator("[data-testid=no-access-keys]")).to_be_visible()
    page.get_by_role("button", name="Create AccessKey").click()
    panel = page.locator("[data-testid=new-secret]")
    expect(panel).to_contain_text("only time")
    key_id = page.locator("[data-testid=new-key-id]").inner_text()
    secret = page.locator("[data-testid=new-key-secret]").inner_text()
    assert len(secret) >= 20
    # The pair works on the API.
    r = httpx.get(f"{server.url}/api/v1/me", auth=(key_id, secret))
    assert r.status_code == 200, r.text
    assert r.json()["login"] == f"keyholder@{ACCOUNT}"
    # The panel can be dismissed; the secret is never shown again.
    panel.locator("[data-dismiss]").click()
    expect(panel).to_have_count(0)
    page.goto("/console/ram/users/keyholder")
    expect(page.locator("[data-testid=access-keys]")).to_contain_text(key_id)
    assert secret not in page.content()
    # Delete it, after confirming.
    page.locator("[data-testid=access-keys]").get_by_role("button", name="Delete").click()
    confirm(page)
    expect_flash(page, f"Access key {key_id} deleted.")
    assert httpx.get(f"{server.url}/api/v1/me", auth=(key_id, secret)).status_code == 401


def test_policy_editor_checks_json_and_shows_the_servers_error(
    page: Page, acme: httpx.Client
) -> None:
    sign_in(page)
    page.goto("/console/ram/policies/new")
    page.fill("#f-name", "PullWeb")
    editor = page.locator("#f-document")
    # Broken JSON: refused in the browser, before anything is sent.
    editor.fill('{"Version": "1", "Statement": [')
    expect(page.locator("[data-testid=json-error]")).to_contain_text("Invalid JSON")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("[data-testid=json-error]")).to_be_visible()
    assert page.url.endswith("/console/ram/policies/new")
    assert acme.get("/api/v1/ram/policies/PullWeb").status_code == 404
    # Valid JSON with a bad field: the server's message, naming it, next to the editor.
    bad = {"Version": "1", "Statement": [{"Effect": "Maybe", "Action": "cr:Get*", "Resource": "*"}]}
    editor.fill(json.dumps(bad))
    expect(page.locator("[data-testid=json-error]")).to_be_hidden()
    page.get_by_role("button", name="Create", exact=True).click()
    error = page.locator("[data-testid=error-document]")
    expect(error).to_contain_text("Effect")
    expect(page.locator("#f-name")).to_have_value("PullWeb")
    assert "Maybe" in editor.input_value()
    # A good document is saved and listed as a custom policy.
    good = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "cr:PullRepository",
                "Resource": "acs:cr:*:*:repository/acme-apps/*",
            }
        ],
    }
    editor.fill(json.dumps(good))
    page.get_by_role("button", name="Create", exact=True).click()
    expect_flash(page, "Policy PullWeb created.")
    assert acme.get("/api/v1/ram/policies/PullWeb").json()["document"] == good
    page.goto("/console/ram/policies?type=custom")
    expect(page.locator("[data-testid=policies]")).to_contain_text("PullWeb")
    expect(page.locator("[data-testid=policies]")).not_to_contain_text(
        "AliyunContainerRegistryFullAccess"
    )
    # System policies are read-only in the editor.
    page.goto("/console/ram/policies/AliyunContainerRegistryReadOnlyAccess")
    expect(page.locator("#f-document")).to_have_attribute("readonly", "")
    # Delete the custom one.
    page.goto("/console/ram/policies/PullWeb")
    page.get_by_role("button", name="Delete policy").click()
    confirm(page)
    expect_flash(page, "Policy PullWeb deleted.")
    assert acme.get("/api/v1/ram/policies/PullWeb").status_code == 404


def test_temporary_login_and_audit_log(page: Page, server: DockyardServer) -> None:
    sign_in(page)
    page.goto("/console/credentials")
    page.get_by_role("button", name="Get Temporary Password").click()
    expect(page.locator("[data-testid=temp-username]")).to_have_text("cr_temp_user")
    password = page.locator("[data-testid=temp-password]").inner_text()
    r = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": "repository:acme-apps/web:pull"},
        auth=("cr_temp_user", password),
    )
    assert r.status_code == 200, r.text
    # My own access keys: the secret once, then only the id.
    page.get_by_role("button", name="Create AccessKey").click()
    key_id = page.locator("[data-testid=new-key-id]").inner_text()
    secret = page.locator("[data-testid=new-key-secret]").inner_text()
    assert httpx.get(f"{server.url}/api/v1/me", auth=(key_id, secret)).json()["login"] == ACCOUNT
    page.goto("/console/credentials")
    expect(page.locator("[data-testid=access-keys]")).to_contain_text(key_id)
    assert secret not in page.content()
    assert password not in page.content()

    page.goto("/console/audit")
    expect(page.locator("[data-testid=audit]")).to_be_visible()
    # The console's own calls are audited with the browser's address.
    table = page.locator("[data-testid=audit]").inner_text()
    assert ACCOUNT in table
    assert "127.0.0.1" in table


def test_administrator_manages_accounts_and_quotas(page: Page, server: DockyardServer) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/console/accounts")
    page.get_by_role("button", name="Create Account").click()
    page.fill("#f-name", "globex")
    page.fill("#f-password", "globex-password")
    page.fill("#f-confirm", "globex-password")
    page.get_by_role("button", name="Create", exact=True).click()
    expect_flash(page, "Account globex created.")
    row = page.locator("[data-testid=accounts] tr", has_text="globex")
    row.locator("input[name=namespace_quota]").fill("5")
    row.locator("input[name=repository_quota]").fill("12")
    row.get_by_role("button", name="Save").click()
    expect_flash(page, "Quota of globex saved.")
    with server.client() as admin:
        account = admin.get("/api/v1/accounts/globex").json()
    assert (account["namespace_quota"], account["repository_quota"]) == (5, 12)
    expect(row.get_by_test_id("namespace-use")).to_have_text("0 of 5")
    # What the account uses, against its quotas.
    with server.client(auth=("globex", "globex-password")) as globex:
        assert globex.post("/api/v1/namespaces", json={"name": "globex-a"}).status_code == 201
        body = {"namespace": "globex-a", "name": "app"}
        assert globex.post("/api/v1/repositories", json=body).status_code == 201
    page.reload()
    expect(row.get_by_test_id("namespace-use")).to_have_text("1 of 5")
    expect(row.get_by_test_id("repository-use")).to_have_text("1 of 12")
    with server.client() as admin:
        listed = admin.get("/api/v1/accounts").json()["items"]
    [mine] = [a for a in listed if a["name"] == "globex"]
    assert (mine["namespace_count"], mine["repository_count"]) == (1, 1)


def test_account_root_sees_no_administration(page: Page) -> None:
    sign_in(page)
    expect(page.locator(".sidenav")).not_to_contain_text("Accounts")
    response = page.goto("/console/accounts")
    assert response is not None
    assert response.status == 403
    expect(page.locator("[data-testid=error-message]")).to_be_visible()


def test_group_and_role_pages(page: Page, acme: httpx.Client) -> None:
    assert acme.post("/api/v1/ram/users", json={"name": "member1"}).status_code == 201
    sign_in(page)
    page.goto("/console/ram/groups")
    page.get_by_role("button", name="Create Group").click()
    page.fill("#f-name", "devs")
    page.get_by_role("button", name="Create", exact=True).click()
    expect_flash(page, "Group devs created.")
    page.select_option("#f-user", "member1")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("[data-testid=members]")).to_contain_text(f"member1@{ACCOUNT}")
    page.select_option("#f-policy", "AliyunContainerRegistryReadOnlyAccess")
    page.get_by_role("button", name="Attach").click()
    expect(page.locator("[data-testid=attached-policies]")).to_contain_text(
        "AliyunContainerRegistryReadOnlyAccess"
    )
    assert acme.get("/api/v1/ram/groups/devs").json()["members"] == [f"member1@{ACCOUNT}"]

    page.goto("/console/ram/roles/new")
    page.fill("#f-name", "ci-deployer")
    page.locator("#f-trust").fill('{"Version": "1", "Statement": [{"Effect": "Allow"}')
    expect(page.locator("[data-testid=json-error]")).to_be_visible()
    page.locator("#f-trust").fill(
        json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]})
    )
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("[data-testid=form-error]")).to_contain_text("Principal")
    page.locator("#f-trust").fill(
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {
                            "RAM": [f"acs:ram::{acme.get('/api/v1/me').json()['account_id']}:root"]
                        },
                    }
                ],
            }
        )
    )
    page.get_by_role("button", name="Create", exact=True).click()
    expect_flash(page, "Role ci-deployer created.")
    expect(page.locator("h1")).to_have_text("ci-deployer")
    assert re.search(r"acs:ram::\d+:role/ci-deployer", page.locator(".page-head").inner_text())


def test_namespace_delete_asks_first(page: Page, acme: httpx.Client) -> None:
    assert acme.post("/api/v1/namespaces", json={"name": "acme-tmp"}).status_code == 201
    sign_in(page)
    page.goto("/console/namespaces")
    row = page.locator("[data-testid=namespaces] tr", has_text="acme-tmp")
    # Cancel keeps it.
    row.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Delete namespace acme-tmp?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert acme.get("/api/v1/namespaces/acme-tmp").status_code == 200
    # Confirming deletes it.
    row.get_by_role("button", name="Delete").click()
    confirm(page)
    expect_flash(page, "Namespace acme-tmp deleted.")
    expect(page.locator("[data-testid=namespaces]")).not_to_contain_text("acme-tmp")
    assert acme.get("/api/v1/namespaces/acme-tmp").status_code == 404


def test_sign_up_only_where_the_instance_allows_it(
    browser: Browser, page: Page, tmp_path: Path
) -> None:
    # This instance does not: no link, and the page sends people back.
    page.goto("/console/sign-in")
    expect(page.get_by_role("link", name="Sign up")).to_have_count(0)
    page.goto("/console/sign-up")
    assert "/console/sign-in" in page.url
    expect_flash(page, "does not accept sign-ups")
    # One that does.
    with running_server(tmp_path, {"DOCKYARD_ALLOW_SIGNUP": "true"}, namespace=None) as open_:
        ctx = browser.new_context(base_url=open_.url)
        try:
            signup = ctx.new_page()
            signup.goto("/console/sign-in")
            signup.get_by_role("link", name="Sign up").click()
            signup.fill("#f-name", "initech")
            signup.fill("#f-password", "initech-password")
            signup.fill("#f-confirm", "something else")
            signup.get_by_role("button", name="Create account").click()
            expect(signup.locator("[data-testid=error-confirm]")).to_contain_text("differ")
            expect(signup.locator("#f-name")).to_have_value("initech")
            signup.fill("#f-password", "initech-password")
            signup.fill("#f-confirm", "initech-password")
            signup.get_by_role("button", name="Create account").click()
            expect(signup.locator("[data-testid=me-login]")).to_have_text("initech")
        finally:
            ctx.close()


# -- passwords, sessions, policy versions and paging, roles ------------------------------


def api_login(server: DockyardServer, login: str, password: str) -> int:
    """The status of a management API sign-in with a console password."""
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": login, "password": password}
    )
    return r.status_code


def test_a_signed_out_session_cookie_does_not_work_when_replayed(
    browser: Browser, page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    r = acme.post("/api/v1/ram/users", json={"name": "replayer", "password": "replayer-pw-1"})
    assert r.status_code == 201, r.text
    sign_in(page, f"replayer@{ACCOUNT}", "replayer-pw-1")
    session = next(c for c in page.context.cookies() if c["name"] == "dockyard_session")
    stolen = session["value"]

    def replay_with(context: BrowserContext) -> None:
        context.add_cookies(
            [
                {
                    "name": "dockyard_session",
                    "value": stolen,
                    "domain": session["domain"],
                    "path": session["path"],
                }
            ]
        )

    other = browser.new_context(base_url=server.url)
    try:
        # While signed in, a copy of the cookie works elsewhere (so the check below means
        # something).
        replay_with(other)
        replay = other.new_page()
        replay.goto("/console/credentials")
        expect(replay.locator("h1")).to_have_text("Access Credential")
        other.clear_cookies()
        # Sign out in the browser: the API ends the session, not only the cookie.
        page.click("[data-testid=user-menu]")
        page.get_by_role("button", name="Sign out").click()
        expect_flash(page, "signed out")
        replay_with(other)
        replay.goto("/console/credentials")
        assert "/console/sign-in" in replay.url
        expect(replay.locator("[data-testid=flash]")).to_contain_text("session has expired")
    finally:
        other.close()
    r = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {stolen}"})
    assert r.status_code == 401


def test_change_own_console_password(
    page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    login = f"changer@{ACCOUNT}"
    r = acme.post("/api/v1/ram/users", json={"name": "changer", "password": "changer-pw-1"})
    assert r.status_code == 201, r.text
    sign_in(page, login, "changer-pw-1")
    page.goto("/console/credentials")
    form = page.locator("[data-testid=console-password]")
    sent: list[str] = []
    page.on(
        "request",
        lambda req: sent.append(req.url) if req.url.endswith("/credentials/password") else None,
    )

    # New and confirmation differ: said in the browser, nothing sent.
    page.fill("#f-current_password", "changer-pw-1")
    page.fill("#f-new_password", "changer-pw-2")
    page.fill("#f-confirm_password", "changer-pw-3")
    form.get_by_role("button", name="Change Password").click()
    expect(page.locator("[data-testid=mismatch-confirm_password]")).to_have_text(
        "The two passwords differ."
    )
    assert sent == []
    # Typing them equal clears it.
    page.fill("#f-confirm_password", "changer-pw-2")
    expect(page.locator("[data-testid=mismatch-confirm_password]")).to_have_count(0)

    # A wrong current password: the API's 403, next to the current password.
    page.fill("#f-current_password", "not-my-password")
    form.get_by_role("button", name="Change Password").click()
    expect(page.locator("[data-testid=error-current_password]")).to_contain_text("not right")
    assert len(sent) == 1
    # A new one that is too short: the API's 400, next to the new password.
    page.fill("#f-current_password", "changer-pw-1")
    page.fill("#f-new_password", "short")
    page.fill("#f-confirm_password", "short")
    form.get_by_role("button", name="Change Password").click()
    expect(page.locator("[data-testid=error-new_password]")).to_contain_text("8 characters")
    assert api_login(server, login, "changer-pw-1") == 200

    # The right one: changed, and this session goes on.
    page.fill("#f-current_password", "changer-pw-1")
    page.fill("#f-new_password", "changer-pw-2")
    page.fill("#f-confirm_password", "changer-pw-2")
    form.get_by_role("button", name="Change Password").click()
    expect_flash(page, "Console password changed")
    expect(page.locator("[data-testid=user-menu]")).to_contain_text(login)
    assert api_login(server, login, "changer-pw-2") == 200
    assert api_login(server, login, "changer-pw-1") == 401


def test_account_admin_sets_a_ram_users_console_password(
    browser: Browser, page: Page, acme: httpx.Client, server: DockyardServer
) -> None:
    assert acme.post("/api/v1/ram/users", json={"name": "newcomer"}).status_code == 201
    login = f"newcomer@{ACCOUNT}"
    sign_in(page)
    page.goto("/console/ram/users/newcomer")
    form = page.locator("[data-testid=console-password]")
    # Differing confirmation: caught in the browser.
    page.fill("#f-console_password", "newcomer-pw-1")
    page.fill("#f-console_confirm", "newcomer-pw-9")
    form.get_by_role("button", name="Set console password").click()
    expect(page.locator("[data-testid=mismatch-console_confirm]")).to_be_visible()
    # Too short: the API's refusal, inline.
    page.fill("#f-console_password", "short")
    page.fill("#f-console_confirm", "short")
    form.get_by_role("button", name="Set console password").click()
    expect(page.locator("[data-testid=error-console_confirm]")).to_contain_text("8 characters")
    assert api_login(server, login, "short") == 401
    # Set: the user signs in to the console with it.
    page.fill("#f-console_password", "newcomer-pw-1")
    page.fill("#f-console_confirm", "newcomer-pw-1")
    form.get_by_role("button", name="Set console password").click()
    expect_flash(page, "Console password set")
    assert api_login(server, login, "newcomer-pw-1") == 200
    other = browser.new_context(base_url=server.url)
    try:
        sign_in(other.new_page(), login, "newcomer-pw-1")
    finally:
        other.close()


def test_user_page_lists_the_users_groups(page: Page, acme: httpx.Client) -> None:
    assert acme.post("/api/v1/ram/users", json={"name": "grouped"}).status_code == 201
    for group in ("g-alpha", "g-beta", "g-gamma"):
        assert acme.post("/api/v1/ram/groups", json={"name": group}).status_code == 201
    for group in ("g-alpha", "g-beta"):
        assert acme.put(f"/api/v1/ram/groups/{group}/members/grouped").status_code == 204
    assert sorted(acme.get("/api/v1/ram/users/grouped").json()["groups"]) == [
        "g-alpha",
        "g-beta",
    ]
    sign_in(page)
    page.goto("/console/ram/users/grouped")
    groups = page.locator("[data-testid=user-groups]")
    expect(groups.locator("li")).to_have_text(["g-alpha", "g-beta"])
    groups.get_by_role("link", name="g-beta").click()
    expect(page.locator("h1")).to_have_text("g-beta")
    expect(page.locator("[data-testid=members]")).to_contain_text(f"grouped@{ACCOUNT}")


def test_policy_version_history(page: Page, acme: httpx.Client) -> None:
    def document(repo: str) -> dict[str, object]:
        return {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cr:PullRepository",
                    "Resource": f"acs:cr:*:*:repository/acme/{repo}",
                }
            ],
        }

    r = acme.post("/api/v1/ram/policies", json={"name": "Versioned", "document": document("v1")})
    assert r.status_code == 201, r.text
    sign_in(page)
    page.goto("/console/ram/policies/Versioned")
    expect(page.locator("[data-testid=policy-version]")).to_have_text("1")
    expect(page.locator("[data-testid=policy-versions] tbody tr")).to_have_count(1)
    # Two saves in the editor: versions 2 and 3, newest first, 3 current.
    for repo in ("v2", "v3"):
        page.locator("#f-document").fill(json.dumps(document(repo)))
        page.get_by_role("button", name="Save").click()
        expect_flash(page, "Policy Versioned saved.")
    expect(page.locator("[data-testid=policy-version]")).to_have_text("3")
    rows = page.locator("[data-testid=policy-versions] tbody tr")
    expect(rows.locator("td:first-child strong")).to_have_text(["3", "2", "1"])
    expect(rows.nth(0)).to_contain_text("Current")
    expect(rows.nth(1)).not_to_contain_text("Current")
    expect(rows.nth(2).locator("td").nth(1)).to_contain_text(" UTC")
    # Each document folds open.
    oldest = rows.nth(2).locator("[data-testid=version-document]")
    expect(oldest).to_be_hidden()
    rows.nth(2).get_by_text("View document").click()
    expect(oldest).to_be_visible()
    assert json.loads(oldest.inner_text()) == document("v1")
    api = acme.get("/api/v1/ram/policies/Versioned/versions").json()["items"]
    assert [v["version"] for v in api] == [3, 2, 1]
    # Only the last five are kept: the page shows what the API keeps.
    for repo in ("v4", "v5", "v6", "v7"):
        r = acme.put("/api/v1/ram/policies/Versioned", json={"document": document(repo)})
        assert r.status_code == 200, r.text
    page.reload()
    expect(page.locator("[data-testid=policy-version]")).to_have_text("7")
    expect(rows.locator("td:first-child strong")).to_have_text(["7", "6", "5", "4", "3"])
    rows.nth(4).get_by_text("View document").click()
    assert json.loads(rows.nth(4).locator("pre").inner_text()) == document("v3")
    assert acme.delete("/api/v1/ram/policies/Versioned").status_code == 204


def test_role_description_session_duration_and_assume_role_example(
    page: Page, acme: httpx.Client
) -> None:
    account_id = acme.get("/api/v1/me").json()["account_id"]
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }
    r = acme.post("/api/v1/ram/roles", json={"name": "releaser", "trust_policy": trust})
    assert r.status_code == 201, r.text
    arn = r.json()["arn"]
    sign_in(page)
    page.goto("/console/ram/roles/releaser")
    expect(page.locator("[data-testid=role-arn]")).to_have_text(arn)
    copy = page.get_by_role("button", name="Copy ARN")
    assert copy.get_attribute("data-copy") == arn

    # Out of range: refused inline, nothing changed.
    page.fill("#f-description", "Publishes releases from CI")
    page.fill("#f-max_session_seconds", "60")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-testid=error-max_session_seconds]")).to_contain_text("900")
    expect(page.locator("#f-description")).to_have_value("Publishes releases from CI")
    assert acme.get("/api/v1/ram/roles/releaser").json()["max_session_seconds"] == 3600
    # Saved: description and duration, the trust policy untouched.
    page.fill("#f-max_session_seconds", "7200")
    page.get_by_role("button", name="Save").click()
    expect_flash(page, "Role saved.")
    expect(page.locator("#f-max_session_seconds")).to_have_value("7200")
    role = acme.get("/api/v1/ram/roles/releaser").json()
    assert role["description"] == "Publishes releases from CI"
    assert role["max_session_seconds"] == 7200
    assert role["trust_policy"] == trust

    # The AssumeRole example names this role, and works as it is.
    section = page.locator("[data-testid=assume-role]")
    expect(section).to_contain_text("POST /api/v1/sts/assume-role")
    body = json.loads(page.locator("[data-testid=assume-role-body]").inner_text())
    assert body == {"role_arn": arn, "role_session_name": "my-session", "duration_seconds": 3600}
    copied = section.get_by_role("button", name="Copy body").get_attribute("data-copy")
    assert copied is not None
    assert json.loads(copied) == body
    r = acme.post("/api/v1/sts/assume-role", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["assumed_role_user"]["arn"].startswith(f"acs:ram::{account_id}:assumed-role/")


def test_policy_list_pages_and_pickers_offer_every_policy(page: Page, acme: httpx.Client) -> None:
    names = [f"Paged-{i:02d}" for i in range(53)]
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "cr:GetRepository", "Resource": "*"}],
    }
    for name in names:
        r = acme.post("/api/v1/ram/policies", json={"name": name, "document": document})
        assert r.status_code == 201, r.text

    def every(params: dict[str, str]) -> list[str]:
        found: list[str] = []
        body = acme.get("/api/v1/ram/policies", params={**params, "limit": "1000"}).json()
        while True:
            found += [p["name"] for p in body["items"]]
            if "next" not in body:
                return found
            body = acme.get(body["next"]).json()

    try:
        custom = every({"type": "custom"})
        assert len(custom) > 50
        sign_in(page)
        # Custom policies, 50 a page, the type kept from page to page.
        page.goto("/console/ram/policies?type=custom")
        links = page.locator("[data-testid=policies] tbody tr td:first-child a")
        expect(links).to_have_text(custom[:50])
        page.get_by_test_id("next-page").click()
        expect(links).to_have_text(custom[50:100])
        assert "type=custom" in page.url
        expect(page.locator("#f-type")).to_have_value("custom")
        expect(page.locator("[data-testid=policies]")).not_to_contain_text("System")
        # All types: the first page has a next one too.
        page.goto("/console/ram/policies")
        expect(links).to_have_count(50)
        expect(page.get_by_test_id("next-page")).to_be_visible()

        # The attach pickers offer every policy (the list's pages do not limit them),
        # less those attached already.
        everything = every({"type": "system,custom"})
        assert len(everything) > 50
        assert acme.post("/api/v1/ram/users", json={"name": "picker"}).status_code == 201
        assert acme.put("/api/v1/ram/users/picker/policies/Paged-07").status_code == 204
        assert acme.post("/api/v1/ram/groups", json={"name": "pickers"}).status_code == 201
        for url, attached in (
            ("/console/ram/users/picker", {"Paged-07"}),
            ("/console/ram/groups/pickers", set()),
        ):
            page.goto(url)
            options = page.locator("#f-policy option")
            expect(options).to_have_count(len(everything) - len(attached))
            values = [o.get_attribute("value") for o in options.all()]
            assert values == [n for n in everything if n not in attached]
    finally:
        acme.delete("/api/v1/ram/users/picker/policies/Paged-07")
        acme.delete("/api/v1/ram/users/picker")
        acme.delete("/api/v1/ram/groups/pickers")
        for name in names:
            acme.delete(f"/api/v1/ram/policies/{name}")


def test_changes_made_in_the_console_are_audited(page: Page, acme: httpx.Client) -> None:
    """The console calls the API in-process, past the request middleware: the audit
    record must come with the change itself."""
    sign_in(page)
    page.goto("/console/ram/groups")
    page.get_by_role("button", name="Create Group").click()
    page.fill("#f-name", "audited")
    page.get_by_role("button", name="Create", exact=True).click()
    expect_flash(page, "Group audited created.")
    page.select_option("#f-policy", "AliyunContainerRegistryReadOnlyAccess")
    page.get_by_role("button", name="Attach").click()
    expect(page.locator("[data-testid=attached-policies]")).to_contain_text(
        "AliyunContainerRegistryReadOnlyAccess"
    )
    for action, status in (("ram:CreateGroup", 201), ("ram:AttachPolicy", 204)):
        items = acme.get("/api/v1/audit", params={"action": action}).json()["items"]
        [entry] = [e for e in items if e["resource"].endswith(":group/audited")]
        assert entry["actor"] == ACCOUNT
        assert entry["allowed"] is True
        assert entry["status"] == status
        assert entry["source_ip"] == "127.0.0.1"


def test_delete_buttons_show_what_still_holds_it(page: Page, acme: httpx.Client) -> None:
    """A RAM user, group or policy still in use is not deleted: the page says why."""
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "cr:PullRepository", "Resource": "*"}],
    }
    assert acme.post("/api/v1/ram/users", json={"name": "held"}).status_code == 201
    assert acme.post("/api/v1/ram/users/held/access-keys").status_code == 201
    assert acme.post("/api/v1/ram/groups", json={"name": "holding"}).status_code == 201
    assert acme.put("/api/v1/ram/groups/holding/members/held").status_code == 204
    r = acme.post("/api/v1/ram/policies", json={"name": "Held", "document": document})
    assert r.status_code == 201, r.text
    assert acme.put("/api/v1/ram/groups/holding/policies/Held").status_code == 204
    sign_in(page)
    for url, said in (
        ("/console/ram/users/held", f"RAM user 'held@{ACCOUNT}' still has 1 access key and 1 "),
        ("/console/ram/groups/holding", "group 'holding' still has 1 member and 1 attached policy"),
        ("/console/ram/policies/Held", "policy 'Held' is still attached to 1 group"),
    ):
        page.goto(url)
        page.locator(".danger-zone button").click()
        confirm(page)
        expect(page.locator("[data-testid=flash]")).to_contain_text(said)
        assert page.url.endswith(url)
        assert acme.get(url.replace("/console/", "/api/v1/")).status_code == 200


def test_audit_page_shows_the_decision_and_the_outcome_apart(
    page: Page, acme: httpx.Client
) -> None:
    """Allowed, then answered 404: the page does not say just "Allowed"."""
    assert acme.delete("/api/v1/ram/groups/never-was").status_code == 404
    sign_in(page)
    page.goto("/console/audit?action=ram:DeleteGroup")
    row = page.locator("[data-testid=audit] tbody tr", has_text="group/never-was")
    expect(row.locator("[data-testid=decision]")).to_have_text("Allowed")
    expect(row.locator("[data-testid=outcome]")).to_have_text("404 Not Found failed")


def test_changes_refused_in_the_console_are_audited(page: Page, acme: httpx.Client) -> None:
    """A change tried in the console and refused by policy is in the audit log, as the
    same call made to the API directly is."""
    r = acme.post("/api/v1/ram/users", json={"name": "looker", "password": "looker-console-pw"})
    assert r.status_code == 201, r.text
    readonly = "/api/v1/ram/users/looker/policies/AliyunContainerRegistryReadOnlyAccess"
    assert acme.put(readonly).status_code == 204
    sign_in(page, f"looker@{ACCOUNT}", "looker-console-pw")
    page.goto("/console/namespaces")
    # The console offers no form it may not use; sent anyway, it is refused and shown.
    expect(page.get_by_role("button", name="Create Namespace")).to_have_count(0)
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token is not None
    r = page.request.post("/console/namespaces", form={"name": "looker-ns", "csrf": token})
    assert r.status == 400
    assert "may not do cr:CreateNamespace" in r.text()
    assert acme.get("/api/v1/namespaces/looker-ns").status_code == 404
    items = acme.get(
        "/api/v1/audit", params={"actor": f"looker@{ACCOUNT}", "action": "cr:CreateNamespace"}
    ).json()["items"]
    [entry] = items
    assert entry["resource"].endswith(":repository/looker-ns")
    assert (entry["allowed"], entry["status"]) == (False, 403)
    assert entry["source_ip"] == "127.0.0.1"
    # Pages ask for what they may show and leave out what is refused: those refused
    # reads are not attempts of the user's, and are not recorded.
    response = page.goto("/console/ram/users")
    assert response is not None
    assert response.status == 403
    listed = acme.get("/api/v1/audit", params={"actor": f"looker@{ACCOUNT}"}).json()["items"]
    assert [e["action"] for e in listed] == ["cr:CreateNamespace"]


def test_the_navigation_folds_behind_a_menu_button_on_a_phone(page: Page) -> None:
    sign_in(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/console/")
    nav = page.locator("nav.sidenav")
    expect(nav).to_be_hidden()
    page.get_by_test_id("nav-toggle").click()
    expect(nav).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone-menu.png"))
    page.get_by_test_id("nav-close").click()
    expect(nav).to_be_hidden()
    page.get_by_test_id("nav-toggle").click()
    nav.get_by_role("link", name="Namespaces").click()
    expect(page.locator("h1")).to_have_text("Namespaces")
    expect(nav).to_be_hidden()  # a new page starts with the menu folded
    # On a wide screen the navigation is always there and the button is not.
    page.set_viewport_size({"width": 1360, "height": 900})
    expect(nav).to_be_visible()
    expect(page.get_by_test_id("nav-toggle")).to_be_hidden()
    expect(page.get_by_test_id("nav-close")).to_be_hidden()


def _own_account(server: DockyardServer, name: str) -> httpx.Client:
    """A new account of the test's own (the module's accounts keep their quotas for the
    tests that count them), as its root user's API client."""
    with server.client() as admin:
        body = {"name": name, "password": f"{name}-password", "namespace_quota": 5}
        r = admin.post("/api/v1/accounts", json=body)
        assert r.status_code == 201, r.text
    return server.client(auth=(name, f"{name}-password"))


def test_every_page_of_the_menu_fits_a_phone(page: Page, server: DockyardServer) -> None:
    """As the administrator (who sees every menu entry), each page the menu leads to is
    no wider than a 390 px screen: wide tables scroll inside their own box."""
    with _own_account(server, "phoneco") as owner:
        assert owner.post("/api/v1/namespaces", json={"name": "phone-ns"}).status_code == 201
        r = owner.post("/api/v1/repositories", json={"namespace": "phone-ns", "name": "app"})
        assert r.status_code == 201, r.text
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/console/")
    links = page.locator("nav.sidenav a[href^='/console/']")
    paths = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert "/console/accounts" in paths
    for path in [*paths, "/console/repositories/phone-ns/app", "/console/namespaces/phone-ns"]:
        assert path is not None
        page.goto(path)
        widest = page.evaluate("document.documentElement.scrollWidth")
        assert widest <= 390, f"{path} is {widest} px wide at 390 px"


def test_favicon_and_the_api_document_link(page: Page) -> None:
    sign_in(page)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    answer = page.request.get(icon)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    page.goto("/console/sign-in")
    assert page.locator("link[rel=icon]").get_attribute("href") == icon
    sign_in(page)
    link = page.get_by_test_id("api-document")
    assert link.get_attribute("href") == "/api/v1/openapi.json"
    document = page.request.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/namespaces" in document["paths"]


def test_access_credential_tells_the_truth_about_registry_passwords(
    browser: Browser, tmp_path: Path
) -> None:
    """On a new instance the administrator's console password also serves docker login,
    and the page says so; once a registry password is set, the page says it is set and
    the console password no longer logs in to the registry."""
    with running_server(tmp_path, namespace=None) as fresh:
        ctx = browser.new_context(base_url=fresh.url, viewport={"width": 1360, "height": 900})
        try:
            page = ctx.new_page()
            sign_in(page, "admin", ADMIN_PASSWORD)
            page.goto("/console/credentials")
            state = page.get_by_test_id("registry-password-state")
            intro = page.get_by_test_id("credentials-intro")
            expect(state).to_have_text("Not set")
            expect(intro).to_contain_text("your console password works there too")
            with fresh.client(auth=None) as anon:
                assert anon.get("/v2/", auth=("admin", ADMIN_PASSWORD)).status_code == 200
                page.fill("#f-password", "registry-only-pw")
                page.fill("#f-confirm", "registry-only-pw")
                page.get_by_role("button", name="Set Password").click()
                expect(state).to_have_text("Set")
                expect(intro).to_contain_text("Your console password does not work there.")
                assert anon.get("/v2/", auth=("admin", ADMIN_PASSWORD)).status_code == 401
                assert anon.get("/v2/", auth=("admin", "registry-only-pw")).status_code == 200
        finally:
            ctx.close()


def test_namespace_page_lists_its_repositories(page: Page, server: DockyardServer) -> None:
    owner = _own_account(server, "listco")
    with owner:
        assert owner.post("/api/v1/namespaces", json={"name": "listco-ns"}).status_code == 201
        sign_in(page, "listco", "listco-password")
        page.goto("/console/namespaces/listco-ns")
        card = page.get_by_test_id("namespace-repositories")
        expect(card).to_contain_text("No repositories yet")
        for name in ("api", "web"):
            body = {"namespace": "listco-ns", "name": name, "repo_type": "public"}
            assert owner.post("/api/v1/repositories", json=body).status_code == 201
    page.reload()
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("api")
    expect(rows.first).to_contain_text("Public")
    expect(page.locator("h1 + p")).to_contain_text("2 repositories")
    rows.nth(1).get_by_role("link", name="web").click()
    expect(page.locator("h1")).to_contain_text("web")
