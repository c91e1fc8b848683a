"""``GET /api/v1/events``: an account's events, newest first, for its administrators
(``cr:ListEvents``; the instance administrator sees every account's, ``?account=``
narrows). Filters: ``type`` (comma-separated), ``repository`` (``namespace/name`` or a
namespace), ``since`` (ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import (
    ApiAuth,
    before_param,
    call_service,
    listed_account,
    listing,
    page_params,
    paged,
    query_time,
)
from dockyard.errors import ServiceError
from dockyard.events.model import EVENT_TYPES, Event
from dockyard.events.outbox import EventLog
from dockyard.iam import actions
from dockyard.iam.accounts import AccountService
from dockyard.iam.arn import events_arn
from dockyard.openapi import Field, Int64, Op, Query, Reply, Timestamp, describe


class EventOut(Reply):
    """Something that happened in the registry."""

    id: Int64
    type: Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
    time: Timestamp
    account_id: Int64 | None
    namespace: str = Field(examples=["team"])
    repository: str | None = Field(examples=["app"])
    tag: str | None = Field(examples=["latest"])
    digest: str | None
    media_type: str | None
    size: Int64 | None
    actor: str = Field(examples=["alice@acme"])
    request_id: str | None
    client_address: str | None


class EventQuery(Query):
    account: str | None = Field(default=None, description="only this account's (the admin)")
    type: str | None = Field(
        default=None,
        description="only events of these types (comma-separated)",
        examples=["push,tag_delete"],
    )
    repository: str | None = Field(
        default=None, description="only this repository's (namespace/name) or namespace's"
    )
    since: datetime | None = Field(default=None, description="from this time (ISO 8601)")


def event_json(event: Event) -> dict[str, Any]:
    return event.data()


class EventRoutes:
    def __init__(
        self, events: EventLog, accounts: AccountService, auth: ApiAuth, region: str
    ) -> None:
        self.events = events
        self.accounts = accounts
        self.auth = auth
        self.region = region

    def routes(self) -> list[Route]:
        return [Route("/api/v1/events", self.list, methods=["GET"])]

    @describe(
        get=Op(
            "List what happened in the registry, newest first",
            tag="events",
            reply=EventOut,
            query=EventQuery,
            paged=True,
        )
    )
    async def list(self, request: Request) -> Response:
        principal = await self.auth.signed_in(request)
        account_id = principal.account_id
        await self.auth.authorize(
            request, actions.LIST_EVENTS, events_arn(self.region, account_id or 0)
        )
        query = request.query_params
        account_id = await listed_account(request, principal, self.accounts)
        limit, after = page_params(request)
        before = before_param(after, "an event")
        types = [x for x in (query.get("type") or "").split(",") if x]
        since = query_time(request, "since")
        found = await call_service(
            lambda: self.events.list(
                account_id,
                limit=limit,
                before=before,
                types=types,
                repository=query.get("repository") or None,
                since=since,
            ),
            ServiceError,
        )
        return paged(
            listing(
                [event_json(e) for e in found],
                limit,
                request,
                "id",
                ("type", "repository", "since", "account"),
            )
        )
