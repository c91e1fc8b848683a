"""The console session: a cookie holding the API session token, a CSRF token derived
from it, and one-shot flash messages.

The CSRF token is a SHA-256 of the session token under a fixed label: every server
process derives the same value without sharing a key, a page from another site cannot
compute it (it cannot read the HttpOnly cookie), and it changes with every sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "dockyard_session"
FLASH_COOKIE = "dockyard_flash"
COOKIE_PATH = "/console"
_CSRF_LABEL = b"dockyard-console-csrf-v1\x00"


def csrf_token(session_token: str) -> str:
    return hashlib.sha256(_CSRF_LABEL + session_token.encode()).hexdigest()


def csrf_ok(session_token: str, submitted: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token).encode(), submitted.encode())


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(max_age, 0),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request)
    )


@dataclass(frozen=True)
class Flash:
    kind: str
    """``success``, ``error`` or ``info``."""
    text: str


def set_flash(response: Response, request: Request, text: str, kind: str = "success") -> None:
    value = quote(json.dumps({"kind": kind, "text": text[:600]}), safe="")
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=60,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind, text = data.get("kind"), data.get("text")
    if kind not in ("success", "error", "info") or not isinstance(text, str):
        return None
    return Flash(kind, text)


def clear_flash(response: Response, request: Request) -> None:
    response.delete_cookie(
        FLASH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request)
    )
