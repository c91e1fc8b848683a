"""RAM: users (passwords, access keys, policies), groups, roles and policies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx, next_after, page_url, seg

PageFn = Callable[..., Awaitable[Response]]

MIN_SESSION_SECONDS, MAX_SESSION_SECONDS = 900, 43200
# Following ``next`` links: enough for any account, and an end if the API misbehaves.
MOST_PAGES = 100

POLICY_TEMPLATE = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["cr:PullRepository", "cr:GetRepository", "cr:ListRepository"],
            "Resource": "acs:cr:*:*:repository/my-namespace/*",
        }
    ],
}


def routes(console: Console) -> list[Route]:
    page = console.page
    user = f"{PREFIX}/ram/users/{{user}}"
    policy = f"{PREFIX}/ram/policies/{{policy}}"
    group = f"{PREFIX}/ram/groups/{{group}}"
    role = f"{PREFIX}/ram/roles/{{role}}"
    found = [
        Route(f"{PREFIX}/ram/users", page(users), methods=["GET", "POST"]),
        Route(user, page(user_page)),
        Route(f"{user}/registry-password", page(user_registry_password), methods=["POST"]),
        Route(f"{user}/password", page(user_console_password), methods=["POST"]),
        Route(f"{user}/access-keys", page(user_access_key_create), methods=["POST"]),
        Route(f"{user}/access-keys/{{key}}/delete", page(user_access_key_delete), methods=["POST"]),
        Route(f"{user}/policies", page(user_attach), methods=["POST"]),
        Route(f"{user}/policies/{{policy}}/detach", page(user_detach), methods=["POST"]),
        Route(f"{user}/delete", page(user_delete), methods=["POST"]),
        Route(f"{PREFIX}/ram/groups", page(groups), methods=["GET", "POST"]),
        Route(group, page(group_page)),
        Route(f"{group}/members", page(group_add_member), methods=["POST"]),
        Route(f"{group}/members/{{member}}/remove", page(group_remove_member), methods=["POST"]),
        Route(f"{group}/policies", page(group_attach), methods=["POST"]),
        Route(f"{group}/policies/{{policy}}/detach", page(group_detach), methods=["POST"]),
        Route(f"{group}/delete", page(group_delete), methods=["POST"]),
        Route(f"{PREFIX}/ram/roles", page(roles)),
        Route(f"{PREFIX}/ram/roles/new", page(role_new), methods=["GET", "POST"]),
        Route(role, page(role_page), methods=["GET", "POST"]),
        Route(f"{role}/policies", page(role_attach), methods=["POST"]),
        Route(f"{role}/policies/{{policy}}/detach", page(role_detach), methods=["POST"]),
        Route(f"{role}/delete", page(role_delete), methods=["POST"]),
        Route(f"{PREFIX}/ram/policies", page(policies)),
        Route(f"{PREFIX}/ram/policies/new", page(policy_new), methods=["GET", "POST"]),
        Route(policy, page(policy_edit), methods=["GET", "POST"]),
        Route(f"{policy}/delete", page(policy_delete), methods=["POST"]),
    ]
    # A page exists only where the API behind it does.
    needs = {
        f"{user}/delete": ("/api/v1/ram/users/{}", "DELETE"),
        f"{user}/password": ("/api/v1/ram/users/{}", "PATCH"),
        f"{PREFIX}/ram/groups": ("/api/v1/ram/groups", "GET"),
        f"{PREFIX}/ram/roles": ("/api/v1/ram/roles", "GET"),
    }
    prefixes = {group: "/api/v1/ram/groups", role: "/api/v1/ram/roles"}
    kept = []
    for route in found:
        need = needs.get(route.path)
        if need and not console.has(*need):
            continue
        if any(route.path.startswith(p) and not console.has(api) for p, api in prefixes.items()):
            continue
        if route.path == f"{PREFIX}/ram/roles/new" and not console.has("/api/v1/ram/roles"):
            continue
        kept.append(route)
    return kept


# -- helpers -----------------------------------------------------------------------------


async def every_item(ctx: Ctx, path: str) -> list[dict[str, Any]]:
    """All items of a paged listing: its pages of 1000, following ``next`` to the end."""
    items: list[dict[str, Any]] = []
    after = ""
    for _ in range(MOST_PAGES):
        body = await ctx.api.get(path, {"limit": "1000", "after": after})
        items.extend(body.get("items", []))
        following = next_after(body)
        if not following or following == after:
            break
        after = following
    return items


async def _policy_names(ctx: Ctx) -> list[dict[str, Any]]:
    """Every policy the caller may attach (for the pickers), or none when it may not list
    them."""
    try:
        return await every_item(ctx, "/api/v1/ram/policies")
    except ApiProblem:
        return []


def _passwords(ctx: Ctx) -> tuple[str, str | None]:
    """The new password of a form with ``password`` and ``confirm``, or an error."""
    password, confirm = ctx.form.get("password", ""), ctx.form.get("confirm", "")
    if not password:
        return "", "Enter a password."
    if password != confirm:
        return "", "The two passwords differ."
    return password, None


# -- users -------------------------------------------------------------------------------


async def users(ctx: Ctx) -> Response:
    errors: dict[str, str] = {}
    name = ""
    if ctx.request.method == "POST":
        name = ctx.form.get("name", "").strip()
        password = ctx.form.get("password", "")
        if not name:
            errors["name"] = "Enter a user name."
        elif password and password != ctx.form.get("confirm", ""):
            errors["confirm"] = "The two passwords differ."
        else:
            try:
                await ctx.api.post(
                    "/api/v1/ram/users", {"name": name, "password": password or None}
                )
            except ApiProblem as exc:
                errors["form"] = exc.detail
            else:
                return ctx.redirect(f"{PREFIX}/ram/users/{seg(name)}", f"RAM user {name} created.")
    body = await ctx.api.get("/api/v1/ram/users", {"after": ctx.query("after"), "limit": "50"})
    following = next_after(body)
    return ctx.render(
        "ram_users.html",
        400 if errors else 200,
        nav="users",
        items=body.get("items", []),
        next_url=page_url(ctx.request, after=following) if following else None,
        errors=errors,
        name=name,
        open_create=bool(errors) or ctx.query("create") == "1",
    )


async def _user_page(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    new_key: dict[str, Any] | None = None,
) -> Response:
    name = ctx.param("user")
    item = await ctx.api.get(f"/api/v1/ram/users/{seg(name)}")
    keys = await ctx.api.get(f"/api/v1/ram/users/{seg(name)}/access-keys")
    groups: list[str] | None = None
    if isinstance(item.get("groups"), list):
        groups = [str(g) for g in item["groups"]]
    elif ctx.has("/api/v1/ram/groups"):
        # An API without the user's ``groups``: find them among the groups' members.
        found = await every_item(ctx, "/api/v1/ram/groups")
        groups = [g["name"] for g in found if item.get("login") in g.get("members", [])]
    all_policies = await _policy_names(ctx)
    attached = set(item.get("policies", []))
    return ctx.render(
        "ram_user.html",
        status,
        nav="users",
        user=item,
        keys=keys.get("items", []),
        groups=groups,
        attachable=[p for p in all_policies if p["name"] not in attached],
        errors=errors or {},
        new_key=new_key,
    )


async def user_page(ctx: Ctx) -> Response:
    return await _user_page(ctx)


def _user_url(ctx: Ctx) -> str:
    return f"{PREFIX}/ram/users/{seg(ctx.param('user'))}"


async def user_registry_password(ctx: Ctx) -> Response:
    password, error = _passwords(ctx)
    if error:
        return await _user_page(ctx, 400, errors={"registry_password": error})
    try:
        await ctx.api.put(
            f"/api/v1/ram/users/{seg(ctx.param('user'))}/registry-password",
            {"password": password},
        )
    except ApiProblem as exc:
        return await _user_page(ctx, exc.status, errors={"registry_password": exc.detail})
    return ctx.redirect(_user_url(ctx), "Registry password set.")


async def user_console_password(ctx: Ctx) -> Response:
    """An account admin sets a RAM user's console password (no current one needed)."""
    password = ctx.form.get("console_password", "")
    error = None
    if not password:
        error = "Enter a password."
    elif password != ctx.form.get("console_confirm", ""):
        error = "The two passwords differ."
    else:
        try:
            await ctx.api.patch(
                f"/api/v1/ram/users/{seg(ctx.param('user'))}", {"password": password}
            )
        except ApiProblem as exc:
            return await _user_page(ctx, exc.status, errors={"console_password": exc.detail})
    if error:
        return await _user_page(ctx, 400, errors={"console_password": error})
    return ctx.redirect(
        _user_url(ctx), "Console password set: the user signs in to the console with it."
    )


