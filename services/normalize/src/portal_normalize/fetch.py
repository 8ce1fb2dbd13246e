"""Fetching partners' images without becoming a proxy into the portal's own network (SSRF).

* only http and https, no credentials in the URL;
* the host is resolved first and every address it resolves to must be public: loopback,
  private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast,
  reserved and unspecified addresses are refused, also inside IPv4-mapped, 6to4, Teredo and
  NAT64 IPv6 addresses, and metadata host names are refused by name;
* the connection goes to the address that was checked (the URL's host stays the TLS name and
  the Host header), so a second DNS answer cannot swap in an internal address;
* redirects are followed by hand, each target checked the same way, at most N of them;
* a time limit for the whole fetch and a size limit while reading (and from Content-Length);
* no proxies from the environment.
``allow_hosts`` (host:port pairs) lifts the address check for exactly those servers: tests
name their own local image server there; nothing is allowed by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Names that reach cloud metadata services or the host itself whatever DNS says.
_BLOCKED_NAMES = frozenset(
    {"localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
# Metadata endpoints that are not in a range refused anyway (Alibaba Cloud's is in 100.64/10,
# AWS's IPv6 one in fd00::/8: both refused by range, listed for the reason text).
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata service",
    ipaddress.ip_address("169.254.170.2"): "cloud metadata service (ECS)",
    ipaddress.ip_address("100.100.100.200"): "cloud metadata service (Alibaba)",
    ipaddress.ip_address("fd00:ec2::254"): "cloud metadata service (AWS IPv6)",
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,image/*;q=0.8"


class FetchError(Exception):
    """The image could not be had; ``code`` is machine-readable, ``reason`` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Refused(FetchError):
    """Refused before any packet was sent to the address (SSRF protection)."""


def address_refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from, or None for a public address."""
    if ip in _METADATA:
        return _METADATA[ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_refusal(embedded)
            return f"{inner} (inside an IPv6 address)" if inner else None
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_multicast:
        return "multicast address"
    if ip.version == 4 and ip in _CGNAT:
        return "carrier-grade NAT address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "reserved address"
    return None


def name_refusal(host: str) -> str | None:
    name = host.rstrip(".").lower()
    if name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES):
        return f"host name {name!r} is internal"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    data: bytes
    content_type: str | None
    redirects: int


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    connect_url: str  # the URL with the checked address in place of the host


def parse_allow_hosts(entries: frozenset[str]) -> frozenset[tuple[str, int]]:
    allowed: set[tuple[str, int]] = set()
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if host and port.isdigit():
            allowed.add((host.strip("[]").lower(), int(port)))
    return frozenset(allowed)


class ImageFetcher:
    def __init__(
        self,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_bytes: int,
        max_redirects: int,
        user_agent: str,
        allow_hosts: frozenset[str] = frozenset(),
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowed = parse_allow_hosts(allow_hosts)
        self.resolver = resolver
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # an environment proxy would connect by name, unchecked
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers={"User-Agent": user_agent, "Accept": ACCEPT},
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self, url: str) -> Target:
        """The URL's checked address to connect to, or ``Refused`` with the reason."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise Refused("bad_url", f"not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise Refused("refused_scheme", f"only http and https are fetched, not {scheme!r}")
        if parts.username is not None or parts.password is not None:
            raise Refused("refused_credentials", "URLs with credentials are not fetched")
        host = (parts.hostname or "").lower()
        if not host:
            raise Refused("bad_url", "the URL has no host")
        port = port or (443 if scheme == "https" else 80)
        allowed = (host, port) in self.allowed
        if not allowed and (reason := name_refusal(host)):
            raise Refused("refused_address", reason)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                ascii_host = host.encode("idna").decode("ascii")
                resolved = await self.resolver(ascii_host, port)
            except (OSError, UnicodeError) as exc:
                raise FetchError("dns_failed", f"{host} does not resolve: {exc}") from exc
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolved]
        if not addresses:
            raise FetchError("dns_failed", f"{host} resolves to no address")
        if not allowed:
            # Every address must be public: a name answering with a public and a private
            # address is refused too.
            for ip in addresses:
                if reason := address_refusal(ip):
                    raise Refused("refused_address", f"{host} is a {reason} ({ip})")
        ip = addresses[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        connect = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        return Target(url=url, scheme=scheme, host=host, port=port, connect_url=connect)

    async def fetch(self, url: str) -> Fetched:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError as exc:
            raise FetchError("timeout", f"no complete answer within {self.timeout_s:g} s") from exc

    async def _fetch(self, url: str) -> Fetched:
        current = url
        for hop in range(self.max_redirects + 1):
            target = await self.check(current)
            default_port = 443 if target.scheme == "https" else 80
            host_header = (
                target.host if target.port == default_port else f"{target.host}:{target.port}"
            )
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            try:
                async with self.client.stream(
                    "GET", target.connect_url, headers={"Host": host_header}, extensions=extensions
                ) as resp:
                    if resp.status_code in _REDIRECTS:
                        location = resp.headers.get("location")
                        if not location:
                            raise FetchError(
                                "http_status", f"HTTP {resp.status_code} without Location"
                            )
                        current = urljoin(current, location)
                        continue
                    if resp.status_code != 200:
                        raise FetchError("http_status", f"HTTP {resp.status_code}")
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise FetchError(
                            "too_large", f"{int(declared)} bytes is over {self.max_bytes}"
                        )
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise FetchError("too_large", f"more than {self.max_bytes} bytes")
                    content_type = resp.headers.get("content-type")
                    return Fetched(current, bytes(body), content_type, hop)
            except httpx.TimeoutException as exc:
                raise FetchError("timeout", f"{type(exc).__name__} from {target.host}") from exc
            except httpx.HTTPError as exc:
                raise FetchError("connection_failed", f"{target.host}: {exc!r}"[:300]) from exc
            except OSError as exc:
                # Never let a partner's network error look like our own dependency failing.
                raise FetchError("connection_failed", f"{target.host}: {exc!r}"[:300]) from exc
        raise FetchError("too_many_redirects", f"more than {self.max_redirects} redirects")
