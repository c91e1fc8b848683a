"""The SSRF guard and the delivery client, against real servers on loopback.

Nothing here leaves the machine: refused addresses are refused before any connection,
and every server the client reaches listens on 127.0.0.1 or ::1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from dockyard.config import ConfigError
from dockyard.errors import Invalid
from dockyard.webhooks.client import MAX_RESPONSE_BODY, Attempt, WebhookClient
from dockyard.webhooks.guard import AddressGuard, GuardedBackend, Refused, split_url
from dockyard.webhooks.signing import delivery_headers, new_secret

SETTING = "DOCKYARD_WEBHOOK_ALLOW_NETWORKS"
STRICT = AddressGuard()
LOOPBACK_ALLOWED = AddressGuard.from_setting("127.0.0.0/8, ::1/128")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


# --- the address guard ---------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # a public IPv4 address in mapped form is that address
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (IPv6-only networks reach everything so)
    ],
)
def test_public_addresses_pass(address: str) -> None:
    STRICT.check_address(address)
    STRICT.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("169.254.169.254", "a link-local address"),
        ("169.254.0.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fc00::1", "a unique local address"),
        ("fd12:3456::1", "a unique local address"),
        ("fec0::1", "a site-local address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified"),  # noqa: S104 - refused, not bound
        ("0.1.2.3", "an unspecified"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("::127.0.0.1", "a reserved address"),  # the deprecated IPv4-compatible form
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1) in IPv6 form"),
        ("::ffff:169.254.169.254", "a link-local address (169.254.169.254) in IPv6 form"),
        ("::ffff:10.0.0.1", "a private address (10.0.0.1) in IPv6 form"),
        ("64:ff9b::7f00:1", "a loopback address (127.0.0.1) in IPv6 form"),  # NAT64
        ("2002:7f00:1::", "a loopback address (127.0.0.1) in IPv6 form"),  # 6to4
        ("2002:a00:1::1", "a private address (10.0.0.1) in IPv6 form"),
        ("192.0.2.1", "not a globally routable address"),  # documentation
        ("198.18.0.1", "not a globally routable address"),  # benchmarking
        ("2001:db8::1", "not a globally routable address"),
    ],
)
def test_internal_addresses_are_refused_saying_what_they_are(address: str, kind: str) -> None:
    with pytest.raises(Refused) as caught:
        STRICT.check_address(address)
    assert f" is {kind}" in str(caught.value)
    assert str(caught.value).endswith(f"unless {SETTING} includes it")


def test_refusal_message_names_address_and_setting() -> None:
    with pytest.raises(Refused) as caught:
        STRICT.check_address("127.0.0.1")
    assert str(caught.value) == (
        "127.0.0.1 is a loopback address; webhooks may not reach it unless "
        "DOCKYARD_WEBHOOK_ALLOW_NETWORKS includes it"
    )
    with pytest.raises(Refused, match=r"^hooks\.test resolves to 10\.0\.0\.5, which is a private"):
        STRICT.check_address("10.0.0.5", host="hooks.test")
    assert issubclass(Refused, Invalid)


def test_not_an_address_is_refused() -> None:
    with pytest.raises(Refused, match="'nope' is not an IP address"):
        STRICT.check_address("nope")


def test_allowed_networks_open_exactly_those_addresses() -> None:
    guard = AddressGuard.from_setting(" 10.0.0.0/8 ,fd00::/8,, 169.254.169.254/32 ")
    assert guard.allow == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("169.254.169.254/32"),
    )
    guard.check_address("10.20.30.40")
    guard.check_address("::ffff:10.20.30.40")  # the same destination
    guard.check_address("fd00::5")
    guard.check_address("169.254.169.254")
    with pytest.raises(Refused, match="private"):
        guard.check_address("192.168.0.1")
    with pytest.raises(Refused, match="unique local"):
        guard.check_address("fc00::1")
    with pytest.raises(Refused, match="link-local"):
        guard.check_address("169.254.169.253")


def test_an_empty_setting_allows_nothing_internal() -> None:
    assert AddressGuard.from_setting("").allow == ()
    assert AddressGuard.from_setting(" , ").allow == ()


@pytest.mark.parametrize(
    "setting", ["10.0.0.0/33", "intranet", "10.0.0.1/8", "10.0.0.0/8;fd00::/8"]
)
def test_a_bad_setting_names_the_entry(setting: str) -> None:
    with pytest.raises(ConfigError, match=f"^{SETTING}: '.*' is not a network in CIDR notation"):
        AddressGuard.from_setting(setting)
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "the URL is empty"),
        ("ftp://example.com/", "must start with http:// or https://, not 'ftp'"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("gopher://127.0.0.1:6379/_", "must start with http:// or https://"),
        ("example.com/hook", "must start with http:// or https://"),
        ("http://user:pw@example.com/", "may not contain a user name or password"),
        ("http://user@example.com/", "may not contain a user name or password"),
        ("http:///path", "the URL has no host"),
        ("http://:80/path", "the URL has no host"),
        ("http://example.com:99999/", "the URL is malformed"),
        ("http://example.com:http/", "the URL is malformed"),
        ("http://example.com:0/", "port must be 1 to 65535"),
        ("http://[::1/", "the URL is malformed"),
        ("http://bücher.example/", "must be ASCII"),
        ("http://example.com/a b", "must be ASCII"),
        ("http://example.com/\r\nX-Injected: 1", "must be ASCII"),
        ("https://example.com/" + "a" * 2030, "the URL is 2050 characters long; at most 2048"),
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _no_lookups)
    with pytest.raises(Refused, match=re.escape(message)):
        STRICT.check_url(url)


def test_the_longest_url_is_accepted() -> None:
    url = "https://8.8.8.8/" + "a" * (2048 - len("https://8.8.8.8/"))
    assert len(url) == 2048
    STRICT.check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8080/hook", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.1/", "127.1 resolves to 127.0.0.1, which is a loopback"),
        ("http://2130706433/", "2130706433 resolves to 127.0.0.1, which is a loopback"),
        ("http://0x7f000001/", "0x7f000001 resolves to 127.0.0.1, which is a loopback"),
        ("http://[::1]:5000/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "in IPv6 form"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://0.0.0.0:5000/", "0.0.0.0 is an unspecified"),
        ("HTTPS://10.0.0.1/", "10.0.0.1 is a private address"),
    ],
)
def test_check_url_refuses_what_the_host_resolves_to(url: str, message: str) -> None:
    with pytest.raises(Refused, match=re.escape(message)):
        STRICT.check_url(url)


def test_check_url_accepts_public_and_allowed_hosts() -> None:
    STRICT.check_url("https://8.8.8.8/hook?x=1")
    STRICT.check_url("http://[2606:4700:4700::1111]:8443/hook")
    LOOPBACK_ALLOWED.check_url("http://localhost:8080/hook")
    LOOPBACK_ALLOWED.check_url("http://[::1]:8080/hook")


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(["8.8.8.8", "10.0.0.7"]))
    with pytest.raises(Refused, match=r"hooks\.test resolves to 10\.0\.0\.7, which is a private"):
        STRICT.check_url("https://hooks.test/")
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(["8.8.8.8", "2606:4700::1"]))
    STRICT.check_url("https://hooks.test/")


def test_an_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(Refused, match=r"^cannot resolve hooks\.test: Name or service not known$"):
        STRICT.check_url("https://hooks.test/hook")
    monkeypatch.setattr(socket, "getaddrinfo", _resolver([]))
    with pytest.raises(Refused, match=r"^cannot resolve hooks\.test: no addresses$"):
        STRICT.check_url("https://hooks.test/hook")


def test_split_url_returns_the_parts() -> None:
    parts = split_url("https://hooks.example:8443/a/b?c=d")
    assert (parts.hostname, parts.port, parts.path) == ("hooks.example", 8443, "/a/b")


# --- the guarded network backend -----------------------------------------------------


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the real network: records where it was asked to connect."""

    def __init__(self, fail_for: Iterable[str] = ()) -> None:
        self.connected: list[tuple[str, int]] = []
        self.fail_for = set(fail_for)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        if host in self.fail_for:
            raise httpcore.ConnectError(f"no answer from {host}")
        return httpcore.AsyncMockStream([])

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def _async_resolver(addresses: list[str]) -> Callable[..., Awaitable[list[Any]]]:
    sync = _resolver(addresses)

    async def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return sync(host, port)

    return resolve


