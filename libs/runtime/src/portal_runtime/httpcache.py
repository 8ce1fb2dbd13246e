"""HTTP caching of public representations: validators, conditional GETs (RFC 9110/9111), and
responses kept ready to send.

A public representation is rendered to bytes once; its ETag is a hash of exactly those bytes,
so two equal representations share a validator and any change produces a new one. A
``StoredResponse`` holds the bytes with every header already encoded; sending it is a couple of
ASGI messages, or a 304 when the client's copy is current.

``ServeStored`` is the fast lane of a service's HTTP front: a GET whose request target (path and
query) has a stored response is answered before routing, dependency injection, validation and
the per-request telemetry, which together cost far more than the answer itself. A cache hit is
counted (``portal.http.stored_responses``) but makes no span; misses go through the app as
every other request does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from opentelemetry.metrics import CallbackOptions, Observation
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from portal_runtime import surrogate
from portal_runtime.metrics import meter

# Counted in a plain integer and reported at collection time: a counter's add() per request
# would be a measurable share of a cache hit's cost.
_stored_served = 0


def _observe_stored_served(_: CallbackOptions) -> Iterable[Observation]:
    return [Observation(_stored_served)]


meter.create_observable_counter(
    "portal.http.stored_responses",
    callbacks=[_observe_stored_served],
    unit="{response}",
    description="GET requests answered from a service's stored responses before routing "
    "(a cache hit: no span, not in http.server.request.duration).",
)


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


def public_cache_control(
    *, max_age: int, shared_max_age: int, stale_while_revalidate: int, stale_if_error: int
) -> str:
    """Cache-Control of a public representation: browsers keep it ``max_age`` seconds, shared
    caches (the edge, purged when it changes) ``shared_max_age``; a stale copy may be served
    while a fresh one is fetched, or while the origin fails."""
    return (
        f"public, max-age={max_age}, s-maxage={shared_max_age}, "
        f"stale-while-revalidate={stale_while_revalidate}, stale-if-error={stale_if_error}"
    )


def request_target(scope: Scope) -> str:
    """What a stored response is kept under: the path and the raw query (the representation
    depends on nothing else)."""
    path: str = scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}"


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    etag: str
    last_modified: datetime | None
    headers: tuple[tuple[bytes, bytes], ...]  # of the full response
    not_modified_headers: tuple[tuple[bytes, bytes], ...]  # of a 304 (validators and caching)

    @classmethod
    def build(
        cls,
        body: bytes,
        *,
        media_type: str,
        cache_control: str | None,
        status: int = 200,
        last_modified: datetime | None = None,
        surrogate_keys: Iterable[str] = (),
        etag: str | None = None,
    ) -> StoredResponse:
        etag = etag or strong_etag(body)
        validators: list[tuple[bytes, bytes]] = [(b"etag", etag.encode("latin-1"))]
        if cache_control is not None:
            validators.append((b"cache-control", cache_control.encode("latin-1")))
        if last_modified is not None:
            validators.append((b"last-modified", http_date(last_modified).encode("latin-1")))
        keys = surrogate.header_value(surrogate_keys)
        if keys:
            validators.append((surrogate.HEADER.lower().encode(), keys.encode("latin-1")))
        full = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            *validators,
        ]
        return cls(status, body, etag, last_modified, tuple(full), tuple(validators))

    def header(self, name: str) -> str | None:
        return _header(self.headers, name.lower().encode())

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 128

    def not_modified_for(self, request_headers: Sequence[tuple[bytes, bytes]]) -> bool:
        if self.status != 200:
            return False
        return is_not_modified(
            _header(request_headers, b"if-none-match"),
            _header(request_headers, b"if-modified-since"),
            self.etag,
            self.last_modified,
        )

    async def send(self, scope: Scope, send: Send) -> None:
        if self.not_modified_for(scope.get("headers") or ()):
            await send(
                {"type": "http.response.start", "status": 304, "headers": self.not_modified_headers}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body})


class StoredResponseAnswer(Response):
    """A route's answer from a ``StoredResponse`` (the same bytes the fast lane sends)."""

    def __init__(self, stored: StoredResponse) -> None:
        self.stored = stored
        self.status_code = stored.status
        self.body = stored.body
        self.background = None
        self.raw_headers = list(stored.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stored.send(scope, send)


Lookup = Callable[[str], StoredResponse | None]


class ServeStored:
    """ASGI: answer a GET from ``lookup(request target)`` when it has a response, else the app."""

    def __init__(self, app: ASGIApp, lookup: Lookup) -> None:
        self.app = app
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            stored = self.lookup(request_target(scope))
            if stored is not None:
                global _stored_served
                _stored_served += 1
                await stored.send(scope, send)
                return
        await self.app(scope, receive, send)
