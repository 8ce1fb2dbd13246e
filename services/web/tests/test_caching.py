"""Caching headers: public pages for the edge, private ones never stored."""

from __future__ import annotations

import gzip

from starlette.requests import Request

from portal_web.caching import CachePolicy, accepts_gzip, page_response, surrogate_keys

POLICY = CachePolicy(60, 600, 60, 86400)


def request(headers: dict[str, str] | None = None, method: str = "GET") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request(
        {"type": "http", "method": method, "path": "/", "headers": raw, "query_string": b""}
    )


def test_a_public_page_has_cache_control_keys_and_an_etag_with_304() -> None:
    html = "<p>" + "Đảng Cộng sản Việt Nam " * 100 + "</p>"
    first = page_response(request(), html, policy=POLICY, keys=["home", "site", "home", "bad key"])
    assert first.status_code == 200
    assert first.headers["cache-control"] == (
        "public, max-age=60, s-maxage=600, stale-while-revalidate=60, stale-if-error=86400"
    )
    assert first.headers["surrogate-key"] == "home site"
    etag = first.headers["etag"]
    again = page_response(request({"If-None-Match": etag}), html, policy=POLICY, keys=["home"])
    assert again.status_code == 304 and again.body == b""
    changed = page_response(request({"If-None-Match": etag}), html + ".", policy=POLICY)
    assert changed.status_code == 200


def test_gzip_has_its_own_etag_and_varies_on_accept_encoding() -> None:
    html = "x" * 5000
    plain = page_response(request(), html, policy=POLICY)
    zipped = page_response(request({"Accept-Encoding": "gzip, br"}), html, policy=POLICY)
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body).decode() == html
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert accepts_gzip("gzip;q=0.5") and not accepts_gzip("gzip;q=0") and not accepts_gzip("br")


def test_private_pages_and_requests_with_a_cookie_are_never_stored_nor_compressed() -> None:
    html = "y" * 5000
    private = page_response(request({"Accept-Encoding": "gzip"}), html, policy=None, keys=["x"])
    assert private.headers["cache-control"] == "private, no-store"
    assert "etag" not in private.headers and "surrogate-key" not in private.headers
    assert "content-encoding" not in private.headers  # a token beside typed text: no BREACH
    cookie = page_response(request({"Cookie": "a=1"}), html, policy=POLICY, keys=["home"])
    assert cookie.headers["cache-control"] == "private, no-store"


def test_an_error_page_has_no_etag() -> None:
    gone = page_response(request(), "<p>gỡ</p>", policy=POLICY, status=410)
    assert gone.status_code == 410 and "etag" not in gone.headers
    assert surrogate_keys(["a", "", "b c", "a"]) == "a"