@pytest.mark.anyio
async def test_backend_connects_to_the_checked_address_not_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anyio, "getaddrinfo", _async_resolver(["93.184.216.34"]))
    inner = RecordingBackend()
    backend = GuardedBackend(STRICT, inner)
    await backend.connect_tcp("hooks.test", 443, timeout=5)
    assert inner.connected == [("93.184.216.34", 443)]


@pytest.mark.anyio
async def test_backend_refuses_before_connecting_if_any_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What DNS rebinding looks like at delivery time: a public and an internal answer.
    monkeypatch.setattr(anyio, "getaddrinfo", _async_resolver(["93.184.216.34", "127.0.0.1"]))
    inner = RecordingBackend()
    with pytest.raises(Refused, match=r"hooks\.test resolves to 127\.0\.0\.1, which is a loopback"):
        await GuardedBackend(STRICT, inner).connect_tcp("hooks.test", 443, timeout=5)
    assert inner.connected == []


@pytest.mark.anyio
async def test_backend_refuses_cloud_metadata_without_connecting() -> None:
    inner = RecordingBackend()
    with pytest.raises(Refused, match=r"^169\.254\.169\.254 is a link-local address"):
        await GuardedBackend(STRICT, inner).connect_tcp("169.254.169.254", 80, timeout=5)
    assert inner.connected == []


