"""The fetcher against local HTTP servers (loopback only): address safety after redirects,
conditional requests, limits, retries, robots.txt. Private ranges are checked through a fake
resolver: the address check refuses them before any packet is sent."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from portal_ingest.pull.domain import ErrorKind
from portal_ingest.pull.fetch import Fetcher, FetchError
from portal_ingest.settings import Settings

from .feed_server import FeedServer


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    s = FeedServer().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def outside() -> Iterator[FeedServer]:
    """A loopback server the fetcher is NOT allowed to reach."""
    s = FeedServer().start()
    yield s
    s.stop()


def _settings(server: FeedServer, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "feed_allowed_internal_targets": [server.target],
        "host_min_delay_s": 0,
        "feed_retries": 1,
        "feed_retry_backoff_s": 0.05,
        "feed_request_timeout_s": 1.0,
        "feed_read_timeout_s": 1.0,
        "robots_cache_s": 0,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
async def fetcher(server: FeedServer) -> AsyncIterator[Fetcher]:
    f = Fetcher(_settings(server))
    yield f
    await f.aclose()


def _uid(request: pytest.FixtureRequest) -> str:
    return "/" + request.node.name.replace("[", "-").replace("]", "")


async def _get(fetcher: Fetcher, url: str, **kw: Any) -> Any:
    return await fetcher.get(url, max_bytes=kw.pop("max_bytes", 1 << 20), accept="*/*", **kw)


async def test_fetches_with_a_clear_user_agent(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    url = server.route(_uid(request), body=b"<rss/>", content_type="application/rss+xml")
    resp = await _get(fetcher, url)
    assert resp.status == 200 and resp.body == b"<rss/>"
    assert resp.content_type == "application/rss+xml"
    [hit] = server.hits(_uid(request))
    assert hit.headers["user-agent"].startswith("CongTTDT-Ingest/")


async def test_redirect_to_a_loopback_address_outside_the_allow_list_is_refused(
    fetcher: Fetcher, server: FeedServer, outside: FeedServer, request: pytest.FixtureRequest
) -> None:
    target = outside.route(_uid(request), body=b"secret")
    url = server.route(_uid(request), status=302, location=target)
    with pytest.raises(FetchError) as err:
        await _get(fetcher, url)
    assert err.value.kind is ErrorKind.ADDRESS_REFUSED
    assert "redirect to" in err.value.message and "loopback" in err.value.message
    assert outside.hits(_uid(request)) == []  # not a packet reached it


async def test_redirect_through_a_host_name_to_loopback_is_refused_at_connect(
    server: FeedServer, outside: FeedServer, request: pytest.FixtureRequest
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "feeds.partner.example" else []

    fetcher = Fetcher(_settings(server), resolver=resolver)
    try:
        target = f"http://feeds.partner.example:{outside.port}{_uid(request)}"
        url = server.route(_uid(request), status=301, location=target)
        with pytest.raises(FetchError) as err:
            await _get(fetcher, url, obey_robots=False)
        assert err.value.kind is ErrorKind.ADDRESS_REFUSED
        assert "resolves to 127.0.0.1" in err.value.message
        assert outside.hits(_uid(request)) == []
    finally:
        await fetcher.aclose()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.20.30.40", "private"),
        ("192.168.0.10", "private"),
        ("172.20.0.2", "private"),
        ("169.254.169.254", "metadata"),
        ("fe80::1", "link-local"),
        ("100.64.1.1", "shared"),
    ],
)
async def test_names_resolving_to_internal_ranges_are_refused_without_a_packet(
    server: FeedServer, address: str, reason: str
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    fetcher = Fetcher(_settings(server), resolver=resolver)
    try:
        with pytest.raises(FetchError) as err:
            await _get(fetcher, "http://intranet.partner.example/rss", obey_robots=False)
        assert err.value.kind is ErrorKind.ADDRESS_REFUSED and reason in err.value.message
    finally:
        await fetcher.aclose()


async def test_a_name_with_one_internal_address_among_public_ones_is_refused(
    server: FeedServer,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["203.113.131.1", "10.0.0.1"]

    fetcher = Fetcher(_settings(server), resolver=resolver)
    try:
        with pytest.raises(FetchError, match="private"):
            await _get(fetcher, "http://mixed.partner.example/rss", obey_robots=False)
    finally:
        await fetcher.aclose()


async def test_conditional_request_with_etag(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    url = server.route(
        _uid(request),
        body=b"<rss>1</rss>",
        etag='"v1"',
        last_modified="Tue, 10 Jun 2025 01:00:00 GMT",
    )
    first = await _get(fetcher, url)
    assert first.etag == '"v1"' and first.last_modified
    second = await _get(fetcher, url, etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body == b""
    hits = server.hits(_uid(request))
    assert hits[1].headers["if-none-match"] == '"v1"'
    assert hits[1].headers["if-modified-since"] == "Tue, 10 Jun 2025 01:00:00 GMT"


async def test_size_limit_announced_and_streamed(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    url = server.route(_uid(request), body=b"x" * 5000)
    with pytest.raises(FetchError) as err:
        await _get(fetcher, url, max_bytes=1000)
    assert err.value.kind is ErrorKind.TOO_LARGE


async def test_compression_bomb_counts_decompressed_bytes(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    bomb = gzip.compress(b"\0" * 2_000_000)
    url = server.route(_uid(request), body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as err:
        await _get(fetcher, url, max_bytes=100_000)
    assert err.value.kind is ErrorKind.TOO_LARGE


async def test_timeout_is_retried_then_reported(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    url = server.route(_uid(request), body=b"late", delay_s=2.5)
    with pytest.raises(FetchError) as err:
        await _get(fetcher, url)
    assert err.value.kind is ErrorKind.TIMEOUT
    assert len(server.hits(_uid(request))) == 2  # one retry


async def test_one_deadline_covers_every_redirect_hop(
    server: FeedServer, request: pytest.FixtureRequest
) -> None:
    base = _uid(request)
    fetcher = Fetcher(_settings(server, feed_retries=0, feed_request_timeout_s=1.0))
    try:
        # Two quick hops fit in the budget.
        server.route(f"{base}-quick-0", status=302, location=server.url(f"{base}-quick-1"))
        server.route(f"{base}-quick-1", body=b"ok", delay_s=0.2)
        done = await _get(fetcher, server.url(f"{base}-quick-0"))
        assert done.body == b"ok" and len(done.redirects) == 1
        # Each hop alone is well within the timeout; together they are not.
        for i in range(3):
            server.route(
                f"{base}-{i}", status=302, location=server.url(f"{base}-{i + 1}"), delay_s=0.45
            )
        server.route(f"{base}-3", body=b"late", delay_s=0.45)
        with pytest.raises(FetchError) as err:
            await _get(fetcher, server.url(f"{base}-0"))
        assert err.value.kind is ErrorKind.TIMEOUT
        assert "every redirect included" in err.value.message
        assert not server.hits(f"{base}-3")  # the budget ran out before the last hop
    finally:
        await fetcher.aclose()


async def test_server_error_is_retried_client_error_is_not(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    five = server.route(_uid(request) + "-500", status=500, body=b"oops")
    four = server.route(_uid(request) + "-404", status=404, body=b"gone")
    with pytest.raises(FetchError) as err:
        await _get(fetcher, five)
    assert err.value.http_status == 500 and "HTTP 500" in err.value.message
    with pytest.raises(FetchError) as err:
        await _get(fetcher, four)
    assert err.value.http_status == 404
    assert len(server.hits(_uid(request) + "-500")) == 2
    assert len(server.hits(_uid(request) + "-404")) == 1


async def test_too_many_redirects(
    fetcher: Fetcher, server: FeedServer, request: pytest.FixtureRequest
) -> None:
    base = _uid(request)
    for i in range(8):
        server.route(f"{base}-{i}", status=302, location=server.url(f"{base}-{i + 1}"))
    with pytest.raises(FetchError) as err:
        await _get(fetcher, server.url(f"{base}-0"))
    assert err.value.kind is ErrorKind.REDIRECTS


async def test_robots_txt_is_respected_with_our_agent() -> None:
    s = FeedServer().start()
    try:
        s.route(
            "/robots.txt",
            content_type="text/plain",
            body=b"User-agent: CongTTDT-Ingest\nDisallow: /private/\n\nUser-agent: *\nDisallow: /",
        )
        s.route("/rss", body=b"<rss/>")
        s.route("/private/rss", body=b"<rss/>")
        fetcher = Fetcher(_settings(s))
        try:
            assert (await _get(fetcher, s.url("/rss"))).status == 200
            with pytest.raises(FetchError) as err:
                await _get(fetcher, s.url("/private/rss"))
            assert err.value.kind is ErrorKind.ROBOTS and "/private/rss" in err.value.message
            assert s.hits("/private/rss") == []
        finally:
            await fetcher.aclose()
    finally:
        s.stop()


async def test_robots_txt_server_error_means_nothing_is_fetched() -> None:
    s = FeedServer().start()
    try:
        s.route("/robots.txt", status=503, content_type="text/plain", body=b"busy")
        s.route("/rss", body=b"<rss/>")
        fetcher = Fetcher(_settings(s, feed_retries=0))
        try:
            with pytest.raises(FetchError) as err:
                await _get(fetcher, s.url("/rss"))
            assert err.value.kind is ErrorKind.ROBOTS and "unavailable" in err.value.message
            assert s.hits("/rss") == []
        finally:
            await fetcher.aclose()
    finally:
        s.stop()


async def test_crawl_delay_paces_requests_to_one_site() -> None:
    s = FeedServer().start()
    try:
        s.route("/robots.txt", content_type="text/plain", body=b"User-agent: *\nCrawl-delay: 1\n")
        s.route("/a", body=b"a")
        fetcher = Fetcher(_settings(s, robots_cache_s=60))
        try:
            for _ in range(3):
                await _get(fetcher, s.url("/a"))
            times = [h.at for h in s.hits("/a")]
            assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9
        finally:
            await fetcher.aclose()
    finally:
        s.stop()
