"""Webhook routes, per repository (``/api/v1/repositories/{namespace}/{repository}/
webhooks``) and per namespace (``/api/v1/namespaces/{namespace}/webhooks``, covering
every repository in it): create, list, read, change, delete, rotate the secret, send a
test, and the delivery history with redelivery.

Actions are ACR's: ``cr:{Create,List,Get,Update,Delete}RepoWebhook`` on the repository,
``cr:…NamespaceWebhook`` on the namespace. The signing secret is returned once, when the
webhook is created (or its secret rotated); extra headers are never returned in clear.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import (
    ApiAuth,
    ApiError,
    before_param,
    call_service,
    iso,
    json_body,
    listing,
    only_fields,
    optional_field,
    page_params,
    paged,
    path_id,
)
from dockyard.audit import origin_of
from dockyard.catalog.http import repository_in_path
from dockyard.catalog.service import CatalogService
from dockyard.errors import ServiceError
from dockyard.events.model import EVENT_TYPES
from dockyard.iam.arn import namespace_arn
from dockyard.iam.authz import Principal
from dockyard.openapi import Body, Field, Int64, Op, Query, Reply, Timestamp, describe
from dockyard.openapi import field_names as fields
from dockyard.origin import Origin
from dockyard.webhooks.service import (
    DELIVERY_STATES,
    FORMATS,
    MASK,
    Delivery,
    Scope,
    Webhook,
    WebhookInput,
    WebhookService,
)
from dockyard.webhooks.triggers import Trigger


class AllTags(Body):
    type: Literal["all"]


class TagList(Body):
    type: Literal["tag_list"]
    tags: list[str] = Field(examples=[["latest", "v1"]])


class TagRegex(Body):
    type: Literal["tag_regex"]
    regex: str = Field(description="a tag must match it in full", examples=["v[0-9]+"])


Trigger_ = Annotated[
    AllTags | TagList | TagRegex,
    Field(
        discriminator="type",
        description="which tags fire the webhook (default: all)",
    ),
]
EventType = Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
Format = Annotated[
    str,
    Field(
        json_schema_extra={"enum": list(FORMATS)},
        description="the payload: ACR's (acr, the default) or CloudEvents 1.0",
    ),
]
DeliveryState = Annotated[str, Field(json_schema_extra={"enum": list(DELIVERY_STATES)})]


class WebhookChange(Body):
    name: str | None = Field(default=None, examples=["deploy"])
    url: str | None = Field(
        default=None,
        json_schema_extra={"format": "uri"},
        examples=["https://ci.example/hooks/registry"],
    )
    trigger: Trigger_ | None = None
    events: list[EventType] | None = Field(default=None, description="default: push")
    format: Format | None = None
    headers: dict[str, str] | None = Field(
        default=None,
        description="extra headers sent with each delivery (never shown again in clear)",
        examples=[{"X-Token": "s3cret"}],
    )
    enabled: bool | None = None


class NewWebhook(WebhookChange):
    name: str = Field(examples=["deploy"])
    url: str = Field(
        json_schema_extra={"format": "uri"}, examples=["https://ci.example/hooks/registry"]
    )


FIELDS = fields(WebhookChange)


class LastDelivery(Reply):
    status: DeliveryState
    at: Timestamp


class WebhookOut(Reply):
    """A webhook of a repository, or of every repository of a namespace."""

    id: Int64
    namespace: str = Field(examples=["team"])
    repository: str | None = Field(description="none: every repository of the namespace")
    name: str = Field(examples=["deploy"])
    url: str = Field(json_schema_extra={"format": "uri"})
    trigger: Trigger_
    events: list[EventType]
    format: Format
    headers: dict[str, str] = Field(description="the extra headers, their values masked")
    enabled: bool
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp
    last_delivery: LastDelivery | None


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="the signing secret, shown this once")


class SecretOut(Reply):
    id: Int64
    secret: str = Field(description="the new signing secret (the old one works for a day)")


class Attempt(Reply):
    at: Timestamp
    status: int | None = Field(description="the receiver's HTTP status")
    duration_ms: int
    error: str | None


class SentRequest(Reply):
    url: str
    headers: dict[str, str]
    body: str


class ReceivedResponse(Reply):
    status: int | None
    headers: dict[str, str] | None
    body: str | None


class DeliverySummaryOut(Reply):
    """One delivery of an event to a webhook."""

    id: Int64
    webhook_id: Int64
    event_id: Int64 | None
    event_type: EventType
    status: DeliveryState
    reason: str | None = Field(description="why it was not sent, or failed")
    attempts: int
    created_at: Timestamp
    updated_at: Timestamp
    response_status: int | None


class DeliveryOut(DeliverySummaryOut):
    """One delivery with its attempts, the request sent and the last response."""

    attempt_log: list[Attempt]
    request: SentRequest
    response: ReceivedResponse


class DeliveryQuery(Query):
    status: DeliveryState | None = Field(default=None, description="only deliveries in this state")


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "namespace": hook.namespace,
        "repository": hook.repository,
        "name": hook.name,
        "url": hook.url,
        "trigger": hook.trigger.to_json(),
        "events": list(hook.events),
        "format": hook.format,
        "headers": dict.fromkeys(hook.header_names, MASK),
        "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason or None,
        "created_at": iso(hook.created_at),
        "updated_at": iso(hook.updated_at),
        "last_delivery": (
            {"status": hook.last_delivery_status, "at": iso(hook.last_delivery_at)}
            if hook.last_delivery_status and hook.last_delivery_at
            else None
        ),
    }


def delivery_json(delivery: Delivery, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "reason": delivery.reason or None,
        "attempts": delivery.attempts,
        "created_at": iso(delivery.created_at),
        "updated_at": iso(delivery.updated_at),
        "response_status": delivery.response_status,
    }
    if full:
        body["attempt_log"] = [
            {"at": iso(a.at), "status": a.status, "duration_ms": a.duration_ms, "error": a.error}
            for a in delivery.attempt_log
        ]
        body["request"] = {
            "url": delivery.request_url,
            "headers": delivery.request_headers,
            "body": delivery.request_body,
        }
        body["response"] = {
            "status": delivery.response_status,
            "headers": delivery.response_headers,
            "body": delivery.response_body,
        }
    return body


def _webhook_input(body: dict[str, Any]) -> WebhookInput:
    only_fields(body, FIELDS)
    events = body.get("events")
    if events is not None and (
        not isinstance(events, list) or not all(isinstance(e, str) for e in events)
    ):
        raise ApiError(400, "Bad Request", "events must be a list of event types")
    headers = body.get("headers")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        raise ApiError(400, "Bad Request", "headers must be an object of strings")
    trigger = None
    if "trigger" in body and body["trigger"] is not None:
        try:
            trigger = Trigger.parse(body["trigger"])
        except ServiceError as exc:
            raise ApiError(400, "Bad Request", str(exc)) from exc
    return WebhookInput(
        name=optional_field(body, "name", str),
        url=optional_field(body, "url", str),
        trigger=trigger,
        events=tuple(events) if events is not None else None,
        format=optional_field(body, "format", str),
        headers=headers,
        enabled=optional_field(body, "enabled", bool),
    )


class WebhookRoutes:
    def __init__(
        self, webhooks: WebhookService, catalog: CatalogService, auth: ApiAuth, region: str
    ) -> None:
        self.webhooks = webhooks
        self.catalog = catalog
        self.auth = auth
        self.region = region

    def routes(self) -> list[Route]:
        routes = []
        for base in (
            "/api/v1/repositories/{namespace}/{repository}/webhooks",
            "/api/v1/namespaces/{namespace}/webhooks",
        ):
            one = base + "/{id}"
            routes += [
                Route(base, self.list_or_create, methods=["GET", "POST"]),
                Route(one, self.one, methods=["GET", "PATCH", "DELETE"]),
                Route(one + "/rotate-secret", self.rotate, methods=["POST"]),
                Route(one + "/test", self.test, methods=["POST"]),
                Route(one + "/deliveries", self.deliveries, methods=["GET"]),
                Route(one + "/deliveries/{delivery}", self.delivery, methods=["GET"]),
                Route(one + "/deliveries/{delivery}/redeliver", self.redeliver, methods=["POST"]),
            ]
        return routes

    async def _authorized(self, request: Request, verb: str) -> tuple[Scope, Principal]:
        """The scope in the path, once the caller may ``cr:{verb}RepoWebhook`` (or
        ``…NamespaceWebhook``) on it."""
        principal = await self.auth.signed_in(request)
        namespace = request.path_params["namespace"]
        repository = request.path_params.get("repository")
        if repository is None:
            owner = await to_thread.run_sync(self.catalog.namespace_account, namespace)
            account = owner if owner is not None else (principal.account_id or "*")
            arn = namespace_arn(self.region, account, namespace)
            await self.auth.authorize(request, f"cr:{verb}NamespaceWebhook", arn)
            return Scope(namespace), principal
        name, principal = await repository_in_path(
            self.auth, self.catalog, self.region, request, f"cr:{verb}RepoWebhook"
        )
        return Scope(name.namespace, name.repository), principal

    def _origin(self, request: Request, principal: Principal, status: int) -> Origin:
        return origin_of(request.scope, principal, status=status)

    @describe(
        get=Op("List webhooks, newest first", tag="webhooks", reply=WebhookOut, paged=True),
        post=Op(
            "Create a webhook (its signing secret is shown once)",
            tag="webhooks",
            body=NewWebhook,
            reply=NewWebhookOut,
            status=201,
            location=True,
        ),
    )
    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            scope, principal = await self._authorized(request, "Create")
            spec = _webhook_input(await json_body(request))
            origin = self._origin(request, principal, 201)
            hook, secret = await call_service(
                lambda: self.webhooks.create(origin, scope, spec), ServiceError
            )
            return JSONResponse(
                webhook_json(hook) | {"secret": secret},
                status_code=201,
                headers={"Location": f"{request.url.path}/{hook.id}"},
            )
        scope, _ = await self._authorized(request, "List")
        limit, after = page_params(request)
        before = before_param(after, "a webhook")
        found = await call_service(
            lambda: self.webhooks.find(scope, limit=limit, after=before), ServiceError
        )
        return paged(listing([webhook_json(h) for h in found], limit, request, "id", ()))

    @describe(
        get=Op("Read a webhook", tag="webhooks", reply=WebhookOut),
        patch=Op("Change a webhook", tag="webhooks", body=WebhookChange, reply=WebhookOut),
        delete=Op("Delete a webhook", tag="webhooks", status=204),
    )
    async def one(self, request: Request) -> Response:
        verb = {"GET": "Get", "PATCH": "Update", "DELETE": "Delete"}[request.method]
        scope, principal = await self._authorized(request, verb)
        hook_id = path_id(request, "id", "webhook")
        if request.method == "DELETE":
            origin = self._origin(request, principal, 204)
            await call_service(lambda: self.webhooks.delete(origin, scope, hook_id), ServiceError)
            return Response(status_code=204)
        if request.method == "PATCH":
            spec = _webhook_input(await json_body(request))
            origin = self._origin(request, principal, 200)
            hook = await call_service(
                lambda: self.webhooks.update(origin, scope, hook_id, spec), ServiceError
            )
            return JSONResponse(webhook_json(hook))
        hook = await call_service(lambda: self.webhooks.get(scope, hook_id), ServiceError)
        return JSONResponse(webhook_json(hook))

    @describe(post=Op("Give a webhook a new signing secret", tag="webhooks", reply=SecretOut))
    async def rotate(self, request: Request) -> Response:
        scope, principal = await self._authorized(request, "Update")
        hook_id = path_id(request, "id", "webhook")
        origin = self._origin(request, principal, 200)
        secret = await call_service(
            lambda: self.webhooks.rotate_secret(origin, scope, hook_id), ServiceError
        )
        return JSONResponse({"id": hook_id, "secret": secret})

    @describe(
        post=Op(
            "Send a sample event to a webhook now, and show what happened",
            tag="webhooks",
            reply=DeliveryOut,
        )
    )
    async def test(self, request: Request) -> Response:
        scope, principal = await self._authorized(request, "Update")
        hook_id = path_id(request, "id", "webhook")
        origin = self._origin(request, principal, 200)
        try:
            delivery = await self.webhooks.test(origin, scope, hook_id)
        except ServiceError as exc:
            raise ApiError.of(exc) from exc
        return JSONResponse(delivery_json(delivery))

    @describe(
        get=Op(
            "List a webhook's deliveries, newest first",
            tag="webhooks",
            reply=DeliverySummaryOut,
            query=DeliveryQuery,
            paged=True,
        )
    )
    async def deliveries(self, request: Request) -> Response:
        scope, _ = await self._authorized(request, "Get")
        hook_id = path_id(request, "id", "webhook")
        limit, after = page_params(request)
        before = before_param(after, "a delivery")
        status = request.query_params.get("status") or None
        found = await call_service(
            lambda: self.webhooks.deliveries(
                scope, hook_id, status=status, limit=limit, before=before
            ),
            ServiceError,
        )
        items = [delivery_json(d, full=False) for d in found]
        return paged(listing(items, limit, request, "id", ("status",)))

    @describe(
        get=Op(
            "Read a delivery: its attempts, the request sent and the response",
            tag="webhooks",
            reply=DeliveryOut,
        )
    )
    async def delivery(self, request: Request) -> Response:
        scope, _ = await self._authorized(request, "Get")
        hook_id = path_id(request, "id", "webhook")
        delivery_id = path_id(request, "delivery", "delivery")
        found = await call_service(
            lambda: self.webhooks.delivery(scope, hook_id, delivery_id), ServiceError
        )
        return JSONResponse(delivery_json(found))

    @describe(post=Op("Send a delivery again", tag="webhooks", reply=DeliveryOut, status=202))
    async def redeliver(self, request: Request) -> Response:
        scope, principal = await self._authorized(request, "Update")
        hook_id = path_id(request, "id", "webhook")
        delivery_id = path_id(request, "delivery", "delivery")
        origin = self._origin(request, principal, 202)
        found = await call_service(
            lambda: self.webhooks.redeliver(origin, scope, hook_id, delivery_id), ServiceError
        )
        return JSONResponse(delivery_json(found), status_code=202)
