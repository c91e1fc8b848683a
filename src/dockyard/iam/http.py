"""Management API routes: accounts (for the administrator), the caller's own credentials
(``/api/v1/me``), and RAM users and policies within an account (``/api/v1/ram``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import ApiAuth, ApiError, call_service, json_body, page, page_params
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.accounts import Account, AccountService
from dockyard.iam.arn import instance_arn, ram_arn
from dockyard.iam.authz import Principal, Resource, is_allowed
from dockyard.iam.ram import RamService, RamUser, StoredPolicy
from dockyard.iam.tokens import TEMP_USER

SESSION_SECONDS = 8 * 3600
TEMPORARY_LOGIN_SECONDS = 3600


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "root_login": account.name,
        "namespace_quota": account.namespace_quota,
        "created_at": account.created_at.isoformat(),
    }


class AccountRoutes:
    def __init__(self, accounts: AccountService, auth: ApiAuth, region: str) -> None:
        self.accounts = accounts
        self.auth = auth
        self.identity = auth.identity
        self.region = region

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/accounts", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/accounts/{name}", self.one, methods=["GET", "PATCH"]),
            Route("/api/v1/auth/login", self.login, methods=["POST"]),
            Route("/api/v1/tokens", self.temporary_login, methods=["POST"]),
            Route("/api/v1/me", self.me, methods=["GET"]),
            Route("/api/v1/me/registry-password", self.my_registry_password, methods=["PUT"]),
        ]

    async def login(self, request: Request) -> Response:
        """A session token for ``Authorization: Bearer`` on the management API."""
        body = await json_body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "Bad Request", "username and password (strings) are required")
        principal = await to_thread.run_sync(self.identity.authenticate, username, password)
        if principal is None:
            raise ApiError(401, "Unauthorized", "incorrect username or password")
        tokens = self.auth.tokens
        token, ttl, issued = tokens.issue(
            principal.name, audience=tokens.api_audience, ttl=SESSION_SECONDS
        )
        return JSONResponse({"token": token, "expires_at": _iso(issued + ttl)})

    async def temporary_login(self, request: Request) -> Response:
        """``GetAuthorizationToken``: a registry login valid for an hour, as ``cr_temp_user``,
        that carries exactly the caller's permissions (evaluated when it is used)."""
        principal = await self._signed_in(request)
        tokens = self.auth.tokens
        password, ttl, issued = tokens.issue(
            principal.name, audience=tokens.login_audience, ttl=TEMPORARY_LOGIN_SECONDS
        )
        return JSONResponse(
            {"username": TEMP_USER, "password": password, "expires_at": _iso(issued + ttl)},
            status_code=201,
        )

    async def _signed_in(self, request: Request) -> Principal:
        principal = await self.auth.principal(request)
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
            lambda: self.identity.set_registry_password(user_id, password), ServiceError
        )
        return Response(status_code=204)

    async def _require(self, request: Request, action: str) -> None:
        principal = await self.auth.principal(request)
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
                lambda: self.accounts.create(name, password, namespace_quota=quota), ServiceError
            )
            return JSONResponse(account_json(account), status_code=201)
        await self._require(request, actions.LIST_ACCOUNT)
        limit, after = page_params(request)
        items = await call_service(
            lambda: self.accounts.list(limit=limit, after=after), ServiceError
        )
        return JSONResponse(
            page([account_json(a) for a in items], limit, "/api/v1/accounts", "name")
        )

    async def one(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "PATCH":
            await self._require(request, actions.UPDATE_ACCOUNT)
            body = await json_body(request)
            quota = body.get("namespace_quota")
            if not isinstance(quota, int) or isinstance(quota, bool):
                raise ApiError(400, "Bad Request", "namespace_quota (an integer) is required")
            account = await call_service(
                lambda: self.accounts.set_namespace_quota(name, quota), ServiceError
            )
            return JSONResponse(account_json(account))
        await self._require(request, actions.LIST_ACCOUNT)
        return JSONResponse(
            account_json(await call_service(lambda: self.accounts.get(name), ServiceError))
        )


def ram_user_json(user: RamUser) -> dict[str, Any]:
    return {
        "name": user.name,
        "login": user.login,
        "has_registry_password": user.has_registry_password,
        "policies": list(user.policies),
        "created_at": user.created_at.isoformat(),
    }


def policy_json(policy: StoredPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "type": policy.kind,
        "document": policy.document,
        "updated_at": policy.updated_at.isoformat(),
    }


class RamRoutes:
    """RAM users and policies of the caller's own account."""

    def __init__(self, ram: RamService, auth: ApiAuth) -> None:
        self.ram = ram
        self.auth = auth

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/ram/users", self.users, methods=["GET", "POST"]),
            Route(
                "/api/v1/ram/users/{user}/registry-password",
                self.registry_password,
                methods=["PUT"],
            ),
            Route(
                "/api/v1/ram/users/{user}/policies/{policy}",
                self.attachment,
                methods=["PUT", "DELETE"],
            ),
            Route(
                "/api/v1/ram/users/{user}/access-keys", self.access_keys, methods=["GET", "POST"]
            ),
            Route(
                "/api/v1/ram/users/{user}/access-keys/{key}",
                self.delete_access_key,
                methods=["DELETE"],
            ),
            Route("/api/v1/ram/policies", self.policies, methods=["GET", "POST"]),
            Route("/api/v1/ram/policies/{policy}", self.policy, methods=["GET", "PUT", "DELETE"]),
        ]

    async def _require(
        self, request: Request, action: str, kind: str, name: str
    ) -> tuple[int, str]:
        """Authorize ``action`` on a RAM user or policy of the caller's account; return
        the account's id and name."""
        principal = await self.auth.principal(request)
        if principal.is_anonymous or principal.account_id is None:
            raise ApiError(401, "Unauthorized", "log in first (HTTP Basic credentials)")
        if not is_allowed(principal, action, Resource(ram_arn(principal.account_id, kind, name))):
            raise ApiError(403, "Forbidden", f"you may not do {action} on {kind} {name!r}")
        return principal.account_id, principal.name.rsplit("@", 1)[-1]

    async def users(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name, password = body.get("name"), body.get("password")
            if not isinstance(name, str) or not isinstance(password, str | None):
                raise ApiError(400, "Bad Request", "name (a string) is required")
            account_id, account = await self._require(request, "ram:CreateUser", "user", name)
            user = await call_service(
                lambda: self.ram.create_user(account_id, account, name, password), ServiceError
            )
            return JSONResponse(ram_user_json(user), status_code=201)
        account_id, _ = await self._require(request, "ram:ListUsers", "user", "*")
        limit, after = page_params(request)
        users = await call_service(
            lambda: self.ram.list_users(account_id, limit=limit, after=after), ServiceError
        )
        return JSONResponse(
            page([ram_user_json(u) for u in users], limit, "/api/v1/ram/users", "login")
        )

    async def registry_password(self, request: Request) -> Response:
        name = request.path_params["user"]
        account_id, account = await self._require(request, "ram:UpdateUser", "user", name)
        body = await json_body(request)
        password = body.get("password")
        if not isinstance(password, str):
            raise ApiError(400, "Bad Request", "password (a string) is required")
        await call_service(
            lambda: self.ram.set_registry_password(account_id, f"{name}@{account}", password),
            ServiceError,
        )
        return Response(status_code=204)

    async def attachment(self, request: Request) -> Response:
        name, policy = request.path_params["user"], request.path_params["policy"]
        attach = request.method == "PUT"
        action = "ram:AttachPolicy" if attach else "ram:DetachPolicy"
        account_id, account = await self._require(request, action, "user", name)
        await call_service(
            lambda: self.ram.attach(account_id, f"{name}@{account}", policy, attached=attach),
            ServiceError,
        )
        return Response(status_code=204)

    async def access_keys(self, request: Request) -> Response:
        name = request.path_params["user"]
        if request.method == "POST":
            account_id, account = await self._require(request, "ram:CreateAccessKey", "user", name)
            key_id, secret = await call_service(
                lambda: self.ram.create_access_key(account_id, f"{name}@{account}"), ServiceError
            )
            # The secret is shown in this response and never again.
            return JSONResponse(
                {"access_key_id": key_id, "access_key_secret": secret}, status_code=201
            )
        account_id, account = await self._require(request, "ram:ListAccessKeys", "user", name)
        keys = await call_service(
            lambda: self.ram.list_access_keys(account_id, f"{name}@{account}"), ServiceError
        )
        return JSONResponse(
            {"items": [{"access_key_id": k, "created_at": c.isoformat()} for k, c in keys]}
        )

    async def delete_access_key(self, request: Request) -> Response:
        name, key_id = request.path_params["user"], request.path_params["key"]
        account_id, account = await self._require(request, "ram:DeleteAccessKey", "user", name)
        await call_service(
            lambda: self.ram.delete_access_key(account_id, f"{name}@{account}", key_id),
            ServiceError,
        )
        return Response(status_code=204)

    async def policies(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name, document = body.get("name"), body.get("document")
            if not isinstance(name, str) or document is None:
                raise ApiError(400, "Bad Request", "name and document are required")
            account_id, _ = await self._require(request, "ram:CreatePolicy", "policy", name)
            created = await call_service(
                lambda: self.ram.put_policy(account_id, name, document, create_only=True),
                ServiceError,
            )
            return JSONResponse(policy_json(created), status_code=201)
        account_id, _ = await self._require(request, "ram:ListPolicies", "policy", "*")
        items = await call_service(lambda: self.ram.list_policies(account_id), ServiceError)
        return JSONResponse({"items": [policy_json(p) for p in items]})

    async def policy(self, request: Request) -> Response:
        name = request.path_params["policy"]
        if request.method == "PUT":
            account_id, _ = await self._require(request, "ram:UpdatePolicy", "policy", name)
            body = await json_body(request)
            document = body.get("document")
            if document is None:
                raise ApiError(400, "Bad Request", "document is required")
            updated = await call_service(
                lambda: self.ram.put_policy(account_id, name, document), ServiceError
            )
            return JSONResponse(policy_json(updated))
        if request.method == "DELETE":
            account_id, _ = await self._require(request, "ram:DeletePolicy", "policy", name)
            await call_service(lambda: self.ram.delete_policy(account_id, name), ServiceError)
            return Response(status_code=204)
        account_id, _ = await self._require(request, "ram:GetPolicy", "policy", name)
        found = await call_service(lambda: self.ram.get_policy(account_id, name), ServiceError)
        return JSONResponse(policy_json(found))