@pytest.mark.anyio
async def test_backend_tries_the_next_address_when_one_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anyio, "getaddrinfo", _async_resolver(["2606:4700::1", "1.1.1.1"]))
    inner = RecordingBackend(fail_for=["2606:4700::1"])
    await GuardedBackend(STRICT, inner).connect_tcp("hooks.test", 80, timeout=5)
    assert inner.connected == [("2606:4700::1", 80), ("1.1.1.1", 80)]
    inner = RecordingBackend(fail_for=["2606:4700::1", "1.1.1.1"])
    with pytest.raises(httpcore.ConnectError, match=r"no answer from 1\.1\.1\.1"):
        await GuardedBackend(STRICT, inner).connect_tcp("hooks.test", 80, timeout=5)


@pytest.mark.anyio
async def test_backend_reports_a_name_that_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", fail)
    with pytest.raises(httpcore.ConnectError, match=r"cannot resolve hooks\.test: Name or service"):
        await GuardedBackend(STRICT, RecordingBackend()).connect_tcp("hooks.test", 80)


@pytest.mark.anyio
async def test_backend_refuses_unix_sockets() -> None:
    with pytest.raises(Refused, match="TCP only"):
        await GuardedBackend(LOOPBACK_ALLOWED).connect_unix_socket("/run/docker.sock")


# --- loopback receivers for the client -----------------------------------------------


