"""The OpenAPI 3.1 document of the management API (``GET /api/v1/openapi.json``), made
from the routes themselves and from the typed bodies each route declares, so that it
lists exactly what the server answers and names every field.

Describing a route is one step, beside its handler::

    @describe(
        get=Op("List namespaces", tag="namespaces", reply=NamespaceOut, paged=True),
        post=Op("Create a namespace", tag="namespaces", body=NewNamespace,
                reply=NamespaceOut, status=201),
    )
    async def list_or_create(self, request: Request) -> Response: ...

Bodies, replies and query strings are typed classes (:class:`Body`, :class:`Reply`,
:class:`Query`), declared like pydantic models: their JSON Schema goes into
``components.schemas``, and the fields a route accepts are read from the same class
(:func:`field_names`), so the document and the route cannot name different fields. A
route served without a description still appears (from its docstring, with untyped
bodies), marked ``x-undocumented``: the contract test names each of those.

Those classes are plain Python: pydantic (its modules, its compiled core and a model for
each of more than a hundred classes: some 9 MB of a server's memory, measured) is loaded
only to make the document, by :mod:`dockyard.openapi_schema`, which turns each class into
a pydantic model then. Most servers are never asked for the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

_ATTRIBUTE = "__dockyard_api__"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_NO_DEFAULT: Any = object()


class FieldSpec:
    """What :func:`Field` was told about one field, handed to pydantic's ``Field`` when
    the document is made."""

    __slots__ = ("options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options


def Field(default: Any = _NO_DEFAULT, **options: Any) -> Any:  # noqa: N802 (pydantic's name)
    """A field's default and what the document says of it, with pydantic's ``Field``
    arguments (``description``, ``examples``, ``pattern``, ``json_schema_extra``,
    ``default_factory``, ...); also as ``Annotated`` metadata."""
    if default is not _NO_DEFAULT:
        options["default"] = default
    return FieldSpec(options)


ConfigDict = dict
"""A class's ``model_config``, with pydantic's keys (``extra``)."""


class Model:
    """A typed body, reply or query: fields declared as class annotations, each with an
    optional default or :func:`Field`."""

    model_config: ClassVar[dict[str, Any]] = {}


class Body(Model):
    """A request body that refuses fields it does not name (``additionalProperties:
    false``), as the routes that check :func:`dockyard.api.only_fields` do."""

    model_config: ClassVar[dict[str, Any]] = {"extra": "forbid"}


class LenientBody(Model):
    """A request body whose route ignores fields it does not name."""

    model_config: ClassVar[dict[str, Any]] = {"extra": "ignore"}


class Reply(Model):
    """A response body. Every field the server always writes is required (nullable
    where it may be null); a field it writes only sometimes has a default."""


class Query(Model):
    """A route's query parameters (besides ``limit`` and ``after``, which every paged
    listing takes): each field becomes one optional parameter."""


class RootModel(Model, Generic[T]):
    """A reply that is one value of type ``T`` rather than an object of fields
    (pydantic's ``RootModel``): ``class Document(RootModel[A | B])``."""


Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]
"""An id or a size: JSON integers that may pass 2**31."""

Timestamp = Annotated[datetime, Field(json_schema_extra={"examples": ["2026-01-31T12:00:00Z"]})]
"""An instant, as the API writes it: ISO 8601 in UTC (``format: date-time``)."""


class NoFields(Body):
    """No body at all, or ``{}``: the route takes no fields."""


class Problem(Reply):
    """An error, as problem JSON (RFC 9457)."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(description="the status's reason phrase", examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(
        description="what went wrong, in plain words", examples=["namespace 'x' does not exist"]
    )
    code: str | None = Field(
        default=None,
        description="a machine-readable code, where one exists",
        examples=["DeleteConflict.User.AccessKey"],
    )


class OpenApiDocument(Reply):
    """An OpenAPI 3.1 document."""

    model_config: ClassVar[dict[str, Any]] = {"extra": "allow"}

    openapi: str = Field(examples=["3.1.0"])
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


def full_match(regex: re.Pattern[str]) -> str:
    """``regex`` as a JSON Schema ``pattern`` that, like the ``fullmatch`` the services
    check names with, must match the whole value."""
    return f"^(?:{regex.pattern.removeprefix('^').removesuffix('$')})$"


def field_names(model: type[Model]) -> tuple[str, ...]:
    """The fields ``model`` names, inherited ones first: what a route lets a body carry,
    and what its document describes (:func:`dockyard.openapi_schema.pydantic_model`)."""
    names: dict[str, None] = {}
    for klass in reversed(model.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if not name.startswith("_") and "ClassVar" not in str(annotation):
                names[name] = None
    return tuple(names)


@dataclass(frozen=True)
class Op:
    """How one operation (one method of a route) is described in the document.

    ``reply`` is the body of a success (None: no content); with ``paged`` it is the
    type of each item of a page (``items``, ``next``, a ``Link`` header) and the route
    takes ``limit`` and ``after``; with ``listed`` it is the item of an unpaged list.
    ``errors`` adds problem statuses to those every operation of its kind can answer
    (see :func:`_error_statuses`)."""

    summary: str
    tag: str
    body: type[Model] | None = None
    body_required: bool = True
    reply: type[Model] | None = None
    status: int = 200
    query: type[Model] | None = None
    paged: bool = False
    listed: bool = False
    errors: tuple[int, ...] = ()
    public: bool = False
    location: bool = False
    description: str = ""
    upload: tuple[str, ...] = ()
    """Media types of a file sent as the whole body (or as the one file of a
    ``multipart/form-data`` form), instead of a JSON ``body``."""
    media: tuple[tuple[str, type[Model]], ...] = ()
    """Other media types a success may be answered in (a report format chosen with a
    query parameter, an event stream), each with its body's model (for
    ``text/event-stream``, the model of one event). Listed after ``reply``'s JSON, so a
    generated client reads the JSON."""
    also: tuple[tuple[int, type[Model] | None], ...] = ()
    """Other successes the operation answers, each with its JSON body's model (None: no
    content): a PUT that creates (201) or replaces (200), a hook's ping (200) beside its
    push (202)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Request headers the operation reads, ``(name, what it is)``: how a public route
    proves who sent it (a signature) when no credentials do."""


def describe(**operations: Op) -> Callable[[F], F]:
    """Describe a handler's operations, one per HTTP method (``get=Op(…)``, …)."""

    def mark(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, {m.upper(): op for m, op in operations.items()})
        return handler

    return mark


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The document of the ``/api/v1`` operations among ``routes``."""
    from dockyard.openapi_schema import document

    return document(routes)
