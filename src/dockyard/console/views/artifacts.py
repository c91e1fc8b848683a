"""What an image is: a tag's page and a manifest's (by digest), over
``GET /api/v1/repositories/{ns}/{repo}/manifests/{reference}``, and the manifest's raw
download.

A tag's page and its manifest's page are the same page: the tag adds when it was pushed
and its pull command; a digest's page is where an index's platforms and an image's
referrers link to.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from dockyard.console.core import PREFIX, Console, Ctx, allows, seg
from dockyard.console.views.catalog import repo_json, tag_json

MANIFESTS_API = "/api/v1/repositories/{}/{}/manifests/{}"


def routes(console: Console) -> list[Route]:
    if not console.has(MANIFESTS_API):
        return []
    page = console.page
    repo = f"{PREFIX}/repositories/{{ns}}/{{repo}}"
    return [
        Route(f"{repo}/tags/{{tag}}", page(tag_page)),
        Route(f"{repo}/manifests/{{digest}}", page(manifest_page)),
        Route(f"{repo}/manifests/{{digest}}/raw", page(manifest_raw)),
    ]


def _repo_api(ctx: Ctx) -> str:
    return f"/api/v1/repositories/{seg(ctx.param('ns'))}/{seg(ctx.param('repo'))}"


_ABSENT = {"platforms": None, "image": None, "history": None, "layers": None, "config": None}


async def _detail(ctx: Ctx, reference: str) -> dict[str, Any]:
    """The API's account of the manifest, with what its kind leaves out as None."""
    found: dict[str, Any] = await ctx.api.get(f"{_repo_api(ctx)}/manifests/{seg(reference)}")
    return _ABSENT | found


async def _render(ctx: Ctx, detail: dict[str, Any], tag: dict[str, Any] | None) -> Response:
    repo = repo_json(await ctx.api.get(_repo_api(ctx)))
    return ctx.render(
        "tag.html",
        nav="repositories",
        repo=repo,
        tag=tag,
        m=detail,
        host=ctx.instance["registry_host"],
        # The repository's allowed_actions: a reader is shown no Delete it would be refused.
        may_delete=tag is not None
        and ctx.has("/api/v1/repositories/{}/{}/tags/{}", "DELETE")
        and allows(repo, "cr:DeleteRepositoryImage"),
    )


async def tag_page(ctx: Ctx) -> Response:
    name = ctx.param("tag")
    tag = tag_json(await ctx.api.get(f"{_repo_api(ctx)}/tags/{seg(name)}"))
    return await _render(ctx, await _detail(ctx, name), tag)


async def manifest_page(ctx: Ctx) -> Response:
    return await _render(ctx, await _detail(ctx, ctx.param("digest")), None)


async def manifest_raw(ctx: Ctx) -> Response:
    """The manifest as the registry stores it, to save (``Content-Disposition``)."""
    detail = await _detail(ctx, ctx.param("digest"))
    filename = str(detail["digest"]).replace(":", "-") + ".json"
    return Response(
        str(detail["raw"]).encode(),
        media_type=str(detail["media_type"]),
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
