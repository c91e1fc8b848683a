"""Management API routes for namespaces (``/api/v1/namespaces``)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import ApiAuth, ApiError, call_service, json_body, page, page_params
from dockyard.catalog.service import CatalogService, Namespace
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import namespace_arn
from dockyard.iam.authz import Principal, Resource, is_allowed


def namespace_json(ns: Namespace) -> dict[str, Any]:
    return {
        "name": ns.name,
        "account_id": ns.account_id,
        "auto_create_repository": ns.auto_create,
        "default_repository_type": "public" if ns.default_public else "private",
        "created_at": ns.created_at.isoformat(),
    }


class NamespaceRoutes:
    def __init__(self, catalog: CatalogService, auth: ApiAuth, region: str) -> None:
        self.catalog = catalog
        self.auth = auth
        self.region = region

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/namespaces", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/namespaces/{name}", self.one, methods=["GET", "DELETE"]),
        ]

    async def _require(
        self, request: Request, action: str, name: str, *, existing: bool = True
    ) -> Principal:
        """Authorize ``action`` on namespace ``name``: an existing namespace is its
        owner's resource; a new one (``existing=False``) will be the caller's."""
        principal = await self.auth.principal(request)
        account: int | str | None = principal.account_id
        if existing:
            owner = await to_thread.run_sync(self.catalog.namespace_account, name)
            account = owner if owner is not None else account
        arn = namespace_arn(self.region, account if account is not None else "*", name)
        if is_allowed(principal, action, Resource(arn)):
            return principal
        if principal.is_anonymous:
            raise ApiError(401, "Unauthorized", "log in first (HTTP Basic credentials)")
        raise ApiError(403, "Forbidden", f"you may not do {action} on namespace {name!r}")

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name = body.get("name")
            if not isinstance(name, str):
                raise ApiError(400, "Bad Request", "name (a string) is required")
            principal = await self._require(request, actions.CREATE_NAMESPACE, name, existing=False)
            kind = body.get("default_repository_type", "private")
            if kind not in ("public", "private"):
                raise ApiError(400, "Bad Request", "default_repository_type is public or private")
            auto = body.get("auto_create_repository", True)
            if not isinstance(auto, bool):
                raise ApiError(400, "Bad Request", "auto_create_repository must be a boolean")
            ns = await call_service(
                lambda: self.catalog.create_namespace(
                    name,
                    account_id=principal.account_id,
                    auto_create=auto,
                    default_public=kind == "public",
                    enforce_quota=not principal.is_admin,
                ),
                ServiceError,
            )
            return JSONResponse(namespace_json(ns), status_code=201)
        principal = await self._require(request, "cr:ListNamespace", "*", existing=False)
        # The administrator sees every account's namespaces; anyone else their own.
        account = None if principal.is_admin else principal.account_id
        limit, after = page_params(request)
        items = await call_service(
            lambda: self.catalog.list_namespaces(limit=limit, after=after, account_id=account),
            ServiceError,
        )
        return JSONResponse(
            page([namespace_json(n) for n in items], limit, "/api/v1/namespaces", "name")
        )

    async def one(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            await self._require(request, "cr:DeleteNamespace", name)
            await call_service(lambda: self.catalog.delete_namespace(name), ServiceError)
            return Response(status_code=204)
        await self._require(request, "cr:GetNamespace", name)
        ns = await call_service(lambda: self.catalog.get_namespace(name), ServiceError)
        return JSONResponse(namespace_json(ns))