@dataclass
class Received:
    head: bytes
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Received, asyncio.StreamWriter, asyncio.Event], Awaitable[None]]
"""Writes the response; the event is set when the receiver stops."""


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server on loopback that records requests and answers as told."""

    answer: Answer
    host: str
    tls: ssl.SSLContext | None = None
    port: int = 0
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", *, host: str | None = None, scheme: str = "http") -> str:
        name = host or self.host
        if ":" in name:
            name = f"[{name}]"
        return f"{scheme}://{name}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            if self.tls is not None:
                # In the handler rather than in start_server, so that a failed handshake
                # is this test's business, not an error for the event loop to report.
                await writer.start_tls(self.tls)
            head = await reader.readuntil(b"\r\n\r\n")
            headers = _parse_head(head)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(head, headers, body)
            self.requests.append(request)
            await self.answer(request, writer, self.stopping)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the receiver is stopping; ending quietly keeps asyncio from logging it
        finally:
            writer.close()
            # Bounded: after a failed or cancelled TLS handshake, Python 3.11's
            # wait_closed() can wait forever.
            with contextlib.suppress(
                ConnectionError, ssl.SSLError, TimeoutError, asyncio.CancelledError
            ):
                await asyncio.wait_for(writer.wait_closed(), 1)
            self.tasks.discard(task)


@contextlib.asynccontextmanager
async def receiving(
    answer: Answer, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[Receiver]:
    receiver = Receiver(answer, host, tls)
    server = await asyncio.start_server(receiver.handle, host, 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        receiver.stopping.set()
        if receiver.tasks:
            _, late = await asyncio.wait(receiver.tasks, timeout=2)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await server.wait_closed()


def respond(status: str, body: bytes = b"", *headers: str) -> Answer:
    async def answer(request: Received, writer: asyncio.StreamWriter, _: asyncio.Event) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
        writer.write(("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body)

    return answer


async def hang(request: Received, writer: asyncio.StreamWriter, stopping: asyncio.Event) -> None:
    await stopping.wait()


async def trickle(request: Received, writer: asyncio.StreamWriter, stopping: asyncio.Event) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stopping.is_set():
        writer.write(b".")
        await writer.drain()
        await asyncio.sleep(0.05)


async def hang_up(request: Received, writer: asyncio.StreamWriter, _: asyncio.Event) -> None:
    """Close the connection without a word."""


def _parse_head(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


# --- the delivery client -------------------------------------------------------------

BODY = b'{"push_data":{"tag":"1.0"}}'


def _signed(secret: str) -> dict[str, str]:
    return delivery_headers([secret], "msg_1", int(time.time()), BODY, version="0.1.0")


@pytest.mark.anyio
async def test_a_2xx_is_ok_and_the_receiver_can_verify_it() -> None:
    secret = new_secret()
    answer = respond("202 Accepted", b'{"queued":true}', "X-Trace: a", "X-Trace: b")
    async with receiving(answer) as receiver, WebhookClient(LOOPBACK_ALLOWED) as client:
        attempt = await client.post(receiver.url(), _signed(secret), BODY)
    assert attempt.ok
    assert (attempt.status, attempt.error) == (202, "")
    assert attempt.response_body == '{"queued":true}'
    assert attempt.response_headers["x-trace"] == "a, b"
    assert attempt.response_headers["content-length"] == "15"
    assert 0 <= attempt.duration_ms < 5000
    assert attempt.at.tzinfo is UTC
    [request] = receiver.requests
    assert request.head.startswith(b"POST /hook HTTP/1.1\r\n")
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["user-agent"] == "Dockyard-Webhook/0.1.0"
    assert request.headers["content-type"] == "application/json"
    assert request.body == BODY
    assert Webhook(secret).verify(request.body, request.headers) == {"push_data": {"tag": "1.0"}}


@pytest.mark.anyio
async def test_a_500_is_recorded_not_raised() -> None:
    answer = respond("500 Internal Server Error", b"database down\n")
    async with receiving(answer) as receiver, WebhookClient(LOOPBACK_ALLOWED) as client:
        attempt = await client.post(receiver.url(), {}, BODY)
    assert not attempt.ok
    assert (attempt.status, attempt.error) == (500, "")
    assert attempt.response_body == "database down\n"


@pytest.mark.anyio
async def test_only_the_first_4_kib_of_a_huge_response_are_read() -> None:
    answer = respond("200 OK", b"\xff" + b"x" * (8 << 20))
    async with receiving(answer) as receiver, WebhookClient(LOOPBACK_ALLOWED) as client:
        attempt = await client.post(receiver.url(), {}, BODY)
    assert attempt.ok
    assert len(attempt.response_body) == MAX_RESPONSE_BODY
    assert attempt.response_body.startswith("\ufffdxxx")  # undecodable bytes replaced


@pytest.mark.anyio
async def test_a_receiver_that_never_answers_times_out() -> None:
    async with receiving(hang) as receiver, WebhookClient(LOOPBACK_ALLOWED, timeout=0.3) as client:
        attempt = await client.post(receiver.url(), {}, BODY)
    assert (attempt.status, attempt.error) == (None, "no response within 0.3 s")
    assert not attempt.ok
    assert 250 <= attempt.duration_ms < 3000
    assert len(receiver.requests) == 1


@pytest.mark.anyio
async def test_a_trickled_body_cannot_hold_the_attempt_past_the_timeout() -> None:
    async with (
        receiving(trickle) as receiver,
        WebhookClient(LOOPBACK_ALLOWED, timeout=0.5) as client,
    ):
        attempt = await client.post(receiver.url(), {}, BODY)
    assert attempt.status is None
    assert attempt.error == "the response (status 200) did not finish within 0.5 s"
    assert 450 <= attempt.duration_ms < 3000
    assert attempt.response_headers["content-length"] == "100000"


@pytest.mark.anyio
async def test_a_receiver_that_hangs_up_is_an_error() -> None:
    async with receiving(hang_up) as receiver, WebhookClient(LOOPBACK_ALLOWED) as client:
        attempt = await client.post(receiver.url(), {}, BODY)
    assert attempt.status is None
    assert attempt.error.startswith("the receiver broke HTTP: ")


@pytest.mark.anyio
async def test_connection_refused_is_an_error() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    async with WebhookClient(LOOPBACK_ALLOWED, timeout=5) as client:
        attempt = await client.post(f"http://127.0.0.1:{port}/hook", {}, BODY)
    assert attempt.status is None
    assert attempt.error.startswith("cannot connect: ")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{v4}/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost:{v4}/hook", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://127.1:{v4}/hook", "127.1 resolves to 127.0.0.1, which is a loopback"),
        ("http://[::ffff:127.0.0.1]:{v4}/hook", "loopback address (127.0.0.1) in IPv6 form"),
        ("http://[::1]:{v6}/hook", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://user:pw@127.0.0.1:{v4}/", "may not contain a user name or password"),
        ("ftp://127.0.0.1:{v4}/", "must start with http:// or https://"),
    ],
)
async def test_the_guard_refuses_before_anything_is_sent(url: str, message: str) -> None:
    async with (
        receiving(respond("204 No Content")) as v4,
        receiving(respond("204 No Content"), host="::1" if _ipv6_loopback() else "127.0.0.1") as v6,
        WebhookClient(STRICT, timeout=5) as client,
    ):
        attempt = await client.post(url.format(v4=v4.port, v6=v6.port), {}, BODY)
    assert attempt.status is None
    assert message in attempt.error
    assert attempt.duration_ms < 1000
    assert (v4.connections, v6.connections) == (0, 0)


@pytest.mark.anyio
async def test_redirects_are_not_followed() -> None:
    async with receiving(respond("204 No Content")) as target:
        location = f"Location: {target.url('/elsewhere')}"
        async with (
            receiving(respond("302 Found", b"", location)) as receiver,
            WebhookClient(LOOPBACK_ALLOWED) as client,
        ):
            attempt = await client.post(receiver.url(), {}, BODY)
    assert (attempt.status, attempt.ok, attempt.error) == (302, False, "")
    assert attempt.response_headers["location"] == target.url("/elsewhere")
    assert target.connections == 0


@pytest.mark.anyio
async def test_loopback_is_reachable_when_the_operator_allows_it() -> None:
    async with receiving(respond("200 OK")) as receiver, WebhookClient(LOOPBACK_ALLOWED) as client:
        by_name = await client.post(receiver.url(host="localhost"), {}, BODY)
        by_address = await client.post(receiver.url(), {}, BODY)
    assert (by_name.status, by_address.status) == (200, 200)
    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


@needs_ipv6
@pytest.mark.anyio
async def test_ipv6_loopback_is_reachable_when_allowed_with_a_proper_host_header() -> None:
    async with (
        receiving(respond("200 OK"), host="::1") as receiver,
        WebhookClient(LOOPBACK_ALLOWED) as client,
    ):
        attempt = await client.post(receiver.url(), {}, BODY)
    assert attempt.ok, attempt.error
    # httpcore alone would write "Host: ::1:port", which is not a valid Host header
    assert receiver.requests[0].headers["host"] == f"[::1]:{receiver.port}"


# --- TLS: the client connects to the checked address but verifies the name ----------


def _certificate(name: str, directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    certificate_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    certificate_file.write_bytes(certificate_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_file, key_file, certificate_pem


def _tls_server(certificate: Path, key: Path, names: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)

    def record(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record
    return context


@pytest.mark.anyio
async def test_tls_sends_sni_and_verifies_the_name_while_connecting_to_the_address(
    tmp_path: Path,
) -> None:
    certificate, key, pem = _certificate("localhost", tmp_path)
    names: list[str | None] = []
    trusting = ssl.create_default_context(cadata=pem.decode())
    async with (
        receiving(respond("200 OK"), tls=_tls_server(certificate, key, names)) as receiver,
        WebhookClient(LOOPBACK_ALLOWED, ssl_context=trusting) as client,
    ):
        attempt = await client.post(receiver.url(host="localhost", scheme="https"), {}, BODY)
    assert attempt.ok, attempt.error
    assert names == ["localhost"]


@pytest.mark.anyio
async def test_tls_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    certificate, key, pem = _certificate("other.test", tmp_path)
    names: list[str | None] = []
    trusting = ssl.create_default_context(cadata=pem.decode())
    async with (
        receiving(respond("200 OK"), tls=_tls_server(certificate, key, names)) as receiver,
        WebhookClient(LOOPBACK_ALLOWED, ssl_context=trusting) as client,
    ):
        attempt = await client.post(receiver.url(host="localhost", scheme="https"), {}, BODY)
    assert attempt.status is None
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
    assert "localhost" in attempt.error
    assert receiver.requests == []


def test_attempt_ok_means_2xx() -> None:
    now = datetime.now(UTC)
    assert [Attempt(now, status, 1).ok for status in (199, 200, 299, 300, 404)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert not Attempt(now, None, 1, error="refused").ok


# --- helpers ---------------------------------------------------------------------------


def _no_lookups(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a malformed URL must be refused before any DNS lookup")


def _resolver(addresses: list[str]) -> Callable[..., list[Any]]:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        result: list[Any] = []
        for address in addresses:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    return resolve
