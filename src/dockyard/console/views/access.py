"""The caller's own credentials ("Access Credential"), accounts for the instance
administrator, and the audit log."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx, seg

AUDIT_FILTERS = ("actor", "action", "allowed", "since", "until", "account")


def routes(console: Console) -> list[Route]:
    page = console.page
    found = [
        Route(f"{PREFIX}/credentials", page(credentials)),
        Route(
            f"{PREFIX}/credentials/registry-password",
            page(my_registry_password),
            methods=["POST"],
        ),
        Route(f"{PREFIX}/credentials/password", page(my_console_password), methods=["POST"]),
        Route(f"{PREFIX}/credentials/temporary", page(temporary_login), methods=["POST"]),
        Route(f"{PREFIX}/credentials/access-keys", page(my_key_create), methods=["POST"]),
        Route(
            f"{PREFIX}/credentials/access-keys/{{key}}/delete",
            page(my_key_delete),
            methods=["POST"],
        ),
        Route(f"{PREFIX}/accounts", page(accounts), methods=["GET", "POST"]),
        Route(f"{PREFIX}/accounts/{{name}}/quota", page(account_quota), methods=["POST"]),
        Route(f"{PREFIX}/audit", page(audit)),
    ]
    needs = {
        f"{PREFIX}/credentials/password": ("/api/v1/me/password", "PUT"),
        f"{PREFIX}/credentials/access-keys": ("/api/v1/me/access-keys", "POST"),
        f"{PREFIX}/credentials/access-keys/{{key}}/delete": (
            "/api/v1/me/access-keys/{}",
            "DELETE",
        ),
        f"{PREFIX}/audit": ("/api/v1/audit", "GET"),
    }
    return [r for r in found if r.path not in needs or console.has(*needs[r.path])]


# -- Access Credential -------------------------------------------------------------------


async def credentials(
    ctx: Ctx,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    temporary: dict[str, Any] | None = None,
    new_key: dict[str, Any] | None = None,
) -> Response:
    keys: list[dict[str, Any]] | None = None
    if ctx.has("/api/v1/me/access-keys"):
        try:
            body = await ctx.api.get("/api/v1/me/access-keys")
            keys = list(body.get("items", []))
        except ApiProblem as exc:
            if exc.status != 403:  # STS sessions have no keys of their own
                raise
    return ctx.render(
        "credentials.html",
        status,
        nav="credentials",
        errors=errors or {},
        temporary=temporary,
        keys=keys,
        new_key=new_key,
        host=ctx.instance["registry_host"],
    )


async def my_registry_password(ctx: Ctx) -> Response:
    password, confirm = ctx.form.get("password", ""), ctx.form.get("confirm", "")
    error = None
    if not password:
        error = "Enter a password."
    elif password != confirm:
        error = "The two passwords differ."
    return await ctx.act(
        "PUT",
        "/api/v1/me/registry-password",
        {"password": password},
        then=f"{PREFIX}/credentials",
        said="Registry password set: use it with docker login from now on.",
        page=credentials,
        key="registry_password",
        invalid=error,
        status=400,
    )


# The fields of the console password form.
CURRENT, NEW, CONFIRM = "current_password", "new_password", "confirm_password"


async def my_console_password(ctx: Ctx) -> Response:
    """Change one's own console password; the current one is required."""
    current, password = ctx.form.get(CURRENT, ""), ctx.form.get(NEW, "")
    errors: dict[str, str] = {}
    if not current:
        errors[CURRENT] = "Enter your current password."
    if not password:
        errors[NEW] = "Enter a new password."
    elif password != ctx.form.get(CONFIRM, ""):
        errors[CONFIRM] = "The two passwords differ."
    if not errors:
        try:
            await ctx.api.put(
                "/api/v1/me/password", {"current_password": current, "password": password}
            )
        except ApiProblem as exc:
            # 403: the current password is wrong; 400: the new one is refused (too short).
            errors[{403: CURRENT, 400: NEW}.get(exc.status, "console_password")] = exc.detail
            return await credentials(ctx, exc.status, errors=errors)
    if errors:
        return await credentials(ctx, 400, errors=errors)
    return ctx.redirect(
        f"{PREFIX}/credentials",
        "Console password changed: sign in with the new one from now on.",
    )


