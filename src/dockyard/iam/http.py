"""Management API routes for identities: accounts (for the administrator), sign-in and
the caller's own credentials (``/api/v1/me``), RAM users, groups, roles and policies
within an account (``/api/v1/ram``), STS (``/api/v1/sts``) and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard import __version__
from dockyard.api import (
    ApiAuth,
    ApiError,
    call_service,
    iso,
    json_body,
    listed_account,
    no_fields,
    optional_field,
    page,
    page_params,
    paged,
    query_time,
    request_context,
    required_field,
    throttled,
)
from dockyard.audit import DECISION, AuditLog, decision, entry_json, origin_of
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.accounts import ACCOUNT_NAME, MIN_PASSWORD, Account, AccountService, Usage
from dockyard.iam.arn import audit_arn, instance_arn, ram_arn
from dockyard.iam.authz import Principal
from dockyard.iam.checks import MAX_CHECKS, MAX_RESOURCE_LENGTH, CheckService, parse_checks
from dockyard.iam.ram import (
    GROUP_OR_ROLE_NAME,
    HOLDERS,
    POLICY_NAME,
    USER_NAME,
    RamGroup,
    RamRole,
    RamService,
    RamUser,
    StoredPolicy,
)
from dockyard.iam.sts import StsService, is_sts_key
from dockyard.iam.throttle import LoginThrottled
from dockyard.iam.tokens import TEMP_USER
from dockyard.openapi import (
    Body,
    Field,
    Int64,
    LenientBody,
    NoFields,
    Op,
    Query,
    Reply,
    Timestamp,
    describe,
    full_match,
)
from dockyard.origin import Origin

SESSION_SECONDS = 8 * 3600
TEMPORARY_LOGIN_SECONDS = 3600
EDITION = "Dockyard self-hosted"

PASSWORD = Field(
    description=f"at least {MIN_PASSWORD} characters",
    min_length=MIN_PASSWORD,
    examples=["correct-horse-battery"],
)
ACCOUNT = Field(
    description="the account's name, also its root's login",
    pattern=full_match(ACCOUNT_NAME),
    examples=["acme"],
)
GROUP_OR_ROLE = Field(pattern=full_match(GROUP_OR_ROLE_NAME), examples=["developers"])
POLICY_DOCUMENT = Field(
    description=(
        'a policy document ({"Version": "1", "Statement": [...]}), as an object or as JSON text'
    ),
    examples=[
        {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "cr:Pull*", "Resource": "*"}],
        }
    ],
)


class InstanceOut(Reply):
    """This instance."""

    region: str = Field(examples=["cn-hangzhou"])
    edition: str = Field(examples=[EDITION])
    version: str = Field(examples=[__version__])
    registry_host: str = Field(
        description="the host docker login and docker push use", examples=["registry.example"]
    )
    signup_enabled: bool


class Signup(LenientBody):
    name: str = ACCOUNT
    password: str = PASSWORD


class NewAccount(LenientBody):
    name: str = ACCOUNT
    password: str = PASSWORD
    namespace_quota: int | None = Field(default=None, description="default 3", examples=[3])
    repository_quota: int | None = Field(default=None, description="default 300")


class AccountChange(LenientBody):
    namespace_quota: int | None = Field(default=None, description="how many namespaces at most")
    repository_quota: int | None = Field(default=None, description="how many repositories at most")


class AccountOut(Reply):
    """An account, with what it uses of its quotas."""

    id: Int64
    name: str = Field(examples=["acme"])
    root_login: str = Field(examples=["acme"])
    namespace_quota: int
    repository_quota: int
    namespace_count: int = Field(description="namespaces it has")
    repository_count: int = Field(description="repositories it has")
    created_at: Timestamp


class Login(LenientBody):
    username: str = Field(description="a login name or an AccessKeyId", examples=["admin"])
    password: str = Field(description="its console password or secret")


class SessionOut(Reply):
    """A session token for the management API."""

    token: str = Field(description="for Authorization: Bearer")
    expires_at: Timestamp


class TemporaryLoginOut(Reply):
    """A docker login that carries the caller's permissions."""

    username: Literal["cr_temp_user"]
    password: str = Field(description="a token, the password of docker login")
    expires_at: Timestamp


class MeOut(Reply):
    """The caller; the quota fields are there for callers in an account."""

    login: str = Field(examples=["alice@acme"])
    arn: str = Field(examples=["acs:ram::7:user/alice"])
    account_id: Int64 | None
    account: str | None = Field(examples=["acme"])
    is_root: bool
    is_instance_admin: bool
    is_sts: bool = Field(description="whether these are STS credentials")
    expires_at: Timestamp | None = Field(default=None, description="when STS credentials end")
    has_registry_password: bool | None = Field(
        default=None, description="whether the user set a docker login password (users only)"
    )
    namespace_quota: int | None = Field(default=None, description="for callers in an account")
    repository_quota: int | None = None
    namespace_count: int | None = None
    repository_count: int | None = None


class PasswordChange(LenientBody):
    current_password: str
    password: str = PASSWORD


class RegistryPassword(LenientBody):
    password: str = Field(
        description=f"the docker login password, at least {MIN_PASSWORD} characters",
        min_length=MIN_PASSWORD,
        examples=["correct-horse-battery"],
    )


class AccessKeyOut(Reply):
    access_key_id: str = Field(examples=["LTAI5tExample"])
    created_at: Timestamp


class NewAccessKeyOut(Reply):
    access_key_id: str = Field(examples=["LTAI5tExample"])
    access_key_secret: str = Field(description="shown in this response and never again")


class AssumeRole(LenientBody):
    role_arn: str = Field(examples=["acs:ram::7:role/deployer"])
    role_session_name: str = Field(examples=["ci-run-42"])
    duration_seconds: int | None = Field(
        default=None,
        description="how long the credentials last: 900 to the role's maximum (default 3600)",
    )
    policy: dict[str, Any] | str | None = Field(
        default=None, description="a policy that narrows the role's permissions"
    )


