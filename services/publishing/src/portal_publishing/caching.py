"""HTTP validators and caching: strong ETags, Last-Modified, conditional GETs (RFC 9110/9111).

Every public representation is rendered to bytes first; its ETag is a hash of exactly those
bytes, so two equal representations share a validator and any change produces a new one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

JSON = "application/json"
RSS = "application/rss+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"."""
    if if_none_match.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in if_none_match.split(",") if tag.strip())


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified_since(if_modified_since: str, last_modified: datetime) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False  # an unparsable date is ignored, as the RFC says
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since


def is_not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime | None,
) -> bool:
    # If-None-Match wins: If-Modified-Since is only looked at without it.
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since is not None and last_modified is not None:
        return not_modified_since(if_modified_since, last_modified)
    return False


def cache_control(max_age: int, stale_while_revalidate: int) -> str:
    return f"public, max-age={max_age}, stale-while-revalidate={stale_while_revalidate}"


def cached(
    request: Request,
    body: bytes,
    *,
    media_type: str,
    cache: str,
    last_modified: datetime | None,
    status_code: int = 200,
    etag: str | None = None,
) -> Response:
    """The response for ``body`` with its validators; 304 when the client's copy is current.

    ``etag``: the body's ``strong_etag`` when the caller already has it (a cached page).
    """
    etag = etag or strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": cache}
    if last_modified is not None:
        headers["Last-Modified"] = http_date(last_modified)
    if status_code == 200 and is_not_modified(
        request.headers.get("if-none-match"),
        request.headers.get("if-modified-since"),
        etag,
        last_modified,
    ):
        return Response(status_code=304, headers=headers)
    return Response(content=body, status_code=status_code, media_type=media_type, headers=headers)
