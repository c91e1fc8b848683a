"""Webhooks: a repository's (its Webhooks tab) and a namespace's (a section of its page,
covering every repository in it).

Create and edit them, send a test, rotate the signing secret, delete them, and read
each one's delivery history with the request and response of every delivery. As
everywhere in the console, the API decides: its refusals are shown as they come.

The signing secret is in the API's answer to a create (or a rotation) only; the console
renders it in the response to that POST and keeps it nowhere: not in a URL, not in a
cookie, and the page asks browsers and proxies not to store it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx, allowed, seg
from dockyard.events.model import EVENT_TYPES
from dockyard.webhooks.service import DELIVERY_STATES, FORMATS, MAX_HEADERS
from dockyard.webhooks.triggers import MAX_TAGS, TRIGGER_TYPES

EVENT_LABELS = {
    "push": "Image pushed (a tag set)",
    "manifest_push": "Manifest pushed by digest",
    "tag_delete": "Tag deleted",
    "manifest_delete": "Manifest deleted",
    "repository_create": "Repository created",
    "repository_delete": "Repository deleted",
    "scan_completed": "Scan completed",
    "build_completed": "Build completed",
}
FORMAT_LABELS = {"acr": "ACR (Container Registry JSON)", "cloudevents": "CloudEvents 1.0 JSON"}
TRIGGER_LABELS = {"all": "All tags", "tag_list": "Tag list", "tag_regex": "Regular expression"}
EXAMPLE_TAGS = "latest, v1.2.3, 1.2.3, 1.2.3-rc1, dev"
# The fields a refusal's detail names first ("trigger.regex: …", "events[2]: …").
_FIELD = re.compile(r"(name|url|trigger|events|format|headers)\b[.\[:]")
_HEADER_NAME = re.compile(r"header_name_(\d{1,3})")


def routes(console: Console) -> list[Route]:
    page = console.page
    found: list[Route] = []
    for base, api in (
        (f"{PREFIX}/repositories/{{ns}}/{{repo}}/webhooks", "/api/v1/repositories/{}/{}/webhooks"),
        (f"{PREFIX}/namespaces/{{ns}}/webhooks", "/api/v1/namespaces/{}/webhooks"),
    ):
        if not console.has(api):  # a page exists only where the API behind it does
            continue
        one = f"{base}/{{hook}}"
        found += [
            Route(f"{base}/new", page(create), methods=["GET", "POST"]),
            Route(one, page(webhook)),
            Route(f"{one}/edit", page(edit), methods=["GET", "POST"]),
            Route(f"{one}/delete", page(delete), methods=["POST"]),
            Route(f"{one}/test", page(test), methods=["POST"]),
            Route(f"{one}/rotate-secret", page(rotate_secret), methods=["POST"]),
            Route(f"{one}/deliveries/{{delivery}}", page(delivery)),
            Route(f"{one}/deliveries/{{delivery}}/redeliver", page(redeliver), methods=["POST"]),
        ]
    return found


# -- where webhooks hang -----------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A repository, or a namespace (``repository`` None), as the API and the console
    address its webhooks."""

    namespace: str
    repository: str | None = None

    @classmethod
    def of(cls, ctx: Ctx) -> Where:
        repository = ctx.request.path_params.get("repo")
        return cls(ctx.param("ns"), None if repository is None else str(repository))

    @property
    def kind(self) -> str:
        return "namespace" if self.repository is None else "repository"

    @property
    def label(self) -> str:
        return self.namespace if self.repository is None else f"{self.namespace}/{self.repository}"

    @property
    def nav(self) -> str:
        return "namespaces" if self.repository is None else "repositories"

    @property
    def _path(self) -> str:
        if self.repository is None:
            return f"namespaces/{seg(self.namespace)}"
        return f"repositories/{seg(self.namespace)}/{seg(self.repository)}"

    @property
    def api(self) -> str:
        """The API's collection of these webhooks."""
        return f"/api/v1/{self._path}/webhooks"

    @property
    def owner_url(self) -> str:
        """The console page of the repository or namespace."""
        return f"{PREFIX}/{self._path}"

    @property
    def url(self) -> str:
        """The console's base URL of these webhooks' pages."""
        return f"{self.owner_url}/webhooks"

    @property
    def home(self) -> str:
        """Where the list of these webhooks is shown."""
        if self.repository is None:
            return f"{self.owner_url}#webhooks"
        return f"{self.owner_url}?tab=webhooks"