async def temporary_login(ctx: Ctx) -> Response:
    try:
        found = await ctx.api.post("/api/v1/tokens")
    except ApiProblem as exc:
        return await credentials(ctx, exc.status, errors={"temporary": exc.detail})
    # Rendered in this response only: the password is never kept by the console.
    return await credentials(ctx, 201, temporary=found)


async def my_key_create(ctx: Ctx) -> Response:
    try:
        created = await ctx.api.post("/api/v1/me/access-keys")
    except ApiProblem as exc:
        return await credentials(ctx, exc.status, errors={"access_keys": exc.detail})
    return await credentials(ctx, 201, new_key=created)


async def my_key_delete(ctx: Ctx) -> Response:
    key = ctx.param("key")
    return await ctx.act(
        "DELETE",
        f"/api/v1/me/access-keys/{seg(key)}",
        then=f"{PREFIX}/credentials",
        said=f"Access key {key} deleted.",
    )


# -- accounts (instance administrator) ---------------------------------------------------


def _int(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return None


async def _accounts_page(
    ctx: Ctx, status: int = 200, *, errors: dict[str, str] | None = None, **values: Any
) -> Response:
    items, next_url = await ctx.listing("/api/v1/accounts")
    defaults = {"name": "", "namespace_quota": "3", "repository_quota": "300", "edit": ""}
    return ctx.render(
        "accounts.html",
        status,
        nav="accounts",
        items=items,
        next_url=next_url,
        errors=errors or {},
        values={**defaults, **values},
        open_create=bool(errors and "create" in errors) or ctx.query("create") == "1",
    )


async def accounts(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return await _accounts_page(ctx)
    name = ctx.form.get("name", "").strip()
    password, confirm = ctx.form.get("password", ""), ctx.form.get("confirm", "")
    quota_text = ctx.form.get("namespace_quota", "3")
    repo_text = ctx.form.get("repository_quota", "300")
    error = None
    quota, repo_quota = _int(quota_text), _int(repo_text)
    if not name:
        error = "Enter an account name."
    elif not password:
        error = "Enter a password for the account's root user."
    elif password != confirm:
        error = "The two passwords differ."
    elif quota is None or repo_quota is None:
        error = "Quotas are whole numbers."
    return await ctx.act(
        "POST",
        "/api/v1/accounts",
        {
            "name": name,
            "password": password,
            "namespace_quota": quota,
            "repository_quota": repo_quota,
        },
        then=f"{PREFIX}/accounts",
        said=f"Account {name} created.",
        page=partial(
            _accounts_page, name=name, namespace_quota=quota_text, repository_quota=repo_text
        ),
        key="create",
        invalid=error,
        status=400,
    )


async def account_quota(ctx: Ctx) -> Response:
    name = ctx.param("name")
    change: dict[str, int] = {}
    error = None
    for key in ("namespace_quota", "repository_quota"):
        text = ctx.form.get(key)
        if text is None or not text.strip():
            continue
        value = _int(text)
        if value is None:
            error = f"The {key.replace('_', ' ')} is a whole number."
            break
        change[key] = value
    if error is None and not change:
        error = "Enter a quota."
    return await ctx.act(
        "PATCH",
        f"/api/v1/accounts/{seg(name)}",
        change,
        then=f"{PREFIX}/accounts",
        said=f"Quota of {name} saved.",
        page=partial(_accounts_page, edit=name),
        key=name,
        invalid=error,
        status=400,
    )


# -- audit log ---------------------------------------------------------------------------


async def audit(ctx: Ctx) -> Response:
    filters = {key: ctx.query(key) for key in AUDIT_FILTERS}
    items, next_url = await ctx.listing("/api/v1/audit", filters)
    return ctx.render(
        "audit.html",
        nav="audit",
        items=[_audit_json(e) for e in items],
        filters=filters,
        next_url=next_url,
    )


def _audit_json(entry: dict[str, Any]) -> dict[str, Any]:
    """A record as the page shows it: the decision (allowed or denied) and how the request
    ended (``404 Not Found``, failed) in columns of their own."""
    return {
        "at": entry.get("at"),
        "actor": entry.get("actor") or "anonymous",
        "action": entry.get("action") or "",
        "resource": entry.get("resource") or "",
        "source_ip": entry.get("source_ip") or "",
        "allowed": bool(entry.get("allowed")),
        "outcome": entry.get("outcome") or "",
        "status": entry.get("status"),
        "detail": entry.get("detail") or "",
    }
