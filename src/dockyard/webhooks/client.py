"""One delivery attempt: POST the signed body, record what came back, never raise.

The job queue decides about retries from the :class:`Attempt` alone, so every way a
delivery can fail (refused by the guard, no connection, a timeout, a broken response)
ends up as an attempt with ``status`` None and an ``error`` a user can act on, rather
than as an exception in the worker.

Receivers are strangers: the whole attempt, response included, is bounded by one
timeout (a receiver that accepts and never answers, or trickles its body a byte at a
time, cannot hold a worker), at most :data:`MAX_RESPONSE_BODY` bytes of the response
are read, and redirects are not followed (a 3xx is just a failed attempt), because
following one would send the delivery, unchecked, wherever the receiver pointed.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self, cast

import anyio
import httpcore

from dockyard.webhooks.guard import AddressGuard, GuardedBackend, Refused, split_url

MAX_RESPONSE_BODY: Final = 4096
"""Bytes of the response kept: enough for an error message, too little to hurt."""
_TIMEOUTS: Final = ("connect", "read", "write", "pool")
"""httpcore's per-operation timeouts; each is set to the whole attempt's, which bounds
them all anyway."""


@dataclass
class Attempt:
    """What one POST to a receiver came to, as the delivery log shows it."""

    at: datetime
    """When the attempt started (UTC)."""
    status: int | None
    """The HTTP status, or None if no complete response came back."""
    duration_ms: int
    error: str = ""
    """Why there is no status (empty when there is one)."""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    """The first 4 KiB of the response body, as text (undecodable bytes replaced)."""

    @property
    def ok(self) -> bool:
        """Whether the receiver took the delivery (any 2xx)."""
        return self.status is not None and 200 <= self.status < 300


class WebhookClient:
    """Delivers webhooks through one connection pool, behind an :class:`AddressGuard`.

    httpcore rather than httpx: it has no redirect following, proxy environment
    variables or cookie jar to switch off, and it takes the guarded network backend.
    """

    def __init__(
        self,
        guard: AddressGuard,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
    ) -> None:
        """``ssl_context`` replaces httpcore's default (certifi's roots, not the
        system's), e.g. to trust a private certificate authority."""
        self.timeout = timeout
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=min(20, max_connections),
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(guard),
        )

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Attempt:
        """POST ``body`` to ``url`` once. Never raises for network problems."""
        at = datetime.now(UTC)
        started = time.monotonic()

        def attempt(
            status: int | None,
            error: str = "",
            response_headers: dict[str, str] | None = None,
            response_body: bytes = b"",
        ) -> Attempt:
            return Attempt(
                at=at,
                status=status,
                duration_ms=round((time.monotonic() - started) * 1000),
                error=error,
                response_headers=response_headers or {},
                response_body=response_body.decode("utf-8", errors="replace"),
            )

        try:
            parts = split_url(url)
        except Refused as exc:
            return attempt(None, str(exc))
        request_headers = [(b"Host", parts.netloc.encode("ascii"))]
        request_headers += [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
            if name.lower() != "host"
        ]
        status: int | None = None
        received: dict[str, str] = {}
        content = b""
        try:
            with anyio.fail_after(self.timeout):
                async with self._pool.stream(
                    "POST",
                    url,
                    headers=request_headers,
                    content=body,
                    extensions={"timeout": dict.fromkeys(_TIMEOUTS, self.timeout)},
                ) as response:
                    status = response.status
                    received = _header_dict(response.headers)
                    content = await _read_prefix(response, MAX_RESPONSE_BODY)
        except TimeoutError:
            return attempt(None, self._timeout_message(status), received, content)
        except httpcore.TimeoutException as exc:
            return attempt(None, self._timeout_message(status, exc), received, content)
        except Refused as exc:
            return attempt(None, str(exc))
        except httpcore.ConnectError as exc:
            return attempt(None, f"cannot connect: {_describe(exc)}")
        except httpcore.RemoteProtocolError as exc:
            return attempt(None, f"the receiver broke HTTP: {_describe(exc)}", received, content)
        except httpcore.LocalProtocolError as exc:
            return attempt(None, f"the request is not valid HTTP: {_describe(exc)}")
        except (httpcore.NetworkError, OSError) as exc:
            return attempt(None, f"the connection failed: {_describe(exc)}", received, content)
        except httpcore.UnsupportedProtocol as exc:
            return attempt(None, f"unsupported URL: {_describe(exc)}")
        return attempt(status, "", received, content)

    def _timeout_message(self, status: int | None, exc: Exception | None = None) -> str:
        detail = f" ({_describe(exc)})" if exc is not None and str(exc) else ""
        if status is None:
            return f"no response within {self.timeout:g} s{detail}"
        return f"the response (status {status}) did not finish within {self.timeout:g} s{detail}"

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _read_prefix(response: httpcore.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of the body. Stopping early leaves the rest unread, and
    httpcore then closes the connection instead of pooling it: no draining a receiver
    that sends gigabytes."""
    content = b""
    parts = cast(AsyncGenerator[bytes, None], response.aiter_stream())
    async with contextlib.aclosing(parts):
        async for part in parts:
            content += part
            if len(content) >= limit:
                break
    return content[:limit]


def _header_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Response headers by lower-case name; a repeated header's values joined as HTTP
    allows (``a, b``)."""
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