@dataclass(frozen=True)
class HookList:
    """The webhooks a repository's tab or a namespace's section lists: ``found`` is
    None when the API refused to list them, ``error`` saying why."""

    where: Where
    found: list[dict[str, Any]] | None
    next_url: str | None = None
    error: str | None = None
    allowed: frozenset[str] = frozenset()
    """The ``allowed_actions`` of the repository or namespace: which buttons to show."""

    def may(self, verb: str) -> bool:
        """Whether the caller may ``Create``, ``Update`` or ``Delete`` webhooks here."""
        return hook_action(self.where, verb) in self.allowed


def hook_action(where: Where, verb: str) -> str:
    """The action that ``verb`` (Create, Update, Delete) is on ``where``'s webhooks."""
    kind = "Namespace" if where.repository is None else "Repo"
    return f"cr:{verb}{kind}Webhook"


async def hook_permissions(ctx: Ctx, where: Where) -> HookList:
    """No listing, only what the caller may do with ``where``'s webhooks (the API's
    batch check): which buttons a webhook's own pages show."""
    if not ctx.has("/api/v1/authz/check", "POST"):
        return HookList(where, None, allowed=frozenset(_EVERY_HOOK_ACTION))
    checks = [(hook_action(where, v), where.label) for v in ("Update", "Delete")]
    return HookList(where, None, allowed=await allowed(ctx.api, checks))


async def hook_list(ctx: Ctx, where: Where, allowed: list[str] | None = None) -> HookList:
    """The webhooks of ``where``, whose ``allowed_actions`` are ``allowed`` (None: the
    caller may do everything the API lets it, as before the API said)."""
    may = frozenset(allowed) if allowed is not None else frozenset(_EVERY_HOOK_ACTION)
    try:
        items, next_url = await ctx.listing(where.api)
    except ApiProblem as exc:
        if exc.status != 403:
            raise
        return HookList(where, None, error=exc.detail, allowed=may)
    return HookList(where, [hook_view(h) for h in items], next_url, allowed=may)


_EVERY_HOOK_ACTION = tuple(
    f"cr:{verb}{kind}Webhook"
    for verb in ("Create", "Update", "Delete")
    for kind in ("Namespace", "Repo")
)


