"""RAM: users (passwords, access keys, policies), groups, roles and policies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard import jsontext
from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx, Rerender, may_on, next_after, seg

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
        Route(f"{user}/policies", page(USER.attach), methods=["POST"]),
        Route(f"{user}/policies/{{policy}}/detach", page(USER.detach), methods=["POST"]),
        Route(f"{user}/delete", page(USER.delete), methods=["POST"]),
        Route(f"{PREFIX}/ram/groups", page(groups), methods=["GET", "POST"]),
        Route(group, page(group_page)),
        Route(f"{group}/members", page(group_add_member), methods=["POST"]),
        Route(f"{group}/members/{{member}}/remove", page(group_remove_member), methods=["POST"]),
        Route(f"{group}/policies", page(GROUP.attach), methods=["POST"]),
        Route(f"{group}/policies/{{policy}}/detach", page(GROUP.detach), methods=["POST"]),
        Route(f"{group}/delete", page(GROUP.delete), methods=["POST"]),
        Route(f"{PREFIX}/ram/roles", page(roles)),
        Route(f"{PREFIX}/ram/roles/new", page(role_new), methods=["GET", "POST"]),
        Route(role, page(role_page), methods=["GET", "POST"]),
        Route(f"{role}/policies", page(ROLE.attach), methods=["POST"]),
        Route(f"{role}/policies/{{policy}}/detach", page(ROLE.detach), methods=["POST"]),
        Route(f"{role}/delete", page(ROLE.delete), methods=["POST"]),
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


USER_ACTIONS = ("ram:UpdateUser", "ram:CreateAccessKey", "ram:DeleteAccessKey", "ram:DeleteUser")
GROUP_ACTIONS = ("ram:AddUserToGroup", "ram:RemoveUserFromGroup", "ram:DeleteGroup")
ROLE_ACTIONS = ("ram:UpdateRole", "ram:DeleteRole")
POLICY_ACTIONS = ("ram:UpdatePolicy", "ram:DeletePolicy")


ATTACH = "ram:AttachPolicy"
DETACH = "ram:DetachPolicy"


async def holder_may(ctx: Ctx, candidates: tuple[str, ...], kind: str, name: str) -> frozenset[str]:
    """Which ``candidates`` the caller may do on the user, group or role ``name`` (of
    ``kind``: ``user``, ``group`` or ``role``), and whether it may attach and detach its
    policies (asked about ``kind/name``, as those routes check): the forms and buttons
    its page shows, in one batch check."""
    holder = f"{kind}/{name}"
    return await may_on(ctx, candidates, name, also=[(ATTACH, holder), (DETACH, holder)])


async def every_item(
    ctx: Ctx, path: str, filters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """All items of a paged listing: its pages of 1000, following ``next`` to the end."""
    items: list[dict[str, Any]] = []
    after = ""
    for _ in range(MOST_PAGES):
        body = await ctx.api.get(path, {**(filters or {}), "limit": "1000", "after": after})
        items.extend(body.get("items", []))
        following = next_after(body)
        if not following or following == after:
            break
        after = following
    return items


ATTACHABLE = "system,custom"
"""The policies a person attaches; the managed ones come with a permission on a
namespace or repository, and are listed there."""
POLICY_FILTERS = {
    "": ATTACHABLE,
    "all": "",
    "system": "system",
    "custom": "custom",
    "managed": "managed",
}
"""The policy list's type filter (the page's ``type``) → the API's."""


async def _policy_names(ctx: Ctx) -> list[dict[str, Any]]:
    """Every policy the caller may attach (for the pickers), or none when it may not list
    them."""
    try:
        return await every_item(ctx, "/api/v1/ram/policies", {"type": ATTACHABLE})
    except ApiProblem:
        return []


def _passwords(ctx: Ctx, field: str, confirm_field: str) -> tuple[str, str | None]:
    """The new password of a form (its inputs ``field`` and ``confirm_field``), or an
    error."""
    password, confirm = ctx.form.get(field, ""), ctx.form.get(confirm_field, "")
    if not password:
        return "", "Enter a password."
    if password != confirm:
        return "", "The two passwords differ."
    return password, None


# -- users -------------------------------------------------------------------------------


async def _users_page(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None, name: str = ""
) -> Response:
    items, next_url = await ctx.listing("/api/v1/ram/users")
    return ctx.render(
        "ram_users.html",
        status,
        nav="users",
        items=items,
        next_url=next_url,
        errors=errors or {},
        name=name,
        open_create=bool(errors) or ctx.query("create") == "1",
    )


