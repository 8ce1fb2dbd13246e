"""Image fetching without SSRF: addresses are classified without sending them anything;
live traffic goes to loopback only (a local server the test names as allowed, or refused)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator

import pytest

from portal_normalize.fetch import FetchError, ImageFetcher, Refused, address_refusal, name_refusal

from .normalize_imageserver import ImageServer, image_server, jpeg

# Addresses that must never be fetched from. Classification only: no packet is sent to them.
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("fd00:ec2::254", "metadata"),
    ("fc00::5", "private"),
    ("100.100.100.200", "metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "address"),  # documentation range
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "metadata"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 around 169.254.169.254
    ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", ["1.1.1.1", "203.113.131.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "host", ["localhost", "a.localhost", "metadata.google.internal", "db.internal", "nas.local"]
)
def test_internal_names_are_refused(host: str) -> None:
    assert name_refusal(host) is not None


def fetcher(
    answers: dict[str, list[str]] | None = None, allow: frozenset[str] = frozenset(), **kw: float
) -> ImageFetcher:
    async def resolver(host: str, port: int) -> list[str]:
        if answers is not None:
            if host not in answers:
                raise OSError(f"no such host {host}")
            return answers[host]
        raise AssertionError("no DNS in this test")

    return ImageFetcher(
        timeout_s=kw.get("timeout_s", 5.0),
        connect_timeout_s=2.0,
        max_bytes=int(kw.get("max_bytes", 5_000_000)),
        max_redirects=3,
        user_agent="test",
        allow_hosts=allow,
        resolver=resolver,
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://anh.example.vn/a.jpg", "refused_scheme"),
        ("file:///etc/passwd", "refused_scheme"),
        ("http://user:pass@anh.example.vn/a.jpg", "refused_credentials"),
        ("http://internal.example.vn/a.jpg", "refused_address"),  # resolves to 10.0.0.7
        ("http://mixed.example.vn/a.jpg", "refused_address"),  # one public, one private answer
        ("http://169.254.169.254/latest/meta-data/", "refused_address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "refused_address"),
        ("http://localhost:8080/a.jpg", "refused_address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "refused_address"),
        ("http://nowhere.example.vn/a.jpg", "dns_failed"),
    ],
)
async def test_urls_are_checked_before_any_connection(url: str, code: str) -> None:
    f = fetcher({"internal.example.vn": ["10.0.0.7"], "mixed.example.vn": ["1.1.1.1", "10.0.0.8"]})
    try:
        with pytest.raises(FetchError) as caught:
            await f.check(url)
        assert caught.value.code == code
    finally:
        await f.aclose()


@pytest.mark.parametrize(
    "url", ["http://2130706433/a.jpg", "http://0x7f.0.0.1/a.jpg", "http://017700000001/a.jpg"]
)
async def test_numeric_spellings_of_loopback_are_refused(url: str) -> None:
    # The system resolver turns these into 127.0.0.1 by parsing alone (no DNS query).
    f = ImageFetcher(
        timeout_s=2, connect_timeout_s=1, max_bytes=1000, max_redirects=1, user_agent="t"
    )
    try:
        with pytest.raises(Refused, match="loopback"):
            await f.check(url)
    finally:
        await f.aclose()


async def test_a_public_name_connects_to_the_checked_address() -> None:
    f = fetcher({"anh.example.vn": ["203.113.131.1"]})
    try:
        target = await f.check("https://anh.example.vn/tin/a.jpg?x=1")
        assert target.connect_url == "https://203.113.131.1:443/tin/a.jpg?x=1"
        assert target.host == "anh.example.vn"  # TLS name and Host header
    finally:
        await f.aclose()


# --- live, loopback only ----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with image_server() as s:
        yield s


@pytest.fixture
async def allowed(server: ImageServer) -> AsyncIterator[ImageFetcher]:
    f = fetcher(allow=frozenset({server.host}), timeout_s=3.0, max_bytes=200_000)
    yield f
    await f.aclose()


async def test_loopback_is_refused_unless_named(server: ImageServer) -> None:
    url = server.add("/a.jpg", jpeg(64, 64))
    f = fetcher()
    try:
        with pytest.raises(Refused, match="loopback"):
            await f.fetch(url)
    finally:
        await f.aclose()
    assert server.hits == {}  # refused before connecting


async def test_the_named_test_server_serves_its_image(
    server: ImageServer, allowed: ImageFetcher
) -> None:
    data = jpeg(64, 64)
    got = await allowed.fetch(server.add("/a.jpg", data, headers={"Content-Type": "image/jpeg"}))
    assert got.data == data
    assert got.content_type == "image/jpeg"


async def test_a_redirect_to_another_loopback_port_is_refused(
    server: ImageServer, allowed: ImageFetcher
) -> None:
    with image_server() as other:
        target = other.add("/secret.jpg", jpeg(64, 64))
        url = server.redirect("/r", target)
        with pytest.raises(Refused, match="loopback"):
            await allowed.fetch(url)
        assert other.hits == {}


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://10.0.0.1/admin",
        "http://[::ffff:127.0.0.1]:22/",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
async def test_redirects_to_internal_addresses_are_refused(
    server: ImageServer, allowed: ImageFetcher, location: str
) -> None:
    with pytest.raises(Refused):
        await allowed.fetch(server.redirect("/r", location))


async def test_redirects_within_the_allowed_server_are_followed(
    server: ImageServer, allowed: ImageFetcher
) -> None:
    data = jpeg(64, 64)
    server.add("/final.jpg", data)
    server.redirect("/one", "/two", 301)
    server.redirect("/two", server.url("/final.jpg"), 307)
    got = await allowed.fetch(server.url("/one"))
    assert got.data == data and got.redirects == 2


async def test_a_redirect_loop_stops(server: ImageServer, allowed: ImageFetcher) -> None:
    server.redirect("/loop", "/loop")
    with pytest.raises(FetchError) as caught:
        await allowed.fetch(server.url("/loop"))
    assert caught.value.code == "too_many_redirects"


async def test_size_limits_apply_declared_and_streamed(
    server: ImageServer, allowed: ImageFetcher
) -> None:
    big = b"\xff" * 300_000
    for url in (server.add("/big", big), server.add("/chunked", big, chunked=True)):
        with pytest.raises(FetchError) as caught:
            await allowed.fetch(url)
        assert caught.value.code == "too_large"


async def test_a_slow_server_times_out(server: ImageServer) -> None:
    url = server.add("/slow.jpg", b"x", delay_s=2.0)
    f = fetcher(allow=frozenset({server.host}), timeout_s=0.5)
    try:
        with pytest.raises(FetchError) as caught:
            await f.fetch(url)
        assert caught.value.code == "timeout"
    finally:
        await f.aclose()


async def test_one_deadline_covers_every_redirect_hop(server: ImageServer) -> None:
    data = jpeg(32, 32)
    f = fetcher(allow=frozenset({server.host}), timeout_s=1.0)
    try:
        # A quick redirect fits in the time allowed.
        server.add("/deadline/quick", status=302, headers={"Location": "/deadline/ok.jpg"})
        server.add("/deadline/ok.jpg", data, delay_s=0.2)
        got = await f.fetch(server.url("/deadline/quick"))
        assert got.data == data and got.redirects == 1
        # Each hop alone is well within the timeout; together they are not.
        for i in range(3):
            server.add(
                f"/deadline/{i}",
                status=302,
                headers={"Location": f"/deadline/{i + 1}"},
                delay_s=0.45,
            )
        server.add("/deadline/3", data, delay_s=0.45)
        with pytest.raises(FetchError) as caught:
            await f.fetch(server.url("/deadline/0"))
        assert caught.value.code == "timeout"
        assert "/deadline/3" not in server.hits  # the time ran out before the last hop
    finally:
        await f.aclose()


async def test_http_errors_are_reported(server: ImageServer, allowed: ImageFetcher) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        await allowed.fetch(server.url("/missing.jpg"))