def hook_view(item: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the templates use it."""
    trigger = item.get("trigger") or {"type": "all"}
    return {
        **item,
        "trigger": {"type": trigger.get("type", "all"), **trigger},
        "events": list(item.get("events") or []),
        "header_names": list(item.get("headers") or {}),
        "disabled_reason": item.get("disabled_reason") or "",
        "last_delivery": item.get("last_delivery"),
    }


def _hook_api(ctx: Ctx, where: Where) -> str:
    return f"{where.api}/{seg(ctx.param('hook'))}"


def _hook_url(where: Where, hook_id: Any) -> str:
    return f"{where.url}/{seg(str(hook_id))}"


# -- the create and edit form ------------------------------------------------------------


def _blank_row() -> dict[str, str]:
    return {"name": "", "value": ""}


def _new_values() -> dict[str, Any]:
    return {
        "name": "",
        "url": "",
        "trigger_type": "all",
        "tags": "",
        "regex": "",
        "examples": EXAMPLE_TAGS,
        "events": ["push"],
        "format": "acr",
        "headers": [_blank_row()],
        "enabled": True,
    }


def _hook_values(hook: dict[str, Any]) -> dict[str, Any]:
    trigger = hook["trigger"]
    return {
        "name": hook.get("name", ""),
        "url": hook.get("url", ""),
        "trigger_type": trigger["type"],
        "tags": ", ".join(trigger.get("tags") or []),
        "regex": trigger.get("regex") or "",
        "examples": EXAMPLE_TAGS,
        "events": hook["events"],
        "format": hook.get("format") or "acr",
        # Stored values are never shown: the rows carry the names only.
        "headers": [{"name": n, "value": ""} for n in hook["header_names"]] + [_blank_row()],
        "enabled": bool(hook.get("enabled")),
    }


def _form_values(ctx: Ctx) -> dict[str, Any]:
    form = ctx.form
    rows = []
    indexes = sorted(int(m[1]) for key in form if (m := _HEADER_NAME.fullmatch(key)))
    for i in indexes:
        name = form.get(f"header_name_{i}", "").strip()
        value = form.get(f"header_value_{i}", "").strip()
        if name or value:
            rows.append({"name": name, "value": value})
    return {
        "name": form.get("name", "").strip(),
        "url": form.get("url", "").strip(),
        "trigger_type": form.get("trigger_type", "all"),
        "tags": form.get("tags", "").strip(),
        "regex": form.get("regex", ""),
        "examples": form.get("examples", ""),
        "events": [e for e in EVENT_TYPES if form.get(f"event_{e}")],
        "format": form.get("format", "acr"),
        "headers": [*rows, _blank_row()],
        "enabled": form.get("enabled") == "on",
    }


def headers_to_send(rows: list[dict[str, str]], kept: list[str] | None) -> dict[str, str] | None:
    """The extra headers to send, or None to leave the webhook's as they are: on edit
    (``kept``: the names it has), rows left as shown (names, no values) keep them.

    :raises ValueError: with the message for the form.
    """
    filled = [r for r in rows if r["name"] or r["value"]]
    names = [r["name"] for r in filled]
    if not all(names):
        raise ValueError("A header value needs a name.")
    if len({n.lower() for n in names}) != len(names):
        raise ValueError("Give each header once.")
    if kept is not None:
        if not any(r["value"] for r in filled) and sorted(names) == sorted(kept):
            return None
        missing = [r["name"] for r in filled if not r["value"] and r["name"] in kept]
        if missing:
            raise ValueError(
                f"Enter the value of {', '.join(missing)} again: changing the "
                "headers replaces them all, and stored values are never shown."
            )
    return {r["name"]: r["value"] for r in filled}


def _body(values: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
    kind = values["trigger_type"]
    trigger: dict[str, Any] = {"type": kind}
    if kind == "tag_list":
        trigger["tags"] = [t for t in re.split(r"[\s,]+", values["tags"]) if t]
    elif kind == "tag_regex":
        trigger["regex"] = values["regex"]
    body = {
        "name": values["name"],
        "url": values["url"],
        "trigger": trigger,
        "events": values["events"],
        "format": values["format"],
        "enabled": values["enabled"],
    }
    if headers is not None:
        body["headers"] = headers
    return body


def field_of(detail: str) -> str:
    """The form field an API refusal is about (``form`` when it names none)."""
    named = _FIELD.match(detail)
    if named:
        return named[1]
    if "URL" in detail or "may not reach" in detail:  # the delivery guard's refusals
        return "url"
    return "form"


def _form_page(
    ctx: Ctx,
    where: Where,
    values: dict[str, Any],
    hook: dict[str, Any] | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    return ctx.render(
        "webhook_form.html",
        status,
        nav=where.nav,
        where=where,
        hook=hook,
        values=values,
        errors=errors or {},
        events=[(e, EVENT_LABELS.get(e, e)) for e in EVENT_TYPES],
        formats=[(f, FORMAT_LABELS.get(f, f)) for f in FORMATS],
        triggers=[(t, TRIGGER_LABELS.get(t, t)) for t in TRIGGER_TYPES],
        max_tags=MAX_TAGS,
        max_headers=MAX_HEADERS,
    )


async def _save(ctx: Ctx, where: Where, hook: dict[str, Any] | None) -> Response:
    """The form's action: create (``hook`` None) or change the webhook, or the form
    again with what is wrong next to its field."""
    values = _form_values(ctx)
    status, errors = 400, {}
    headers = None
    try:
        headers = headers_to_send(values["headers"], None if hook is None else hook["header_names"])
    except ValueError as exc:
        errors["headers"] = str(exc)
    if not values["events"]:  # the API would take none for its default, push
        errors["events"] = "Choose at least one event type."
    if not errors:
        body = _body(values, headers)
        try:
            if hook is None:
                created = await ctx.api.post(where.api, body)
            else:
                if body["enabled"] == bool(hook.get("enabled")):
                    # Re-enabling restarts the failure count; sent only when it changes.
                    del body["enabled"]
                await ctx.api.patch(f"{where.api}/{seg(str(hook['id']))}", body)
        except ApiProblem as exc:
            status, errors = exc.status, {field_of(exc.detail): exc.detail}
    if errors:
        return _form_page(ctx, where, values, hook, status, errors)
    if hook is None:
        return _secret_page(ctx, where, hook_view(created), created["secret"], 201)
    return ctx.redirect(_hook_url(where, hook["id"]), f"Webhook {values['name']} saved.")


async def create(ctx: Ctx) -> Response:
    where = Where.of(ctx)
    if ctx.request.method == "GET":
        return _form_page(ctx, where, _new_values())
    return await _save(ctx, where, None)


async def edit(ctx: Ctx) -> Response:
    where = Where.of(ctx)
    hook = hook_view(await ctx.api.get(_hook_api(ctx, where)))
    if ctx.request.method == "GET":
        return _form_page(ctx, where, _hook_values(hook), hook)
    return await _save(ctx, where, hook)


# -- one webhook -------------------------------------------------------------------------


def _secret_page(
    ctx: Ctx, where: Where, hook: dict[str, Any], secret: str, status: int, rotated: bool = False
) -> Response:
    """The signing secret, in this response only."""
    response = ctx.render(
        "webhook_secret.html",
        status,
        nav=where.nav,
        where=where,
        hook=hook,
        secret=secret,
        rotated=rotated,
        hook_url=_hook_url(where, hook["id"]),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def webhook(ctx: Ctx) -> Response:
    """The webhook's settings and its deliveries, newest first (paged, by status)."""
    where = Where.of(ctx)
    api = _hook_api(ctx, where)
    hook = hook_view(await ctx.api.get(api))
    status = ctx.query("status")
    items, next_url = await ctx.listing(f"{api}/deliveries", {"status": status})
    return ctx.render(
        "webhook.html",
        nav=where.nav,
        where=where,
        hooks=await hook_permissions(ctx, where),
        hook=hook,
        hook_url=_hook_url(where, hook["id"]),
        deliveries=items,
        next_url=next_url,
        status_filter=status,
        states=DELIVERY_STATES,
    )


async def delete(ctx: Ctx) -> Response:
    where = Where.of(ctx)
    return await ctx.act(
        "DELETE",
        _hook_api(ctx, where),
        then=where.home,
        said="Webhook deleted, with its delivery history.",
        back=_hook_url(where, ctx.param("hook")),
    )


async def test(ctx: Ctx) -> Response:
    """Send a sample push now and show the delivery it made."""
    where = Where.of(ctx)
    back = _hook_url(where, ctx.param("hook"))
    try:
        sent = await ctx.api.post(f"{_hook_api(ctx, where)}/test")
    except ApiProblem as exc:
        return ctx.redirect(back, exc.detail, "error")
    status = sent.get("status", "")
    answer = f" (HTTP {sent['response_status']})" if sent.get("response_status") else ""
    reason = f": {sent['reason']}" if sent.get("reason") and status != "succeeded" else ""
    return ctx.redirect(
        f"{back}/deliveries/{seg(str(sent['id']))}",
        f"Test delivery sent: {status}{answer}{reason}.",
        "success" if status == "succeeded" else "error",
    )


async def rotate_secret(ctx: Ctx) -> Response:
    where = Where.of(ctx)
    api = _hook_api(ctx, where)
    try:
        rotated = await ctx.api.post(f"{api}/rotate-secret")
    except ApiProblem as exc:
        return ctx.redirect(_hook_url(where, ctx.param("hook")), exc.detail, "error")
    hook = hook_view(await ctx.api.get(api))
    return _secret_page(ctx, where, hook, rotated["secret"], 200, rotated=True)


# -- deliveries --------------------------------------------------------------------------


async def delivery(ctx: Ctx) -> Response:
    """One delivery: its attempts, the request sent and the response received."""
    where = Where.of(ctx)
    api = _hook_api(ctx, where)
    hook = hook_view(await ctx.api.get(api))
    found = await ctx.api.get(f"{api}/deliveries/{seg(ctx.param('delivery'))}")
    return ctx.render(
        "webhook_delivery.html",
        nav=where.nav,
        where=where,
        hooks=await hook_permissions(ctx, where),
        hook=hook,
        hook_url=_hook_url(where, hook["id"]),
        delivery=found,
        attempts=[{**a, "n": n} for n, a in enumerate(found.get("attempt_log") or [], 1)],
    )


async def redeliver(ctx: Ctx) -> Response:
    where = Where.of(ctx)
    url = f"{_hook_url(where, ctx.param('hook'))}/deliveries/{seg(ctx.param('delivery'))}"
    return await ctx.act(
        "POST",
        f"{_hook_api(ctx, where)}/deliveries/{seg(ctx.param('delivery'))}/redeliver",
        then=url,
        said="Redelivery queued: the same body is sent again, with a fresh set of attempts.",
    )
