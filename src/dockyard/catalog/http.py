"""Management API routes for namespaces (``/api/v1/namespaces``), repositories and their
tags (``/api/v1/repositories``), and the permissions of RAM users and groups on both
(``…/permissions``: read-only, write or admin, kept as policies the system manages; see
``iam.permissions``).

Every route needs a signed-in caller (401 otherwise) that :func:`iam.authz.is_allowed`
lets do the route's ``cr:`` action on the namespace or repository ARN (403 otherwise).
Listings show only what the caller may see: its own account's (the instance
administrator: every account's, ``?account=NAME`` to narrow), and for a RAM user only
the repositories it may ``cr:ListRepository`` or ``cr:GetRepository``.

Tags list the latest pushed first (``?order=pushed``, the default, as the cloud console
shows them) or by name (``?order=name``); ``after`` is the last tag name of the previous
page. Deleting a tag removes the tag only: the manifest stays, reachable by digest, as
when a registry client deletes a tag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

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
    request_context,
)
from dockyard.audit import origin_of
from dockyard.catalog.service import (
    CatalogService,
    Namespace,
    RepoRef,
    Repository,
    RepositoryEntry,
    RepositoryFilter,
    Tag,
    parse_repository_name,
)
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import namespace_arn, repository_arn
from dockyard.iam.authz import Principal, Resource, is_allowed
from dockyard.iam.permissions import Permission, PermissionService
from dockyard.oci.reference import RepositoryName
from dockyard.origin import Origin

REPO_TYPES = ("public", "private")


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


def namespace_json(ns: Namespace) -> dict[str, Any]:
    return {
        "name": ns.name,
        "account_id": ns.account_id,
        "auto_create_repo": ns.auto_create,
        "default_repo_type": _repo_type(ns.default_public),
        "created_at": iso(ns.created_at),
    }


def repository_json(repo: Repository) -> dict[str, Any]:
    return {
        "namespace": repo.namespace,
        "name": repo.name,
        "full_name": repo.full_name,
        "account_id": repo.account_id,
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
            return JSONResponse(page(items, limit, request.url.path, "key"))
        if request.method == "DELETE":
            origin = origin_of(request.scope, await self.auth.principal(request), status=204)
            await call_service(
                lambda: self.permissions.revoke(origin, account_id, arn, subject), ServiceError
            )
            return Response(status_code=204)
        body = await json_body(request)
        only_fields(body, ("role",))
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

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            only_fields(body, ("name", "auto_create_repo", "default_repo_type"))
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
            return JSONResponse(namespace_json(ns), status_code=201)
        principal = await self.auth.signed_in(request)
        limit, after = page_params(request)
        if principal.is_admin or principal.is_root:
            # The administrator sees every account's namespaces; a root its own.
            await self._require(request, "cr:ListNamespace", "*", existing=False)
            account = None if principal.is_admin else principal.account_id
            items = await call_service(
                lambda: self.catalog.list_namespaces(limit=limit, after=after, account_id=account),
                ServiceError,
            )
        else:
            # A RAM user (or STS session) sees the namespaces its policies let it list.
            items = await self._visible_namespaces(request, principal, limit, after)
        return JSONResponse(
            page([namespace_json(n) for n in items], limit, "/api/v1/namespaces", "name")
        )

    async def _visible_namespaces(
        self, request: Request, principal: Principal, limit: int, after: str | None
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
            only_fields(body, ("auto_create_repo", "default_repo_type"))
            auto = optional_field(body, "auto_create_repo", bool)
            public = _optional_type(body, "default_repo_type")
            origin = origin_of(request.scope, principal, status=200)
            ns = await call_service(
                lambda: self.catalog.update_namespace(
                    origin, name, auto_create=auto, default_public=public
                ),
                ServiceError,
            )
            return JSONResponse(namespace_json(ns))
        await self._require(request, "cr:GetNamespace", name)
        ns = await call_service(lambda: self.catalog.get_namespace(name), ServiceError)
        return JSONResponse(namespace_json(ns))


class RepositoryRoutes(_CatalogRoutes):
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
            [repository_json(r) for r in items],
            limit,
            request,
            "full_name",
            ("account", "namespace", "q", "repo_type"),
        )
        return JSONResponse(body)

    def _visible(self, request: Request, principal: Principal) -> Callable[[RepositoryEntry], bool]:
        """Whether the caller may see a repository of its account: list or get it."""
        context = request_context(request)

        def keep(entry: RepositoryEntry) -> bool:
            namespace, _, repository = entry.full_name.partition("/")
            account = self._account(principal, entry.account_id)
            arn = repository_arn(self.region, account, namespace, repository)
            resource = Resource(arn, public=entry.is_public)
            return any(
                is_allowed(principal, action, resource, context)
                for action in (actions.LIST_REPOSITORY, "cr:GetRepository")
            )

        return keep

    async def _create(self, request: Request, principal: Principal) -> Response:
        body = await json_body(request)
        only_fields(body, ("namespace", "name", "repo_type", "summary", "detail"))
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
            repository_json(created),
            status_code=201,
            headers={"Location": f"/api/v1/repositories/{name}"},
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
            only_fields(body, ("repo_type", "summary", "detail"))
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
            return JSONResponse(repository_json(updated))
        name = (await self._named(request, "cr:GetRepository")).name
        found = await call_service(lambda: self.catalog.get_repository(name), ServiceError)
        return JSONResponse(repository_json(found))

    async def tags(self, request: Request) -> Response:
        name = (await self._named(request, "cr:ListRepositoryTag")).name
        limit, after = page_params(request)
        order = request.query_params.get("order") or "pushed"
        if order not in ("pushed", "name"):
            raise ApiError(400, "Bad Request", 'order is "pushed" (the default) or "name"')
        contains = request.query_params.get("q") or None
        items = await call_service(
            lambda: self.catalog.list_tags(
                name,
                limit=limit,
                after=after,
                contains=contains,
                order="name" if order == "name" else "pushed",
            ),
            ServiceError,
        )
        return JSONResponse(
            listing([tag_json(x) for x in items], limit, request, "name", ("q", "order"))
        )

    async def tag(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        if request.method == "DELETE":
            name = (await self._named(request, actions.DELETE)).name
            origin = await self._origin(request, status=204)
            await call_service(lambda: self.catalog.delete_tag(origin, name, tag), ServiceError)
            return Response(status_code=204)
        name = (await self._named(request, "cr:GetRepositoryTag")).name
        found = await call_service(lambda: self.catalog.get_tag(name, tag), ServiceError)
        return JSONResponse(tag_json(found))


def _parse_name(text: str) -> RepositoryName:
    try:
        return parse_repository_name(text)
    except ServiceError as exc:
        raise ApiError.of(exc) from exc
