"""Who sees what in the console: the same pages signed in as the instance administrator,
an account's root user, a read-only RAM user, a RAM user with no permission at all and
an STS session (a role assumed through the API, signed in with its temporary
credentials).

Each flow checks what the page shows (menus, buttons, lists, quota lines), that a shown
action works when clicked, and that an action hidden from the caller is still refused
when forced (through the console's own form, and through the API with 403). The pages
follow the API's ``allowed_actions`` and ``POST /api/v1/authz/check``; these tests hold
the two together.

One server and one browser for the module, with accounts of its own (``roleco`` and
``rivalco``), so that other modules' quotas are not touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.builds.support import build_env
from tests.console import test_console
from tests.console.test_console import confirm, expect_flash, sign_in
from tests.fixtures.gitserver import GitServer
from tests.fixtures.oci import push_image
from tests.fixtures.server import ADMIN_PASSWORD, DockyardServer, running_server

pytestmark = pytest.mark.clients

ROOT = ("roleco", "roleco-console-password")
RIVAL = ("rivalco", "rivalco-console-password")
VIEWER = ("viewer@roleco", "viewer-console-password")
NOBODY = ("nobody@roleco", "nobody-console-password")
AUDITOR = ("auditor@roleco", "auditor-console-password")
LOOK_AROUND = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ram:List*", "ram:Get*", "cr:ReadAuditLog"],
            "Resource": "*",
        }
    ],
}
READ_ONLY = "AliyunContainerRegistryReadOnlyAccess"
"""The system policy: cr:Get*, cr:List* and cr:PullRepository on everything."""
IDLE_POOL = "idle"
"""A build pool no worker serves: the fixture's build stays pending, so that its page
has a Cancel to show (or not)."""
WEB = "/api/v1/repositories/roles-apps/web"
PUSH_APPS = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["cr:PushRepository"],
            "Resource": "acs:cr:*:*:repository/roles-apps/*",
        }
    ],
}


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, git_server: GitServer
) -> Iterator[DockyardServer]:
    """``roleco`` (quota 3) with namespaces roles-apps (repository web, tags v1 and v2,
    webhook ci, a git code source with a rule and a pending build in a pool no worker
    serves) and roles-tools (repository cli); RAM users ``viewer`` (read-only
    everywhere), ``nobody`` (no policy) and ``auditor`` (may read RAM and the audit log);
    role ``deployer`` (read-only, plus push to roles-apps) that roleco's root may assume.
    ``rivalco`` with namespace rival-ns (repository db); the administrator's own namespace
    roles-admin."""
    base = tmp_path_factory.mktemp("console-roles")
    # Webhooks may name a loopback address (one nobody listens on: nothing is delivered).
    loopback = {"DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", **build_env(base)}
    code = git_server.make_repo("roles-web", {"Dockerfile": "FROM scratch\n"})
    with running_server(base, loopback, remove=True, namespace=None) as found:
        with found.client() as admin:
            for name, password in (ROOT, RIVAL):
                body = {"name": name, "password": password, "namespace_quota": 3}
                _ok(admin.post("/api/v1/accounts", json=body), 201)
            _ok(admin.post("/api/v1/namespaces", json={"name": "roles-admin"}), 201)
        with found.client(auth=ROOT) as root:
            _ok(root.put("/api/v1/me/registry-password", json={"password": ROOT[1]}), 204)
            for ns in ("roles-apps", "roles-tools"):
                _ok(root.post("/api/v1/namespaces", json={"name": ns}), 201)
            for ns, repo in (("roles-apps", "web"), ("roles-tools", "cli")):
                _ok(root.post("/api/v1/repositories", json={"namespace": ns, "name": repo}), 201)
            for tag in ("v1", "v2"):
                push_image(root, "roles-apps/web", tag, layers=1, layer_size=512)
            body = {"name": "ci", "url": "http://127.0.0.1:9/"}
            _ok(root.post("/api/v1/repositories/roles-apps/web/webhooks", json=body), 201)
            source = {
                "type": "git",
                "url": code.http_url,
                "credentials": {"username": git_server.username, "token": git_server.token},
                "auto_build": False,
                "build_pool": IDLE_POOL,
            }
            assert root.put(f"{WEB}/source", json=source).status_code in (200, 201)
            rule = _ok(root.post(f"{WEB}/build-rules", json={"type": "branch", "ref": "main"}), 201)
            built = _ok(root.post(f"{WEB}/build-rules/{rule['id']}/build", json={}), 202)
            assert _ok(root.get(f"{WEB}/builds/{built['id']}"))["status"] == "pending"
            for user, password in (VIEWER, NOBODY, AUDITOR):
                body = {"name": user.split("@")[0], "password": password}
                _ok(root.post("/api/v1/ram/users", json=body), 201)
            for name, document in (("RolesPushApps", PUSH_APPS), ("LookAround", LOOK_AROUND)):
                body = {"name": name, "document": document}
                _ok(root.post("/api/v1/ram/policies", json=body), 201)
            _ok(root.put("/api/v1/ram/users/auditor/policies/LookAround"), 204)
            _ok(root.put(f"/api/v1/ram/users/viewer/policies/{READ_ONLY}"), 204)
            account_id = _ok(root.get("/api/v1/me"))["account_id"]
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
            _ok(
                root.post("/api/v1/ram/roles", json={"name": "deployer", "trust_policy": trust}),
                201,
            )
            for policy in (READ_ONLY, "RolesPushApps"):
                _ok(root.put(f"/api/v1/ram/roles/deployer/policies/{policy}"), 204)
        with found.client(auth=RIVAL) as rival:
            _ok(rival.post("/api/v1/namespaces", json={"name": "rival-ns"}), 201)
            body = {"namespace": "rival-ns", "name": "db"}
            _ok(rival.post("/api/v1/repositories", json=body), 201)
        yield found


# test_console's browser and page fixtures, over this module's ``server``.
playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page


# -- helpers -----------------------------------------------------------------------------


def menu(page: Page) -> list[str]:
    """The side menu's entries, as shown."""
    return [t.strip() for t in page.locator("#console-nav a:not(.nav-close)").all_inner_texts()]


