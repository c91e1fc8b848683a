"""The audit log: every change and every denied attempt — who, what, on what, when, from
where, allowed or denied — readable by each account's administrators.

The management API records through :class:`AuditMiddleware`: a route's authorization
decision (``ApiAuth.authorize``) is left on the request, and once the response has gone
out the middleware writes it when the request changed something (any method but GET and
HEAD), was refused (401, 403, 429) or decided a refusal it still answered (a token that
grants less than was asked). The registry records pushed and deleted manifests, deleted
blobs, refused operations (with credentials or a bearer token, whatever the method),
refused token scopes and refused logins itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.iam.authz import Principal, resource_account
from dockyard.observability import request_id_var
from dockyard.origin import Origin

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED = frozenset({401, 403, 429})
DECISION = "dockyard.audit"
"""The ASGI scope key where a request's authorization decision waits to be recorded."""
REFUSALS = "dockyard.audit.refusals"
"""The ASGI scope key of refusals a request decided besides its own decision (each scope
a token request was refused), each written as a record of its own."""
ORIGIN = "dockyard.origin"
"""The ASGI scope key of the :class:`Origin` a request's change was made with."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    account_id: int | None
    actor: str
    action: str
    resource: str
    source_ip: str
    allowed: bool
    status: int
    detail: str


@dataclass(slots=True)
class Decision:
    """What a request asked and what was decided, until the response says how it ended."""

    actor: str
    action: str
    resource: str
    allowed: bool
    account_id: int | None = None
    detail: str = ""


def decision(principal: Principal | None, action: str, resource: str, allowed: bool) -> Decision:
    owner = resource_account(resource)
    # Account 0 stands for none (a repository whose namespace does not exist).
    account_id = int(owner) if owner.isdigit() and int(owner) else None
    if account_id is None and principal is not None:
        account_id = principal.account_id
    actor = "anonymous"
    if principal is not None and not principal.is_anonymous:
        actor = principal.name
        if principal.name.startswith("STS."):
            actor = f"{principal.arn} ({principal.name})"
    return Decision(actor, action, resource, allowed, account_id)


MAX_REFUSALS = 20
"""At most this many refusals of one request are recorded (a token request may ask for
any number of scopes)."""


def refusal(scope: Scope, entry: Decision) -> None:
    """Record ``entry`` (a refusal) once the response has gone out, whatever it was."""
    found = scope.setdefault(REFUSALS, [])
    if len(found) < MAX_REFUSALS:
        found.append(entry)


_INSERT_RECORD = sa.insert(t.audit_log)
"""Built once: every audited change writes one (its values bound at execution)."""


def _insert(conn: Connection, entry: Decision, *, status: int, source_ip: str | None) -> None:
    account_id = entry.account_id
    if account_id is None and entry.actor != "anonymous":
        # A refused login: the account of the login name tried, if it exists.
        account_id = conn.execute(
            sa.select(t.users.c.account_id).where(t.users.c.name == entry.actor)
        ).scalar()
    conn.execute(
        _INSERT_RECORD,
        {
            "at": utcnow(),
            "account_id": account_id,
            "actor": entry.actor[:200],
            "action": entry.action[:128],
            "resource": entry.resource[:1024],
            "source_ip": (source_ip or "")[:64],
            "allowed": entry.allowed and status not in REFUSED,
            "status": status,
            "detail": entry.detail[:2000],
        },
    )


def write_audit(conn: Connection, origin: Origin) -> None:
    """Write the audit record of a change inside the change's own transaction."""
    assert origin.decision is not None
    _insert(conn, origin.decision, status=origin.status, source_ip=origin.client_address)


