"""The instance overview, namespaces and repositories."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import (
    PREFIX,
    Console,
    Ctx,
    Rerender,
    allows,
    may_on,
    page_url,
    seg,
)
from dockyard.console.views.builds import build_tab, source_body
from dockyard.console.views.webhooks import HookList, Where, hook_list
from dockyard.oci.reference import COMPONENT

ROLES = ("read-only", "write", "admin")
CREATE_NAMESPACE = "cr:CreateNamespace"
CREATE_REPOSITORY = "cr:CreateRepository"
LIST_PERMISSIONS = "cr:ListRepositoryPermission"
BIND_SOURCE = "cr:UpdateRepoSourceRepo"


def routes(console: Console) -> list[Route]:
    page = console.page
    ns = f"{PREFIX}/namespaces/{{ns}}"
    repo = f"{PREFIX}/repositories/{{ns}}/{{repo}}"
    found = [
        Route(f"{PREFIX}/", page(overview)),
        Route(f"{PREFIX}/namespaces", page(namespaces), methods=["GET", "POST"]),
        Route(ns, page(namespace)),
        Route(f"{ns}/settings", page(namespace_settings), methods=["POST"]),
        Route(f"{ns}/delete", page(namespace_delete), methods=["POST"]),
        Route(f"{ns}/permissions", page(namespace_grant), methods=["POST"]),
        Route(f"{ns}/permissions/{{who}}/revoke", page(namespace_revoke), methods=["POST"]),
        Route(f"{PREFIX}/repositories", page(repositories)),
        Route(f"{PREFIX}/repositories/new", page(repository_new), methods=["GET", "POST"]),
        Route(repo, page(repository)),
        Route(f"{repo}/edit", page(repository_edit), methods=["POST"]),
        Route(f"{repo}/delete", page(repository_delete), methods=["POST"]),
        Route(f"{repo}/tags/{{tag}}/delete", page(tag_delete), methods=["POST"]),
        Route(f"{repo}/permissions", page(repository_grant), methods=["POST"]),
        Route(f"{repo}/permissions/{{who}}/revoke", page(repository_revoke), methods=["POST"]),
    ]
    # A page exists only where the API behind it does.
    needs = {
        f"{ns}/settings": ("/api/v1/namespaces/{}", "PATCH"),
        f"{ns}/permissions": ("/api/v1/namespaces/{}/permissions/{}", "PUT"),
        f"{ns}/permissions/{{who}}/revoke": ("/api/v1/namespaces/{}/permissions/{}", "DELETE"),
        f"{PREFIX}/repositories": ("/api/v1/repositories", "GET"),
        f"{PREFIX}/repositories/new": ("/api/v1/repositories", "POST"),
        repo: ("/api/v1/repositories/{}/{}", "GET"),
        f"{repo}/edit": ("/api/v1/repositories/{}/{}", "PATCH"),
        f"{repo}/delete": ("/api/v1/repositories/{}/{}", "DELETE"),
        f"{repo}/tags/{{tag}}/delete": ("/api/v1/repositories/{}/{}/tags/{}", "DELETE"),
        f"{repo}/permissions": ("/api/v1/repositories/{}/{}/permissions/{}", "PUT"),
        f"{repo}/permissions/{{who}}/revoke": (
            "/api/v1/repositories/{}/{}/permissions/{}",
            "DELETE",
        ),
    }
    return [r for r in found if r.path not in needs or console.has(*needs[r.path])]


# -- helpers -----------------------------------------------------------------------------


async def _all(ctx: Ctx, path: str, params: dict[str, str] | None = None) -> tuple[list[Any], bool]:
    """Up to 1,000 items of a listing, and whether there are more."""
    body = await ctx.api.get(path, {"limit": "1000", **(params or {})})
    return list(body.get("items", [])), bool(body.get("next"))


def _count(ctx: Ctx, key: str) -> int | None:
    """A number from ``/api/v1/me`` (quotas and usage of the caller's account)."""
    value = ctx.me.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def ns_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **item,
        "account": item.get("account") or "",
        "allowed_actions": list(item.get("allowed_actions") or []),
        "auto_create_repo": bool(item.get("auto_create_repo", True)),
        "default_repo_type": item.get("default_repo_type") or "private",
    }


