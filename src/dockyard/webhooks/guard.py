"""The server-side request forgery guard: webhooks reach the public internet only.

A webhook URL is chosen by a user, and the registry POSTs to it from inside the
operator's network, so without a guard a user could make the registry talk to its
database, to the cloud metadata service at 169.254.169.254 (which hands out
credentials), or to anything else only the server can reach. The guard refuses every
address that is not globally routable unless the operator lists its network in
``DOCKYARD_WEBHOOK_ALLOW_NETWORKS``.

Checking the URL when the webhook is saved is not enough: the name may resolve to a
public address then and to 127.0.0.1 at delivery time (DNS rebinding). So
:class:`GuardedBackend` resolves the name itself at connection time, checks the
addresses, and connects to the checked address literally; the address checked is the
address connected to.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Final

import anyio
import httpcore

from dockyard.config import ConfigError
from dockyard.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING: Final = "DOCKYARD_WEBHOOK_ALLOW_NETWORKS"
MAX_URL_LENGTH: Final = 2048
SCHEMES: Final = frozenset({"http", "https"})

_RANGES: Final[tuple[tuple[IPNetwork, str], ...]] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", 'an unspecified ("this network") address'),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),  # and the broadcast 255.255.255.255
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a unique local address"),
        ("ff00::/8", "a multicast address"),
    )
)
"""Named ranges, so the refusal says what kind of address it met; anything else that
is not globally routable is refused by :attr:`ipaddress.IPv4Address.is_global`."""

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix: a DNS64 resolver maps every IPv4 address into it, so
on an IPv6-only host a public server is reached there and is judged by the IPv4
address inside."""


class Refused(Invalid):
    """A webhook URL, or an address it resolves to, that deliveries may not reach."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where the network will route to it:
    ``::ffff:127.0.0.1`` is 127.0.0.1 on a dual-stack socket."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _parse_address(address: IPAddress | str) -> IPAddress:
    if not isinstance(address, str):
        return address
    try:
        # getaddrinfo writes link-local IPv6 addresses with a zone (fe80::1%eth0)
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError as exc:
        raise Refused(f"{address!r} is not an IP address") from exc


def refusal_reason(address: IPAddress) -> str:
    """Why a delivery may not go to ``address`` (e.g. "a loopback address"), or "" if it
    may. The operator's allow list is not consulted: see :meth:`AddressGuard.check_address`.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            inner_reason = refusal_reason(inner)
            if inner_reason:
                return f"{inner_reason} ({inner}) in IPv6 form"
            if address.ipv4_mapped is not None or address in _NAT64:
                return ""  # the public IPv4 address is what is reached
    for network, reason in _RANGES:
        if address in network:
            return reason
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return ""


class AddressGuard:
    """Decides which addresses webhook deliveries may reach.

    ``allow`` lists networks the operator opened on purpose (a CI server on the office
    network); an address inside one is accepted whatever its kind.
    """

    def __init__(self, allow: Sequence[IPNetwork] = ()) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(allow)

    @classmethod
    def from_setting(cls, text: str) -> AddressGuard:
        """The guard for ``DOCKYARD_WEBHOOK_ALLOW_NETWORKS``: comma-separated CIDRs.

        :raises ConfigError: (a :class:`ValueError`) naming the entry that is not a
            network, so a typo does not silently leave a network closed.
        """
        networks: list[IPNetwork] = []
        for item in text.split(","):
            entry = item.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry))
            except ValueError as exc:
                raise ConfigError(
                    f"{ALLOW_SETTING}: {entry!r} is not a network in CIDR notation "
                    f"(e.g. 10.0.0.0/8, fd00::/8): {exc}"
                ) from exc
        return cls(networks)

    def allows(self, address: IPAddress) -> bool:
        """Whether the operator's allow list covers ``address`` (``::ffff:10.0.0.1`` is
        covered by 10.0.0.0/8: it is the same destination)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.allow
            if network.version == candidate.version
        )

    def check_address(self, address: IPAddress | str, *, host: str = "") -> None:
        """Refuse ``address`` unless it is public or inside an allowed network.

        ``host`` is the name that resolved to it, for the message.

        :raises Refused: saying what kind of address it is and which setting opens it.
        """
        ip = _parse_address(address)
        if self.allows(ip):
            return
        reason = refusal_reason(ip)
        if not reason:
            return
        subject = f"{host} resolves to {ip}, which" if host and host != str(ip) else f"{ip}"
        raise Refused(
            f"{subject} is {reason}; webhooks may not reach it unless {ALLOW_SETTING} includes it"
        )

    def check_addresses(self, addresses: Iterable[IPAddress | str], *, host: str = "") -> None:
        """Refuse if any one of ``addresses`` is refused: a name that resolves to both a
        public and a private address would reach the private one sooner or later."""
        for address in addresses:
            self.check_address(address, host=host)

    def check_url(self, url: str) -> None:
        """Refuse a webhook URL before it is saved, with a message for the user.

        Resolves the host name (blocking: call it from a worker thread in async code)
        and checks every address it resolves to. Deliveries check again when they
        connect (:class:`GuardedBackend`), because DNS answers change.

        :raises Refused: for a malformed URL, an unresolvable host or a refused address.
        """
        parts = split_url(url)
        host = parts.hostname or ""
        try:
            infos = socket.getaddrinfo(host, parts.port or 0, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused(f"cannot resolve {host}: {_gai_detail(exc)}") from exc
        addresses = _unique(str(info[4][0]) for info in infos)
        if not addresses:
            raise Refused(f"cannot resolve {host}: no addresses")
        self.check_addresses(addresses, host=host)


def split_url(url: str) -> urllib.parse.SplitResult:
    """Check a webhook URL's form, without resolving it.

    Refuses what the HTTP client would mangle or refuse later with a worse message:
    credentials in the URL (httpcore drops them without a word; the signature is what
    authenticates a delivery), non-ASCII text (httpcore takes ASCII URLs only: host
    names go as ``xn--``, the rest percent-encoded), schemes other than http and https.

    :raises Refused: naming what is wrong.
    """
    if not url:
        raise Refused("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is {len(url)} characters long; at most {MAX_URL_LENGTH}")
    if not url.isascii() or any(char <= " " or char == "\x7f" for char in url):
        raise Refused(
            "the URL must be ASCII without spaces or control characters: percent-encode "
            "the path and write host names in their xn-- form"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"the URL is malformed: {exc}") from exc
    if parts.scheme not in SCHEMES:
        raise Refused(f"the URL must start with http:// or https://, not {parts.scheme!r}")
    if "@" in parts.netloc:
        raise Refused("the URL may not contain a user name or password")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if port == 0:
        raise Refused("the URL's port must be 1 to 65535")
    return parts


def _gai_detail(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the guard accepts.

    It resolves the host itself, checks every address, and hands the inner backend the
    checked IP literal, so no second lookup can answer differently. TLS is unaffected:
    httpcore starts TLS with the URL's host name (``server_hostname``), so SNI and
    certificate verification still use the name, not the address.
    """

    def __init__(
        self, guard: AddressGuard, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._guard = guard
        self._backend = backend if backend is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to each checked address in turn.

        :raises Refused: if any address is refused (nothing is connected to then).
        :raises httpcore.ConnectError: if the name does not resolve or nothing answers.
        :raises httpcore.ConnectTimeout: if ``timeout`` passes first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {_gai_detail(exc)}") from exc
        addresses = _unique(str(info[4][0]) for info in infos)
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        self._guard.check_addresses(addresses, host=host)
        failure: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc  # try the next address, as a resolver-driven client would
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: a Unix socket is local by definition."""
        raise Refused("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
