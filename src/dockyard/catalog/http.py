"""Management API routes for namespaces (``/api/v1/namespaces``), repositories and their
tags (``/api/v1/repositories``), and the permissions of RAM users and groups on both
(``…/permissions``: read-only, write or admin, kept as policies the system manages; see
``iam.permissions``).

Every route needs a signed-in caller (401 otherwise) that :func:`iam.authz.is_allowed`
lets do the route's ``cr:`` action on the namespace or repository ARN (403 otherwise).
Listings show only what the caller may see: its own account's (the instance
administrator: every account's, ``?account=NAME`` to narrow, on namespaces as on
repositories), and for a RAM user only
the repositories it may ``cr:ListRepository`` or ``cr:GetRepository``.

Every namespace and repository returned carries its owning account's name
(``account``) and ``allowed_actions``: the ``cr:`` actions the caller may do on it,
decided by the same evaluation the routes make (a tag listing carries its
repository's). The console shows only what that answer allows; the routes still decide.

Tags list the latest pushed first (``?order=pushed``, the default, as the cloud console
shows them), by name (``?order=name``) or the largest first (``?order=size``);
``?direction=asc`` or ``desc`` turns the order, ``?q=`` keeps the names that contain it;
``after`` is the last tag name of the previous page. Deleting a tag removes the tag
only: the manifest stays, reachable by digest, as when a registry client deletes a tag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal, TypeVar

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import (
    ApiAuth,
    ApiError,
    call_service,
    iso,
    json_body,
    listing,
    only_fields,
    optional_field,
    page,
    page_params,
    paged,
    request_context,
)
from dockyard.audit import origin_of
from dockyard.catalog.service import (
    CatalogService,
    Direction,
    Namespace,
    RepoRef,
    Repository,
    RepositoryEntry,
    RepositoryFilter,
    Tag,
    TagOrder,
    parse_repository_name,
    repository_check,
)
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import namespace_arn, repository_arn
from dockyard.iam.authz import Principal, Resource, is_allowed
from dockyard.iam.permissions import Permission, PermissionService
from dockyard.oci.reference import COMPONENT, RepositoryName
from dockyard.openapi import Body, Field, Int64, Op, Query, Reply, Timestamp, describe, full_match
from dockyard.openapi import field_names as fields
from dockyard.origin import Origin


class RepoType(StrEnum):
    """Who may pull: anyone (public) or those a policy lets (private)."""

    PUBLIC = "public"
    PRIVATE = "private"


REPO_TYPES = tuple(t.value for t in RepoType)


class PermissionRole(StrEnum):
    """What a permission lets its RAM user or group do."""

    READ_ONLY = "read-only"
    WRITE = "write"
    ADMIN = "admin"


class NewNamespace(Body):
    """A namespace to create, owned by the caller's account."""

    name: str = Field(
        description="2 to 30 lowercase letters and digits, with separators (. _ __ -) between",
        min_length=2,
        max_length=30,
        pattern=full_match(COMPONENT),
        examples=["team"],
    )
    auto_create_repo: bool | None = Field(
        default=None, description="whether a push creates a missing repository (default true)"
    )
    default_repo_type: RepoType | None = Field(
        default=None, description="the type of repositories a push creates (default private)"
    )


class NamespaceChange(Body):
    """The settings of a namespace to change; absent fields stay as they are."""

    auto_create_repo: bool | None = Field(
        default=None, description="whether a push creates a missing repository"
    )
    default_repo_type: RepoType | None = Field(
        default=None, description="the type of repositories a push creates"
    )


class NamespaceOut(Reply):
    """A namespace: a group of repositories owned by one account."""

    name: str = Field(examples=["team"])
    account_id: Int64 | None = Field(description="the owning account (none: the instance's)")
    account: str | None = Field(
        description="the owning account's name (none: the instance's)", examples=["acme"]
    )
    allowed_actions: list[str] = Field(
        description="the cr: actions the caller may do with it (what the console shows)",
        examples=[["cr:GetRepository", "cr:PullRepository"]],
    )
    auto_create_repo: bool
    default_repo_type: RepoType
    created_at: Timestamp