def csrf(page: Page) -> str:
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    return token


def forced(page: Page, path: str) -> None:
    """POST a console form the page did not show, with the session's CSRF token: the
    console passes it to the API, which refuses; the page says so and nothing changes."""
    r = page.request.post(path, form={"csrf": csrf(page)}, max_redirects=0)
    assert r.status == 303, r.status
    page.goto(r.headers["location"])
    expect(page.locator("[data-testid=flash]")).to_contain_text("may not do")


# -- the instance administrator ----------------------------------------------------------


def test_the_administrator_sees_every_account_with_its_owner(
    page: Page, server: DockyardServer
) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    assert {"Accounts", "Audit log", "Users", "Policies"} <= set(menu(page))

    # Every account's namespaces, each with its owner; no quota line above them all.
    page.goto("/console/namespaces")
    expect(page.locator("tr[data-namespace=rival-ns] [data-testid=owner]")).to_have_text("rivalco")
    expect(page.locator("tr[data-namespace=roles-apps] [data-testid=owner]")).to_have_text("roleco")
    expect(page.locator("[data-testid=namespace-quota]")).to_have_count(0)
    # Filtered by an account: its rows only, and its use against its own quota.
    page.select_option("[data-testid=account-filter]", "roleco")
    page.wait_for_url("**/console/namespaces?account=roleco")
    rows = page.locator("[data-testid=namespaces] tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text(
        "2 of 3 namespaces used by roleco"
    )
    # The owner's name links to the same filter.
    page.goto("/console/namespaces")
    page.locator("tr[data-namespace=rival-ns] [data-testid=owner] a").click()
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text(
        "1 of 3 namespaces used by rivalco"
    )

    # The accounts page leads to an account's namespaces from its use.
    page.goto("/console/accounts")
    page.locator("tr", has_text="roleco").locator("[data-testid=namespace-use] a").click()
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text(
        "2 of 3 namespaces used by roleco"
    )

    # Repositories: owners, and the filter by account.
    page.goto("/console/repositories?account=rivalco")
    expect(page.locator("[data-testid=repositories] tbody tr")).to_have_count(1)
    expect(page.locator("tr[data-repository='rival-ns/db'] [data-testid=owner]")).to_have_text(
        "rivalco"
    )
    expect(page.locator("[data-testid=repository-quota]")).to_contain_text("used by rivalco")

    # Creating a repository: nothing preselected, the accounts' namespaces by account
    # (the administrator's own first); choosing none is refused.
    page.goto("/console/repositories/new")
    select = page.locator("#f-namespace")
    expect(select).to_have_value("")
    groups = select.locator("optgroup")
    expect(groups.first).to_have_attribute("label", "admin (your account)")
    labels = [g.get_attribute("label") for g in groups.all()]
    assert labels.index("rivalco") > 0
    assert labels.index("roleco") > 0
    page.fill("#f-name", "picked")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("[data-testid=error-namespace]")).to_have_text("Choose a namespace.")
    # Chosen explicitly: created in that account's namespace.
    page.select_option("#f-namespace", "rival-ns")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create Repository").click()
    expect(page.locator("[data-testid=repo-title]")).to_contain_text("rival-ns/picked")
    with server.client(auth=RIVAL) as rival:
        made = _ok(rival.get("/api/v1/repositories/rival-ns/picked"))
        assert made["account"] == "rivalco"
        _ok(rival.delete("/api/v1/repositories/rival-ns/picked"), 204)