def repo_json(item: dict[str, Any]) -> dict[str, Any]:
    """A repository as the templates use it, whatever optional fields the API sends."""
    kind = item.get("repo_type") or item.get("repository_type") or item.get("type")
    if kind is None and "public" in item:
        kind = "public" if item["public"] else "private"
    return {
        **item,
        "account": item.get("account") or "",
        "allowed_actions": list(item.get("allowed_actions") or []),
        "namespace": item.get("namespace", ""),
        "name": item.get("name", ""),
        "repo_type": kind or "private",
        "summary": item.get("summary") or "",
        "detail": item.get("detail") or "",
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "tag_count": item.get("tag_count"),
        "size": item.get("size"),
    }


def tag_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **item,
        "tag": item.get("name") or item.get("tag") or "",
        "digest": item.get("digest") or "",
        "size": item.get("size"),
        "pushed_at": item.get("pushed_at") or item.get("updated_at"),
        "media_type": item.get("media_type") or item.get("mediaType") or "",
    }


def permission_json(item: dict[str, Any]) -> dict[str, Any]:
    kind = str(item.get("subject_type") or "user")
    who = str(item.get("subject") or "")
    return {**item, "kind": kind, "who": who, "key": f"{kind}:{who}"}


async def _ram_choices(ctx: Ctx) -> dict[str, list[str]]:
    """RAM users and groups a permission can be granted to (when the caller may list them)."""
    choices: dict[str, list[str]] = {"users": [], "groups": []}
    try:
        users, _ = await _all(ctx, "/api/v1/ram/users")
        choices["users"] = [u["name"] for u in users]
        if ctx.has("/api/v1/ram/groups"):
            groups, _ = await _all(ctx, "/api/v1/ram/groups")
            choices["groups"] = [g["name"] for g in groups]
    except ApiProblem:
        pass
    return choices


def _grant_error(who: str, kind: str, role: str) -> str | None:
    if not who:
        return "Enter the name of a RAM user or group."
    if kind not in ("user", "group"):
        return "Choose a user or a group."
    if role not in ROLES:
        return "Choose read-only, write or admin."
    return None


async def _grant(ctx: Ctx, base: str, url: str, page: Rerender) -> Response:
    """A grant form's action on the namespace or repository at ``base`` (API) and
    ``url`` (console), shown on ``page``."""
    who = ctx.form.get("principal", "").strip()
    kind = ctx.form.get("kind", "user")
    role = ctx.form.get("role", "")
    return await ctx.act(
        "PUT",
        f"{base}/permissions/{seg(f'{kind}:{who}')}",
        {"role": role},
        then=url,
        said=f"Granted {role} to {who}.",
        page=page,
        key="grant",
        invalid=_grant_error(who, kind, role),
    )


async def _revoke(ctx: Ctx, base: str, url: str) -> Response:
    who = ctx.param("who")
    return await ctx.act(
        "DELETE",
        f"{base}/permissions/{seg(who)}",
        then=url,
        said=f"Revoked the permission of {who}.",
    )


# -- instance ----------------------------------------------------------------------------


async def overview(ctx: Ctx) -> Response:
    """The instance, and what the caller has of it: a root its account's use against the
    quotas; the administrator every account's namespaces and repositories; a RAM user
    (or STS session) those it may see, with the quota only when it may create more."""
    namespaces, _ = await _all(ctx, "/api/v1/namespaces")
    ns_count, repo_count = _count(ctx, "namespace_count"), _count(ctx, "repository_count")
    whole_account = bool(ctx.me.get("is_root")) and not ctx.me.get("is_instance_admin")
    if not whole_account:
        ns_count = len(namespaces)
        repo_count = None
        if ctx.has("/api/v1/repositories"):
            repos, _ = await _all(ctx, "/api/v1/repositories")
            repo_count = len(repos)
    may_create_repository = any(allows(n, CREATE_REPOSITORY) for n in namespaces)
    may_create_namespace = CREATE_NAMESPACE in ctx.may
    quotas = whole_account or not ctx.me.get("is_instance_admin")
    return ctx.render(
        "overview.html",
        nav="instance",
        namespace_count=ns_count,
        namespace_quota=_count(ctx, "namespace_quota") if quotas and may_create_namespace else None,
        repository_count=repo_count,
        repository_quota=_count(ctx, "repository_quota")
        if quotas and may_create_repository
        else None,
        may_create_namespace=may_create_namespace,
        may_create_repository=may_create_repository and ctx.has("/api/v1/repositories", "POST"),
    )


# -- namespaces --------------------------------------------------------------------------


