"""The console's only way to the data: the management API, called in-process.

Every call carries the signed-in user's bearer token and the browser's own address, so
the API authorizes, audits and applies ``acs:SourceIp`` conditions exactly as it would
for a direct call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from starlette.types import ASGIApp


class ApiProblem(Exception):
    """The API refused a call; ``detail`` is its problem-JSON message."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


class SessionExpired(Exception):
    """The API does not accept the session token any more (expired, revoked, invalid)."""


def seg(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(value, safe="")


class ApiClient:
    def __init__(
        self,
        app: ASGIApp,
        *,
        client: tuple[str, int],
        scheme: str = "http",
        token: str | None = None,
        host: str | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if host:
            # The host the browser asked for: the API derives the registry's address
            # from it when no public URL is configured.
            headers["Host"] = host
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token = token
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client),
            base_url=f"{scheme}://dockyard.console",
            headers=headers,
            timeout=60,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for an empty one); a refusal raises
        :class:`ApiProblem`, a refused session :class:`SessionExpired`."""
        clean = {k: v for k, v in (params or {}).items() if v not in ("", None)}
        response = await self._http.request(
            method, path, json=json, params=clean or None, headers=headers
        )
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Any:
        if response.status_code == 401 and self._token:
            raise SessionExpired(_detail(response))
        if response.status_code >= 400:
            title = response.reason_phrase or "Error"
            raise ApiProblem(response.status_code, title, _detail(response))
        if not response.content:
            return None
        return response.json()

    async def download(self, path: str, params: dict[str, str] | None = None) -> tuple[bytes, str]:
        """GET a document that is not the console's JSON (a report in another tool's
        format): its bytes and media type; refusals as :meth:`call`."""
        clean = {k: v for k, v in (params or {}).items() if v not in ("", None)}
        response = await self._http.get(path, params=clean or None, headers={"Accept": "*/*"})
        if response.status_code >= 400:
            self._answer(response)  # raises the problem, as for JSON
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def upload(
        self, path: str, content: AsyncIterator[bytes], params: dict[str, str] | None = None
    ) -> Any:
        """POST a file's bytes as the body (streamed); as :meth:`call` otherwise."""
        return self._answer(await self._http.post(path, content=content, params=params))

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.call("POST", path, json=json)

    async def put(self, path: str, json: Any = None) -> Any:
        return await self.call("PUT", path, json=json)

    async def patch(self, path: str, json: Any = None) -> Any:
        return await self.call("PATCH", path, json=json)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, str):
            return detail
    return f"HTTP {response.status_code}"