# -- an account's root user --------------------------------------------------------------


def test_an_account_root_manages_its_own_account(page: Page, server: DockyardServer) -> None:
    sign_in(page, *ROOT)
    entries = menu(page)
    assert {"Namespaces", "Repositories", "Users", "Groups", "Roles", "Policies"} <= set(entries)
    assert "Audit log" in entries
    assert "Accounts" not in entries

    page.goto("/console/namespaces")
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text("2 of 3 namespaces used")
    expect(page.locator("[data-testid=account-filter]")).to_have_count(0)
    expect(page.locator("[data-testid=owner]")).to_have_count(0)
    expect(page.locator("[data-testid=namespaces] tbody tr")).to_have_count(2)
    row = page.locator("tr[data-namespace=roles-apps]")
    expect(row.get_by_role("link", name="Manage")).to_be_visible()
    expect(row.get_by_role("button", name="Delete")).to_be_visible()

    # Create a namespace and delete it again: both clicks work.
    page.get_by_role("button", name="Create Namespace").click()
    page.fill("#f-name", "roles-scratch")
    page.get_by_role("button", name="Confirm").click()
    expect_flash(page, "Namespace roles-scratch created.")
    page.goto("/console/namespaces")
    expect(page.locator("[data-testid=namespace-quota]")).to_have_text("3 of 3 namespaces used")
    page.locator("tr[data-namespace=roles-scratch]").get_by_role("button", name="Delete").click()
    confirm(page)
    expect_flash(page, "Namespace roles-scratch deleted.")

    # A repository: push instructions, tag deletion, editing and deletion are offered.
    page.goto("/console/repositories/roles-apps/web")
    commands = page.locator("[data-testid=commands]")
    expect(commands).to_contain_text("docker push")
    expect(page.locator("tr[data-tag=v1]").get_by_role("button", name="Delete")).to_be_visible()
    page.goto("/console/repositories/roles-apps/web?tab=info")
    expect(page.get_by_role("heading", name="Edit")).to_be_visible()
    expect(page.get_by_role("button", name="Delete repository")).to_be_visible()
    expect(page.get_by_role("tab", name="Permissions")).to_be_visible()
    page.get_by_role("tab", name="Webhooks").click()
    expect(page.locator("#webhooks").get_by_role("link", name="Create Webhook")).to_be_visible()
    page.locator("tr[data-webhook=ci]").get_by_role("link", name="ci").click()
    for label in ("Test", "Rotate secret", "Delete"):
        expect(page.locator(".head-actions").get_by_role("button", name=label)).to_be_visible()

    # RAM pages offer their create forms.
    page.goto("/console/ram/users")
    expect(page.get_by_role("button", name="Create User")).to_be_visible()
    page.goto("/console/ram/policies")
    expect(page.get_by_role("link", name="Create Policy")).to_be_visible()
    page.goto("/console/ram/users/viewer")
    for label in ("Set password", "Create AccessKey", "Delete user"):
        expect(page.get_by_role("button", name=label)).to_be_visible()
    page.goto("/console/ram/roles/deployer")
    expect(page.get_by_role("button", name="Save")).to_be_visible()

    # Another account's namespace is not its: the API refuses, the page says so.
    with server.client(auth=ROOT) as root:
        r = root.delete("/api/v1/namespaces/rival-ns")
        assert r.status_code == 403, r.text
        assert root.get("/api/v1/accounts").status_code == 403
    page.goto("/console/accounts")
    expect(page.locator("h1")).to_have_text("Not allowed")


