"""Which network addresses the fetcher may connect to (pure logic, no I/O).

The same rules as image fetching: only public addresses. Loopback, private, link-local,
shared (CGNAT), multicast, reserved and cloud metadata addresses are refused, including IPv6
forms that embed an IPv4 address. The fetcher applies this to every address a host name
resolves to, at connection time, for every redirect hop.

Tests and benchmarks with their own local servers may allow exact ``ip:port`` targets; the
allow-list is empty by default and never lets a metadata address through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (cloud credentials live there): never reachable, allow-list or not.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS resolver
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            return None if reason is None else f"{reason} (inside IPv6 {ip})"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared address space (carrier-grade NAT)"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-public address"
    return None


def parse_target(text: str) -> tuple[IPAddress, int]:
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` as (address, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"allowed target {text!r}: expected ip:port")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(host), int(port)
    except ValueError as exc:
        raise ValueError(f"allowed target {text!r}: {host!r} is not an IP address") from exc


@dataclass(frozen=True)
class AddressPolicy:
    """The address rules of one fetcher: public only, plus exact allowed internal targets."""

    allowed: frozenset[tuple[IPAddress, int]] = frozenset()

    @classmethod
    def from_targets(cls, targets: Iterable[str]) -> AddressPolicy:
        return cls(frozenset(parse_target(t) for t in targets))

    def refusal(self, ip: IPAddress, port: int) -> str | None:
        """Why connecting to ``ip:port`` is refused, or None."""
        reason = refusal_reason(ip)
        if reason is None:
            return None
        if ip in METADATA_ADDRESSES:
            return reason
        if (ip, port) in self.allowed:
            return None
        return reason


class UrlRefused(ValueError):
    """A URL the fetcher will not request, with the reason (shown in health)."""


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def check_url(url: str, policy: AddressPolicy) -> None:
    """Static checks of a URL before any request: scheme, credentials, literal addresses.

    Host names are checked when they are resolved (fetcher), since DNS can change.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"scheme {parts.scheme or '(none)'!r} is not allowed (http, https)")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with credentials are not allowed")
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    reason = policy.refusal(ip, port or default_port(parts.scheme))
    if reason is not None:
        raise UrlRefused(f"{host} is a {reason}")
