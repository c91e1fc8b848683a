"""The vulnerability database, for the instance administrator: what is imported per
ecosystem, the source and its refresh, an upload to import (its progress updates live
while the page is open) and the import history with results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.console.client import ApiProblem
from dockyard.console.core import PREFIX, Console, Ctx

_CHUNK = 1024 * 1024
ENDED = ("succeeded", "failed")


def routes(console: Console) -> list[Route]:
    if not console.has("/api/v1/vulndb"):
        return []
    limit = console.settings.vulndb_upload_limit * 1024 * 1024
    return [
        Route(f"{PREFIX}/vulndb", console.page(overview)),
        Route(
            f"{PREFIX}/vulndb/imports",
            console.page(upload, upload_limit=limit),
            methods=["POST"],
        ),
        Route(f"{PREFIX}/vulndb/imports/{{id:int}}", console.page(one_import)),
    ]


async def overview(
    ctx: Ctx, status_code: int = 200, *, errors: dict[str, str] | None = None
) -> Response:
    db = await ctx.api.get("/api/v1/vulndb")
    imports, next_url = await ctx.listing("/api/v1/vulndb/imports")
    return ctx.render(
        "vulndb.html",
        status_code,
        nav="vulndb",
        db=db,
        imports=imports,
        next_url=next_url,
        errors=errors or {},
        ended=ENDED,
    )


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(_CHUNK):
        yield chunk


async def upload(ctx: Ctx) -> Response:
    """Hand the uploaded file to ``POST /api/v1/vulndb/imports``; back to the page,
    which follows the import's progress."""
    file = ctx.uploads.get("file")
    if file is None or not file.filename:
        return await overview(
            ctx, 400, errors={"upload": "Choose an OSV zip archive or JSON file."}
        )
    try:
        found = await ctx.api.upload(
            "/api/v1/vulndb/imports", _chunks(file), params={"filename": file.filename}
        )
    except ApiProblem as exc:
        return await overview(ctx, exc.status, errors={"upload": exc.detail})
    return ctx.redirect(
        f"{PREFIX}/vulndb",
        f"Received {found['filename']}: import #{found['id']} is queued.",
    )


async def one_import(ctx: Ctx) -> Response:
    """One import as JSON: what the page polls while an import runs."""
    found: dict[str, Any] = await ctx.api.get(f"/api/v1/vulndb/imports/{ctx.param('id')}")
    return JSONResponse(found)