async def _accounts(ctx: Ctx) -> list[str]:
    """The accounts the administrator may filter a listing by (none for anyone else)."""
    if "cr:ListAccount" not in ctx.may:
        return []
    found, _ = await _all(ctx, "/api/v1/accounts")
    return [str(a["name"]) for a in found]


async def _usage(ctx: Ctx, account: str, what: str) -> tuple[int | None, int | None]:
    """(used, quota) of ``what`` (``namespace`` or ``repository``) the quota line shows:
    of the account the administrator filters by; of the caller's own account when it may
    create more (a RAM user who may not is shown no quota: it is not its to use)."""
    if ctx.me.get("is_instance_admin"):
        if not account:
            return None, None  # every account's rows: each has its own quota
        try:
            found = await ctx.api.get(f"/api/v1/accounts/{seg(account)}")
        except ApiProblem:
            return None, None
        return found.get(f"{what}_count"), found.get(f"{what}_quota")
    return _count(ctx, f"{what}_count"), _count(ctx, f"{what}_quota")


async def _namespaces_page(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None, name: str = ""
) -> Response:
    account = ctx.query("account")
    items, next_url = await ctx.listing("/api/v1/namespaces", {"account": account})
    may_create = CREATE_NAMESPACE in ctx.may
    used, quota = await _usage(ctx, account, "namespace") if may_create else (None, None)
    return ctx.render(
        "namespaces.html",
        status,
        nav="namespaces",
        items=[ns_json(n) for n in items],
        next_url=next_url,
        used=used,
        quota=quota,
        may_create=may_create,
        accounts=await _accounts(ctx),
        account=account,
        error=(errors or {}).get("name"),
        name=name,
        open_create=bool(errors) or ctx.query("create") == "1",
    )