# -- a read-only RAM user ----------------------------------------------------------------


def test_a_read_only_user_sees_no_action_it_may_not_take(
    page: Page, server: DockyardServer
) -> None:
    sign_in(page, *VIEWER)
    entries = menu(page)
    assert "Namespaces" in entries
    assert "Repositories" in entries
    assert "Access Credential" in entries
    for hidden in ("Users", "Groups", "Roles", "Policies", "Audit log", "Accounts"):
        assert hidden not in entries, entries
    expect(page.locator("#console-nav")).not_to_contain_text("RAM")

    # Overview: what it sees, no quota it cannot use, no create buttons.
    expect(page.locator("[data-testid=stat-namespaces]")).to_have_text("2")
    expect(page.locator("[data-testid=identity]")).to_have_text("RAM user")
    expect(page.get_by_role("link", name="Create namespace")).to_have_count(0)
    expect(page.get_by_role("link", name="Create repository")).to_have_count(0)

    # Namespaces: listed, to view only.
    page.goto("/console/namespaces")
    expect(page.locator("[data-testid=namespaces] tbody tr")).to_have_count(2)
    expect(page.locator("[data-testid=namespace-quota]")).to_have_count(0)
    expect(page.get_by_role("button", name="Create Namespace")).to_have_count(0)
    expect(page.locator("#create-namespace")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    # A click that works: open a namespace.
    page.locator("tr[data-namespace=roles-apps]").get_by_role("link", name="View").click()
    expect(page.locator("h1")).to_have_text("roles-apps")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("link", name="Create Repository")).to_have_count(0)
    expect(page.get_by_role("heading", name="Delete namespace")).to_have_count(0)
    expect(page.locator("[data-testid=grant-form]")).to_have_count(0)
    expect(page.get_by_role("link", name="Create Webhook")).to_have_count(0)
    expect(page.locator("[data-testid=namespace-repositories]")).to_contain_text("web")
    # Forced: the hidden delete is refused by the API, and the namespace stays.
    forced(page, "/console/namespaces/roles-apps/delete")
    expect(page.locator("h1")).to_have_text("roles-apps")

    # Repositories: no create button, no quota line.
    page.goto("/console/repositories")
    expect(page.locator("[data-testid=repositories] tbody tr")).to_have_count(2)
    expect(page.get_by_role("link", name="Create Repository")).to_have_count(0)
    expect(page.locator("[data-testid=repository-quota]")).to_have_count(0)
    page.goto("/console/repositories/new")
    expect(page.locator("[data-testid=no-namespace]")).to_contain_text(
        "may not create repositories"
    )

    # A repository: pull instructions only, no delete, no edit.
    page.goto("/console/repositories")
    page.locator("tr[data-repository='roles-apps/web']").get_by_role("link", name="View").click()
    commands = page.locator("[data-testid=commands]")
    expect(commands.locator("h2")).to_have_text("Pull")
    expect(commands).to_contain_text("docker pull")
    expect(commands).not_to_contain_text("docker push")
    expect(page.locator("[data-testid=tags] tbody tr")).to_have_count(2)
    expect(page.locator("[data-testid=tags]").get_by_role("button", name="Delete")).to_have_count(0)
    page.goto("/console/repositories/roles-apps/web?tab=info")
    expect(page.get_by_role("heading", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete repository")).to_have_count(0)
    # Its webhooks: listed and opened, changed nowhere.
    page.get_by_role("tab", name="Webhooks").click()
    row = page.locator("tr[data-webhook=ci]")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#webhooks").get_by_role("link", name="Create Webhook")).to_have_count(0)
    row.get_by_role("link", name="ci").click()
    expect(page.locator("[data-testid=webhook-title]")).to_contain_text("ci")
    expect(page.locator(".head-actions").get_by_role("button")).to_have_count(0)
    expect(page.locator(".head-actions").get_by_role("link", name="Edit")).to_have_count(0)
    # Forced: deleting a tag through the console's form, and through the API.
    page.goto("/console/repositories/roles-apps/web")
    forced(page, "/console/repositories/roles-apps/web/tags/v1/delete")
    with server.client(auth=VIEWER) as viewer:
        r = viewer.delete("/api/v1/repositories/roles-apps/web/tags/v1")
        assert r.status_code == 403, r.text
        r = viewer.delete("/api/v1/repositories/roles-apps/web")
        assert r.status_code == 403, r.text
        r = viewer.get("/api/v1/ram/users")
        assert r.status_code == 403, r.text
        tags = _ok(viewer.get("/api/v1/repositories/roles-apps/web/tags"))
        assert {t["name"] for t in tags["items"]} == {"v1", "v2"}
    # A hidden menu's page, visited anyway: the API's refusal, nothing more.
    page.goto("/console/ram/users")
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_a_user_without_permissions_gets_a_clear_empty_state(page: Page) -> None:
    sign_in(page, *NOBODY)
    page.goto("/console/namespaces")
    expect(page.locator("[data-testid=namespace-quota]")).to_have_count(0)
    expect(page.locator("[data-testid=empty]")).to_contain_text("No namespaces you can see")
    expect(page.locator("[data-testid=empty]")).to_contain_text("Ask the administrator")
    expect(page.locator("[data-testid=empty] a")).to_have_count(0)
    page.goto("/console/repositories")
    expect(page.locator("[data-testid=empty]")).to_contain_text("No repositories you can see")
    expect(page.locator("[data-testid=empty] a")).to_have_count(0)
    expect(page.locator("[data-testid=repository-quota]")).to_have_count(0)
    # The account's use against its quota is not this user's to see or use.
    page.goto("/console/")
    expect(page.locator("[data-testid=stat-namespaces]")).to_have_text("0")


def test_a_user_who_may_read_ram_sees_it_without_its_forms(page: Page) -> None:
    sign_in(page, *AUDITOR)
    entries = menu(page)
    assert {"Users", "Groups", "Roles", "Policies", "Audit log"} <= set(entries)
    assert "Accounts" not in entries
    page.goto("/console/ram/users")
    expect(page.locator("[data-testid=users] tbody tr")).not_to_have_count(0)
    expect(page.get_by_role("button", name="Create User")).to_have_count(0)
    expect(page.locator("#create-user")).to_have_count(0)
    # A user's page: what it is, none of the forms that change it.
    page.goto("/console/ram/users/viewer")
    expect(page.locator("h1")).to_contain_text("viewer")
    for label in ("Set console password", "Set password", "Create AccessKey", "Delete user"):
        expect(page.get_by_role("button", name=label)).to_have_count(0)
    page.goto("/console/ram/roles")
    expect(page.get_by_role("link", name="Create Role")).to_have_count(0)
    page.goto("/console/ram/roles/deployer")
    expect(page.locator("#f-trust")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete role")).to_have_count(0)
    page.goto("/console/ram/policies")
    expect(page.get_by_role("link", name="Create Policy")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    page.goto("/console/audit")
    expect(page.locator("h1")).to_have_text("Audit log")
    # Forced: the create form it was not shown is refused, and says why.
    page.goto("/console/ram/users")
    r = page.request.post("/console/ram/users", form={"name": "sneaky", "csrf": csrf(page)})
    assert r.status in (400, 403), r.status
    assert "may not do ram:CreateUser" in r.text()


# -- an STS session ----------------------------------------------------------------------


def _assume(server: DockyardServer) -> dict[str, Any]:
    with server.client(auth=ROOT) as root:
        account_id = _ok(root.get("/api/v1/me"))["account_id"]
        body = {"role_arn": f"acs:ram::{account_id}:role/deployer", "role_session_name": "ci"}
        found: dict[str, Any] = _ok(root.post("/api/v1/sts/assume-role", json=body), 201)
        return found


def test_an_sts_session_signs_in_and_acts_as_its_role(page: Page, server: DockyardServer) -> None:
    creds = _assume(server)
    key, secret, token = creds["access_key_id"], creds["access_key_secret"], creds["security_token"]

    # Without the security token: refused, and told why.
    page.goto("/console/sign-in")
    page.fill("#f-username", key)
    page.fill("#f-password", secret)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=form-error]")).to_contain_text("security token")
    # A wrong token: refused.
    page.locator("[data-testid=sts-sign-in] summary").click()
    page.fill("#f-security-token", "not-a-token")
    page.fill("#f-password", secret)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=form-error]")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]
    # With it: signed in as the session, which the page names.
    expect(page.locator("[data-testid=sts-sign-in]")).to_have_attribute("open", "")
    page.fill("#f-security-token", token)
    page.fill("#f-password", secret)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=user-menu]")).to_contain_text(key)
    expect(page.locator("[data-testid=identity]")).to_contain_text("STS session")
    expect(page.locator("[data-testid=identity]")).to_contain_text("assumed-role/deployer/ci")
    entries = menu(page)
    for hidden in ("Users", "Policies", "Audit log", "Accounts"):
        assert hidden not in entries, entries

    # Its role pushes to roles-apps only: push instructions there, pull only elsewhere;
    # deleting is nowhere offered.
    page.goto("/console/repositories/roles-apps/web")
    expect(page.locator("[data-testid=commands]")).to_contain_text("docker push")
    expect(page.locator("[data-testid=tags]").get_by_role("button", name="Delete")).to_have_count(0)
    page.goto("/console/repositories/roles-tools/cli")
    expect(page.locator("[data-testid=commands] h2")).to_have_text("Pull")
    expect(page.locator("[data-testid=commands]")).not_to_contain_text("docker push")
    page.goto("/console/namespaces")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    expect(page.get_by_role("button", name="Create Namespace")).to_have_count(0)

    # What it may do works: a temporary registry login, and pushing with it.
    page.goto("/console/credentials")
    expect(page.locator("[data-testid=sts-registry-login]")).to_be_visible()
    expect(page.get_by_role("button", name="Set Password")).to_have_count(0)
    page.get_by_role("button", name="Get Temporary Password").click()
    temporary = page.locator("[data-testid=temp-password]")
    expect(temporary).to_be_visible()
    username = page.locator("[data-testid=temp-username]").inner_text().strip()
    auth = (username, temporary.inner_text().strip())
    with httpx.Client(base_url=server.url, auth=auth) as pusher:
        push_image(pusher, "roles-apps/web", "from-sts", layers=1, layer_size=256)
    page.goto("/console/repositories/roles-apps/web")
    expect(page.locator("tr[data-tag=from-sts]")).to_be_visible()

    # Forced: a hidden delete through the console and through the API, with the
    # session's own credentials.
    forced(page, "/console/repositories/roles-apps/web/tags/v2/delete")
    headers = {"X-Dockyard-Security-Token": token}
    with httpx.Client(base_url=server.url, auth=(key, secret), headers=headers) as sts:
        assert sts.get("/api/v1/me").json()["is_sts"] is True
        r = sts.delete("/api/v1/repositories/roles-apps/web/tags/v2")
        assert r.status_code == 403, r.text
        said = _ok(
            sts.post(
                "/api/v1/authz/check",
                json={
                    "checks": [
                        {"action": "cr:PushRepository", "resource": "roles-apps/web"},
                        {"action": "cr:PushRepository", "resource": "roles-tools/cli"},
                        {"action": "cr:DeleteRepositoryImage", "resource": "roles-apps/web"},
                    ]
                },
            )
        )
        assert [r["allowed"] for r in said["results"]] == [True, False, False]


# -- the pages of images, scans, security settings, builds and RAM policies ---------------


def _sign_in_to_web(
    page: Page, server: DockyardServer, who: tuple[str, str], tag: str
) -> tuple[int, str]:
    """Sign in as ``who`` (an account's user, to whom the vulnerability database is not
    offered); the fixture's pending build of roles-apps/web, and the digest of ``tag``."""
    with server.client(auth=ROOT) as root:
        build = int(_ok(root.get(f"{WEB}/builds"))["items"][0]["id"])
        digest = str(_ok(root.get(f"{WEB}/tags/{tag}"))["digest"])
    sign_in(page, *who)
    assert "Vulnerability database" not in menu(page)
    return build, digest


def test_a_read_only_user_reads_builds_scans_and_settings_but_changes_none(
    page: Page, server: DockyardServer
) -> None:
    build, digest = _sign_in_to_web(page, server, VIEWER, "v1")

    # The tag page: what the image is, no Delete.
    page.goto("/console/repositories/roles-apps/web")
    page.locator("tr[data-tag=v1] [data-testid=tag-link]").click()
    expect(page.locator("[data-testid=tag-title]")).to_contain_text("roles-apps/web:v1")
    expect(page.locator("[data-testid=manifest-json]")).to_be_visible()
    expect(page.get_by_role("button", name="Delete tag")).to_have_count(0)

    # Scans: the status column and the report, no Scan button anywhere.
    page.goto("/console/repositories/roles-apps/web")
    expect(page.locator("tr[data-tag=v1] [data-testid=tag-scan]")).to_be_visible()
    expect(page.locator("[data-testid=scan-button]")).to_have_count(0)
    page.goto(f"/console/repositories/roles-apps/web/scans/{digest}?tag=v1")
    expect(page.locator("[data-testid=report-title]")).to_contain_text("Security scan")
    expect(page.locator("[data-testid=scan-again]")).to_have_count(0)
    forced(page, "/console/repositories/roles-apps/web/tags/v1/scan")

    # The namespace's security settings: linked, shown, not editable; a forced save is
    # refused and changes nothing.
    page.goto("/console/namespaces/roles-apps")
    page.locator("[data-testid=security-link]").click()
    expect(page.locator("h1")).to_have_text("Security settings")
    expect(page.locator("[data-testid=security-settings]")).to_be_visible()
    expect(page.locator("[data-testid=security-form]")).to_have_count(0)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    r = page.request.post(
        "/console/namespaces/roles-apps/security",
        form={"csrf": csrf(page), "block_pull_severity": "high", "allowlist": ""},
    )
    assert r.status == 403, r.status
    assert "may not do cr:UpdateNamespaceSecuritySetting" in r.text()

    # The Build tab: source, rules and history, none of the forms and buttons.
    page.goto("/console/repositories/roles-apps/web")
    page.locator("[data-testid=build-tab]").click()
    expect(page.locator("[data-testid=source-url]")).to_contain_text("roles-web")
    expect(page.locator("[data-testid=build-rules] tbody tr")).to_have_count(2)
    expect(page.locator(f"tr[data-build='{build}']")).to_be_visible()
    for hidden in ("source-form", "build-now", "add-rule", "rule-form"):
        expect(page.locator(f"[data-testid={hidden}]")).to_have_count(0)
    for label in ("Unbind source", "Edit", "Delete"):
        expect(page.locator("#source, #rules").get_by_role("button", name=label)).to_have_count(0)
    expect(page.locator("#rules summary")).to_have_count(0)
    # A build's page: its state and log, no Cancel.
    page.locator(f"tr[data-build='{build}'] a").click()
    expect(page.locator("[data-testid=build-status]")).to_have_text("pending")
    expect(page.locator("[data-testid=build-log]")).to_be_attached()
    expect(page.locator("[data-testid=cancel-build]")).to_have_count(0)
    forced(page, f"/console/repositories/roles-apps/web/builds/{build}/cancel")
    expect(page.locator("[data-testid=build-status]")).to_have_text("pending")
    # Forced through the API: each refused, and nothing changed.
    with server.client(auth=VIEWER) as viewer:
        for method, path in (
            ("POST", f"{WEB}/builds/{build}/cancel"),
            ("POST", f"{WEB}/build-rules"),
            ("DELETE", f"{WEB}/source"),
            ("POST", f"{WEB}/tags/v1/scan"),
            ("PUT", "/api/v1/namespaces/roles-apps/security"),
        ):
            r = viewer.request(method, path, json={})
            assert r.status_code == 403, (method, path, r.text)
        assert _ok(viewer.get(f"{WEB}/builds/{build}"))["status"] == "pending"
        assert _ok(viewer.get(f"{WEB}/source"))["url"]
    # Creating a repository with a git source, forced: refused before anything is made.
    r = page.request.post(
        "/console/repositories/new",
        form={
            "csrf": csrf(page),
            "step": "2",
            "namespace": "roles-apps",
            "name": "sneaky",
            "repo_type": "private",
            "source": "git",
            "url": "https://git.example.com/x.git",
        },
    )
    assert r.status == 400, r.status
    assert "may not bind a code source" in r.text()
    with server.client(auth=ROOT) as root:
        assert root.get("/api/v1/repositories/roles-apps/sneaky").status_code == 404

    # The vulnerability database is the administrator's: not in the menu.
    page.goto("/console/vulndb")
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_a_ram_reader_sees_policies_without_their_forms(page: Page) -> None:
    sign_in(page, *AUDITOR)
    # A user's policies: listed, no picker to attach, no Detach.
    page.goto("/console/ram/users/viewer")
    expect(page.locator("[data-testid=user-policies]")).to_contain_text(READ_ONLY)
    expect(page.locator("[data-testid=attach-form]")).to_have_count(0)
    expect(page.get_by_role("button", name="Detach")).to_have_count(0)
    page.goto("/console/ram/roles/deployer")
    expect(page.locator("[data-testid=attach-form]")).to_have_count(0)
    expect(page.get_by_role("button", name="Detach")).to_have_count(0)
    # A custom policy: its document, read-only; no Save, no Delete.
    page.goto("/console/ram/policies/LookAround")
    expect(page.locator("#f-document")).to_have_attribute("readonly", "")
    expect(page.locator("[data-testid=policy-save]")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete policy")).to_have_count(0)
    # Forced: attaching and saving are refused, and say why.
    r = page.request.post(
        "/console/ram/users/viewer/policies", form={"csrf": csrf(page), "policy": "LookAround"}
    )
    assert r.status == 403, r.status
    assert "may not do ram:AttachPolicy" in r.text()
    r = page.request.post(
        "/console/ram/policies/LookAround",
        form={"csrf": csrf(page), "document": '{"Version": "1", "Statement": []}'},
    )
    assert "may not do ram:UpdatePolicy" in r.text()


def test_an_account_root_is_offered_every_form_of_those_pages(
    page: Page, server: DockyardServer
) -> None:
    build, digest = _sign_in_to_web(page, server, ROOT, "v2")

    page.goto("/console/repositories/roles-apps/web/tags/v2")
    expect(page.get_by_role("button", name="Delete tag")).to_be_visible()
    page.goto("/console/repositories/roles-apps/web")
    expect(page.locator("tr[data-tag=v2] [data-testid=scan-button]")).to_be_visible()
    page.goto(f"/console/repositories/roles-apps/web/scans/{digest}?tag=v2")
    expect(page.locator("[data-testid=scan-again]")).to_be_visible()
    page.goto("/console/namespaces/roles-apps/security")
    expect(page.locator("[data-testid=security-form]")).to_be_visible()

    page.goto("/console/repositories/roles-apps/web?tab=build")
    for shown in ("source-form", "build-now", "add-rule"):
        expect(page.locator(f"[data-testid={shown}]").first).to_be_attached()
    expect(page.locator("#source").get_by_role("button", name="Unbind source")).to_be_visible()
    page.goto("/console/repositories/new?namespace=roles-apps")
    page.fill("#f-name", "with-source")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("[data-testid=source-git]")).to_be_attached()

    page.goto("/console/ram/users/viewer")
    expect(page.locator("[data-testid=attach-form]")).to_be_visible()
    expect(page.get_by_role("button", name="Detach")).to_be_visible()
    page.goto("/console/ram/policies/LookAround")
    expect(page.locator("[data-testid=policy-save]")).to_be_visible()
    expect(page.get_by_role("button", name="Delete policy")).to_be_visible()

    # The Cancel it is shown works.
    page.goto(f"/console/repositories/roles-apps/web/builds/{build}")
    page.locator("[data-testid=cancel-build]").click()
    expect_flash(page, "Cancel requested")
    with server.client(auth=ROOT) as root:
        assert _ok(root.get(f"{WEB}/builds/{build}"))["status"] == "canceled"


def test_the_administrator_imports_vulnerability_data(page: Page) -> None:
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Vulnerability database").click()
    expect(page.locator("[data-testid=upload]")).to_be_visible()