async def user_access_key_create(ctx: Ctx) -> Response:
    try:
        created = await ctx.api.post(f"/api/v1/ram/users/{seg(ctx.param('user'))}/access-keys")
    except ApiProblem as exc:
        return await _user_page(ctx, exc.status, errors={"access_keys": exc.detail})
    # Shown in this response only: the secret is never stored or sent again.
    return await _user_page(ctx, 201, new_key=created)


async def user_access_key_delete(ctx: Ctx) -> Response:
    key = ctx.param("key")
    try:
        await ctx.api.delete(f"/api/v1/ram/users/{seg(ctx.param('user'))}/access-keys/{seg(key)}")
    except ApiProblem as exc:
        return ctx.redirect(_user_url(ctx), exc.detail, "error")
    return ctx.redirect(_user_url(ctx), f"Access key {key} deleted.")


async def user_attach(ctx: Ctx) -> Response:
    policy = ctx.form.get("policy", "").strip()
    if not policy:
        return await _user_page(ctx, 400, errors={"policies": "Choose a policy."})
    try:
        await ctx.api.put(f"/api/v1/ram/users/{seg(ctx.param('user'))}/policies/{seg(policy)}")
    except ApiProblem as exc:
        return await _user_page(ctx, exc.status, errors={"policies": exc.detail})
    return ctx.redirect(_user_url(ctx), f"Policy {policy} attached.")