async def namespaces(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _namespaces_page(ctx)
    name = ctx.form.get("name", "").strip()
    default_type = ctx.form.get("default_repo_type", "private")
    auto = ctx.form.get("auto_create_repo", "on") == "on"
    return await ctx.act(
        "POST",
        "/api/v1/namespaces",
        {"name": name, "auto_create_repo": auto, "default_repo_type": default_type},
        then=f"{PREFIX}/namespaces/{seg(name)}",
        said=f"Namespace {name} created.",
        page=partial(_namespaces_page, name=name),
        key="name",
        invalid=None if name else "Enter a name for the namespace.",
        status=400,
    )


NAMESPACE_PAGE_REPOSITORIES = 20
"""Repositories a namespace's page lists (the rest: its link to the filtered list)."""


async def namespace(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None, **values: Any
) -> Response:
    name = ctx.param("ns")
    item = ns_json(await ctx.api.get(f"/api/v1/namespaces/{seg(name)}"))
    permissions: list[dict[str, Any]] | None = None
    choices: dict[str, list[str]] = {"users": [], "groups": []}
    perm_path = "/api/v1/namespaces/{}/permissions"
    has_permissions = ctx.has(perm_path) and allows(item, LIST_PERMISSIONS)
    if has_permissions:
        try:
            found, _ = await _all(ctx, f"/api/v1/namespaces/{seg(name)}/permissions")
            permissions = [permission_json(p) for p in found]
        except ApiProblem as exc:
            if exc.status != 403:
                raise
        choices = await _ram_choices(ctx)
    hooks: HookList | None = None
    if ctx.has("/api/v1/namespaces/{}/webhooks") and allows(item, "cr:ListNamespaceWebhook"):
        hooks = await hook_list(ctx, Where.of(ctx), item["allowed_actions"])
    repo_count: int | None = None
    repos: list[dict[str, Any]] = []
    if ctx.has("/api/v1/repositories"):
        try:
            found_repos, _ = await _all(ctx, "/api/v1/repositories", {"namespace": name})
            repo_count = len(found_repos)
            repos = [repo_json(r) for r in found_repos[:NAMESPACE_PAGE_REPOSITORIES]]
        except ApiProblem:
            repo_count = None
    return ctx.render(
        "namespace.html",
        status,
        nav="namespaces",
        ns=item,
        permissions=permissions,
        choices=choices,
        roles=ROLES,
        repo_count=repo_count,
        repos=repos,
        hooks=hooks,
        has_permissions=has_permissions,
        can_edit=ctx.has("/api/v1/namespaces/{}", "PATCH") and allows(item, "cr:UpdateNamespace"),
        errors=errors or {},
        **values,
    )


def _ns_api(ctx: Ctx) -> str:
    return f"/api/v1/namespaces/{seg(ctx.param('ns'))}"


def _ns_url(ctx: Ctx) -> str:
    return f"{PREFIX}/namespaces/{seg(ctx.param('ns'))}"


async def namespace_settings(ctx: Ctx) -> Response:
    auto = ctx.form.get("auto_create_repo")
    kind = ctx.form.get("default_repo_type")
    chosen = auto in ("on", "off") and kind in ("public", "private")
    return await ctx.act(
        "PATCH",
        _ns_api(ctx),
        {"auto_create_repo": auto == "on", "default_repo_type": kind},
        then=_ns_url(ctx),
        said="Namespace settings saved.",
        page=namespace,
        key="settings",
        invalid=None if chosen else "Choose both settings.",
    )


async def namespace_delete(ctx: Ctx) -> Response:
    return await ctx.act(
        "DELETE",
        _ns_api(ctx),
        then=f"{PREFIX}/namespaces",
        said=f"Namespace {ctx.param('ns')} deleted.",
        back=_ns_url(ctx),
    )


async def namespace_grant(ctx: Ctx) -> Response:
    return await _grant(ctx, _ns_api(ctx), _ns_url(ctx), namespace)


async def namespace_revoke(ctx: Ctx) -> Response:
    return await _revoke(ctx, _ns_api(ctx), _ns_url(ctx))


# -- repositories ------------------------------------------------------------------------


async def repositories(ctx: Ctx) -> Response:
    namespace_filter, search, account = ctx.query("namespace"), ctx.query("q"), ctx.query("account")
    found, next_url = await ctx.listing(
        "/api/v1/repositories", {"namespace": namespace_filter, "q": search, "account": account}
    )
    spaces, _ = await _all(ctx, "/api/v1/namespaces", {"account": account})
    may_create = ctx.has("/api/v1/repositories", "POST") and any(
        allows(n, CREATE_REPOSITORY) for n in spaces
    )
    used, quota = await _usage(ctx, account, "repository") if may_create else (None, None)
    return ctx.render(
        "repositories.html",
        nav="repositories",
        items=[repo_json(r) for r in found],
        namespaces=[n["name"] for n in spaces],
        namespace_filter=namespace_filter,
        search=search,
        next_url=next_url,
        quota=quota,
        used=used,
        may_create=may_create,
        accounts=await _accounts(ctx),
        account=account,
    )


_REPO_FIELDS = ("namespace", "name", "summary", "repo_type", "detail")


def _namespace_choices(ctx: Ctx, spaces: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The namespaces a repository may be created in, by owning account: the caller's
    own account first, then the others (only the administrator sees others)."""
    own = str(ctx.me.get("account") or "")
    groups: dict[str, list[str]] = {}
    for n in spaces:
        if allows(n, CREATE_REPOSITORY):
            groups.setdefault(str(n.get("account") or own), []).append(str(n["name"]))
    order = sorted(groups, key=lambda a: (a != own, a))
    return [(a, groups[a]) for a in order]


async def _may_bind(ctx: Ctx, namespace: str) -> bool:
    """Whether step 2 of creating a repository offers a git code source: the API's batch
    check of binding one to a repository of any name in ``namespace``."""
    if not ctx.has("/api/v1/repositories/{}/{}/source", "PUT"):
        return False
    try:
        return BIND_SOURCE in await may_on(ctx, (BIND_SOURCE,), namespace)
    except ApiProblem:  # a name the check refuses: no repository is made there either
        return False


async def repository_new(ctx: Ctx) -> Response:
    spaces, _ = await _all(ctx, "/api/v1/namespaces")
    choices = _namespace_choices(ctx, spaces)
    names = [n for _, group in choices for n in group]
    # The administrator picks the namespace (and so the account) explicitly; anyone else
    # has only their own account's to choose from.
    preselect = names[0] if names and not ctx.me.get("is_instance_admin") else ""
    if ctx.request.method == "GET":
        values = {
            "namespace": ctx.query("namespace") or preselect,
            "name": "",
            "summary": "",
            "repo_type": "private",
            "detail": "",
        }
        return ctx.render(
            "repository_new.html",
            nav="repositories",
            step=1,
            values=values,
            namespaces=names,
            choices=choices,
            errors={},
            may_bind=False,
        )
    values = {key: ctx.form.get(key, "").strip() for key in _REPO_FIELDS}
    values["detail"] = ctx.form.get("detail", "")
    errors: dict[str, str] = {}
    if not values["namespace"]:
        errors["namespace"] = "Choose a namespace."
    if not values["name"]:
        errors["name"] = "Enter a repository name."
    elif not COMPONENT.match(values["name"]):
        errors["name"] = (
            "Use lower-case letters, digits and separators (. _ -) between them, "
            "for example web-app."
        )
    if len(values["summary"]) > 100:
        errors["summary"] = "Keep the summary to 100 characters."
    if values["repo_type"] not in ("public", "private"):
        errors["repo_type"] = "Choose public or private."
    may_bind = not errors and await _may_bind(ctx, values["namespace"])
    step = ctx.form.get("step", "1")
    if errors or step == "1" or ctx.form.get("back"):
        return ctx.render(
            "repository_new.html",
            400 if errors else 200,
            nav="repositories",
            step=1 if errors or ctx.form.get("back") else 2,
            values=values,
            namespaces=names,
            choices=choices,
            errors=errors,
            may_bind=may_bind,
        )
    source = ctx.form.get("source")
    if source not in ("local", "git"):
        errors["source"] = "Choose the code source."
    elif source == "git" and not may_bind:
        errors["source"] = "You may not bind a code source to repositories of this namespace."
    elif source == "git" and not ctx.form.get("url", "").strip():
        errors["source"] = "Enter the URL of the git repository."
    if not errors:
        try:
            await ctx.api.post(
                "/api/v1/repositories",
                {
                    "namespace": values["namespace"],
                    "name": values["name"],
                    "repo_type": values["repo_type"],
                    "summary": values["summary"],
                    "detail": values["detail"],
                },
            )
        except ApiProblem as exc:
            # Most refusals concern the information of step 1: show it again to fix.
            return ctx.render(
                "repository_new.html",
                exc.status,
                nav="repositories",
                step=1,
                values=values,
                namespaces=names,
                choices=choices,
                errors={"form": exc.detail},
                may_bind=may_bind,
            )
    if errors:
        return ctx.render(
            "repository_new.html",
            400,
            nav="repositories",
            step=2,
            values=values,
            namespaces=names,
            choices=choices,
            errors=errors,
            may_bind=may_bind,
        )
    full = f"{seg(values['namespace'])}/{seg(values['name'])}"
    if source == "git":
        # Bound in the same step: a refused source leaves the repository, said plainly.
        try:
            bound = await ctx.api.put(f"/api/v1/repositories/{full}/source", source_body(ctx.form))
        except ApiProblem as exc:
            return ctx.redirect(
                f"{PREFIX}/repositories/{full}?tab=build",
                f"Repository {values['namespace']}/{values['name']} created, but the code "
                f"source was refused: {exc.detail}",
                "error",
            )
        return ctx.render(
            "build_hook_secret.html",
            nav="repositories",
            full=f"{values['namespace']}/{values['name']}",
            back=f"{PREFIX}/repositories/{full}?tab=build",
            source=bound,
        )
    return ctx.redirect(
        f"{PREFIX}/repositories/{full}",
        f"Repository {values['namespace']}/{values['name']} created.",
    )


async def repository(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    edit: dict[str, str] | None = None,
) -> Response:
    base = _repo_api(ctx)
    item = repo_json(await ctx.api.get(base))
    tab = ctx.query("tab") or "tags"
    if errors and "grant" in errors:
        tab = "permissions"
    if edit is not None:
        tab = "info"
    tags: list[dict[str, Any]] = []
    next_url = None
    sorting = TagSort.of(ctx)
    if tab == "tags":
        found, next_url = await ctx.listing(f"{base}/tags", sorting.filters())
        tags = [tag_json(t) for t in found]
    permissions: list[dict[str, Any]] | None = None
    choices: dict[str, list[str]] = {"users": [], "groups": []}
    has_permissions = ctx.has("/api/v1/repositories/{}/{}/permissions") and allows(
        item, LIST_PERMISSIONS
    )
    if tab == "permissions" and has_permissions:
        granted, _ = await _all(ctx, f"{base}/permissions")
        permissions = [permission_json(p) for p in granted]
        choices = await _ram_choices(ctx)
    security: dict[str, Any] | None = None
    if (
        tab == "info"
        and ctx.has("/api/v1/repositories/{}/{}/security")
        and allows(item, "cr:GetRepoSecuritySetting")
    ):
        try:
            security = await ctx.api.get(f"{base}/security")
        except ApiProblem:
            security = None
    has_webhooks = ctx.has("/api/v1/repositories/{}/{}/webhooks") and allows(
        item, "cr:ListRepoWebhook"
    )
    hooks: HookList | None = None
    if tab == "webhooks" and has_webhooks:
        hooks = await hook_list(ctx, Where.of(ctx), item["allowed_actions"])
    has_build = ctx.has("/api/v1/repositories/{}/{}/source") and allows(item, "cr:GetRepoBuildList")
    build = await build_tab(ctx, base) if tab == "build" and has_build else None
    source = None
    if tab == "info" and has_build:
        with suppress(ApiProblem):
            source = await ctx.api.get(f"{base}/source")
    return ctx.render(
        "repository.html",
        status,
        nav="repositories",
        repo=item,
        tab=tab,
        tags=tags,
        next_url=next_url,
        sorting=sorting,
        permissions=permissions,
        has_permissions=has_permissions,
        has_webhooks=has_webhooks,
        hooks=hooks,
        security=security,
        has_build=has_build,
        build=build,
        source=source,
        choices=choices,
        roles=ROLES,
        errors=errors or {},
        edit=edit
        or {"summary": item["summary"], "detail": item["detail"], "repo_type": item["repo_type"]},
        host=ctx.instance["registry_host"],
    )


TAG_ORDERS = {"pushed": "desc", "name": "asc", "size": "desc"}
"""The tag table's orders, each with the direction it starts in (the API's)."""


@dataclass(frozen=True)
class TagSort:
    """The tag table's search and order, from the page's query (anything unknown is
    the default: the latest pushed first)."""

    request: Request
    search: str
    order: str
    direction: str

    @classmethod
    def of(cls, ctx: Ctx) -> TagSort:
        order = ctx.query("order")
        order = order if order in TAG_ORDERS else "pushed"
        direction = ctx.query("direction")
        direction = direction if direction in ("asc", "desc") else TAG_ORDERS[order]
        return cls(ctx.request, ctx.query("q").strip(), order, direction)

    def filters(self) -> dict[str, str]:
        return {"q": self.search, "order": self.order, "direction": self.direction}

    def url(self, order: str) -> str:
        """This page sorted by ``order``: the other way round when it already is."""
        direction = TAG_ORDERS[order]
        if order == self.order:
            direction = "asc" if self.direction == "desc" else "desc"
        return page_url(self.request, order=order, direction=direction, after=None, tab="tags")

    def aria(self, order: str) -> str:
        """``aria-sort`` of the column for ``order``."""
        if order != self.order:
            return "none"
        return "ascending" if self.direction == "asc" else "descending"


def _repo_api(ctx: Ctx) -> str:
    return f"/api/v1/repositories/{seg(ctx.param('ns'))}/{seg(ctx.param('repo'))}"


def _repo_url(ctx: Ctx, tab: str | None = None) -> str:
    url = f"{PREFIX}/repositories/{seg(ctx.param('ns'))}/{seg(ctx.param('repo'))}"
    return f"{url}?tab={tab}" if tab else url


async def repository_edit(ctx: Ctx) -> Response:
    edit = {
        "summary": ctx.form.get("summary", "").strip(),
        "detail": ctx.form.get("detail", ""),
        "repo_type": ctx.form.get("repo_type", ""),
    }
    chosen = edit["repo_type"] in ("public", "private")
    return await ctx.act(
        "PATCH",
        _repo_api(ctx),
        edit,
        then=_repo_url(ctx, "info"),
        said="Repository information saved.",
        page=partial(repository, edit=edit),
        key="edit",
        invalid=None if chosen else "Choose public or private.",
    )


async def repository_delete(ctx: Ctx) -> Response:
    ns, name = ctx.param("ns"), ctx.param("repo")
    return await ctx.act(
        "DELETE",
        _repo_api(ctx),
        then=f"{PREFIX}/repositories?namespace={seg(ns)}",
        said=f"Repository {ns}/{name} deleted.",
        back=_repo_url(ctx, "info"),
    )


async def tag_delete(ctx: Ctx) -> Response:
    tag = ctx.param("tag")
    return await ctx.act(
        "DELETE",
        f"{_repo_api(ctx)}/tags/{seg(tag)}",
        then=_repo_url(ctx, "tags"),
        said=f"Tag {tag} deleted.",
    )


async def repository_grant(ctx: Ctx) -> Response:
    return await _grant(ctx, _repo_api(ctx), _repo_url(ctx, "permissions"), repository)


async def repository_revoke(ctx: Ctx) -> Response:
    return await _revoke(ctx, _repo_api(ctx), _repo_url(ctx, "permissions"))
