"""Unit tests of HTTP caching: validators, If-None-Match/If-Modified-Since, stored responses and
the front lane that answers from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from portal_runtime.httpcache import (
    ServeStored,
    StoredResponse,
    etag_matches,
    http_date,
    is_not_modified,
    public_cache_control,
    request_target,
    strong_etag,
)

MOMENT = datetime(2026, 1, 5, 3, 0, 0, 500_000, tzinfo=UTC)
CACHE = "public, max-age=60"


def test_etag_is_strong_and_depends_on_every_byte() -> None:
    tag = strong_etag(b'{"a":1}')
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert tag == strong_etag(b'{"a":1}')
    assert tag != strong_etag(b'{"a":2}')


def test_if_none_match_lists_star_and_weak_forms() -> None:
    tag = strong_etag(b"x")
    assert etag_matches(tag, tag)
    assert etag_matches(f'"other", {tag}', tag)
    assert etag_matches(f"W/{tag}", tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"other"', tag)


def test_if_modified_since_compares_whole_seconds() -> None:
    assert is_not_modified(None, http_date(MOMENT), '"x"', MOMENT)
    assert not is_not_modified(None, "Mon, 05 Jan 2026 02:59:59 GMT", '"x"', MOMENT)
    assert not is_not_modified(None, "not a date", '"x"', MOMENT)


def test_if_none_match_wins_over_if_modified_since() -> None:
    assert not is_not_modified('"other"', http_date(MOMENT), '"x"', MOMENT)


def test_public_cache_control_names_browsers_edge_and_stale_windows() -> None:
    value = public_cache_control(
        max_age=60, shared_max_age=300, stale_while_revalidate=600, stale_if_error=86400
    )
    assert value == (
        "public, max-age=60, s-maxage=300, stale-while-revalidate=600, stale-if-error=86400"
    )


def served(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


def routed_app(calls: list[str]) -> Starlette:
    async def page(request: Any) -> PlainTextResponse:
        calls.append(request.url.path)
        return PlainTextResponse("routed")

    return Starlette(routes=[Route("/{p:path}", page, methods=["GET", "POST"])])


async def test_a_stored_response_goes_out_with_its_validators_and_answers_304() -> None:
    stored = StoredResponse.build(
        b'{"a":1}',
        media_type="application/json",
        cache_control=CACHE,
        last_modified=MOMENT,
        surrogate_keys=["home", "article:1", "home", "bad key"],
    )
    calls: list[str] = []
    app = ServeStored(routed_app(calls), {"/v1/home?": stored}.get)
    async with served(app) as client:
        first = await client.get("/v1/home")
        assert first.status_code == 200 and first.content == b'{"a":1}'
        assert first.headers["etag"] == strong_etag(b'{"a":1}')
        assert first.headers["cache-control"] == CACHE
        assert first.headers["last-modified"] == "Mon, 05 Jan 2026 03:00:00 GMT"
        assert first.headers["content-type"] == "application/json"
        # Distinct keys, never one with a separator in it.
        assert first.headers["surrogate-key"] == "home article:1"
        again = await client.get("/v1/home", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == CACHE
        since = await client.get(
            "/v1/home", headers={"If-Modified-Since": first.headers["last-modified"]}
        )
        assert since.status_code == 304
        other = await client.get("/v1/home", headers={"If-None-Match": '"other"'})
        assert other.status_code == 200
    assert calls == []  # every answer came from the stored response


async def test_only_gets_of_a_stored_target_skip_the_app() -> None:
    stored = StoredResponse.build(b"kept", media_type="text/plain", cache_control=CACHE)
    calls: list[str] = []
    app = ServeStored(routed_app(calls), {"/a?x=1": stored}.get)
    async with served(app) as client:
        assert (await client.get("/a", params={"x": "1"})).content == b"kept"
        assert (await client.get("/a", params={"x": "2"})).content == b"routed"
        assert (await client.get("/a")).content == b"routed"
        assert (await client.post("/a", params={"x": "1"})).content == b"routed"
    assert calls == ["/a", "/a", "/a"]


async def test_error_statuses_are_never_turned_into_304() -> None:
    body = b'{"detail":"gone"}'
    gone = StoredResponse.build(
        body, media_type="application/json", cache_control=CACHE, status=410
    )
    async with served(ServeStored(routed_app([]), {"/x?": gone}.get)) as client:
        resp = await client.get("/x", headers={"If-None-Match": strong_etag(body)})
    assert resp.status_code == 410 and resp.content == body


def test_the_request_target_is_the_path_and_the_raw_query() -> None:
    scope = {"type": "http", "path": "/v1/sections/a/articles", "query_string": b"limit=5"}
    assert request_target(scope) == "/v1/sections/a/articles?limit=5"
    assert request_target({"type": "http", "path": "/v1/home"}) == "/v1/home?"
