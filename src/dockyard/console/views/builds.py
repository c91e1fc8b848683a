"""The Build tab of a repository and a build's page: the code source (auto build, build
without cache, build pool), the build rules (add, edit, delete, Build Now), the build
history, and a build's log, which follows live (Server-Sent Events from the console,
fed by the API's paged log) until the build ends, with Cancel.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dockyard.console.client import ApiProblem, SessionExpired, seg
from dockyard.console.core import PREFIX, Console, Ctx, may_on
from dockyard.console.session import SESSION_COOKIE

FINAL = ("success", "failed", "canceled", "timed_out")
FOLLOW_POLL = 0.3
KEEP_ALIVE = 15.0
CANCEL = "cr:CancelRepoBuild"


def routes(console: Console) -> list[Route]:
    page = console.page
    repo = f"{PREFIX}/repositories/{{namespace}}/{{repository}}"
    return [
        Route(f"{repo}/source", page(save_source), methods=["POST"]),
        Route(f"{repo}/source/delete", page(delete_source), methods=["POST"]),
        Route(f"{repo}/build-rules", page(create_rule), methods=["POST"]),
        Route(f"{repo}/build-rules/{{id}}/edit", page(edit_rule), methods=["POST"]),
        Route(f"{repo}/build-rules/{{id}}/delete", page(delete_rule), methods=["POST"]),
        Route(f"{repo}/build-rules/{{id}}/build", page(build_now), methods=["POST"]),
        Route(f"{repo}/builds/{{id}}", page(build)),
        Route(f"{repo}/builds/{{id}}/cancel", page(cancel), methods=["POST"]),
        Route(f"{repo}/builds/{{id}}/log-stream", follow_endpoint(console)),
    ]


def _api(ctx: Ctx) -> str:
    return f"/api/v1/repositories/{seg(ctx.param('namespace'))}/{seg(ctx.param('repository'))}"


def _page(ctx: Ctx) -> str:
    return f"{PREFIX}/repositories/{seg(ctx.param('namespace'))}/{seg(ctx.param('repository'))}"


def _tab(ctx: Ctx) -> str:
    return _page(ctx) + "?tab=build"


async def build_tab(ctx: Ctx, api: str) -> dict[str, Any]:
    """What the Build tab shows: the source (None when the repository has none), the
    rules (the built-in one last) and the newest builds."""
    try:
        source = await ctx.api.get(f"{api}/source")
    except ApiProblem as exc:
        if exc.status != 404:
            raise
        source = None
    rules = (await ctx.api.get(f"{api}/build-rules"))["items"]
    builds, next_url = await ctx.listing(f"{api}/builds")
    return {"source": source, "rules": rules, "builds": builds, "next_url": next_url}


def _checked(ctx: Ctx, name: str) -> bool:
    return ctx.form.get(name) in ("on", "true", "1")


def source_body(form: dict[str, str], *, checkbox: bool = True) -> dict[str, Any]:
    """The API body of the source form (credentials only when typed: left blank, the
    stored ones stay)."""
    body: dict[str, Any] = {
        "type": "git",
        "url": form.get("url", "").strip(),
        "auto_build": form.get("auto_build") in ("on", "true", "1"),
        "build_without_cache": form.get("build_without_cache") in ("on", "true", "1"),
        "build_pool": form.get("build_pool", "").strip() or "default",
    }
    if not checkbox:
        body["auto_build"] = True
    poll = form.get("poll_interval", "").strip()
    if poll:
        body["poll_interval"] = int(poll) if poll.isdigit() else poll
    token = form.get("token", "")
    key = form.get("ssh_private_key", "")
    if key.strip():
        body["credentials"] = {"ssh_private_key": key}
    elif token:
        body["credentials"] = {"username": form.get("username", "").strip(), "token": token}
    elif form.get("clear_credentials") in ("on", "true", "1"):
        body["credentials"] = None
    return body


async def save_source(ctx: Ctx) -> Response:
    try:
        found = await ctx.api.put(f"{_api(ctx)}/source", source_body(ctx.form))
    except ApiProblem as exc:
        return ctx.redirect(_tab(ctx), exc.detail, "error")
    if isinstance(found, dict) and found.get("hook_secret"):
        return _hook_secret_page(ctx, found)
    return ctx.redirect(_tab(ctx), "Code source saved.")


def _hook_secret_page(ctx: Ctx, source: dict[str, Any]) -> Response:
    return ctx.render(
        "build_hook_secret.html",
        nav="repositories",
        full=f"{ctx.param('namespace')}/{ctx.param('repository')}",
        back=_tab(ctx),
        source=source,
    )


async def delete_source(ctx: Ctx) -> Response:
    return await ctx.act(
        "DELETE", f"{_api(ctx)}/source", then=_tab(ctx), said="Code source unbound."
    )


def rule_body(form: dict[str, str]) -> dict[str, Any]:
    tags = [t.strip() for t in form.get("image_tags", "").split(",") if t.strip()]
    args: dict[str, str] = {}
    for line in form.get("build_args", "").splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            args[key.strip()] = value
    return {
        "type": form.get("type", "branch"),
        "ref": form.get("ref", "").strip(),
        "dockerfile_dir": form.get("dockerfile_dir", "").strip() or "/",
        "dockerfile_name": form.get("dockerfile_name", "").strip() or "Dockerfile",
        "image_tags": tags,
        "build_args": args,
        # An unchecked box sends nothing: absent is off (the form shows it checked).
        "enabled": form.get("enabled") in ("on", "true", "1"),
    }


async def create_rule(ctx: Ctx) -> Response:
    return await ctx.act(
        "POST", f"{_api(ctx)}/build-rules", rule_body(ctx.form), then=_tab(ctx), said="Rule added."
    )


async def edit_rule(ctx: Ctx) -> Response:
    path = f"{_api(ctx)}/build-rules/{seg(ctx.param('id'))}"
    return await ctx.act("PATCH", path, rule_body(ctx.form), then=_tab(ctx), said="Rule saved.")


async def delete_rule(ctx: Ctx) -> Response:
    path = f"{_api(ctx)}/build-rules/{seg(ctx.param('id'))}"
    return await ctx.act("DELETE", path, then=_tab(ctx), said="Rule deleted.")


async def build_now(ctx: Ctx) -> Response:
    ref = ctx.form.get("ref", "").strip()
    path = f"{_api(ctx)}/build-rules/{seg(ctx.param('id'))}/build"
    try:
        started = await ctx.api.post(path, {"ref": ref} if ref else {})
    except ApiProblem as exc:
        return ctx.redirect(_tab(ctx), exc.detail, "error")
    return ctx.redirect(f"{_page(ctx)}/builds/{started['id']}", f"Build {started['id']} queued.")


async def build(ctx: Ctx) -> Response:
    path = f"{_api(ctx)}/builds/{seg(ctx.param('id'))}"
    found = await ctx.api.get(path)
    log = await ctx.api.get(f"{path}/log", {"limit": "10000"})
    full = f"{ctx.param('namespace')}/{ctx.param('repository')}"
    may = await may_on(ctx, (CANCEL,), full)
    return ctx.render(
        "build.html",
        nav="repositories",
        full=full,
        repo_url=_page(ctx),
        build=found,
        may_cancel=CANCEL in may and ctx.has("/api/v1/repositories/{}/{}/builds/{}/cancel", "POST"),
        lines=log["items"],
        offset=log["next_offset"],
        final=found["status"] in FINAL,
        stream=f"{_page(ctx)}/builds/{found['id']}/log-stream",
    )


async def cancel(ctx: Ctx) -> Response:
    path = f"{_api(ctx)}/builds/{seg(ctx.param('id'))}/cancel"
    back = f"{_page(ctx)}/builds/{seg(ctx.param('id'))}"
    return await ctx.act("POST", path, then=back, said="Cancel requested: the build stops.")


def follow_endpoint(console: Console) -> Any:
    """The build page's live log: Server-Sent Events (``line`` with the line's JSON,
    then ``end`` with the status), read from the API's paged log with the session of
    the browser, so the API authorizes each read."""

    async def endpoint(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return Response("sign in first", status_code=401)
        namespace = seg(request.path_params["namespace"])
        repository = seg(request.path_params["repository"])
        build_id = seg(request.path_params["id"])
        path = f"/api/v1/repositories/{namespace}/{repository}/builds/{build_id}/log"
        raw = request.query_params.get("offset", "0")
        resume = request.headers.get("last-event-id", "")
        offset = max(
            int(raw) if raw.isdigit() and len(raw) < 10 else 0,
            int(resume) if resume.isdigit() and len(resume) < 10 else 0,
        )

        async def events() -> AsyncIterator[str]:
            api = console.client(request, token)
            position = offset
            quiet = time.monotonic()
            try:
                yield ": following\n\n"
                while True:
                    try:
                        page = await api.get(path, {"offset": str(position)})
                    except (ApiProblem, SessionExpired) as exc:
                        yield f"event: failure\ndata: {json.dumps(str(exc))}\n\n"
                        return
                    for line in page["items"]:
                        position = line["line"]
                        yield f"id: {position}\nevent: line\ndata: {json.dumps(line)}\n\n"
                    if page["items"]:
                        quiet = time.monotonic()
                        continue
                    if page["complete"]:
                        yield f"event: end\ndata: {json.dumps({'status': page['status']})}\n\n"
                        return
                    if time.monotonic() - quiet > KEEP_ALIVE:
                        quiet = time.monotonic()
                        yield ": keep-alive\n\n"
                    await asyncio.sleep(FOLLOW_POLL)
            finally:
                await api.aclose()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return endpoint