class NewRepository(Body):
    """A repository to create in a namespace."""

    namespace: str = Field(pattern=full_match(COMPONENT), examples=["team"])
    name: str = Field(description="the repository's name in the namespace", examples=["app"])
    repo_type: RepoType | None = Field(
        default=None, description="public (anyone may pull) or private (the namespace's default)"
    )
    summary: str | None = Field(default=None, description="one line", examples=["The web app"])
    detail: str | None = Field(default=None, description="a longer description, in Markdown")


class RepositoryChange(Body):
    """What to change in a repository; absent fields stay as they are."""

    repo_type: RepoType | None = None
    summary: str | None = None
    detail: str | None = None


class RepositoryOut(Reply):
    """A repository, with how many tags it has and the bytes it takes."""

    namespace: str = Field(examples=["team"])
    name: str = Field(examples=["app"])
    full_name: str = Field(examples=["team/app"])
    account_id: Int64 | None
    account: str | None = Field(
        description="the owning account's name (none: the instance's)", examples=["acme"]
    )
    allowed_actions: list[str] = Field(
        description="the cr: actions the caller may do with it (what the console shows)",
        examples=[["cr:GetRepository", "cr:PullRepository"]],
    )
    repo_type: RepoType
    summary: str
    detail: str
    created_at: Timestamp
    updated_at: Timestamp
    tag_count: int
    size: Int64 = Field(description="bytes the repository's blobs take")


class NamespaceQuery(Query):
    account: str | None = Field(
        default=None, description="only this account's (the instance administrator)"
    )


class RepositoryQuery(Query):
    account: str | None = Field(
        default=None, description="only this account's (the instance administrator)"
    )
    namespace: str | None = Field(default=None, description="only this namespace's")
    q: str | None = Field(default=None, description="only names that contain this")
    repo_type: RepoType | None = Field(default=None, description="only public or private ones")


class TagOut(Reply):
    """A tag and the manifest it names."""

    name: str = Field(examples=["latest"])
    digest: str = Field(examples=["sha256:" + "0" * 64])
    media_type: str = Field(examples=["application/vnd.oci.image.manifest.v1+json"])
    size: Int64 = Field(description="bytes of the manifest, its config and its layers")
    pushed_at: Timestamp


class TagQuery(Query):
    q: str | None = Field(default=None, description="only tags that contain this")
    order: Literal["pushed", "name", "size"] | None = Field(
        default=None,
        description="latest pushed first (the default), by name, or the largest first",
    )
    direction: Literal["asc", "desc"] | None = Field(
        default=None, description="turns the order (each order has its own default)"
    )


class PermissionGrant(Body):
    """The permission to give."""

    role: PermissionRole = Field(description="what the subject may do")


class PermissionOut(Reply):
    """A permission on a namespace or repository, kept as a managed policy."""

    subject_type: Literal["user", "group"]
    subject: str = Field(
        description="a user's login (name@account) or a group's name",
        examples=["alice@acme"],
    )
    role: PermissionRole
    policy: str = Field(description="the managed policy that carries it")


class PermissionEntryOut(PermissionOut):
    key: str = Field(description="where a listing resumes", examples=["user:alice@acme"])


_PERMISSIONS = describe(
    get=Op(
        "List who has permissions on it",
        tag="permissions",
        reply=PermissionEntryOut,
        paged=True,
    ),
    put=Op(
        "Give a RAM user or group a permission (replacing the one it had)",
        tag="permissions",
        body=PermissionGrant,
        reply=PermissionOut,
    ),
    delete=Op("Take a RAM user or group's permission away", tag="permissions", status=204),
)


