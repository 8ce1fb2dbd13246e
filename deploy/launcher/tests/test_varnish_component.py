"""The edge cache (Varnish + xkey, deploy/edge/portal.vcl) started for real on its own ports, in
front of two small origins that play publishing and the website and count what reaches them.

What the VCL promises: public responses are cached and purged by surrogate key (soft or hard),
private ones never are, ETag/304 passes through, stale copies cover an origin that fails or is
down, routing sends the public API to publishing and everything else to the website, and only
an allowed address with the token may purge.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from portal_launcher.components.varnish import VarnishComponent, purge_edge
from portal_launcher.credentials import edge_purge_token
from portal_launcher.settings import StackSettings

from .ports import VARNISH_OFFSET, component_port_base

pytestmark = pytest.mark.stack

PUBLIC = "public, max-age=60, s-maxage=300, stale-while-revalidate=600, stale-if-error=86400"


@dataclass
class Page:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class Origin:
    """An HTTP origin whose pages the test sets, counting requests per path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pages: dict[str, Page] = {}
        self.hits: Counter[str] = Counter()
        self.seen_headers: dict[str, dict[str, str]] = {}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/healthz":
                    self._answer(Page(b"ok"))
                    return
                origin.hits[self.path] += 1
                origin.seen_headers[self.path] = {k.lower(): v for k, v in self.headers.items()}
                page = origin.pages.get(path) or Page(b"not found", 404)
                self._answer(page)

            def _answer(self, page: Page) -> None:
                self.send_response(page.status)
                for key, value in page.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def public(self, path: str, body: str, keys: str = "", **headers: str) -> None:
        page_headers = {"Cache-Control": PUBLIC, "Content-Type": "application/json", **headers}
        if keys:
            page_headers["Surrogate-Key"] = keys
        self.pages[path] = Page(body.encode(), headers=page_headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Edge:
    settings: StackSettings
    varnish: VarnishComponent
    publishing: Origin
    website: Origin
    http: httpx.Client

    def get(self, path: str, **headers: str) -> httpx.Response:
        self.http.cookies.clear()  # each request is a reader of its own, without a cookie
        return self.http.get(f"{self.settings.edge_url}{path}", headers=headers)

    def purge(self, keys: str, *, hard: bool) -> int:
        count = purge_edge(self.settings, keys.split(), hard=hard)
        assert count is not None
        return count

    def wait_healthy(self) -> None:
        """Until the edge's probes have seen both origins up (a fresh edge starts sick)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.publishing.public("/v1/probe", "probe")
            if self.get("/v1/probe").status_code == 200:
                return
            time.sleep(0.5)
        raise AssertionError("the edge never reached the origin")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    publishing, website = Origin("publishing"), Origin("website")
    data = Path(tmp_path_factory.mktemp("edge"))
    settings = StackSettings(
        port_base=component_port_base(VARNISH_OFFSET),
        data_dir=data,
        publishing_port=publishing.port,
        edge_website=f"127.0.0.1:{website.port}",
        varnish_storage="malloc,32m",
    )
    varnish = VarnishComponent(settings)
    varnish.start()
    try:
        varnish.wait_ready(timeout_s=60)
        with httpx.Client(timeout=10.0) as http:
            ready = Edge(settings, varnish, publishing, website, http)
            ready.wait_healthy()
            yield ready
    finally:
        varnish.stop()
        publishing.close()
        website.close()


def test_public_pages_are_cached_and_their_keys_stay_inside(edge: Edge) -> None:
    edge.publishing.public("/v1/home", '{"v":1}', keys="home site article:a1")
    first = edge.get("/v1/home")
    assert first.status_code == 200 and first.json() == {"v": 1}
    assert first.headers["x-cache"] == "MISS"
    second = edge.get("/v1/home", Host="portal.example")  # any host name: one object
    assert second.headers["x-cache"] == "HIT"
    assert edge.publishing.hits["/v1/home"] == 1
    assert second.headers["cache-control"] == PUBLIC
    for header in ("surrogate-key", "xkey", "x-edge-swr", "via", "x-varnish"):
        assert header not in second.headers


def test_equal_queries_in_another_order_are_one_object(edge: Edge) -> None:
    edge.publishing.public("/v1/sections/a/articles", "[1]", keys="section:a")
    assert edge.get("/v1/sections/a/articles?limit=5&cursor=x").status_code == 200
    again = edge.get("/v1/sections/a/articles?cursor=x&limit=5")
    assert again.headers["x-cache"] == "HIT"


def test_a_hard_purge_removes_exactly_the_objects_with_the_key(edge: Edge) -> None:
    edge.publishing.public("/v1/articles/one", '"one v1"', keys="article:one site")
    edge.publishing.public("/v1/articles/two", '"two v1"', keys="article:two site")
    edge.publishing.public(
        "/v1/sections/s/articles", '["one", "two"]', keys="section:s article:one article:two"
    )
    for path in ("/v1/articles/one", "/v1/articles/two", "/v1/sections/s/articles"):
        edge.get(path)
        assert edge.get(path).headers["x-cache"] == "HIT"
    edge.publishing.public("/v1/articles/one", '"one v2"', keys="article:one site")

    assert edge.purge("article:one", hard=True) == 2  # the article and the list showing it

    assert edge.get("/v1/articles/one").json() == "one v2"
    assert edge.get("/v1/articles/two").headers["x-cache"] == "HIT"  # not touched
    assert edge.publishing.hits["/v1/sections/s/articles"] == 1
    assert edge.get("/v1/sections/s/articles").headers["x-cache"] == "MISS"
    assert edge.publishing.hits["/v1/sections/s/articles"] == 2


def test_a_soft_purge_serves_the_old_copy_once_while_fetching_the_new(edge: Edge) -> None:
    edge.publishing.public("/v1/articles/soft", '"v1"', keys="article:soft")
    edge.get("/v1/articles/soft")
    edge.publishing.public("/v1/articles/soft", '"v2"', keys="article:soft")
    assert edge.purge("article:soft", hard=False) == 1
    # Stale-while-revalidate: this reader gets the old copy at once, the edge fetches anew.
    assert edge.get("/v1/articles/soft").json() == "v1"
    deadline = time.monotonic() + 10
    while edge.get("/v1/articles/soft").json() != "v2":
        assert time.monotonic() < deadline, "the soft-purged page was never refreshed"
        time.sleep(0.05)


def test_purges_need_an_allowed_address_and_the_token(edge: Edge) -> None:
    url = f"{edge.settings.edge_url}/"
    token = edge_purge_token(edge.settings)
    anonymous = edge.http.request("PURGE", url, headers={"xkey": "home"})
    assert anonymous.status_code == 403
    wrong = edge.http.request(
        "PURGE", url, headers={"xkey": "home", "Authorization": "Bearer not-the-token"}
    )
    assert wrong.status_code == 403
    right = edge.http.request(
        "PURGE", url, headers={"xkey": "home", "Authorization": f"Bearer {token}"}
    )
    assert right.status_code == 200


def test_private_and_personalised_responses_are_never_cached(edge: Edge) -> None:
    edge.website.pages["/trang-thai/abc"] = Page(
        b"your submission", headers={"Cache-Control": "private, no-store"}
    )
    edge.website.pages["/gop-y"] = Page(
        b"<form>csrf</form>",
        headers={"Cache-Control": "private, no-store", "Set-Cookie": "csrf=t; HttpOnly"},
    )
    edge.website.pages["/no-policy"] = Page(b"no cache-control at all")
    edge.publishing.public("/v1/site", '{"site":1}', keys="site")
    # The positive first: the public page is shared between readers.
    edge.get("/v1/site")
    assert edge.get("/v1/site").headers["x-cache"] == "HIT"
    for path in ("/trang-thai/abc", "/gop-y", "/no-policy"):
        for _ in range(3):
            resp = edge.get(path)
            assert resp.status_code == 200 and resp.headers["x-cache"] != "HIT"
        assert edge.website.hits[path] == 3, path
    # A reader with a cookie or credentials never gets the shared copy, nor leaves one.
    before = edge.publishing.hits["/v1/site"]
    assert edge.get("/v1/site", Cookie="session=1").headers["x-cache"] == "PASS"
    assert edge.get("/v1/site", Authorization="Bearer x").headers["x-cache"] == "PASS"
    assert edge.publishing.hits["/v1/site"] == before + 2
    assert edge.publishing.seen_headers["/v1/site"]["authorization"] == "Bearer x"


def test_an_error_answer_does_not_make_a_page_uncacheable(edge: Edge) -> None:
    edge.publishing.pages["/v1/busy"] = Page(
        b'{"reason":"rate_limited"}', 429, {"Cache-Control": "no-store", "Retry-After": "1"}
    )
    assert edge.get("/v1/busy").status_code == 429
    edge.publishing.public("/v1/busy", '"fine"', keys="home")
    assert edge.get("/v1/busy").json() == "fine"
    assert edge.get("/v1/busy").headers["x-cache"] == "HIT"


def test_etags_and_304_pass_through(edge: Edge) -> None:
    edge.publishing.public("/v1/etag", '"body"', keys="home", ETag='"abc"')
    first = edge.get("/v1/etag")
    assert first.headers["etag"] == '"abc"'
    again = edge.get("/v1/etag", **{"If-None-Match": '"abc"'})
    assert again.status_code == 304 and again.content == b""
    assert edge.get("/v1/etag", **{"If-None-Match": '"old"'}).status_code == 200


def test_routes_split_between_publishing_and_the_website(edge: Edge) -> None:
    for path in (
        "/v1/x",
        "/rss/sections/a.xml",
        "/sitemap.xml",
        "/sitemaps/news.xml",
        "/media/a/b.webp",
    ):
        edge.publishing.public(path.split("?")[0], '"publishing"')
        edge.website.public(path.split("?")[0], '"website"')
    for path in ("/", "/bai-viet/x", "/chuyen-muc/a", "/sitemap.xml.bak"):
        edge.website.public(path, '"website"')
        edge.publishing.public(path, '"publishing"')
    for path in (
        "/v1/x",
        "/rss/sections/a.xml",
        "/sitemap.xml",
        "/sitemaps/news.xml",
        "/media/a/b.webp",
    ):
        assert edge.get(path).json() == "publishing", path
    for path in ("/", "/bai-viet/x", "/chuyen-muc/a", "/sitemap.xml.bak"):
        assert edge.get(path).json() == "website", path
    # Operators' endpoints of the origins are not public through the edge.
    for path in ("/admin/v1/site", "/metrics", "/healthz", "/readyz"):
        assert edge.get(path).status_code == 404, path


def test_the_origin_sees_the_reader_in_x_forwarded_for(edge: Edge) -> None:
    edge.publishing.pages["/v1/who"] = Page(b"?", headers={"Cache-Control": "no-store"})
    edge.get("/v1/who", **{"X-Forwarded-For": "198.51.100.7"})
    seen = edge.publishing.seen_headers["/v1/who"]["x-forwarded-for"]
    # The edge appends the address it saw: the origin trusts only that last hop.
    assert seen.split(",")[-1].strip() == "127.0.0.1"


def test_stale_copies_cover_a_failing_and_then_a_stopped_origin(edge: Edge) -> None:
    edge.publishing.public(
        "/v1/sections/stale/articles",
        '"cached"',
        keys="section:stale",
        **{"Cache-Control": "public, s-maxage=1, stale-while-revalidate=1, stale-if-error=600"},
    )
    assert edge.get("/v1/sections/stale/articles").json() == "cached"
    time.sleep(2.5)  # past s-maxage and stale-while-revalidate: the next reader needs the origin
    edge.publishing.pages["/v1/sections/stale/articles"] = Page(b"boom", 500)
    failing = edge.get("/v1/sections/stale/articles")
    assert failing.status_code == 200 and failing.json() == "cached"
    # Stale copies never outlive a hard purge, whatever stale-if-error says.
    edge.publishing.public("/v1/articles/gone", '"visible"', keys="article:gone")
    assert edge.get("/v1/articles/gone").json() == "visible"
    edge.purge("article:gone", hard=True)
    edge.publishing.pages["/v1/articles/gone"] = Page(b"boom", 500)
    assert edge.get("/v1/articles/gone").status_code == 500
    # Then the origin goes away altogether (the last test of the module: it stays down).
    edge.publishing.close()
    deadline = time.monotonic() + 5  # through the probes noticing it
    while time.monotonic() < deadline:
        resp = edge.get("/v1/sections/stale/articles")
        assert resp.status_code == 200 and resp.json() == "cached"
        time.sleep(0.1)
    assert edge.get("/v1/never-cached").status_code == 503
