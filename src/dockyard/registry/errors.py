"""Every /v2/ error code of the distribution spec, in one place, with its HTTP status.

The service raises :class:`RegistryError`; the HTTP layer turns it into
``{"errors": [{"code", "message", "detail"}]}`` with the status and any headers.
"""

from __future__ import annotations

from typing import Any

STATUS: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    # Not in the spec's table: distribution's code for a bad ?n= page size.
    "PAGINATION_NUMBER_INVALID": 400,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
    "UNKNOWN": 500,
}


class RegistryError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if code not in STATUS:
            raise ValueError(f"unknown registry error code {code}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS[code]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", "blob unknown to registry", detail={"digest": digest})


def manifest_unknown(reference: str, why: str = "") -> RegistryError:
    message = f"manifest unknown: {why}" if why else "manifest unknown"
    return RegistryError("MANIFEST_UNKNOWN", message, detail={"reference": reference[:200]})


def upload_unknown(upload_id: str) -> RegistryError:
    return RegistryError(
        "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", detail={"uuid": upload_id}
    )


def name_unknown(name: str, why: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", why, detail={"name": name})