async def users(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _users_page(ctx)
    name = ctx.form.get("name", "").strip()
    password = ctx.form.get("password", "")
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter a user name."
    elif password and password != ctx.form.get("confirm", ""):
        errors["confirm"] = "The two passwords differ."
    return await ctx.act(
        "POST",
        "/api/v1/ram/users",
        {"name": name, "password": password or None},
        then=f"{PREFIX}/ram/users/{seg(name)}",
        said=f"RAM user {name} created.",
        page=partial(_users_page, name=name),
        invalid=errors,
        status=400,
    )


async def user_page(
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
        may=await holder_may(ctx, USER_ACTIONS, "user", name),
        keys=keys.get("items", []),
        groups=groups,
        attachable=[p for p in all_policies if p["name"] not in attached],
        errors=errors or {},
        new_key=new_key,
    )


async def user_registry_password(ctx: Ctx) -> Response:
    password, error = _passwords(ctx, "password", "confirm")
    return await ctx.act(
        "PUT",
        f"{USER.api(ctx)}/registry-password",
        {"password": password},
        then=USER.url(ctx),
        said="Registry password set.",
        page=user_page,
        key="registry_password",
        invalid=error,
    )


async def user_console_password(ctx: Ctx) -> Response:
    """An account admin sets a RAM user's console password (no current one needed)."""
    password, error = _passwords(ctx, "console_password", "console_confirm")
    return await ctx.act(
        "PATCH",
        USER.api(ctx),
        {"password": password},
        then=USER.url(ctx),
        said="Console password set: the user signs in to the console with it.",
        page=user_page,
        key="console_password",
        invalid=error,
    )


async def user_access_key_create(ctx: Ctx) -> Response:
    try:
        created = await ctx.api.post(f"{USER.api(ctx)}/access-keys")
    except ApiProblem as exc:
        return await user_page(ctx, exc.status, errors={"access_keys": exc.detail})
    # Shown in this response only: the secret is never stored or sent again.
    return await user_page(ctx, 201, new_key=created)


async def user_access_key_delete(ctx: Ctx) -> Response:
    key = ctx.param("key")
    return await ctx.act(
        "DELETE",
        f"{USER.api(ctx)}/access-keys/{seg(key)}",
        then=USER.url(ctx),
        said=f"Access key {key} deleted.",
    )


# -- policies ----------------------------------------------------------------------------


def managed_link(policy: dict[str, Any]) -> dict[str, str] | None:
    """Where a managed policy's permission is (its namespace's or repository's console
    page, permissions tab), from the resource ARN it is kept for."""
    arn = policy.get("resource")
    if not isinstance(arn, str) or ":repository/" not in arn:
        return None
    path = arn.split(":repository/", 1)[1]
    namespace, _, repository = path.partition("/")
    if repository:
        url = f"{PREFIX}/repositories/{seg(namespace)}/{seg(repository)}?tab=permissions"
        return {"label": f"repository {path}", "url": url}
    return {"label": f"namespace {namespace}", "url": f"{PREFIX}/namespaces/{seg(namespace)}"}


async def policies(ctx: Ctx) -> Response:
    kind = ctx.query("type")
    kind = kind if kind in POLICY_FILTERS else ""
    items, next_url = await ctx.listing("/api/v1/ram/policies", {"type": POLICY_FILTERS[kind]})
    for item in items:
        item["managed_link"] = managed_link(item)
    return ctx.render(
        "ram_policies.html", nav="policies", items=items, kind=kind, next_url=next_url
    )


def _parse_document(text: str) -> tuple[Any, str | None]:
    try:
        return jsontext.loads(text), None
    except jsontext.TooDeep as exc:
        return None, f"The document is refused: its {exc}."
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
            may=ctx.may,
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
            may=ctx.may,
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
    may = await may_on(ctx, POLICY_ACTIONS, name)
    if ctx.request.method == "GET":
        return ctx.render(
            "ram_policy.html",
            nav="policies",
            policy=found,
            may=may,
            name=name,
            document=json.dumps(found.get("document"), indent=2),
            errors={},
            versions=await _versions(ctx, name),
            managed=managed_link(found),
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
            may=may,
            name=name,
            document=text,
            errors=errors,
            versions=await _versions(ctx, name),
        )
    return ctx.redirect(f"{PREFIX}/ram/policies/{seg(name)}", f"Policy {name} saved.")


async def policy_delete(ctx: Ctx) -> Response:
    name = ctx.param("policy")
    return await ctx.act(
        "DELETE",
        f"/api/v1/ram/policies/{seg(name)}",
        then=f"{PREFIX}/ram/policies",
        said=f"Policy {name} deleted.",
        back=f"{PREFIX}/ram/policies/{seg(name)}",
    )


# -- groups ------------------------------------------------------------------------------


async def _groups_page(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    items, next_url = await ctx.listing("/api/v1/ram/groups")
    return ctx.render(
        "ram_groups.html",
        status,
        nav="groups",
        items=items,
        next_url=next_url,
        errors=errors or {},
        values=values or {"name": "", "description": ""},
        open_create=bool(errors) or ctx.query("create") == "1",
    )


async def groups(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _groups_page(ctx)
    values = {
        "name": ctx.form.get("name", "").strip(),
        "description": ctx.form.get("description", "").strip(),
    }
    return await ctx.act(
        "POST",
        "/api/v1/ram/groups",
        values,
        then=f"{PREFIX}/ram/groups/{seg(values['name'])}",
        said=f"Group {values['name']} created.",
        page=partial(_groups_page, values=values),
        invalid={} if values["name"] else {"name": "Enter a group name."},
        status=400,
    )


async def group_page(
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
        may=await holder_may(ctx, GROUP_ACTIONS, "group", name),
        members=members,
        candidates=[u["name"] for u in users if u.get("login") not in members],
        attachable=[p for p in await _policy_names(ctx) if p["name"] not in attached],
        errors=errors or {},
    )


async def group_add_member(ctx: Ctx) -> Response:
    user = ctx.form.get("user", "").strip()
    return await ctx.act(
        "PUT",
        f"{GROUP.api(ctx)}/members/{seg(user)}",
        then=GROUP.url(ctx),
        said=f"{user} added to the group.",
        page=group_page,
        key="members",
        invalid=None if user else "Choose a user.",
    )


async def group_remove_member(ctx: Ctx) -> Response:
    member = ctx.param("member")
    return await ctx.act(
        "DELETE",
        f"{GROUP.api(ctx)}/members/{seg(member)}",
        then=GROUP.url(ctx),
        said=f"{member} removed from the group.",
    )


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
    items, next_url = await ctx.listing("/api/v1/ram/roles")
    return ctx.render("ram_roles.html", nav="roles", items=items, next_url=next_url)


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


async def _role_page(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    item = await ctx.api.get(ROLE.api(ctx))
    attached = set(item.get("policies", []))
    return ctx.render(
        "ram_role.html",
        status,
        nav="roles",
        role=item,
        may=await holder_may(ctx, ROLE_ACTIONS, "role", str(item["name"])),
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
                ROLE.api(ctx),
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
    return ctx.redirect(ROLE.url(ctx), "Role saved.")


# -- what policies attach to: users, groups and roles -------------------------------------


@dataclass(frozen=True)
class Holder:
    """A kind of RAM identity that policies are attached to, with its page."""

    kind: str  # ``users``, ``groups`` or ``roles``: in API and console paths
    param: str  # the route parameter that names one
    label: str  # in messages
    page: Rerender

    def name(self, ctx: Ctx) -> str:
        return ctx.param(self.param)

    def api(self, ctx: Ctx) -> str:
        return f"/api/v1/ram/{self.kind}/{seg(self.name(ctx))}"

    def url(self, ctx: Ctx) -> str:
        return f"{PREFIX}/ram/{self.kind}/{seg(self.name(ctx))}"

    async def attach(self, ctx: Ctx) -> Response:
        policy = ctx.form.get("policy", "").strip()
        return await ctx.act(
            "PUT",
            f"{self.api(ctx)}/policies/{seg(policy)}",
            then=self.url(ctx),
            said=f"Policy {policy} attached.",
            page=self.page,
            key="policies",
            invalid=None if policy else "Choose a policy.",
        )

    async def detach(self, ctx: Ctx) -> Response:
        policy = ctx.param("policy")
        return await ctx.act(
            "DELETE",
            f"{self.api(ctx)}/policies/{seg(policy)}",
            then=self.url(ctx),
            said=f"Policy {policy} detached.",
        )

    async def delete(self, ctx: Ctx) -> Response:
        return await ctx.act(
            "DELETE",
            self.api(ctx),
            then=f"{PREFIX}/ram/{self.kind}",
            said=f"{self.label} {self.name(ctx)} deleted.",
            back=self.url(ctx),
        )


USER = Holder("users", "user", "RAM user", user_page)
GROUP = Holder("groups", "group", "Group", group_page)
ROLE = Holder("roles", "role", "Role", _role_page)