async def user_detach(ctx: Ctx) -> Response:
    policy = ctx.param("policy")
    try:
        await ctx.api.delete(f"/api/v1/ram/users/{seg(ctx.param('user'))}/policies/{seg(policy)}")
    except ApiProblem as exc:
        return ctx.redirect(_user_url(ctx), exc.detail, "error")
    return ctx.redirect(_user_url(ctx), f"Policy {policy} detached.")


# -- policies ----------------------------------------------------------------------------


async def policies(ctx: Ctx) -> Response:
    kind = ctx.query("type")
    body = await ctx.api.get(
        "/api/v1/ram/policies", {"type": kind, "after": ctx.query("after"), "limit": "50"}
    )
    following = next_after(body)
    return ctx.render(
        "ram_policies.html",
        nav="policies",
        items=body.get("items", []),
        kind=kind,
        next_url=page_url(ctx.request, after=following) if following else None,
    )


def _parse_document(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return (
            None,
            f"The document is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
        )


async def policy_new(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return ctx.render(
            "ram_policy.html",
            nav="policies",
            policy=None,
            name="",
            document=json.dumps(POLICY_TEMPLATE, indent=2),
            errors={},
        )
    name = ctx.form.get("name", "").strip()
    text = ctx.form.get("document", "")
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter a policy name."
    document, problem = _parse_document(text)
    if problem:
        errors["document"] = problem
    if not errors:
        try:
            await ctx.api.post("/api/v1/ram/policies", {"name": name, "document": document})
        except ApiProblem as exc:
            errors["document"] = exc.detail
    if errors:
        return ctx.render(
            "ram_policy.html",
            400,
            nav="policies",
            policy=None,
            name=name,
            document=text,
            errors=errors,
        )
    return ctx.redirect(f"{PREFIX}/ram/policies/{seg(name)}", f"Policy {name} created.")


async def _versions(ctx: Ctx, name: str) -> list[dict[str, Any]] | None:
    """A policy's kept versions, newest first, each with its document as indented JSON
    (``None`` when the API keeps no history)."""
    if not ctx.has("/api/v1/ram/policies/{}/versions"):
        return None
    body = await ctx.api.get(f"/api/v1/ram/policies/{seg(name)}/versions")
    return [
        {
            "version": v.get("version"),
            "created_at": v.get("created_at"),
            "document": json.dumps(v.get("document"), indent=2),
        }
        for v in body.get("items", [])
    ]


async def policy_edit(ctx: Ctx) -> Response:
    name = ctx.param("policy")
    found = await ctx.api.get(f"/api/v1/ram/policies/{seg(name)}")
    if ctx.request.method == "GET":
        return ctx.render(
            "ram_policy.html",
            nav="policies",
            policy=found,
            name=name,
            document=json.dumps(found.get("document"), indent=2),
            errors={},
            versions=await _versions(ctx, name),
        )
    text = ctx.form.get("document", "")
    document, problem = _parse_document(text)
    errors: dict[str, str] = {}
    if problem:
        errors["document"] = problem
    else:
        try:
            await ctx.api.put(f"/api/v1/ram/policies/{seg(name)}", {"document": document})
        except ApiProblem as exc:
            errors["document"] = exc.detail
    if errors:
        return ctx.render(
            "ram_policy.html",
            400,
            nav="policies",
            policy=found,
            name=name,
            document=text,
            errors=errors,
            versions=await _versions(ctx, name),
        )
    return ctx.redirect(f"{PREFIX}/ram/policies/{seg(name)}", f"Policy {name} saved.")


async def policy_delete(ctx: Ctx) -> Response:
    name = ctx.param("policy")
    try:
        await ctx.api.delete(f"/api/v1/ram/policies/{seg(name)}")
    except ApiProblem as exc:
        return ctx.redirect(f"{PREFIX}/ram/policies/{seg(name)}", exc.detail, "error")
    return ctx.redirect(f"{PREFIX}/ram/policies", f"Policy {name} deleted.")


async def user_delete(ctx: Ctx) -> Response:
    name = ctx.param("user")
    try:
        await ctx.api.delete(f"/api/v1/ram/users/{seg(name)}")
    except ApiProblem as exc:
        return ctx.redirect(_user_url(ctx), exc.detail, "error")
    return ctx.redirect(f"{PREFIX}/ram/users", f"RAM user {name} deleted.")


# -- policy attachments of groups and roles ----------------------------------------------


async def _attach(ctx: Ctx, kind: str, holder: str, url: str, page: PageFn) -> Response:
    policy = ctx.form.get("policy", "").strip()
    if not policy:
        return await page(ctx, 400, errors={"policies": "Choose a policy."})
    try:
        await ctx.api.put(f"/api/v1/ram/{kind}/{seg(holder)}/policies/{seg(policy)}")
    except ApiProblem as exc:
        return await page(ctx, exc.status, errors={"policies": exc.detail})
    return ctx.redirect(url, f"Policy {policy} attached.")


async def _detach(ctx: Ctx, kind: str, holder: str, url: str) -> Response:
    policy = ctx.param("policy")
    try:
        await ctx.api.delete(f"/api/v1/ram/{kind}/{seg(holder)}/policies/{seg(policy)}")
    except ApiProblem as exc:
        return ctx.redirect(url, exc.detail, "error")
    return ctx.redirect(url, f"Policy {policy} detached.")


# -- groups ------------------------------------------------------------------------------


async def groups(ctx: Ctx) -> Response:
    errors: dict[str, str] = {}
    values = {"name": "", "description": ""}
    if ctx.request.method == "POST":
        values = {
            "name": ctx.form.get("name", "").strip(),
            "description": ctx.form.get("description", "").strip(),
        }
        if not values["name"]:
            errors["name"] = "Enter a group name."
        else:
            try:
                await ctx.api.post("/api/v1/ram/groups", values)
            except ApiProblem as exc:
                errors["form"] = exc.detail
            else:
                return ctx.redirect(
                    f"{PREFIX}/ram/groups/{seg(values['name'])}",
                    f"Group {values['name']} created.",
                )
    body = await ctx.api.get("/api/v1/ram/groups", {"after": ctx.query("after"), "limit": "50"})
    following = next_after(body)
    return ctx.render(
        "ram_groups.html",
        400 if errors else 200,
        nav="groups",
        items=body.get("items", []),
        next_url=page_url(ctx.request, after=following) if following else None,
        errors=errors,
        values=values,
        open_create=bool(errors) or ctx.query("create") == "1",
    )


def _group_url(ctx: Ctx) -> str:
    return f"{PREFIX}/ram/groups/{seg(ctx.param('group'))}"


async def _group_page(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None
) -> Response:
    name = ctx.param("group")
    item = await ctx.api.get(f"/api/v1/ram/groups/{seg(name)}")
    users = await every_item(ctx, "/api/v1/ram/users")
    members = list(item.get("members", []))
    attached = set(item.get("policies", []))
    return ctx.render(
        "ram_group.html",
        status,
        nav="groups",
        group=item,
        members=members,
        candidates=[u["name"] for u in users if u.get("login") not in members],
        attachable=[p for p in await _policy_names(ctx) if p["name"] not in attached],
        errors=errors or {},
    )


async def group_page(ctx: Ctx) -> Response:
    return await _group_page(ctx)


async def group_add_member(ctx: Ctx) -> Response:
    user = ctx.form.get("user", "").strip()
    if not user:
        return await _group_page(ctx, 400, errors={"members": "Choose a user."})
    try:
        await ctx.api.put(f"/api/v1/ram/groups/{seg(ctx.param('group'))}/members/{seg(user)}")
    except ApiProblem as exc:
        return await _group_page(ctx, exc.status, errors={"members": exc.detail})
    return ctx.redirect(_group_url(ctx), f"{user} added to the group.")


async def group_remove_member(ctx: Ctx) -> Response:
    member = ctx.param("member")
    try:
        await ctx.api.delete(f"/api/v1/ram/groups/{seg(ctx.param('group'))}/members/{seg(member)}")
    except ApiProblem as exc:
        return ctx.redirect(_group_url(ctx), exc.detail, "error")
    return ctx.redirect(_group_url(ctx), f"{member} removed from the group.")


async def group_attach(ctx: Ctx) -> Response:
    return await _attach(ctx, "groups", ctx.param("group"), _group_url(ctx), _group_page)


async def group_detach(ctx: Ctx) -> Response:
    return await _detach(ctx, "groups", ctx.param("group"), _group_url(ctx))


async def group_delete(ctx: Ctx) -> Response:
    name = ctx.param("group")
    try:
        await ctx.api.delete(f"/api/v1/ram/groups/{seg(name)}")
    except ApiProblem as exc:
        return ctx.redirect(_group_url(ctx), exc.detail, "error")
    return ctx.redirect(f"{PREFIX}/ram/groups", f"Group {name} deleted.")


# -- roles -------------------------------------------------------------------------------


def trust_template(ctx: Ctx) -> str:
    account = ctx.me.get("account_id")
    principal = f"acs:ram::{account}:root" if account is not None else "acs:ram::ACCOUNT:root"
    document = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [principal]}}
        ],
    }
    return json.dumps(document, indent=2)