TAG_ORDERS: tuple[TagOrder, ...] = ("pushed", "name", "size")
DIRECTIONS: tuple[Direction, ...] = ("asc", "desc")
T = TypeVar("T", bound=str)


async def repository_in_path(
    auth: ApiAuth, catalog: CatalogService, region: str, request: Request, action: str
) -> tuple[RepositoryName, Principal]:
    """The repository the path names (``{namespace}/{repository}``), once the signed-in
    caller may do ``action`` on it (for a repository of no known owner, on the caller's
    account's resource)."""
    principal = await auth.signed_in(request)
    try:
        name = parse_repository_name(
            f"{request.path_params['namespace']}/{request.path_params['repository']}"
        )
    except ServiceError as exc:
        raise ApiError(exc.status, "Bad Request", str(exc)) from exc
    ref = await to_thread.run_sync(catalog.resolve, name)
    account = ref.account_id if ref.account_id is not None else (principal.account_id or "*")
    arn = repository_arn(region, account, name.namespace, name.repository)
    await auth.authorize(request, action, arn, public=ref.is_public)
    return name, principal


def namespace_json(
    ns: Namespace, *, account: str | None = None, allowed: list[str] | None = None
) -> dict[str, Any]:
    """A namespace as the API returns it; ``account`` is its owner's name and
    ``allowed_actions`` what the caller may do with it (see
    :meth:`_CatalogRoutes.namespaces_out`)."""
    return {
        "name": ns.name,
        "account_id": ns.account_id,
        "account": account,
        "allowed_actions": allowed if allowed is not None else [],
        "auto_create_repo": ns.auto_create,
        "default_repo_type": _repo_type(ns.default_public),
        "created_at": iso(ns.created_at),
    }


def repository_json(
    repo: Repository, *, account: str | None = None, allowed: list[str] | None = None
) -> dict[str, Any]:
    """A repository as the API returns it, with its owner's name (``account``) and what
    the caller may do with it (``allowed_actions``)."""
    return {
        "namespace": repo.namespace,
        "name": repo.name,
        "full_name": repo.full_name,
        "account_id": repo.account_id,
        "account": account,
        "allowed_actions": allowed if allowed is not None else [],
        "repo_type": _repo_type(repo.is_public),
        "summary": repo.summary,
        "detail": repo.detail,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.updated_at),
        "tag_count": repo.tag_count,
        "size": repo.size,
    }


def tag_json(tag: Tag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "digest": tag.digest,
        "media_type": tag.media_type,
        "size": tag.size,
        "pushed_at": iso(tag.pushed_at),
    }


def _repo_type(public: bool) -> str:
    return "public" if public else "private"


def _optional_type(body: dict[str, Any], field: str) -> bool | None:
    """A ``public``/``private`` field as ``is_public`` (None when absent)."""
    value = body.get(field)
    if value is None:
        return None
    if value not in REPO_TYPES:
        raise ApiError(400, "Bad Request", f'{field} is "public" or "private"')
    return bool(value == "public")


def permission_json(permission: Permission) -> dict[str, Any]:
    return {
        "subject_type": permission.subject_type,
        "subject": permission.subject,
        "role": permission.role,
        "policy": permission.policy,
    }


