"""HTTP caching of the website's pages, for browsers and the edge cache in front.

* A public page: ``Cache-Control: public, max-age, s-maxage, stale-while-revalidate,
  stale-if-error``, a strong ETag with 304 to a matching ``If-None-Match``, and
  ``Surrogate-Key`` naming what it shows (the edge purges by these keys and strips the header).
* Anything private is ``private, no-store``: pages carrying a CSRF token, status links, and any
  request with a cookie. Private pages are not compressed: they put a secret (the CSRF token)
  next to text the reader typed, which compression would leak (BREACH).
* Bodies over 1 KiB are gzipped for clients that accept it; each encoding has its own ETag
  (strong validators of different representations differ), with ``Vary: Accept-Encoding``.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

PRIVATE = "private, no-store"
HTML = "text/html; charset=utf-8"
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class CachePolicy:
    max_age: int
    s_maxage: int
    stale_while_revalidate: int
    stale_if_error: int

    def header(self) -> str:
        return (
            f"public, max-age={self.max_age}, s-maxage={self.s_maxage}, "
            f"stale-while-revalidate={self.stale_while_revalidate}, "
            f"stale-if-error={self.stale_if_error}"
        )


def surrogate_keys(keys: Iterable[str]) -> str:
    """Space-separated, each once, in the order given (keys never contain spaces)."""
    return " ".join(dict.fromkeys(k for k in keys if k and " " not in k))


def strong_etag(body: bytes, encoding: str = "") -> str:
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return f'"{digest}{"-" + encoding if encoding else ""}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return etag in candidates


def accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() not in ("gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def is_private_request(request: Request) -> bool:
    return bool(request.headers.get("cookie"))


@dataclass(frozen=True)
class Representation:
    """A body ready to send: identity and (when worth it) gzip, each with its ETag."""

    body: bytes
    etag: str
    gz_body: bytes | None
    gz_etag: str | None

    @classmethod
    def of(cls, body: bytes, *, compress: bool = True) -> Representation:
        gz = None
        if compress and len(body) >= GZIP_MIN_BYTES:
            gz = gzip.compress(body, compresslevel=4, mtime=0)
        return cls(body, strong_etag(body), gz, strong_etag(body, "gzip") if gz else None)

    def respond(
        self,
        request: Request,
        *,
        media_type: str,
        status: int = 200,
        cache_control: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        out = dict(headers or {})
        out["Cache-Control"] = cache_control
        body, etag = self.body, self.etag
        if self.gz_body is not None:
            out["Vary"] = "Accept-Encoding"
            if accepts_gzip(request.headers.get("accept-encoding")):
                body, etag = self.gz_body, self.gz_etag or etag
                out["Content-Encoding"] = "gzip"
        if status == 200 and cache_control != PRIVATE:
            out["ETag"] = etag
            if request.method in ("GET", "HEAD") and etag_matches(
                request.headers.get("if-none-match"), etag
            ):
                out.pop("Content-Encoding", None)
                return Response(status_code=304, headers=out)
        return Response(body, status_code=status, media_type=media_type, headers=out)


def page_response(
    request: Request,
    html: str,
    *,
    policy: CachePolicy | None,
    keys: Iterable[str] = (),
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A rendered page: public and cacheable under ``policy``, or private (``policy`` None, or
    the request carries a cookie)."""
    out = dict(headers or {})
    private = policy is None or is_private_request(request)
    if not private:
        assert policy is not None
        key_header = surrogate_keys(keys)
        if key_header:
            out["Surrogate-Key"] = key_header
    cache_control = PRIVATE if private else policy.header()  # type: ignore[union-attr]
    return Representation.of(html.encode(), compress=not private).respond(
        request, media_type=HTML, status=status, cache_control=cache_control, headers=out
    )