async def roles(ctx: Ctx) -> Response:
    body = await ctx.api.get("/api/v1/ram/roles", {"after": ctx.query("after"), "limit": "50"})
    following = next_after(body)
    return ctx.render(
        "ram_roles.html",
        nav="roles",
        items=body.get("items", []),
        next_url=page_url(ctx.request, after=following) if following else None,
    )


def _seconds(text: str) -> int | None:
    """A maximum session duration the API accepts, or ``None``."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return None
    seconds = int(text)
    return seconds if MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS else None


SECONDS_ERROR = (
    f"Enter a number of seconds from {MIN_SESSION_SECONDS:,} to {MAX_SESSION_SECONDS:,}."
)


async def role_new(ctx: Ctx) -> Response:
    values = {
        "name": "",
        "description": "",
        "max_session_seconds": "3600",
        "trust_policy": trust_template(ctx),
    }
    if ctx.request.method == "GET":
        return ctx.render(
            "ram_role.html", nav="roles", role=None, values=values, errors={}, assume_example=""
        )
    values = {key: ctx.form.get(key, "") for key in values}
    values["name"] = values["name"].strip()
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Enter a role name."
    seconds = _seconds(values["max_session_seconds"])
    if seconds is None:
        errors["max_session_seconds"] = SECONDS_ERROR
    trust, problem = _parse_document(values["trust_policy"])
    if problem:
        errors["trust_policy"] = problem
    if not errors:
        try:
            await ctx.api.post(
                "/api/v1/ram/roles",
                {
                    "name": values["name"],
                    "description": values["description"].strip(),
                    "max_session_seconds": seconds,
                    "trust_policy": trust,
                },
            )
        except ApiProblem as exc:
            errors["form"] = exc.detail
    if errors:
        return ctx.render(
            "ram_role.html",
            400,
            nav="roles",
            role=None,
            values=values,
            errors=errors,
            assume_example="",
        )
    return ctx.redirect(
        f"{PREFIX}/ram/roles/{seg(values['name'])}", f"Role {values['name']} created."
    )


def assume_role_example(role: dict[str, Any]) -> str:
    """The body of a ``POST /api/v1/sts/assume-role`` for ``role``: an hour, or the role's
    maximum when that is shorter."""
    most = role.get("max_session_seconds")
    duration = min(3600, most) if isinstance(most, int) and most > 0 else 3600
    body = {
        "role_arn": role.get("arn", ""),
        "role_session_name": "my-session",
        "duration_seconds": duration,
    }
    return json.dumps(body, indent=2)


def _role_url(ctx: Ctx) -> str:
    return f"{PREFIX}/ram/roles/{seg(ctx.param('role'))}"


async def _role_page(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    item = await ctx.api.get(f"/api/v1/ram/roles/{seg(ctx.param('role'))}")
    attached = set(item.get("policies", []))
    return ctx.render(
        "ram_role.html",
        status,
        nav="roles",
        role=item,
        assume_example=assume_role_example(item),
        values=values
        or {
            "name": item["name"],
            "description": item.get("description") or "",
            "max_session_seconds": str(item.get("max_session_seconds", "")),
            "trust_policy": json.dumps(item.get("trust_policy"), indent=2),
        },
        attachable=[p for p in await _policy_names(ctx) if p["name"] not in attached],
        errors=errors or {},
    )


async def role_page(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _role_page(ctx)
    values = {
        "name": ctx.param("role"),
        "description": ctx.form.get("description", ""),
        "max_session_seconds": ctx.form.get("max_session_seconds", ""),
        "trust_policy": ctx.form.get("trust_policy", ""),
    }
    errors: dict[str, str] = {}
    seconds = _seconds(values["max_session_seconds"])
    if seconds is None:
        errors["max_session_seconds"] = SECONDS_ERROR
    trust, problem = _parse_document(values["trust_policy"])
    if problem:
        errors["trust_policy"] = problem
    if not errors:
        try:
            await ctx.api.patch(
                f"/api/v1/ram/roles/{seg(ctx.param('role'))}",
                {
                    "description": values["description"].strip(),
                    "max_session_seconds": seconds,
                    "trust_policy": trust,
                },
            )
        except ApiProblem as exc:
            errors["form"] = exc.detail
    if errors:
        return await _role_page(ctx, 400, errors=errors, values=values)
    return ctx.redirect(_role_url(ctx), "Role saved.")


async def role_attach(ctx: Ctx) -> Response:
    return await _attach(ctx, "roles", ctx.param("role"), _role_url(ctx), _role_page)


async def role_detach(ctx: Ctx) -> Response:
    return await _detach(ctx, "roles", ctx.param("role"), _role_url(ctx))


async def role_delete(ctx: Ctx) -> Response:
    name = ctx.param("role")
    try:
        await ctx.api.delete(f"/api/v1/ram/roles/{seg(name)}")
    except ApiProblem as exc:
        return ctx.redirect(_role_url(ctx), exc.detail, "error")
    return ctx.redirect(f"{PREFIX}/ram/roles", f"Role {name} deleted.")