class _CatalogRoutes:
    def __init__(
        self, catalog: CatalogService, permissions: PermissionService, auth: ApiAuth, region: str
    ) -> None:
        self.catalog = catalog
        self.permissions = permissions
        self.auth = auth
        self.region = region

    async def _permissions(
        self, request: Request, account_id: int | None, arn: str, *, namespace: bool
    ) -> Response:
        """List, grant or revoke permissions on a namespace or repository the caller has
        been authorized for (``cr:ListRepositoryPermission`` or
        ``cr:SetRepositoryPermission``)."""
        if account_id is None:
            raise ApiError(404, "Not Found", f"{arn} does not exist")
        subject = request.path_params.get("subject")
        if subject is None:
            limit, after = page_params(request)
            found = await call_service(
                lambda: self.permissions.list(account_id, arn, limit=limit, after=after),
                ServiceError,
            )
            items = [permission_json(p) | {"key": p.key} for p in found]
            return paged(page(items, limit, request.url.path, "key"))
        if request.method == "DELETE":
            origin = origin_of(request.scope, await self.auth.principal(request), status=204)
            await call_service(
                lambda: self.permissions.revoke(origin, account_id, arn, subject), ServiceError
            )
            return Response(status_code=204)
        body = await json_body(request)
        only_fields(body, fields(PermissionGrant))
        role = optional_field(body, "role", str)
        if role is None:
            raise ApiError(400, "Bad Request", "role (read-only, write or admin) is required")
        origin = origin_of(request.scope, await self.auth.principal(request), status=200)
        granted = await call_service(
            lambda: self.permissions.grant(
                origin, account_id, arn, subject, role, namespace=namespace
            ),
            ServiceError,
        )
        return JSONResponse(permission_json(granted))

    @staticmethod
    def _permission_action(request: Request) -> str:
        if request.method == "GET":
            return "cr:ListRepositoryPermission"
        return "cr:SetRepositoryPermission"

    async def _origin(self, request: Request, *, status: int) -> Origin:
        """The origin of the change an authorized request is about to make."""
        return origin_of(request.scope, await self.auth.principal(request), status=status)

    async def _owners(self, ids: set[int | None]) -> dict[int, str]:
        return await to_thread.run_sync(
            self.catalog.account_names, {i for i in ids if i is not None}
        )

    async def namespaces_out(
        self, request: Request, items: list[Namespace]
    ) -> list[dict[str, Any]]:
        """Namespaces as the API returns them, each with its owning account's name and
        ``allowed_actions``: the actions of :data:`actions.NAMESPACE_ACTIONS` the caller
        may do on it, and ``cr:CreateRepository`` when it may create repositories in it
        (of any name: decided on ``…/$namespace/*``). One query for the owners' names;
        policies evaluated once per class of namespaces (:func:`iam.authz.allowed_actions`)."""
        principal = await self.auth.principal(request)
        owners = await self._owners({n.account_id for n in items})
        arns = [
            namespace_arn(self.region, self._account(principal, n.account_id), n.name)
            for n in items
        ]
        own = await self.auth.allowed(
            request, actions.NAMESPACE_ACTIONS, [Resource(a) for a in arns]
        )
        inside = await self.auth.allowed(
            request, actions.NAMESPACE_CHILD_ACTIONS, [Resource(f"{a}/*") for a in arns]
        )
        return [
            namespace_json(
                n,
                account=owners.get(n.account_id) if n.account_id is not None else None,
                allowed=[*o, *i],
            )
            for n, o, i in zip(items, own, inside, strict=True)
        ]

    async def repositories_out(
        self, request: Request, items: list[Repository]
    ) -> list[dict[str, Any]]:
        """Repositories as the API returns them, each with its owning account's name and
        ``allowed_actions`` (the actions of :data:`actions.REPOSITORY_ACTIONS` the caller
        may do on it), evaluated once per class of repositories."""
        principal = await self.auth.principal(request)
        owners = await self._owners({r.account_id for r in items})
        resources = [
            Resource(
                repository_arn(
                    self.region, self._account(principal, r.account_id), r.namespace, r.name
                ),
                public=r.is_public,
            )
            for r in items
        ]
        allowed = await self.auth.allowed(request, actions.REPOSITORY_ACTIONS, resources)
        return [
            repository_json(
                r,
                account=owners.get(r.account_id) if r.account_id is not None else None,
                allowed=a,
            )
            for r, a in zip(items, allowed, strict=True)
        ]

    @staticmethod
    def _account(principal: Principal, owner: int | None) -> int | str:
        """The account in a resource's ARN: its owner's, or for something that does not
        exist (yet) the caller's."""
        if owner is not None:
            return owner
        return principal.account_id if principal.account_id is not None else "*"


