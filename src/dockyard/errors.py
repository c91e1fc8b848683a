"""Domain errors shared by the services, each with the HTTP status the management API
answers it with (``api.call_service`` maps them, in one place)."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code: str | None = None
    """A machine-readable reason, answered as the problem's ``code`` when set."""

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


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
