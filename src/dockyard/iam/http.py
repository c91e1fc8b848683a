"""Management API routes for accounts (``/api/v1/accounts``), for the administrator."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import ApiError, call_service, caller, json_body
from dockyard.iam import actions
from dockyard.iam.accounts import Account, AccountError, AccountService
from dockyard.iam.arn import instance_arn
from dockyard.iam.authz import Principal, Resource, is_allowed
from dockyard.iam.identity import IdentityService


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "root_login": account.name,
        "namespace_quota": account.namespace_quota,
        "created_at": account.created_at.isoformat(),
    }


class AccountRoutes:
    def __init__(self, accounts: AccountService, identity: IdentityService, region: str) -> None:
        self.accounts = accounts
        self.identity = identity
        self.region = region

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/accounts", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/accounts/{name}", self.one, methods=["GET", "PATCH"]),
            Route("/api/v1/me", self.me, methods=["GET"]),
            Route("/api/v1/me/registry-password", self.my_registry_password, methods=["PUT"]),
        ]

    async def _signed_in(self, request: Request) -> Principal:
        principal = await caller(request, self.identity)
        if principal.is_anonymous:
            raise ApiError(401, "Unauthorized", "log in first (HTTP Basic credentials)")
        return principal

    async def me(self, request: Request) -> Response:
        principal = await self._signed_in(request)
        return JSONResponse(
            {
                "login": principal.name,
                "account_id": principal.account_id,
                "is_root": principal.is_root,
                "is_instance_admin": principal.is_admin,
            }
        )

    async def my_registry_password(self, request: Request) -> Response:
        """Set the caller's own ``docker login`` password ("Access Credential")."""
        principal = await self._signed_in(request)
        body = await json_body(request)
        password = body.get("password")
        if not isinstance(password, str):
            raise ApiError(400, "Bad Request", "password (a string) is required")
        assert principal.user_id is not None
        user_id = principal.user_id
        await call_service(
            lambda: self.identity.set_registry_password(user_id, password), AccountError
        )
        return Response(status_code=204)

    async def _require(self, request: Request, action: str) -> None:
        principal = await caller(request, self.identity)
        if is_allowed(principal, action, Resource(instance_arn(self.region))):
            return
        if principal.is_anonymous:
            raise ApiError(401, "Unauthorized", "log in first (HTTP Basic credentials)")
        raise ApiError(403, "Forbidden", "only the instance administrator manages accounts")

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            await self._require(request, actions.CREATE_ACCOUNT)
            body = await json_body(request)
            name, password = body.get("name"), body.get("password")
            if not isinstance(name, str) or not isinstance(password, str):
                raise ApiError(400, "Bad Request", "name and password (strings) are required")
            quota = body.get("namespace_quota", 3)
            if not isinstance(quota, int) or isinstance(quota, bool):
                raise ApiError(400, "Bad Request", "namespace_quota must be an integer")
            account = await call_service(
                lambda: self.accounts.create(name, password, namespace_quota=quota), AccountError
            )
            return JSONResponse(account_json(account), status_code=201)
        await self._require(request, actions.LIST_ACCOUNT)
        try:
            limit = min(int(request.query_params.get("limit", "100")), 1000)
        except ValueError as exc:
            raise ApiError(400, "Bad Request", "limit must be an integer") from exc
        after = request.query_params.get("after") or None
        items = await call_service(
            lambda: self.accounts.list(limit=limit, after=after), AccountError
        )
        page: dict[str, Any] = {"items": [account_json(a) for a in items]}
        if len(items) == limit:
            page["next"] = f"/api/v1/accounts?limit={limit}&after={items[-1].name}"
        return JSONResponse(page)

    async def one(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "PATCH":
            await self._require(request, actions.UPDATE_ACCOUNT)
            body = await json_body(request)
            quota = body.get("namespace_quota")
            if not isinstance(quota, int) or isinstance(quota, bool):
                raise ApiError(400, "Bad Request", "namespace_quota (an integer) is required")
            account = await call_service(
                lambda: self.accounts.set_namespace_quota(name, quota), AccountError
            )
            return JSONResponse(account_json(account))
        await self._require(request, actions.LIST_ACCOUNT)
        return JSONResponse(
            account_json(await call_service(lambda: self.accounts.get(name), AccountError))
        )