class AssumedRoleUser(Reply):
    arn: str = Field(examples=["acs:ram::7:assumed-role/deployer/ci-run-42"])


class StsCredentialsOut(Reply):
    """Temporary credentials for a role (send all three)."""

    access_key_id: str = Field(examples=["STS.NExample"])
    access_key_secret: str
    security_token: str = Field(description="send it in X-Dockyard-Security-Token")
    expiration: Timestamp
    assumed_role_user: AssumedRoleUser


class AuditEntryOut(Reply):
    """One audited request: who, what, on what, the decision and the outcome."""

    id: Int64
    at: datetime = Field(description="when, ISO 8601")
    account_id: Int64 | None
    actor: str = Field(examples=["alice@acme"])
    action: str = Field(examples=["cr:CreateRepository"])
    resource: str = Field(examples=["acs:cr:cn-hangzhou:7:repository/team/app"])
    source_ip: str
    allowed: bool
    decision: Literal["allowed", "denied"]
    outcome: Literal["succeeded", "refused", "failed", "error"]
    status: int = Field(description="the HTTP status of the answer", examples=[201])
    detail: str


class AuditQuery(Query):
    account: str | None = Field(default=None, description="only this account's (the admin)")
    actor: str | None = Field(default=None, description="only this caller's")
    action: str | None = Field(default=None, description="only this action")
    allowed: Literal["true", "false"] | None = Field(
        default=None, description="only allowed (true) or denied (false) requests"
    )
    since: datetime | None = Field(default=None, description="from this time (ISO 8601)")
    until: datetime | None = Field(default=None, description="until this time (ISO 8601)")


class NewRamUser(LenientBody):
    name: str = Field(pattern=full_match(USER_NAME), examples=["alice"])
    password: str | None = Field(
        default=None, description="a console password (none: the user cannot sign in)"
    )


class ConsolePassword(Body):
    password: str = PASSWORD


class RamUserOut(Reply):
    """A RAM user of an account."""

    name: str = Field(examples=["alice"])
    login: str = Field(examples=["alice@acme"])
    has_registry_password: bool
    policies: list[str] = Field(description="the policies attached to the user")
    groups: list[str] = Field(description="the groups it belongs to")
    created_at: Timestamp


class NewGroup(LenientBody):
    name: str = GROUP_OR_ROLE
    description: str | None = None


class GroupOut(Reply):
    """A RAM group."""

    name: str = Field(examples=["developers"])
    description: str
    members: list[str] = Field(description="member logins", examples=[["alice@acme"]])
    policies: list[str]
    created_at: Timestamp


class NewRole(LenientBody):
    name: str = GROUP_OR_ROLE
    description: str | None = None
    max_session_seconds: int | None = Field(
        default=None, description="how long an STS session may last (default 3600)"
    )
    trust_policy: dict[str, Any] | str = Field(
        description="who may assume the role: statements with a Principal",
        examples=[
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": ["acs:ram::7:root"]},
                    }
                ],
            }
        ],
    )


class RoleChange(LenientBody):
    description: str | None = None
    max_session_seconds: int | None = None
    trust_policy: dict[str, Any] | str | None = None


class RoleOut(Reply):
    """A RAM role."""

    name: str = Field(examples=["deployer"])
    arn: str = Field(examples=["acs:ram::7:role/deployer"])
    description: str
    trust_policy: dict[str, Any]
    max_session_seconds: int
    policies: list[str]
    created_at: Timestamp


class NewPolicy(LenientBody):
    name: str = Field(pattern=full_match(POLICY_NAME), examples=["PullEverything"])
    document: dict[str, Any] | str = POLICY_DOCUMENT


class PolicyUpdate(LenientBody):
    document: dict[str, Any] | str = POLICY_DOCUMENT


class PolicyKind(StrEnum):
    """Who wrote a policy: the system, the account (custom), or a permission (managed)."""

    SYSTEM = "system"
    CUSTOM = "custom"
    MANAGED = "managed"


class PolicyOut(Reply):
    """A permission policy."""

    name: str = Field(examples=["PullEverything"])
    type: PolicyKind
    document: dict[str, Any]
    version: int = Field(description="its default version")
    updated_at: Timestamp
    resource: str | None = Field(default=None, description="what a managed policy is about")
    role: str | None = Field(default=None, description="a managed policy's role")


class PolicyQuery(Query):
    type: str | None = Field(
        default=None,
        description="only policies of these types, comma-separated (system, custom, managed)",
        pattern=r"^(system|custom|managed)(,(system|custom|managed))*$",
        examples=["system,custom"],
    )


class PolicyVersionOut(Reply):
    version: int
    document: dict[str, Any]
    created_at: Timestamp


def account_json(account: Account, usage: Usage | None = None) -> dict[str, Any]:
    """An account, with what it uses of its quotas (``usage``; none: a new account)."""
    used = usage or Usage(0, 0)
    return {
        "id": account.id,
        "name": account.name,
        "root_login": account.name,
        "namespace_quota": account.namespace_quota,
        "repository_quota": account.repository_quota,
        "namespace_count": used.namespaces,
        "repository_count": used.repositories,
        "created_at": iso(account.created_at),
    }


