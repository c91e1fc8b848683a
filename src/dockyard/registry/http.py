"""The /v2/ HTTP layer and the Docker token endpoint.

Thin by design: parse the path, authenticate, ask :func:`iam.authz.is_allowed` (directly,
or through the grants of a bearer token it issued), call the registry service in a worker
thread, and turn its results and :class:`RegistryError`\\ s into the spec's responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from anyio import to_thread
from starlette.datastructures import MultiDict
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dockyard.api import ApiError, read_body
from dockyard.audit import DECISION, Decision, decision, origin_of, refusal
from dockyard.catalog.service import CatalogService, RepoRef, repository_check
from dockyard.iam import actions
from dockyard.iam.arn import repository_arn
from dockyard.iam.authz import ANONYMOUS, Context, Principal, Resource, is_allowed
from dockyard.iam.identity import IdentityService, parse_basic
from dockyard.iam.throttle import LoginThrottled
from dockyard.iam.tokens import (
    TEMP_USER,
    Grant,
    TokenError,
    TokenService,
    VerifiedToken,
    parse_scope,
)
from dockyard.oci import mediatypes as mt
from dockyard.oci.manifest import MAX_MANIFEST_BYTES
from dockyard.oci.reference import NameError_, RepositoryName
from dockyard.origin import Origin
from dockyard.registry.errors import RegistryError
from dockyard.registry.service import RegistryService, parse_digest, upload_headers
from dockyard.scanning.scans_http import report_link
from dockyard.scanning.service import ScanService

log = logging.getLogger(__name__)
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_WRITE_BUFFER = 1024 * 1024
_KINDS = ("manifests", "blobs", "tags", "referrers")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# At most 19 ASCII digits: int() of a longer string can raise (int_max_str_digits).
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})$")
_RANGE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")
T = TypeVar("T")
_BACKGROUND: set[asyncio.Task[None]] = set()
"""Writes started after a response (last pulls), kept referenced until they end."""


def _background_done(task: asyncio.Task[None]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not record a pull: %s", task.exception())


async def run(func: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(func, *args)


@dataclass
class Caller:
    """Who sent a request, as far as this request goes."""

    principal: Principal | None = None
    token: VerifiedToken | None = None
    bad_credentials: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal is not None or self.token is not None


class RegistryHTTP:
    def __init__(
        self,
        registry: RegistryService,
        catalog: CatalogService,
        identity: IdentityService,
        tokens: TokenService,
        *,
        region: str,
        public_url: str = "",
        scans: ScanService | None = None,
    ) -> None:
        self.scans = scans
        """Pull policy (refusing vulnerable images) and last-pull records, when set."""
        self.registry = registry
        self.catalog = catalog
        self.identity = identity
        self.tokens = tokens
        self.region = region
        self.public_url = public_url.rstrip("/")

    async def _read(self, func: Callable[..., T], *args: Any) -> T:
        """Run a small database-only read: inline when the database answers from local
        pages (SQLite, where a thread hop costs more than the query), else in a thread.
        Anything that touches the blob store goes through :func:`run` instead."""
        if self.registry.db.inline_reads:
            return func(*args)
        return await to_thread.run_sync(func, *args)

    # -- entry points ----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry for everything under /v2 (mounted ahead of the app's router)."""
        response = await self.v2(Request(scope, receive))
        await response(scope, receive, send)

    async def v2(self, request: Request) -> Response:
        try:
            response = await self._dispatch(request)
        except RegistryError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.scope["path"])
            error = RegistryError("UNKNOWN", "internal error; the server log has details")
            response = JSONResponse(error.body(), status_code=500)
        response.headers.update(API_VERSION)
        return response

    async def token(self, request: Request) -> Response:
        """``GET /auth/token`` (and the OAuth2 ``POST`` form) of the Docker token spec."""
        params: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            params.setdefault(key, []).append(value)
        username = password = None
        if request.method == "POST":
            # The OAuth2 form is urlencoded; parsed here because Request.form() needs the
            # optional python-multipart package, which is not a dependency.
            try:
                raw = await read_body(request, TOKEN_FORM_BYTES)
            except ApiError as exc:
                return JSONResponse(
                    {"errors": [{"code": "SIZE_INVALID", "message": exc.detail}]},
                    status_code=exc.status,
                    headers=exc.headers,
                )
            form = MultiDict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            for key, item in form.multi_items():
                params.setdefault(key, []).append(str(item))
            if form.get("grant_type") == "password":
                username, password = str(form.get("username", "")), str(form.get("password", ""))
            elif form.get("grant_type") == "refresh_token":
                return _token_error("refresh tokens are not supported; log in with a password")
        header = request.headers.get("authorization")
        if header and username is None:
            creds = parse_basic(header)
            if creds is None:
                return _token_error("the token endpoint takes Basic credentials")
            username, password = creds
        principal = ANONYMOUS
        if username is not None:
            try:
                found = await self._registry_login(request, username, password or "")
            except RegistryError as exc:
                return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
            if found is None:
                return _token_error("incorrect username or password")
            principal = found
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        grants = []
        for text in scopes:
            try:
                scope = parse_scope(text)
            except ValueError as exc:
                return JSONResponse(
                    {"errors": [{"code": "UNSUPPORTED", "message": str(exc)}]}, status_code=400
                )
            granted, resource = await run(
                self._grant, principal, scope.type, scope.name, scope.actions, _context(request)
            )
            given = granted.actions if granted is not None else ()
            if granted is not None:
                grants.append(granted)
            if scope.actions and (set(scope.actions) - set(given) - {"*"} or not given):
                # Asked for more than it may have: audited, though the token is issued.
                entry = decision(principal, "registry:Token", resource or text[:1024], False)
                entry.detail = (
                    f"scope {text[:512]}: asked {','.join(scope.actions)}; "
                    f"granted {','.join(given) or 'nothing'}"
                )
                refusal(request.scope, entry)
        subject = principal.name or "anonymous"
        ttl = self.tokens.ttl
        if principal.expires_at is not None:  # STS credentials: no longer than they last
            ttl = max(1, min(ttl, int(principal.expires_at - time.time())))
        token, expires_in, issued = self.tokens.issue(subject, grants, ttl=ttl)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": datetime.fromtimestamp(issued, UTC).isoformat().replace("+00:00", "Z"),
        }
        return JSONResponse(body)

    def _grant(
        self,
        principal: Principal,
        type_: str,
        name: str,
        wanted: tuple[str, ...],
        context: Context,
    ) -> tuple[Grant | None, str]:
        """What the token grants of one scope asked (None: nothing, not even an empty
        grant), and the ARN of what it names ("" when it names nothing known)."""
        if type_ == "registry" and name == "catalog":
            ok = self._may_list_catalog(principal, context)
            return (Grant(type_, name, ("*",)) if ok else None), self._catalog_resource().arn
        if type_ != "repository":
            return None, ""
        try:
            repo = RepositoryName.parse(name)
        except NameError_:
            return None, ""
        ref = self.catalog.resolve(repo)
        resource = self._resource(ref)
        expanded = ("pull", "push", "delete") if "*" in wanted else wanted
        allowed = []
        for scope_action in expanded:
            action = actions.SCOPE_ACTIONS.get(scope_action)
            if action is None or not is_allowed(principal, action, resource, context):
                continue
            if (
                scope_action == "push"
                and not ref.exists
                and not is_allowed(principal, actions.CREATE_REPOSITORY, resource, context)
            ):
                continue
            allowed.append(scope_action)
        return Grant(type_, name, tuple(allowed)), resource.arn

    def _catalog_resource(self) -> Resource:
        return Resource(f"acs:cr:{self.region}:*:repository/*")

    def _may_list_catalog(self, principal: Principal, context: Context) -> bool:
        """``/v2/_catalog`` needs ``cr:ListRepository`` (then lists what may be pulled)."""
        return is_allowed(principal, actions.LIST_REPOSITORY, self._catalog_resource(), context)

    def _resource(self, ref: RepoRef) -> Resource:
        account = ref.account_id if ref.account_id is not None else 0
        arn = repository_arn(self.region, account, ref.name.namespace, ref.name.repository)
        return Resource(arn, public=ref.is_public)

    # -- authentication --------------------------------------------------------------

    async def _caller(self, request: Request) -> Caller:
        header = request.headers.get("authorization")
        if not header:
            return Caller()
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            try:
                return Caller(token=self.tokens.verify(value.strip()))
            except TokenError as exc:
                return Caller(bad_credentials=str(exc))
        creds = parse_basic(header)
        if creds is None:
            return Caller(bad_credentials="unsupported Authorization scheme")
        principal = await self._registry_login(request, *creds)
        if principal is None:
            return Caller(bad_credentials="incorrect username or password")
        return Caller(principal=principal)

    async def _registry_login(
        self, request: Request, username: str, password: str
    ) -> Principal | None:
        """``docker login`` credentials: a registry password, an access key, STS
        credentials, or a temporary login (``cr_temp_user`` and a password from
        ``POST /api/v1/tokens``), which acts with the current permissions of the user who
        asked for it. Password checks are under brute-force protection; a refused login
        is recorded in the audit log."""
        if username == TEMP_USER:
            try:
                login = self.tokens.verify(password, audience=self.tokens.login_audience)
            except TokenError:
                found = None
            else:
                found = await run(self.identity.principal_by_name, login.subject)
        else:
            client = request.client
            try:
                found = await run(
                    lambda: self.identity.login(
                        username,
                        password,
                        source_ip=client.host if client else None,
                        registry=True,
                    )
                )
            except LoginThrottled as exc:
                request.scope[DECISION] = Decision(username[:200], "auth:Login", "", False)
                raise RegistryError(
                    "TOOMANYREQUESTS", str(exc), headers={"Retry-After": str(exc.retry_after)}
                ) from exc
        if found is None:
            request.scope[DECISION] = Decision(username[:200], "auth:Login", "", False)
        return found

    def _origin(
        self,
        request: Request,
        caller: Caller,
        ref: RepoRef,
        *,
        status: int,
        audit: tuple[str, str] | None = None,
    ) -> Origin:
        """The origin of a change about to be made; ``audit`` (action, detail) is the
        audit record it commits with."""
        actor = None
        if caller.principal is None and caller.token is not None:
            actor = caller.token.subject
        if audit is not None:
            action, detail = audit
            entry = decision(caller.principal, action, self._resource(ref).arn, True)
            if actor is not None:
                entry.actor = actor
            entry.detail = detail
            request.scope[DECISION] = entry
        origin = origin_of(request.scope, caller.principal, status=status, actor=actor)
        if audit is None:
            # Uploads and mounts are not audited; a decision left on the scope by an
            # earlier check (a refused mount source) is the middleware's to record.
            origin.decision = None
        return origin

    @staticmethod
    def _token_refused(
        request: Request, token: VerifiedToken, action: str, arn: str, scope: str
    ) -> None:
        """Leave the refusal of a request whose bearer token lacks ``scope`` to the audit
        log (401 follows, whatever the method)."""
        entry = decision(None, action, arn, False)
        entry.actor = token.subject[:200] or "anonymous"
        entry.detail = f"the token does not grant {scope}"
        request.scope[DECISION] = entry

    def _challenge(self, request: Request, scope: str | None, error: str | None = None) -> str:
        base = self.public_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
        parts = [f'realm="{base}/auth/token"', f'service="{self.tokens.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def _unauthorized(self, request: Request, caller: Caller, scope: str | None) -> RegistryError:
        message = caller.bad_credentials or "authentication required"
        error = "invalid_token" if caller.bad_credentials else None
        if caller.token is not None:
            message, error = "the token does not grant this operation", "insufficient_scope"
        return RegistryError(
            "UNAUTHORIZED",
            message,
            headers={"WWW-Authenticate": self._challenge(request, scope, error)},
        )

    async def _authorize(
        self, request: Request, caller: Caller, ref: RepoRef, scope_action: str
    ) -> None:
        scope = f"repository:{ref.name}:{scope_action}"
        if caller.bad_credentials:
            raise self._unauthorized(request, caller, scope)
        action = actions.SCOPE_ACTIONS[scope_action]
        if caller.token is not None:
            if caller.token.allows("repository", str(ref.name), scope_action):
                return
            self._token_refused(request, caller.token, action, self._resource(ref).arn, scope)
            raise self._unauthorized(request, caller, scope)
        principal = caller.principal or ANONYMOUS
        resource = self._resource(ref)
        if is_allowed(principal, action, resource, _context(request)):
            if (
                scope_action == "push"
                and not ref.exists
                and not is_allowed(
                    principal, actions.CREATE_REPOSITORY, resource, _context(request)
                )
            ):
                request.scope[DECISION] = decision(
                    principal, actions.CREATE_REPOSITORY, resource.arn, False
                )
                raise RegistryError("DENIED", f"you may not create repository {ref.name}")
            return
        if caller.principal is None:
            raise self._unauthorized(request, caller, scope)
        request.scope[DECISION] = decision(principal, action, resource.arn, False)
        raise RegistryError("DENIED", f"you may not {scope_action} {ref.name}")

    # -- dispatch --------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        # Not request.url.path: building a URL drops tabs and newlines (urlsplit), so
        # "/v2/ns/a%09b/..." would act on "ns/ab" instead of being refused.
        path: str = request.scope["path"]
        method = request.method
        caller = await self._caller(request)
        if path in ("/v2", "/v2/"):
            if caller.bad_credentials or not caller.authenticated:
                raise self._unauthorized(request, caller, None)
            return JSONResponse({})
        parts = path[len("/v2/") :].split("/")
        if parts == ["_catalog"]:
            return await self._catalog(request, caller)
        if len(parts) < 4 or parts[2] not in _KINDS:
            kind_at = next((i for i, p in enumerate(parts) if p in _KINDS), None)
            if kind_at is None:
                raise RegistryError("UNSUPPORTED", "no such /v2/ endpoint", status=404)
            name_text = "/".join(parts[:kind_at])
            try:
                RepositoryName.parse(name_text)
            except NameError_ as exc:
                raise RegistryError(
                    "NAME_INVALID", str(exc), detail={"name": name_text[:255]}
                ) from exc
            raise RegistryError("UNSUPPORTED", "no such /v2/ endpoint", status=404)
        name_text = f"{parts[0]}/{parts[1]}"
        try:
            name = RepositoryName.parse(name_text)
        except NameError_ as exc:
            raise RegistryError("NAME_INVALID", str(exc), detail={"name": name_text[:255]}) from exc
        kind, rest = parts[2], parts[3:]
        request.scope["dockyard.route"] = kind
        if kind == "manifests" and len(rest) == 1 and rest[0] and method in ("GET", "HEAD"):
            return await self._get_manifest(request, caller, name, rest[0], method)
        if kind == "tags" and rest == ["list"]:
            if method not in ("GET", "HEAD"):
                raise _method_not_allowed()
            return await self._tags(request, caller, name)
        ref = await self._read(self.catalog.resolve, name)
        if kind == "manifests" and len(rest) == 1 and rest[0]:
            return await self._manifest(request, caller, ref, rest[0], method)
        if kind == "blobs" and rest[:1] == ["uploads"]:
            request.scope["dockyard.route"] = "uploads"
            if len(rest) == 2 and rest[1] == "":
                if method != "POST":
                    raise _method_not_allowed()
                await self._authorize(request, caller, ref, "push")
                return await self._start_upload(request, caller, ref)
            if len(rest) == 2 and _UPLOAD_ID.match(rest[1]):
                return await self._upload(request, caller, ref, rest[1], method)
            if len(rest) == 1 and method == "POST":
                await self._authorize(request, caller, ref, "push")
                return await self._start_upload(request, caller, ref)
            raise RegistryError(
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
                detail={"uuid": "/".join(rest[1:])[:100]},
            )
        if kind == "blobs" and len(rest) == 1 and rest[0]:
            return await self._blob(request, caller, ref, rest[0], method)
        if kind == "referrers" and len(rest) == 1 and rest[0]:
            if method not in ("GET", "HEAD"):
                raise _method_not_allowed()
            await self._authorize(request, caller, ref, "pull")
            return await self._referrers(request, ref, rest[0])
        raise RegistryError("UNSUPPORTED", "no such /v2/ endpoint", status=404)

    # -- manifests -------------------------------------------------------------------

    async def _get_manifest(
        self, request: Request, caller: Caller, name: RepositoryName, reference: str, method: str
    ) -> Response:
        # The registry's hottest path: one read for the repository and the manifest.
        ref, found = await self._read(self.registry.find_manifest, name, reference)
        await self._authorize(request, caller, ref, "pull")
        if isinstance(found, RegistryError):
            raise found
        _negotiate(request, found.media_type, reference)
        if self.scans is not None:
            await self._pull_policy(name, found.digest)
        headers = {
            "Docker-Content-Digest": found.digest,
            "Content-Type": found.media_type,
            "Content-Length": str(len(found.content)),
            "ETag": f'"{found.digest}"',
        }
        if method == "HEAD":
            return Response(status_code=200, headers=headers)
        return Response(
            found.content, status_code=200, headers=headers, media_type=found.media_type
        )

    async def _pull_policy(self, name: RepositoryName, digest: str) -> None:
        """403 DENIED when the namespace's pull policy refuses the manifest (its latest
        scan has findings at the blocking level, or it has no complete scan); and now and
        then the manifest's last pull, written off the request path."""
        scans = self.scans
        assert scans is not None
        link = report_link(self.public_url, name, digest)
        denial = await self._read(scans.pull_denial, name.namespace, digest, link)
        if denial is not None:
            raise RegistryError("DENIED", denial, detail={"digest": digest, "report": link})
        if scans.pulled(digest):
            task = asyncio.get_running_loop().create_task(
                to_thread.run_sync(scans.record_pull, digest)
            )
            _BACKGROUND.add(task)
            task.add_done_callback(_background_done)

    async def _manifest(
        self, request: Request, caller: Caller, ref: RepoRef, reference: str, method: str
    ) -> Response:
        if method == "PUT":
            await self._authorize(request, caller, ref, "push")
            body = await _read_limited(request, MAX_MANIFEST_BYTES)
            # Tags to apply with a push by digest (the spec's next release); a push by
            # tag moves that tag alone.
            tags = request.query_params.getlist("tag") if ":" in reference else []
            detail = f"manifest {reference}"
            if tags:
                detail += f" tags {','.join(tags)}"[:1000]
            origin = self._origin(request, caller, ref, status=201, audit=(actions.PUSH, detail))
            digest, manifest, applied = await run(
                self.registry.put_manifest,
                origin,
                ref,
                reference,
                body,
                request.headers.get("content-type"),
                tags,
            )
            headers = {
                "Location": f"/v2/{ref.name}/manifests/{digest}",
                "Docker-Content-Digest": digest,
            }
            if manifest.subject is not None:
                headers["OCI-Subject"] = str(manifest.subject.digest)
            response = Response(status_code=201, headers=headers)
            if ":" in reference:
                for tag in applied:  # one header per tag, as the spec has it
                    response.headers.append("OCI-Tag", tag)
            return response
        if method == "DELETE":
            await self._authorize(request, caller, ref, "delete")
            origin = self._origin(
                request, caller, ref, status=202, audit=(actions.DELETE, f"manifest {reference}")
            )
            await run(self.registry.delete_manifest, origin, ref, reference)
            return Response(status_code=202)
        raise _method_not_allowed()

    # -- blobs -----------------------------------------------------------------------

    async def _blob(
        self, request: Request, caller: Caller, ref: RepoRef, digest: str, method: str
    ) -> Response:
        if method == "DELETE":
            await self._authorize(request, caller, ref, "delete")
            await run(self.registry.delete_blob, ref, digest)
            self._origin(request, caller, ref, status=202, audit=(actions.DELETE, f"blob {digest}"))
            return Response(status_code=202, headers={"Docker-Content-Digest": digest})
        if method not in ("GET", "HEAD"):
            raise _method_not_allowed()
        await self._authorize(request, caller, ref, "pull")
        size = await self._read(self.registry.stat_blob, ref, digest)
        headers = {
            "Docker-Content-Digest": digest,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "ETag": f'"{digest}"',
        }
        start, end, partial = _parse_range(request.headers.get("range"), size)
        headers["Content-Length"] = str(end - start)
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        status = 206 if partial else 200
        if method == "HEAD":
            return Response(status_code=status, headers=headers)
        if not partial:
            url = await run(self.registry.store.redirect_url, digest)
            if url:
                return RedirectResponse(
                    url, status_code=307, headers={"Docker-Content-Digest": digest}
                )
        chunks = await run(self.registry.read_blob, digest, start, end)
        return StreamingResponse(chunks, status_code=status, headers=headers)

    # -- uploads ---------------------------------------------------------------------

    async def _start_upload(self, request: Request, caller: Caller, ref: RepoRef) -> Response:
        query = request.query_params
        mount, source = query.get("mount"), query.get("from")
        if mount:
            digest = str(parse_digest(mount))
            if source and await self._may_mount(request, caller, ref, source):
                source_ref = await self._read(self.catalog.resolve, RepositoryName.parse(source))
                origin = self._origin(request, caller, ref, status=201)
                if await run(self.registry.mount_blob, origin, ref, source_ref, digest):
                    return Response(
                        status_code=201,
                        headers={
                            "Location": f"/v2/{ref.name}/blobs/{digest}",
                            "Docker-Content-Digest": digest,
                        },
                    )
        digest_param = query.get("digest")
        if digest_param and not mount:
            parse_digest(digest_param)  # before opening a session
            origin = self._origin(request, caller, ref, status=201)
            upload_id = await run(self.registry.start_upload, origin, ref)
            if not ref.exists:  # the upload created it
                ref = await self._read(self.catalog.resolve, ref.name)
            try:
                await self._append(request, ref, upload_id, None)
                digest = await run(self.registry.finish_upload, ref, upload_id, digest_param)
            except BaseException:
                # A monolithic upload lives within this request: nothing may outlive it.
                with contextlib.suppress(RegistryError):
                    await run(self.registry.cancel_upload, ref, upload_id)
                raise
            return Response(
                status_code=201,
                headers={
                    "Location": f"/v2/{ref.name}/blobs/{digest}",
                    "Docker-Content-Digest": digest,
                },
            )
        origin = self._origin(request, caller, ref, status=202)
        upload_id = await run(self.registry.start_upload, origin, ref)
        return Response(status_code=202, headers=upload_headers(ref, upload_id, 0))

    async def _may_mount(
        self, request: Request, caller: Caller, target: RepoRef, source: str
    ) -> bool:
        """Whether the blob may be mounted from ``source``; False falls back to an upload.

        A bearer token that does not name the source at all was asked for without it:
        answer 401 with a challenge for both repositories, as distribution does, so that
        the client fetches a token for both and retries. A token that names the source
        and was granted no pull falls back to an upload (challenging again would loop).
        The challenge comes before any look at the source, so that it tells nothing about
        whether the source exists.
        """
        try:
            source_name = RepositoryName.parse(source)
        except NameError_:
            return False
        token = caller.token
        if token is not None and not token.names("repository", str(source_name)):
            scope = f"repository:{target.name}:pull,push repository:{source_name}:pull"
            raise self._unauthorized(request, caller, scope)
        source_ref = await self._read(self.catalog.resolve, source_name)
        if not source_ref.exists:
            return False
        try:
            await self._authorize(request, caller, source_ref, "pull")
        except RegistryError:
            return False
        return True

    async def _upload(
        self, request: Request, caller: Caller, ref: RepoRef, upload_id: str, method: str
    ) -> Response:
        await self._authorize(request, caller, ref, "push")
        if method == "GET":
            size = await run(self.registry.upload_size, ref, upload_id)  # asks the store
            return Response(status_code=204, headers=upload_headers(ref, upload_id, size))
        if method == "PATCH":
            start = _content_range_start(request)
            size = await self._append(request, ref, upload_id, start)
            return Response(status_code=202, headers=upload_headers(ref, upload_id, size))
        if method == "PUT":
            digest_param = request.query_params.get("digest")
            if not digest_param:
                raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
            parse_digest(digest_param)
            start = _content_range_start(request)
            await self._append(request, ref, upload_id, start)
            digest = await run(self.registry.finish_upload, ref, upload_id, digest_param)
            return Response(
                status_code=201,
                headers={
                    "Location": f"/v2/{ref.name}/blobs/{digest}",
                    "Docker-Content-Digest": digest,
                },
            )
        if method == "DELETE":
            await run(self.registry.cancel_upload, ref, upload_id)
            return Response(status_code=204)
        raise _method_not_allowed()

    async def _append(
        self, request: Request, ref: RepoRef, upload_id: str, start: int | None
    ) -> int:
        """Stream the request body into the upload; return the upload's new size. A
        body of less than one write buffer (configs, small layers, most chunks of a
        small image) is read first and appended in one thread hop."""
        limit = _BodyLimit(_expected_length(request, start), start)
        body = _body(request)
        buffer = bytearray()
        async for chunk in body:
            buffer += chunk
            limit.check_running(len(buffer))
            if len(buffer) >= _WRITE_BUFFER:
                break
        else:
            limit.check_final(len(buffer))
            return await run(self.registry.append, ref, upload_id, start, bytes(buffer))
        appender = await run(self.registry.open_append, ref, upload_id, start)
        try:
            async for chunk in body:
                buffer += chunk
                limit.check_running(appender.written + len(buffer))
                if len(buffer) >= _WRITE_BUFFER:
                    data = bytes(buffer)
                    buffer.clear()
                    await run(appender.write, data)
            if buffer:
                await run(appender.write, bytes(buffer))
            limit.check_final(appender.written)
        except BaseException:
            await run(appender.abort)
            raise
        return await run(appender.close)

    # -- discovery -------------------------------------------------------------------

    async def _tags(self, request: Request, caller: Caller, name: RepositoryName) -> Response:
        last = request.query_params.get("last") or None
        try:
            limit = _page_size(request)
        except RegistryError:
            # A bad page size is told only to whoever may list the tags.
            await self._authorize(
                request, caller, await self._read(self.catalog.resolve, name), "pull"
            )
            raise
        # One read for the repository and the page, told only after authorization.
        ref, found = await self._read(self.registry.find_tags, name, limit, last)
        await self._authorize(request, caller, ref, "pull")
        if isinstance(found, RegistryError):
            raise found
        names, more = found
        headers = {}
        if more and names:
            query = urlencode({"n": limit, "last": names[-1]})
            headers["Link"] = f'</v2/{ref.name}/tags/list?{query}>; rel="next"'
        return JSONResponse({"name": str(ref.name), "tags": names}, headers=headers)

    async def _referrers(self, request: Request, ref: RepoRef, digest: str) -> Response:
        artifact_type = request.query_params.get("artifactType") or None
        descriptors = await self._read(self.registry.referrers, ref, digest, artifact_type)
        headers = {"Content-Type": mt.OCI_INDEX}
        if artifact_type:
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
        return Response(json.dumps(body), headers=headers, media_type=mt.OCI_INDEX)

    async def _catalog(self, request: Request, caller: Caller) -> Response:
        request.scope["dockyard.route"] = "catalog"
        if caller.bad_credentials:
            raise self._unauthorized(request, caller, "registry:catalog:*")
        if caller.token is not None and not caller.token.allows("registry", "catalog", "*"):
            arn = self._catalog_resource().arn
            self._token_refused(
                request, caller.token, actions.LIST_REPOSITORY, arn, "registry:catalog:*"
            )
            raise self._unauthorized(request, caller, "registry:catalog:*")
        if caller.token is None and caller.principal is None:
            raise self._unauthorized(request, caller, "registry:catalog:*")
        principal = caller.principal
        if principal is not None and not self._may_list_catalog(principal, _context(request)):
            request.scope[DECISION] = decision(
                principal, actions.LIST_REPOSITORY, "registry:catalog:*", False
            )
            raise RegistryError("DENIED", "you may not list the catalog (cr:ListRepository)")
        if principal is None and caller.token is not None:
            principal = await run(self.identity.principal_by_name, caller.token.subject)
        limit = _page_size(request)
        last = request.query_params.get("last") or None
        # What the caller may pull, decided per namespace where its policies allow.
        pullable = repository_check(
            self.region, principal or ANONYMOUS, (actions.PULL,), _context(request), unowned=0
        )
        names, more = await run(
            lambda: self.catalog.repository_names(pullable, limit=limit, after=last)
        )
        headers = {}
        if more and names:
            query = urlencode({"n": limit, "last": names[-1]})
            headers["Link"] = f'</v2/_catalog?{query}>; rel="next"'
        return JSONResponse({"repositories": names}, headers=headers)


# -- helpers -----------------------------------------------------------------------------


def _context(request: Request) -> Context:
    client = request.client
    return Context(
        source_ip=client.host if client else None,
        secure_transport=request.url.scheme == "https",
    )


TOKEN_FORM_BYTES = 64 * 1024
"""The largest OAuth2 form ``POST /auth/token`` reads (a login and its scopes)."""


def _token_error(message: str) -> Response:
    return JSONResponse(
        {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="dockyard"'},
    )


def _method_not_allowed() -> RegistryError:
    return RegistryError("UNSUPPORTED", "this method is not supported here", status=405)


def _negotiate(request: Request, media_type: str, reference: str) -> None:
    # Clients such as skopeo send one Accept line per type; together they are one list.
    accept = ",".join(request.headers.getlist("accept"))
    if not accept:
        return
    accepted = {a.split(";")[0].strip().lower() for a in accept.split(",")}
    if (
        "*/*" in accepted
        or media_type in accepted
        or not accepted & (mt.MANIFESTS | {mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED})
    ):
        return
    raise RegistryError(
        "MANIFEST_UNKNOWN",
        f"the manifest is a {media_type}, which the Accept header does not include",
        detail={"reference": reference, "mediaType": media_type},
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise RegistryError("BLOB_UPLOAD_INVALID", "the client went away mid-upload") from None


async def _read_limited(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise RegistryError(
            "MANIFEST_INVALID", f"manifest is larger than {limit} bytes", status=413
        )
    body = bytearray()
    async for chunk in _body(request):
        body += chunk
        if len(body) > limit:
            raise RegistryError(
                "MANIFEST_INVALID", f"manifest is larger than {limit} bytes", status=413
            )
    return bytes(body)


def _content_range_start(request: Request) -> int | None:
    header = request.headers.get("content-range")
    if not header:
        return None
    match = _CONTENT_RANGE.match(header.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RegistryError(
            "RANGE_INVALID", f"Content-Range {header[:100]!r} must be start-end", status=416
        )
    return int(match.group(1))


def _expected_length(request: Request, start: int | None) -> int | None:
    header = request.headers.get("content-range")
    length = request.headers.get("content-length")
    if start is not None and header:
        match = _CONTENT_RANGE.match(header.strip())
        assert match is not None
        expected = int(match.group(2)) - int(match.group(1)) + 1
        if length and length.isdigit() and int(length) != expected:
            raise RegistryError(
                "RANGE_INVALID",
                f"Content-Length {length} does not match Content-Range {header}",
                status=416,
            )
        return expected
    if length and length.isdigit():
        return int(length)
    return None


@dataclass(frozen=True, slots=True)
class _BodyLimit:
    """The length a body announced (Content-Length, or its Content-Range): a body may
    not run past it, nor end short of it."""

    expected: int | None
    start: int | None

    def _error(self, message: str) -> RegistryError:
        ranged = self.start is not None
        return RegistryError(
            "RANGE_INVALID" if ranged else "SIZE_INVALID", message, status=416 if ranged else 400
        )

    def check_running(self, received: int) -> None:
        if self.expected is not None and received > self.expected:
            raise self._error("the body is longer than its Content-Range / Content-Length")

    def check_final(self, received: int) -> None:
        if self.expected is not None and received != self.expected:
            raise self._error(
                f"received {received} bytes but the request announced {self.expected}"
            )


def _parse_range(header: str | None, size: int) -> tuple[int, int, bool]:
    """``(start, end_exclusive, partial)`` for a single-range ``Range`` header."""
    unit, _, spec = header.partition("=") if header else ("", "", "")
    if not header or "," in header or unit.strip().lower() != "bytes":
        # RFC 9110 14.2: a range unit the server does not understand MUST be ignored.
        return 0, size, False
    match = _RANGE.fullmatch(f"bytes={spec.strip()}")
    if not match or (not match.group(1) and not match.group(2)):
        raise _range_not_satisfiable(header, size)
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
        if start >= size or (last and int(last) < start):
            raise _range_not_satisfiable(header, size)
    else:
        suffix = int(last)
        if suffix == 0:
            raise _range_not_satisfiable(header, size)
        start, end = max(size - suffix, 0), size
    return start, end, True


def _range_not_satisfiable(header: str, size: int) -> RegistryError:
    return RegistryError(
        "RANGE_INVALID",
        f"range {header[:100]!r} cannot be satisfied for a blob of {size} bytes",
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


def _page_size(request: Request) -> int | None:
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or int(raw) > 100_000:
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID",
            f"n (the page size) must be an integer from 0 to 100000, not {raw[:20]!r}",
        )
    return int(raw)