class NamespaceRoutes(_CatalogRoutes):
    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/namespaces", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/namespaces/{name}", self.one, methods=["GET", "PATCH", "DELETE"]),
            Route("/api/v1/namespaces/{name}/permissions", self.permission, methods=["GET"]),
            Route(
                "/api/v1/namespaces/{name}/permissions/{subject}",
                self.permission,
                methods=["PUT", "DELETE"],
            ),
        ]

    @_PERMISSIONS
    async def permission(self, request: Request) -> Response:
        name = request.path_params["name"]
        _, owner = await self._require(request, self._permission_action(request), name)
        arn = namespace_arn(self.region, owner if owner is not None else 0, name)
        return await self._permissions(request, owner, arn, namespace=True)

    async def _require(
        self, request: Request, action: str, name: str, *, existing: bool = True
    ) -> tuple[Principal, int | None]:
        """Authorize ``action`` on namespace ``name``: an existing namespace is its
        owner's resource; a new one (``existing=False``) will be the caller's. Return
        the caller and the namespace's owner (None when it does not exist)."""
        principal = await self.auth.principal(request)
        owner = None
        if existing:
            owner = await to_thread.run_sync(self.catalog.namespace_account, name)
        arn = namespace_arn(self.region, self._account(principal, owner), name)
        return await self.auth.authorize(request, action, arn), owner

    @describe(
        get=Op(
            "List the namespaces the caller may see",
            tag="namespaces",
            reply=NamespaceOut,
            query=NamespaceQuery,
            paged=True,
        ),
        post=Op(
            "Create a namespace",
            tag="namespaces",
            body=NewNamespace,
            reply=NamespaceOut,
            status=201,
        ),
    )
    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            only_fields(body, fields(NewNamespace))
            name = body.get("name")
            if not isinstance(name, str):
                raise ApiError(400, "Bad Request", "name (a string) is required")
            principal, _ = await self._require(
                request, actions.CREATE_NAMESPACE, name, existing=False
            )
            public = _optional_type(body, "default_repo_type")
            auto = optional_field(body, "auto_create_repo", bool)
            origin = origin_of(request.scope, principal, status=201)
            ns = await call_service(
                lambda: self.catalog.create_namespace(
                    origin,
                    name,
                    account_id=principal.account_id,
                    auto_create=True if auto is None else auto,
                    default_public=bool(public),
                    enforce_quota=not principal.is_admin,
                ),
                ServiceError,
            )
            (body_out,) = await self.namespaces_out(request, [ns])
            return JSONResponse(body_out, status_code=201)
        principal = await self.auth.signed_in(request)
        limit, after = page_params(request)
        named = request.query_params.get("account") or None
        if principal.is_admin or principal.is_root:
            # The administrator sees every account's namespaces (``?account=`` narrows);
            # a root its own.
            await self._require(request, "cr:ListNamespace", "*", existing=False)
            account = None if principal.is_admin else principal.account_id
            items = await call_service(
                lambda: self.catalog.list_namespaces(
                    limit=limit, after=after, account_id=account, account_name=named
                ),
                ServiceError,
            )
        else:
            # A RAM user (or STS session) sees the namespaces its policies let it list.
            items = await self._visible_namespaces(request, principal, limit, after, named)
        return paged(
            listing(await self.namespaces_out(request, items), limit, request, "name", ("account",))
        )

    async def _visible_namespaces(
        self,
        request: Request,
        principal: Principal,
        limit: int,
        after: str | None,
        account_name: str | None,
    ) -> list[Namespace]:
        context = request_context(request)
        found: list[Namespace] = []
        cursor = after
        while len(found) < limit:
            batch = await call_service(
                functools.partial(
                    self.catalog.list_namespaces,
                    limit=500,
                    after=cursor,
                    account_id=principal.account_id,
                    account_name=account_name,
                ),
                ServiceError,
            )
            for ns in batch:
                arn = namespace_arn(self.region, self._account(principal, ns.account_id), ns.name)
                if is_allowed(principal, "cr:ListNamespace", Resource(arn), context):
                    found.append(ns)
            if len(batch) < 500:
                break
            cursor = batch[-1].name
        return found[:limit]

    @describe(
        get=Op("Read a namespace", tag="namespaces", reply=NamespaceOut),
        patch=Op(
            "Change a namespace's settings",
            tag="namespaces",
            body=NamespaceChange,
            reply=NamespaceOut,
        ),
        delete=Op(
            "Delete an empty namespace",
            tag="namespaces",
            status=204,
            description="Refused (409) while the namespace still holds repositories.",
        ),
    )
    async def one(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            principal, _ = await self._require(request, "cr:DeleteNamespace", name)
            origin = origin_of(request.scope, principal, status=204)
            await call_service(lambda: self.catalog.delete_namespace(origin, name), ServiceError)
            return Response(status_code=204)
        if request.method == "PATCH":
            principal, _ = await self._require(request, "cr:UpdateNamespace", name)
            body = await json_body(request)
            only_fields(body, fields(NamespaceChange))
            auto = optional_field(body, "auto_create_repo", bool)
            public = _optional_type(body, "default_repo_type")
            origin = origin_of(request.scope, principal, status=200)
            ns = await call_service(
                lambda: self.catalog.update_namespace(
                    origin, name, auto_create=auto, default_public=public
                ),
                ServiceError,
            )
            return JSONResponse((await self.namespaces_out(request, [ns]))[0])
        await self._require(request, "cr:GetNamespace", name)
        ns = await call_service(lambda: self.catalog.get_namespace(name), ServiceError)
        return JSONResponse((await self.namespaces_out(request, [ns]))[0])


TagScans = Callable[[RepositoryName, list[str]], dict[str, dict[str, Any]]]
"""The scan status and counts of a page of tags' digests (the scanning service's)."""


class RepositoryRoutes(_CatalogRoutes):
    tag_scans: TagScans | None = None

    async def _with_scans(
        self, request: Request, ref: RepoRef, tags: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each tag with its manifest's ``scan`` (status and counts), when scans are on
        and the caller may ``cr:ListRepoTagScanResult``: one query for the page."""
        scans = self.tag_scans
        if scans is None or not tags:
            return tags
        principal = await self.auth.principal(request)
        resource = Resource(self._arn(ref), public=ref.is_public)
        if not is_allowed(principal, actions.LIST_SCAN, resource, request_context(request)):
            return tags
        found = await to_thread.run_sync(scans, ref.name, [x["digest"] for x in tags])
        return [x | {"scan": found.get(x["digest"])} for x in tags]

    def routes(self) -> list[Route]:
        base = "/api/v1/repositories"
        one = base + "/{namespace}/{repository}"
        return [
            Route(base, self.list_or_create, methods=["GET", "POST"]),
            Route(one, self.one, methods=["GET", "PATCH", "DELETE"]),
            Route(one + "/tags", self.tags, methods=["GET"]),
            Route(one + "/tags/{tag}", self.tag, methods=["GET", "DELETE"]),
            Route(one + "/permissions", self.permission, methods=["GET"]),
            Route(one + "/permissions/{subject}", self.permission, methods=["PUT", "DELETE"]),
        ]

    @_PERMISSIONS
    async def permission(self, request: Request) -> Response:
        ref = await self._named(request, self._permission_action(request))
        return await self._permissions(
            request, ref.account_id if ref.exists else None, self._arn(ref), namespace=False
        )

    def _arn(self, ref: RepoRef) -> str:
        account = ref.account_id if ref.account_id is not None else 0
        return repository_arn(self.region, account, ref.name.namespace, ref.name.repository)

    async def _require(
        self, request: Request, principal: Principal, action: str, name: RepositoryName
    ) -> RepoRef:
        """Authorize ``action`` on repository ``name`` (its owner's resource, or for a
        repository in a missing namespace the caller's)."""
        ref = await to_thread.run_sync(self.catalog.resolve, name)
        arn = repository_arn(
            self.region, self._account(principal, ref.account_id), name.namespace, name.repository
        )
        await self.auth.authorize(request, action, arn, public=ref.is_public)
        return ref

    async def _named(self, request: Request, action: str) -> RepoRef:
        """The repository in the path, once the caller may do ``action`` on it."""
        principal = await self.auth.signed_in(request)
        text = f"{request.path_params['namespace']}/{request.path_params['repository']}"
        return await self._require(request, principal, action, _parse_name(text))

    @describe(
        get=Op(
            "List the repositories the caller may see",
            tag="repositories",
            reply=RepositoryOut,
            query=RepositoryQuery,
            paged=True,
        ),
        post=Op(
            "Create a repository",
            tag="repositories",
            body=NewRepository,
            reply=RepositoryOut,
            status=201,
            location=True,
        ),
    )
    async def list_or_create(self, request: Request) -> Response:
        principal = await self.auth.signed_in(request)
        if request.method == "POST":
            return await self._create(request, principal)
        limit, after = page_params(request)
        query = request.query_params
        public = _optional_type({"repo_type": query.get("repo_type") or None}, "repo_type")
        # The administrator sees every account's (``?account=`` narrows); anyone else
        # its own account's (a root: all of them, with no check per item), and a RAM
        # user (or STS session) only what its policies let it see.
        filters = RepositoryFilter(
            account_id=None if principal.is_admin else principal.account_id,
            account_name=query.get("account") or None,
            namespace=query.get("namespace") or None,
            contains=query.get("q") or None,
            public=public,
        )
        keep = (
            None if principal.is_admin or principal.is_root else self._visible(request, principal)
        )
        items = await call_service(
            lambda: self.catalog.find_repositories(keep, limit=limit, after=after, filters=filters),
            ServiceError,
        )
        body = listing(
            await self.repositories_out(request, items),
            limit,
            request,
            "full_name",
            ("account", "namespace", "q", "repo_type"),
        )
        return paged(body)

    def _visible(self, request: Request, principal: Principal) -> Callable[[RepositoryEntry], bool]:
        """Whether the caller may see a repository of its account: list or get it."""
        return repository_check(
            self.region,
            principal,
            (actions.LIST_REPOSITORY, "cr:GetRepository"),
            request_context(request),
            unowned=self._account(principal, None),
        )

    async def _create(self, request: Request, principal: Principal) -> Response:
        body = await json_body(request)
        only_fields(body, fields(NewRepository))
        namespace, repository = body.get("namespace"), body.get("name")
        if not isinstance(namespace, str) or not isinstance(repository, str):
            raise ApiError(400, "Bad Request", "namespace and name (strings) are required")
        name = _parse_name(f"{namespace}/{repository}")
        public = _optional_type(body, "repo_type")
        summary = optional_field(body, "summary", str) or ""
        detail = optional_field(body, "detail", str) or ""
        await self._require(request, principal, actions.CREATE_REPOSITORY, name)
        origin = origin_of(request.scope, principal, status=201)
        created = await call_service(
            lambda: self.catalog.create_repository(
                origin,
                name,
                public=public,
                summary=summary,
                detail=detail,
                enforce_quota=not principal.is_admin,
            ),
            ServiceError,
        )
        return JSONResponse(
            (await self.repositories_out(request, [created]))[0],
            status_code=201,
            headers={"Location": f"/api/v1/repositories/{name}"},
        )

    @describe(
        get=Op("Read a repository", tag="repositories", reply=RepositoryOut),
        patch=Op(
            "Change a repository's type or descriptions",
            tag="repositories",
            body=RepositoryChange,
            reply=RepositoryOut,
        ),
        delete=Op(
            "Delete a repository with its tags",
            tag="repositories",
            status=204,
        ),
    )
    async def one(self, request: Request) -> Response:
        if request.method == "DELETE":
            ref = await self._named(request, "cr:DeleteRepository")
            origin = await self._origin(request, status=204)
            await call_service(
                lambda: self.catalog.delete_repository(origin, ref.name), ServiceError
            )
            return Response(status_code=204)
        if request.method == "PATCH":
            name = (await self._named(request, "cr:UpdateRepository")).name
            body = await json_body(request)
            only_fields(body, fields(RepositoryChange))
            public = _optional_type(body, "repo_type")
            summary = optional_field(body, "summary", str)
            detail = optional_field(body, "detail", str)
            origin = await self._origin(request, status=200)
            updated = await call_service(
                lambda: self.catalog.update_repository(
                    origin, name, public=public, summary=summary, detail=detail
                ),
                ServiceError,
            )
            return JSONResponse((await self.repositories_out(request, [updated]))[0])
        name = (await self._named(request, "cr:GetRepository")).name
        found = await call_service(lambda: self.catalog.get_repository(name), ServiceError)
        return JSONResponse((await self.repositories_out(request, [found]))[0])

    @describe(
        get=Op(
            "List a repository's tags",
            tag="tags",
            reply=TagOut,
            query=TagQuery,
            paged=True,
        )
    )
    async def tags(self, request: Request) -> Response:
        """A repository's tags (``items``) and, as the listing's parent, what the caller
        may do with the repository (``allowed_actions``: delete tags, push, …)."""
        ref = await self._named(request, "cr:ListRepositoryTag")
        name = ref.name
        (allowed,) = await self.auth.allowed(
            request, actions.REPOSITORY_ACTIONS, [Resource(self._arn(ref), public=ref.is_public)]
        )
        limit, after = page_params(request)
        order = _choice(request, "order", TAG_ORDERS) or "pushed"
        direction = _choice(request, "direction", DIRECTIONS)
        contains = request.query_params.get("q") or None
        items = await call_service(
            lambda: self.catalog.list_tags(
                name,
                limit=limit,
                after=after,
                contains=contains,
                order=order,
                direction=direction,
            ),
            ServiceError,
        )
        filters = ("q", "order", "direction")
        shown = await self._with_scans(request, ref, [tag_json(x) for x in items])
        body = listing(shown, limit, request, "name", filters)
        return paged(body | {"allowed_actions": allowed})

    @describe(
        get=Op("Read a tag", tag="tags", reply=TagOut),
        delete=Op(
            "Delete a tag (the manifest stays, reachable by digest)",
            tag="tags",
            status=204,
        ),
    )
    async def tag(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        if request.method == "DELETE":
            name = (await self._named(request, actions.DELETE)).name
            origin = await self._origin(request, status=204)
            await call_service(lambda: self.catalog.delete_tag(origin, name, tag), ServiceError)
            return Response(status_code=204)
        ref = await self._named(request, "cr:GetRepositoryTag")
        found = await call_service(lambda: self.catalog.get_tag(ref.name, tag), ServiceError)
        (shown,) = await self._with_scans(request, ref, [tag_json(found)])
        return JSONResponse(shown)


def _choice(request: Request, name: str, allowed: tuple[T, ...]) -> T | None:
    """The query parameter ``name``, one of ``allowed`` (None when absent; 400 otherwise)."""
    value = request.query_params.get(name) or None
    if value is None:
        return None
    for choice in allowed:
        if value == choice:
            return choice
    listed = ", ".join(f'"{a}"' for a in allowed)
    raise ApiError(400, "Bad Request", f"{name} is one of {listed}")


def _parse_name(text: str) -> RepositoryName:
    try:
        return parse_repository_name(text)
    except ServiceError as exc:
        raise ApiError.of(exc) from exc
