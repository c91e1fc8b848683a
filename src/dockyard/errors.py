"""Domain errors shared by the services, each with the HTTP status the management API
answers it with (``api.call_service`` maps them, in one place)."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400


class Invalid(ServiceError):
    """The request names something malformed; the message says what."""

    status = 400


class Forbidden(ServiceError):
    """Allowed in principle, but refused by a limit (a quota)."""

    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """It already exists, or its state does not allow this."""

    status = 409
