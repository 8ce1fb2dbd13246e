"""Unit tests of the HTTP validators: ETag, If-None-Match, If-Modified-Since."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from portal_publishing.caching import (
    cached,
    etag_matches,
    http_date,
    is_not_modified,
    strong_etag,
)

MOMENT = datetime(2026, 1, 5, 3, 0, 0, 500_000, tzinfo=UTC)


def request(**headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


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


def test_cached_response_sets_validators_and_answers_304() -> None:
    body = b'{"a":1}'
    first = cached(
        request(),
        body,
        media_type="application/json",
        cache="public, max-age=60",
        last_modified=MOMENT,
    )
    assert first.status_code == 200
    assert first.body == body
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["last-modified"] == "Mon, 05 Jan 2026 03:00:00 GMT"
    again = cached(
        request(if_none_match=first.headers["etag"]),
        body,
        media_type="application/json",
        cache="public, max-age=60",
        last_modified=MOMENT,
    )
    assert again.status_code == 304
    assert again.body == b""
    assert again.headers["etag"] == first.headers["etag"]
    changed = cached(
        request(if_none_match=first.headers["etag"]),
        b'{"a":2}',
        media_type="application/json",
        cache="public, max-age=60",
        last_modified=MOMENT,
    )
    assert changed.status_code == 200


def test_error_statuses_are_never_turned_into_304() -> None:
    body = b'{"detail":"gone"}'
    tag = strong_etag(body)
    gone = cached(
        request(if_none_match=tag),
        body,
        media_type="application/json",
        cache="public",
        last_modified=None,
        status_code=410,
    )
    assert gone.status_code == 410