def origin_of(
    scope: Scope, principal: Principal | None, *, status: int, actor: str | None = None
) -> Origin:
    """The origin of the change a request is about to make: its caller, request id and
    client address, and the authorization decision (left on the scope by the check that
    allowed it) to record with the change, as answered with ``status``."""
    client = scope.get("client")
    if actor is None:
        actor = "anonymous"
        if principal is not None and not principal.is_anonymous:
            actor = principal.name
    origin = Origin(
        actor=actor,
        account_id=principal.account_id if principal is not None else None,
        request_id=request_id_var.get(),
        client_address=client[0] if client else "",
        decision=scope.get(DECISION),
        status=status,
    )
    scope[ORIGIN] = origin
    return origin


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *entries: Decision, status: int, source_ip: str | None) -> None:
        """Write records after the request (refusals, failures, and changes not yet
        written with their transaction), together."""
        try:
            with self.db.write() as conn:
                for entry in entries:
                    _insert(conn, entry, status=status, source_ip=source_ip)
        except Exception:
            # The audit log never turns a done request into a failed one; it says so.
            log.exception("could not write audit records: %s", entries)

    def list(
        self,
        account_id: int | None,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        allowed: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``account_id`` None means every account (the instance admin)."""
        q = sa.select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if account_id is not None:
            q = q.where(t.audit_log.c.account_id == account_id)
        if before is not None:
            q = q.where(t.audit_log.c.id < before)
        if actor:
            q = q.where(t.audit_log.c.actor == actor)
        if action:
            q = q.where(t.audit_log.c.action == action)
        if allowed is not None:
            q = q.where(t.audit_log.c.allowed.is_(allowed))
        if since is not None:
            q = q.where(t.audit_log.c.at >= since)
        if until is not None:
            q = q.where(t.audit_log.c.at < until)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return [
            AuditEntry(
                id=r.id,
                at=as_utc(r.at),
                account_id=r.account_id,
                actor=r.actor,
                action=r.action,
                resource=r.resource,
                source_ip=r.source_ip,
                allowed=bool(r.allowed),
                status=r.status,
                detail=r.detail,
            )
            for r in rows
        ]


class AuditMiddleware:
    """Writes the audit record a request left (management API and registry alike) once
    the response has gone out.

    With ``reads=False`` (the console's calls to the API) only changes are recorded, their
    refusals and failures included: a console page asks for what it may show (the
    permissions, the webhooks) and leaves out what is refused, and recording those
    refusals would fill the log on every page a limited user opens."""

    def __init__(self, app: ASGIApp, audit: AuditLog, *, reads: bool = True) -> None:
        self.app = app
        self.audit = audit
        self.reads = reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.reads and scope["method"] in SAFE_METHODS):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            entries: list[Decision] = list(scope.get(REFUSALS, ()))
            entry: Decision | None = scope.get(DECISION)
            origin: Origin | None = scope.get(ORIGIN)
            if origin is not None and origin.recorded:
                entry = None  # written with the change, in its transaction
            if entry is not None and (
                scope["method"] not in SAFE_METHODS or status in REFUSED or not entry.allowed
            ):
                entries.insert(0, entry)
            if entries:
                client = scope.get("client")
                await to_thread.run_sync(
                    lambda: self.audit.record(
                        *entries, status=status, source_ip=client[0] if client else None
                    )
                )


def outcome(status: int) -> str:
    """How a request ended, apart from whether it was allowed: ``succeeded`` (below
    400), ``refused`` (401, 403, 429), ``failed`` (any other 4xx: allowed, then a bad
    request, not found, a conflict) or ``error`` (5xx)."""
    if status < 400:
        return "succeeded"
    if status in REFUSED:
        return "refused"
    return "failed" if status < 500 else "error"


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit record on the API: the authorization ``decision`` (``allowed`` or
    ``denied``; ``allowed`` too, as a boolean) and the ``outcome`` of the request with its
    HTTP ``status`` are two things — allowed, then answered 404, is ``failed``."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "account_id": entry.account_id,
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "source_ip": entry.source_ip,
        "allowed": entry.allowed,
        "decision": "allowed" if entry.allowed else "denied",
        "outcome": outcome(entry.status),
        "status": entry.status,
        "detail": entry.detail,
    }