class AccountRoutes:
    """Accounts, sign-in, temporary logins, the caller's own credentials, STS and audit."""

    def __init__(
        self,
        accounts: AccountService,
        ram: RamService,
        sts: StsService,
        audit: AuditLog,
        auth: ApiAuth,
        *,
        region: str,
        registry_host: str,
        allow_signup: bool,
    ) -> None:
        self.accounts = accounts
        self.ram = ram
        self.sts = sts
        self.audit = audit
        self.auth = auth
        self.identity = auth.identity
        self.region = region
        self.registry_host = registry_host
        self.allow_signup = allow_signup

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/instance", self.instance, methods=["GET"]),
            Route("/api/v1/signup", self.signup, methods=["POST"]),
            Route("/api/v1/accounts", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/accounts/{name}", self.one, methods=["GET", "PATCH"]),
            Route("/api/v1/auth/login", self.login, methods=["POST"]),
            Route("/api/v1/auth/logout", self.logout, methods=["POST"]),
            Route("/api/v1/tokens", self.temporary_login, methods=["POST"]),
            Route("/api/v1/me", self.me, methods=["GET"]),
            Route("/api/v1/me/password", self.my_password, methods=["PUT"]),
            Route("/api/v1/me/registry-password", self.my_registry_password, methods=["PUT"]),
            Route("/api/v1/me/access-keys", self.my_access_keys, methods=["GET", "POST"]),
            Route("/api/v1/me/access-keys/{key}", self.delete_my_access_key, methods=["DELETE"]),
            Route("/api/v1/sts/assume-role", self.assume_role, methods=["POST"]),
            Route("/api/v1/audit", self.audit_log, methods=["GET"]),
        ]

    @describe(
        get=Op(
            "The instance: region, version and address", tag="meta", reply=InstanceOut, public=True
        )
    )
    async def instance(self, request: Request) -> Response:
        """The instance: region, edition, version and the registry's address."""
        host = self.registry_host or request.headers.get("host", "")
        return JSONResponse(
            {
                "region": self.region,
                "edition": EDITION,
                "version": __version__,
                "registry_host": host,
                "signup_enabled": self.allow_signup,
            }
        )

    @describe(
        post=Op(
            "Sign up: create an account and become its root",
            tag="accounts",
            body=Signup,
            reply=AccountOut,
            status=201,
            public=True,
            errors=(403, 409, 429),
        )
    )
    async def signup(self, request: Request) -> Response:
        """Create an account and become its root, when the instance allows sign-up."""
        if not self.allow_signup:
            raise ApiError(
                403, "Forbidden", "sign-up is off on this instance; ask its administrator"
            )
        body = await json_body(request)
        name = required_field(body, "name", str)
        password = required_field(body, "password", str)
        origin = origin_of(request.scope, None, status=201, actor=name)
        account = await call_service(
            lambda: self.accounts.create(origin, name, password), ServiceError
        )
        return JSONResponse(account_json(account), status_code=201)

    @describe(
        post=Op(
            "A session token, for signing in",
            tag="sessions",
            body=Login,
            reply=SessionOut,
            public=True,
            errors=(401, 429),
        )
    )
    async def login(self, request: Request) -> Response:
        """A session token for ``Authorization: Bearer`` on the management API."""
        body = await json_body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "Bad Request", "username and password (strings) are required")
        principal = await self.auth.check_password(request, username, password)
        tokens = self.auth.tokens
        ttl = _remaining(principal, SESSION_SECONDS)
        token, ttl, issued = tokens.issue(principal.name, audience=tokens.api_audience, ttl=ttl)
        return JSONResponse({"token": token, "expires_at": iso(issued + ttl)})

    @describe(post=Op("Sign out everywhere", tag="sessions", status=204))
    async def logout(self, request: Request) -> Response:
        """Sign out everywhere: every session token of the caller issued until now stops
        working (temporary registry logins and access keys are not affected)."""
        principal = await self.auth.signed_in(request)
        if principal.user_id is not None:
            user_id = principal.user_id
            await call_service(lambda: self.identity.end_sessions(user_id), ServiceError)
        return Response(status_code=204)

    @describe(
        post=Op(
            "A temporary registry login (docker login), valid for an hour",
            tag="sessions",
            body=NoFields,
            body_required=False,
            reply=TemporaryLoginOut,
            status=201,
        )
    )
    async def temporary_login(self, request: Request) -> Response:
        """``GetAuthorizationToken``: a registry login as ``cr_temp_user`` valid for an
        hour (or what remains of the STS credentials that ask), which carries exactly the
        caller's permissions (evaluated when it is used)."""
        principal = await self.auth.signed_in(request)
        await no_fields(request)
        tokens = self.auth.tokens
        ttl = _remaining(principal, TEMPORARY_LOGIN_SECONDS)
        password, ttl, issued = tokens.issue(
            principal.name, audience=tokens.login_audience, ttl=ttl
        )
        return JSONResponse(
            {"username": TEMP_USER, "password": password, "expires_at": iso(issued + ttl)},
            status_code=201,
        )

    @describe(get=Op("Who the caller is, with its account's quotas and use", tag="me", reply=MeOut))
    async def me(self, request: Request) -> Response:
        """The caller, its account's quotas and what it uses of them."""
        principal = await self.auth.signed_in(request)
        body: dict[str, Any] = {
            "login": principal.name,
            "arn": principal.arn,
            "account_id": principal.account_id,
            "account": principal.account_name,
            "is_root": principal.is_root,
            "is_instance_admin": principal.is_admin,
            "is_sts": is_sts_key(principal.name),
        }
        if principal.expires_at is not None:
            body["expires_at"] = iso(principal.expires_at)
        if (user_id := principal.user_id) is not None:
            # Until it is set, the administrator's console password also serves
            # docker login; anyone else has no registry password of their own yet.
            body["has_registry_password"] = await call_service(
                lambda: self.identity.has_registry_password(user_id), ServiceError
            )
        account_id, account_name = principal.account_id, principal.account_name
        if account_id is not None and account_name:
            account = await call_service(lambda: self.accounts.get(account_name), ServiceError)
            usage = await call_service(lambda: self.accounts.usage(account_id), ServiceError)
            body |= {
                "namespace_quota": account.namespace_quota,
                "repository_quota": account.repository_quota,
                "namespace_count": usage.namespaces,
                "repository_count": usage.repositories,
            }
        return JSONResponse(body)

    async def _own_user(self, request: Request) -> int:
        principal = await self.auth.signed_in(request)
        if principal.user_id is None:
            raise ApiError(
                403, "Forbidden", "STS credentials have no password or access keys of their own"
            )
        return principal.user_id

    async def _own_change(self, request: Request, action: str, status: int) -> Origin:
        """The origin of a change to the caller's own credentials: no policy decides
        (everyone may change their own), but it is audited like any change."""
        principal = await self.auth.principal(request)
        request.scope[DECISION] = decision(principal, action, principal.arn, True)
        return origin_of(request.scope, principal, status=status)

    @describe(
        put=Op("Change one's own console password", tag="me", body=PasswordChange, status=204)
    )
    async def my_password(self, request: Request) -> Response:
        """Change the caller's own console password (the current one is required)."""
        await self._own_user(request)
        principal = await self.auth.principal(request)
        body = await json_body(request)
        current, password = (
            required_field(body, "current_password", str),
            required_field(body, "password", str),
        )
        ip = request_context(request).source_ip
        await self._own_change(request, "ram:UpdateUser", 204)  # audited after the answer
        try:
            await call_service(
                lambda: self.identity.change_password(principal, current, password, source_ip=ip),
                ServiceError,
            )
        except LoginThrottled as exc:
            raise throttled(exc) from exc
        return Response(status_code=204)

    @describe(
        put=Op("Set one's own docker login password", tag="me", body=RegistryPassword, status=204)
    )
    async def my_registry_password(self, request: Request) -> Response:
        """Set the caller's own ``docker login`` password ("Access Credential")."""
        user_id = await self._own_user(request)
        body = await json_body(request)
        password = required_field(body, "password", str)
        await self._own_change(request, "ram:UpdateUser", 204)  # audited after the answer
        await call_service(
            lambda: self.identity.set_registry_password(user_id, password), ServiceError
        )
        return Response(status_code=204)

    @describe(
        get=Op("List one's own access keys", tag="access-keys", reply=AccessKeyOut, listed=True),
        post=Op(
            "Create an access key for oneself (its secret is shown once)",
            tag="access-keys",
            body=NoFields,
            body_required=False,
            reply=NewAccessKeyOut,
            status=201,
        ),
    )
    async def my_access_keys(self, request: Request) -> Response:
        """The caller's own access keys (root or RAM user); a new secret is shown once."""
        user_id = await self._own_user(request)
        if request.method == "POST":
            origin = await self._own_change(request, "ram:CreateAccessKey", 201)
            await no_fields(request)
            key_id, secret = await call_service(
                lambda: self.ram.create_access_key(origin, user_id), ServiceError
            )
            return JSONResponse(
                {"access_key_id": key_id, "access_key_secret": secret}, status_code=201
            )
        keys = await call_service(lambda: self.ram.list_access_keys(user_id), ServiceError)
        return JSONResponse({"items": [_key_json(k, c) for k, c in keys]})

    @describe(delete=Op("Delete one of one's own access keys", tag="access-keys", status=204))
    async def delete_my_access_key(self, request: Request) -> Response:
        user_id = await self._own_user(request)
        key_id = request.path_params["key"]
        origin = await self._own_change(request, "ram:DeleteAccessKey", 204)
        await call_service(
            lambda: self.ram.delete_access_key(origin, user_id, key_id), ServiceError
        )
        return Response(status_code=204)

    @describe(
        post=Op(
            "Assume a role: temporary credentials (AssumeRole)",
            tag="sts",
            body=AssumeRole,
            reply=StsCredentialsOut,
            status=201,
            description=(
                "The fields may also be spelled as in Alibaba Cloud STS (RoleArn, "
                "RoleSessionName, DurationSeconds, Policy)."
            ),
        )
    )
    async def assume_role(self, request: Request) -> Response:
        """``AssumeRole``: STS credentials for a role whose trust policy allows the caller."""
        principal = await self.auth.signed_in(request)
        body = await json_body(request)
        role_arn = body.get("role_arn", body.get("RoleArn"))
        session_name = body.get("role_session_name", body.get("RoleSessionName"))
        duration = body.get("duration_seconds", body.get("DurationSeconds"))
        policy = body.get("policy", body.get("Policy"))
        if not isinstance(role_arn, str) or not isinstance(session_name, str):
            raise ApiError(
                400, "Bad Request", "role_arn and role_session_name (strings) are required"
            )
        context = request_context(request)
        # The service decides (the caller's own permission, then the trust policy); the
        # status of the response tells the audit log whether it was allowed.
        request.scope[DECISION] = decision(principal, "sts:AssumeRole", role_arn, True)
        origin = origin_of(request.scope, principal, status=201)
        creds = await call_service(
            lambda: self.sts.assume_role(
                origin, principal, role_arn, session_name, duration, policy, context
            ),
            ServiceError,
        )
        tokens = self.auth.tokens
        ttl = max(1, int(creds.expires_at.timestamp() - datetime.now().timestamp()))
        security_token, _, _ = tokens.issue(
            creds.access_key_id, audience=tokens.sts_audience, ttl=ttl
        )
        return JSONResponse(
            {
                "access_key_id": creds.access_key_id,
                "access_key_secret": creds.access_key_secret,
                "security_token": security_token,
                "expiration": iso(creds.expires_at),
                "assumed_role_user": {"arn": creds.assumed_role_arn},
            },
            status_code=201,
        )

    @describe(
        get=Op(
            "Read the audit log, newest first",
            tag="audit",
            reply=AuditEntryOut,
            query=AuditQuery,
            paged=True,
        )
    )
    async def audit_log(self, request: Request) -> Response:
        """The audit log of the caller's account, newest first (the instance
        administrator: every account, or ``?account=``)."""
        principal = await self.auth.signed_in(request)
        account_id = principal.account_id
        await self.auth.authorize(
            request, "cr:ReadAuditLog", audit_arn(self.region, account_id or 0)
        )
        query = request.query_params
        account_id = await listed_account(request, principal, self.accounts)
        limit, after = page_params(request)
        if after is not None and not after.isdigit():
            raise ApiError(400, "Bad Request", "after must be an audit record id")
        allowed = {"true": True, "false": False, None: None}.get(query.get("allowed"), "bad")
        if allowed == "bad":
            raise ApiError(400, "Bad Request", "allowed must be true or false")
        since, until = query_time(request, "since"), query_time(request, "until")
        entries = await call_service(
            lambda: self.audit.list(
                account_id,
                limit=limit,
                before=int(after) if after else None,
                actor=query.get("actor") or None,
                action=query.get("action") or None,
                allowed=allowed if isinstance(allowed, bool) else None,
                since=since,
                until=until,
            ),
            ServiceError,
        )
        return paged(page([entry_json(e) for e in entries], limit, "/api/v1/audit", "id"))

    async def _admin(self, request: Request, action: str) -> None:
        await self.auth.authorize(request, action, instance_arn(self.region))

    @describe(
        get=Op("List accounts", tag="accounts", reply=AccountOut, paged=True),
        post=Op(
            "Create an account with its root",
            tag="accounts",
            body=NewAccount,
            reply=AccountOut,
            status=201,
        ),
    )
    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            await self._admin(request, actions.CREATE_ACCOUNT)
            body = await json_body(request)
            name, password = (
                required_field(body, "name", str),
                required_field(body, "password", str),
            )
            namespace_quota = optional_field(body, "namespace_quota", int)
            repository_quota = optional_field(body, "repository_quota", int)
            origin = origin_of(request.scope, await self.auth.principal(request), status=201)
            account = await call_service(
                lambda: self.accounts.create(
                    origin,
                    name,
                    password,
                    namespace_quota=3 if namespace_quota is None else namespace_quota,
                    repository_quota=300 if repository_quota is None else repository_quota,
                ),
                ServiceError,
            )
            return JSONResponse(account_json(account), status_code=201)
        await self._admin(request, actions.LIST_ACCOUNT)
        limit, after = page_params(request)
        items = await call_service(
            lambda: self.accounts.list(limit=limit, after=after), ServiceError
        )
        used = await call_service(
            lambda: self.accounts.usage_of([a.id for a in items]), ServiceError
        )
        return paged(
            page([account_json(a, used[a.id]) for a in items], limit, "/api/v1/accounts", "name")
        )

    @describe(
        get=Op("Read an account, with what it uses", tag="accounts", reply=AccountOut),
        patch=Op(
            "Change an account's quotas",
            tag="accounts",
            body=AccountChange,
            reply=AccountOut,
        ),
    )
    async def one(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "PATCH":
            await self._admin(request, actions.UPDATE_ACCOUNT)
            body = await json_body(request)
            namespace_quota = optional_field(body, "namespace_quota", int)
            repository_quota = optional_field(body, "repository_quota", int)
            if namespace_quota is None and repository_quota is None:
                raise ApiError(
                    400, "Bad Request", "give namespace_quota and/or repository_quota (integers)"
                )
            origin = origin_of(request.scope, await self.auth.principal(request), status=200)
            account = await call_service(
                lambda: self.accounts.set_quotas(
                    origin, name, namespace_quota=namespace_quota, repository_quota=repository_quota
                ),
                ServiceError,
            )
        else:
            await self._admin(request, actions.LIST_ACCOUNT)
            account = await call_service(lambda: self.accounts.get(name), ServiceError)
        used = await call_service(lambda: self.accounts.usage(account.id), ServiceError)
        return JSONResponse(account_json(account, used))


def _remaining(principal: Principal, ttl: int) -> int:
    """``ttl``, cut to what remains of the caller's STS credentials."""
    if principal.expires_at is None:
        return ttl
    return max(1, min(ttl, int(principal.expires_at - datetime.now().timestamp())))


def _key_json(key_id: str, created: datetime) -> dict[str, Any]:
    return {"access_key_id": key_id, "created_at": iso(created)}


def ram_user_json(user: RamUser) -> dict[str, Any]:
    return {
        "name": user.name,
        "login": user.login,
        "has_registry_password": user.has_registry_password,
        "policies": list(user.policies),
        "groups": list(user.groups),
        "created_at": iso(user.created_at),
    }


def group_json(group: RamGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "description": group.description,
        "members": list(group.members),
        "policies": list(group.policies),
        "created_at": iso(group.created_at),
    }


def role_json(role: RamRole) -> dict[str, Any]:
    return {
        "name": role.name,
        "arn": role.arn,
        "description": role.description,
        "trust_policy": role.trust_policy,
        "max_session_seconds": role.max_session_seconds,
        "policies": list(role.policies),
        "created_at": iso(role.created_at),
    }


def policy_json(policy: StoredPolicy) -> dict[str, Any]:
    body = {
        "name": policy.name,
        "type": policy.kind,
        "document": policy.document,
        "version": policy.version,
        "updated_at": iso(policy.updated_at),
    }
    if policy.managed_resource is not None:
        body |= {"resource": policy.managed_resource, "role": policy.managed_role}
    return body


class RamRoutes:
    """RAM users, groups, roles and policies of the caller's own account."""

    def __init__(self, ram: RamService, auth: ApiAuth) -> None:
        self.ram = ram
        self.auth = auth

    def routes(self) -> list[Route]:
        r = "/api/v1/ram"
        return [
            Route(f"{r}/users", self.users, methods=["GET", "POST"]),
            Route(f"{r}/users/{{user}}", self.user, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{r}/users/{{user}}/registry-password", self.registry_password, methods=["PUT"]),
            Route(f"{r}/users/{{user}}/access-keys", self.access_keys, methods=["GET", "POST"]),
            Route(
                f"{r}/users/{{user}}/access-keys/{{key}}",
                self.delete_access_key,
                methods=["DELETE"],
            ),
            Route(f"{r}/groups", self.groups, methods=["GET", "POST"]),
            Route(f"{r}/groups/{{group}}", self.group, methods=["GET", "DELETE"]),
            Route(f"{r}/groups/{{group}}/members/{{user}}", self.member, methods=["PUT", "DELETE"]),
            Route(f"{r}/roles", self.roles, methods=["GET", "POST"]),
            Route(f"{r}/roles/{{role}}", self.role, methods=["GET", "PATCH", "DELETE"]),
            Route(
                f"{r}/{{kind:str}}/{{holder}}/policies/{{policy}}",
                self.attachment,
                methods=["PUT", "DELETE"],
            ),
            Route(f"{r}/policies", self.policies, methods=["GET", "POST"]),
            Route(f"{r}/policies/{{policy}}", self.policy, methods=["GET", "PUT", "DELETE"]),
            Route(f"{r}/policies/{{policy}}/versions", self.versions, methods=["GET"]),
        ]

    async def _require(
        self, request: Request, action: str, kind: str, name: str
    ) -> tuple[int, str]:
        """Authorize ``action`` on a RAM user, group, role or policy of the caller's
        account; return the account's id and name."""
        principal = await self.auth.signed_in(request)
        if principal.account_id is None:
            raise ApiError(403, "Forbidden", "this caller belongs to no account")
        await self.auth.authorize(request, action, ram_arn(principal.account_id, kind, name))
        return principal.account_id, principal.account_name

    async def _origin(self, request: Request, status: int) -> Origin:
        """The origin of the change an authorized request is about to make."""
        return origin_of(request.scope, await self.auth.principal(request), status=status)

    # -- users -----------------------------------------------------------------------

    @describe(
        get=Op("List RAM users", tag="ram-users", reply=RamUserOut, paged=True),
        post=Op(
            "Create a RAM user", tag="ram-users", body=NewRamUser, reply=RamUserOut, status=201
        ),
    )
    async def users(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name = required_field(body, "name", str)
            password = optional_field(body, "password", str)
            account_id, account = await self._require(request, "ram:CreateUser", "user", name)
            origin = await self._origin(request, 201)
            user = await call_service(
                lambda: self.ram.create_user(origin, account_id, account, name, password),
                ServiceError,
            )
            return JSONResponse(ram_user_json(user), status_code=201)
        account_id, _ = await self._require(request, "ram:ListUsers", "user", "*")
        limit, after = page_params(request)
        users = await call_service(
            lambda: self.ram.list_users(account_id, limit=limit, after=after), ServiceError
        )
        return paged(page([ram_user_json(u) for u in users], limit, "/api/v1/ram/users", "login"))

    @describe(
        get=Op("Read a RAM user", tag="ram-users", reply=RamUserOut),
        patch=Op(
            "Set a RAM user's console password",
            tag="ram-users",
            body=ConsolePassword,
            reply=RamUserOut,
        ),
        delete=Op(
            "Delete a RAM user",
            tag="ram-users",
            status=204,
            description=(
                "Refused (409) while it has access keys, attached policies (permissions "
                "included) or group memberships."
            ),
        ),
    )
    async def user(self, request: Request) -> Response:
        name = request.path_params["user"]
        if request.method == "DELETE":
            account_id, account = await self._require(request, "ram:DeleteUser", "user", name)
            origin = await self._origin(request, 204)
            await call_service(
                lambda: self.ram.delete_user(origin, account_id, f"{name}@{account}"),
                ServiceError,
            )
            return Response(status_code=204)
        if request.method == "PATCH":
            account_id, account = await self._require(request, "ram:UpdateUser", "user", name)
            body = await json_body(request)
            unknown = sorted(set(body) - {"password"})
            if unknown:
                raise ApiError(400, "Bad Request", f"unknown field {unknown[0]!r} (password)")
            password = required_field(body, "password", str)
            origin = await self._origin(request, 200)
            await call_service(
                lambda: self.ram.set_console_password(
                    origin, account_id, f"{name}@{account}", password
                ),
                ServiceError,
            )
        else:
            account_id, account = await self._require(request, "ram:GetUser", "user", name)
        user = await call_service(
            lambda: self.ram.get_user(account_id, account, name), ServiceError
        )
        return JSONResponse(ram_user_json(user))

    @describe(
        put=Op(
            "Set a RAM user's docker login password",
            tag="ram-users",
            body=RegistryPassword,
            status=204,
        )
    )
    async def registry_password(self, request: Request) -> Response:
        name = request.path_params["user"]
        account_id, account = await self._require(request, "ram:UpdateUser", "user", name)
        body = await json_body(request)
        password = required_field(body, "password", str)
        origin = await self._origin(request, 204)
        await call_service(
            lambda: self.ram.set_registry_password(
                origin, account_id, f"{name}@{account}", password
            ),
            ServiceError,
        )
        return Response(status_code=204)

    async def _user_id(self, request: Request, action: str) -> int:
        name = request.path_params["user"]
        account_id, account = await self._require(request, action, "user", name)
        return await call_service(
            lambda: self.ram.user_id(account_id, f"{name}@{account}"), ServiceError
        )

    @describe(
        get=Op("List a RAM user's access keys", tag="access-keys", reply=AccessKeyOut, listed=True),
        post=Op(
            "Create an access key for a RAM user (its secret is shown once)",
            tag="access-keys",
            body=NoFields,
            body_required=False,
            reply=NewAccessKeyOut,
            status=201,
        ),
    )
    async def access_keys(self, request: Request) -> Response:
        if request.method == "POST":
            user_id = await self._user_id(request, "ram:CreateAccessKey")
            origin = await self._origin(request, 201)
            await no_fields(request)
            key_id, secret = await call_service(
                lambda: self.ram.create_access_key(origin, user_id), ServiceError
            )
            # The secret is shown in this response and never again.
            return JSONResponse(
                {"access_key_id": key_id, "access_key_secret": secret}, status_code=201
            )
        user_id = await self._user_id(request, "ram:ListAccessKeys")
        keys = await call_service(lambda: self.ram.list_access_keys(user_id), ServiceError)
        return JSONResponse({"items": [_key_json(k, c) for k, c in keys]})

    @describe(delete=Op("Delete a RAM user's access key", tag="access-keys", status=204))
    async def delete_access_key(self, request: Request) -> Response:
        user_id = await self._user_id(request, "ram:DeleteAccessKey")
        key_id = request.path_params["key"]
        origin = await self._origin(request, 204)
        await call_service(
            lambda: self.ram.delete_access_key(origin, user_id, key_id), ServiceError
        )
        return Response(status_code=204)

    # -- groups ----------------------------------------------------------------------

    @describe(
        get=Op("List RAM groups", tag="ram-groups", reply=GroupOut, paged=True),
        post=Op("Create a RAM group", tag="ram-groups", body=NewGroup, reply=GroupOut, status=201),
    )
    async def groups(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name = required_field(body, "name", str)
            description = optional_field(body, "description", str) or ""
            account_id, _ = await self._require(request, "ram:CreateGroup", "group", name)
            origin = await self._origin(request, 201)
            group = await call_service(
                lambda: self.ram.create_group(origin, account_id, name, description), ServiceError
            )
            return JSONResponse(group_json(group), status_code=201)
        account_id, _ = await self._require(request, "ram:ListGroups", "group", "*")
        limit, after = page_params(request)
        groups = await call_service(
            lambda: self.ram.list_groups(account_id, limit=limit, after=after), ServiceError
        )
        return paged(page([group_json(g) for g in groups], limit, "/api/v1/ram/groups", "name"))

    @describe(
        get=Op("Read a RAM group with its members", tag="ram-groups", reply=GroupOut),
        delete=Op("Delete a RAM group", tag="ram-groups", status=204),
    )
    async def group(self, request: Request) -> Response:
        name = request.path_params["group"]
        if request.method == "DELETE":
            account_id, _ = await self._require(request, "ram:DeleteGroup", "group", name)
            origin = await self._origin(request, 204)
            await call_service(
                lambda: self.ram.delete_group(origin, account_id, name), ServiceError
            )
            return Response(status_code=204)
        account_id, _ = await self._require(request, "ram:GetGroup", "group", name)
        group = await call_service(lambda: self.ram.get_group(account_id, name), ServiceError)
        return JSONResponse(group_json(group))

    @describe(
        put=Op("Add a RAM user to a group", tag="ram-groups", status=204),
        delete=Op("Remove a RAM user from a group", tag="ram-groups", status=204),
    )
    async def member(self, request: Request) -> Response:
        group, user = request.path_params["group"], request.path_params["user"]
        add = request.method == "PUT"
        action = "ram:AddUserToGroup" if add else "ram:RemoveUserFromGroup"
        account_id, account = await self._require(request, action, "group", group)
        login = user if "@" in user else f"{user}@{account}"
        origin = await self._origin(request, 204)
        await call_service(
            lambda: self.ram.set_membership(origin, account_id, group, login, member=add),
            ServiceError,
        )
        return Response(status_code=204)

    # -- roles -----------------------------------------------------------------------

    @describe(
        get=Op("List RAM roles", tag="ram-roles", reply=RoleOut, paged=True),
        post=Op("Create a RAM role", tag="ram-roles", body=NewRole, reply=RoleOut, status=201),
    )
    async def roles(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name = required_field(body, "name", str)
            description = optional_field(body, "description", str) or ""
            seconds = optional_field(body, "max_session_seconds", int)
            trust = body.get("trust_policy")
            if trust is None:
                raise ApiError(400, "Bad Request", "trust_policy (a policy document) is required")
            account_id, _ = await self._require(request, "ram:CreateRole", "role", name)
            origin = await self._origin(request, 201)
            role = await call_service(
                lambda: self.ram.create_role(
                    origin,
                    account_id,
                    name,
                    trust,
                    description=description,
                    max_session_seconds=3600 if seconds is None else seconds,
                ),
                ServiceError,
            )
            return JSONResponse(role_json(role), status_code=201)
        account_id, _ = await self._require(request, "ram:ListRoles", "role", "*")
        limit, after = page_params(request)
        roles = await call_service(
            lambda: self.ram.list_roles(account_id, limit=limit, after=after), ServiceError
        )
        return paged(page([role_json(r) for r in roles], limit, "/api/v1/ram/roles", "name"))

    @describe(
        get=Op("Read a RAM role", tag="ram-roles", reply=RoleOut),
        patch=Op(
            "Change a RAM role's description, session length or trust policy",
            tag="ram-roles",
            body=RoleChange,
            reply=RoleOut,
        ),
        delete=Op("Delete a RAM role", tag="ram-roles", status=204),
    )
    async def role(self, request: Request) -> Response:
        name = request.path_params["role"]
        if request.method == "DELETE":
            account_id, _ = await self._require(request, "ram:DeleteRole", "role", name)
            origin = await self._origin(request, 204)
            await call_service(lambda: self.ram.delete_role(origin, account_id, name), ServiceError)
            return Response(status_code=204)
        if request.method == "PATCH":
            account_id, _ = await self._require(request, "ram:UpdateRole", "role", name)
            body = await json_body(request)
            description = optional_field(body, "description", str)
            seconds = optional_field(body, "max_session_seconds", int)
            trust = body.get("trust_policy")
            origin = await self._origin(request, 200)
            role = await call_service(
                lambda: self.ram.update_role(
                    origin,
                    account_id,
                    name,
                    trust_policy=trust,
                    description=description,
                    max_session_seconds=seconds,
                ),
                ServiceError,
            )
            return JSONResponse(role_json(role))
        account_id, _ = await self._require(request, "ram:GetRole", "role", name)
        role = await call_service(lambda: self.ram.get_role(account_id, name), ServiceError)
        return JSONResponse(role_json(role))

    # -- policies --------------------------------------------------------------------

    @describe(
        put=Op("Attach a policy to a RAM user, group or role", tag="ram-policies", status=204),
        delete=Op("Detach a policy from a RAM user, group or role", tag="ram-policies", status=204),
    )
    async def attachment(self, request: Request) -> Response:
        plural, holder = request.path_params["kind"], request.path_params["holder"]
        policy = request.path_params["policy"]
        kind = plural.removesuffix("s")
        if plural != f"{kind}s" or kind not in HOLDERS:
            raise ApiError(404, "Not Found", f"no such route: {request.url.path}")
        attach = request.method == "PUT"
        action = "ram:AttachPolicy" if attach else "ram:DetachPolicy"
        account_id, account = await self._require(request, action, kind, holder)
        if kind == "user":
            holder = f"{holder}@{account}"
        origin = await self._origin(request, 204)
        await call_service(
            lambda: self.ram.attach(origin, account_id, kind, holder, policy, attached=attach),
            ServiceError,
        )
        return Response(status_code=204)

    @describe(
        get=Op(
            "List permission policies",
            tag="ram-policies",
            reply=PolicyOut,
            query=PolicyQuery,
            paged=True,
        ),
        post=Op(
            "Create a custom policy",
            tag="ram-policies",
            body=NewPolicy,
            reply=PolicyOut,
            status=201,
        ),
    )
    async def policies(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name, document = body.get("name"), body.get("document")
            if not isinstance(name, str) or document is None:
                raise ApiError(400, "Bad Request", "name and document are required")
            account_id, _ = await self._require(request, "ram:CreatePolicy", "policy", name)
            origin = await self._origin(request, 201)
            created = await call_service(
                lambda: self.ram.put_policy(origin, account_id, name, document, create_only=True),
                ServiceError,
            )
            return JSONResponse(policy_json(created), status_code=201)
        account_id, _ = await self._require(request, "ram:ListPolicies", "policy", "*")
        kind = request.query_params.get("type") or None
        limit, after = page_params(request)
        items = await call_service(
            lambda: self.ram.list_policies(account_id, kind=kind, limit=limit, after=after),
            ServiceError,
        )
        body = page([policy_json(p) for p in items], limit, "/api/v1/ram/policies", "name")
        if kind and "next" in body:
            body["next"] += "&" + urlencode({"type": kind})
        return paged(body)

    @describe(
        get=Op("Read a policy", tag="ram-policies", reply=PolicyOut),
        put=Op(
            "Give a custom policy a new default version",
            tag="ram-policies",
            body=PolicyUpdate,
            reply=PolicyOut,
        ),
        delete=Op("Delete a custom policy", tag="ram-policies", status=204),
    )
    async def policy(self, request: Request) -> Response:
        name = request.path_params["policy"]
        if request.method == "PUT":
            account_id, _ = await self._require(request, "ram:UpdatePolicy", "policy", name)
            body = await json_body(request)
            document = body.get("document")
            if document is None:
                raise ApiError(400, "Bad Request", "document is required")
            origin = await self._origin(request, 200)
            updated = await call_service(
                lambda: self.ram.put_policy(origin, account_id, name, document), ServiceError
            )
            return JSONResponse(policy_json(updated))
        if request.method == "DELETE":
            account_id, _ = await self._require(request, "ram:DeletePolicy", "policy", name)
            origin = await self._origin(request, 204)
            await call_service(
                lambda: self.ram.delete_policy(origin, account_id, name), ServiceError
            )
            return Response(status_code=204)
        account_id, _ = await self._require(request, "ram:GetPolicy", "policy", name)
        found = await call_service(lambda: self.ram.get_policy(account_id, name), ServiceError)
        return JSONResponse(policy_json(found))

    @describe(
        get=Op(
            "List a policy's versions",
            tag="ram-policies",
            reply=PolicyVersionOut,
            listed=True,
        )
    )
    async def versions(self, request: Request) -> Response:
        name = request.path_params["policy"]
        account_id, _ = await self._require(request, "ram:GetPolicy", "policy", name)
        versions = await call_service(
            lambda: self.ram.policy_versions(account_id, name), ServiceError
        )
        return JSONResponse(
            {"items": [{"version": v, "document": d, "created_at": iso(c)} for v, d, c in versions]}
        )


class AuthzCheck(Body):
    """One question: may the caller do ``action`` on ``resource``?"""

    action: str = Field(description="an action of the catalogue", examples=["cr:DeleteRepository"])
    resource: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RESOURCE_LENGTH,
        description="a namespace, namespace/repository, user/NAME…; none: any name in the "
        "caller's account",
        examples=["team/app"],
    )


class AuthzChecks(Body):
    checks: list[AuthzCheck] = Field(min_length=1, max_length=MAX_CHECKS)


class AuthzAnswer(Reply):
    action: str = Field(examples=["cr:DeleteRepository"])
    resource: str | None = Field(examples=["team/app"])
    allowed: bool


class AuthzAnswers(Reply):
    results: list[AuthzAnswer] = Field(description="one answer per check, in their order")


class AuthzRoutes:
    """``POST /api/v1/authz/check``: what the caller may do, asked in one batch."""

    def __init__(self, checks: CheckService, auth: ApiAuth) -> None:
        self.checks = checks
        self.auth = auth

    def routes(self) -> list[Route]:
        return [Route("/api/v1/authz/check", self.check, methods=["POST"])]

    @describe(
        post=Op(
            "Ask which actions the caller may do (up to 100 at once)",
            tag="authz",
            body=AuthzChecks,
            reply=AuthzAnswers,
        )
    )
    async def check(self, request: Request) -> Response:
        """Whether the caller may do each of up to 100 actions on their resources.

        Body: ``{"checks": [{"action": "cr:DeleteRepository", "resource":
        "namespace/repo"}, …]}``; answer: ``{"results": [{"action", "resource",
        "allowed"}, …]}`` in the same order. Resources are short names (see
        :mod:`dockyard.iam.checks`), resolved to the ARN the action's own route checks,
        and decided by the same policy evaluation. Asking needs no permission (one may
        always ask about oneself) and is not audited as the action itself; 400 names
        the first bad check, and nothing is answered then."""
        principal = await self.auth.signed_in(request)
        body = await json_body(request)
        items = await call_service(lambda: parse_checks(body), ServiceError)
        context = request_context(request)
        answers = await call_service(
            lambda: self.checks.check(principal, items, context), ServiceError
        )
        results = [
            {"action": c.action, "resource": c.resource, "allowed": allowed}
            for c, allowed in zip(items, answers, strict=True)
        ]
        return JSONResponse({"results": results})
