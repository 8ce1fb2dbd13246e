"""Polite, safe HTTP fetching of feeds, sitemaps, pages and robots.txt.

* Address safety: every connection resolves the host first and refuses any internal address
  (addresses.py) at connect time, so every redirect hop and every DNS answer is checked and
  the checked address is the one connected to (no DNS rebinding between check and use).
* Limits: connect/read timeouts plus a total time per request (one budget for the whole chain
  of redirects, so a slow server cannot stretch it hop by hop), a size limit while reading
  (decompressed bytes count), a bounded number of redirects.
* Politeness: a clear User-Agent, robots.txt (urllib.robotparser, RFC 9309 rules for errors),
  a least delay between requests to one site (raised by Crawl-delay), conditional requests,
  retries with exponential backoff and jitter on transient failures only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from portal_ingest.pull.addresses import AddressPolicy, UrlRefused, check_url, default_port
from portal_ingest.pull.domain import ErrorKind, retryable_status
from portal_ingest.settings import Settings
from portal_runtime.logs import get_logger

log = get_logger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_CRAWL_DELAY_S = 60.0
MAX_RETRY_AFTER_S = 30.0


class FetchError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        url: str,
        http_status: int | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.url = url
        self.http_status = http_status
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class AddressRefused(Exception):
    """Raised at connect time: the host resolves to an address the policy refuses."""

    def __init__(self, host: str, address: str, port: int, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, a {reason}")
        self.host = host
        self.address = address
        self.port = port
        self.reason = reason


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class SafeNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never the name)."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            addresses = []
        try:
            if not addresses:
                async with asyncio.timeout(timeout):
                    addresses = await self.resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        # Every answer must be acceptable: a name with one internal address is refused whole.
        for address in addresses:
            reason = self.policy.refusal(ipaddress.ip_address(address.split("%")[0]), port)
            if reason is not None:
                raise AddressRefused(host, address, port, reason)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, path, 0, "unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class SafeTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses the safe network backend."""

    def __init__(self, backend: SafeNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx has no public way to pass a network backend; its pool is replaced here (the
        # live address tests fail if a new httpx stops using it).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


@dataclass(frozen=True)
class Response:
    url: str
    final_url: str
    status: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    body: bytes
    redirects: tuple[str, ...]
    elapsed_ms: int

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _Budget:
    """The time one fetch may spend on the network, shared by all its redirect hops."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self.spent_s = 0.0

    def left(self) -> float:
        return max(self.total_s - self.spent_s, 0.0)

    @contextlib.contextmanager
    def spending(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent_s += time.monotonic() - started


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or default_port(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass
class _Robots:
    expires: float
    parser: RobotFileParser | None  # None: every path allowed
    disallow_reason: str | None = None  # set: robots.txt unavailable, nothing allowed


class Fetcher:
    """One per service: a pooled client, robots.txt cache and per-site pacing."""

    def __init__(
        self,
        settings: Settings,
        policy: AddressPolicy | None = None,
        *,
        resolver: Resolver = resolve,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or AddressPolicy.from_targets(settings.feed_allowed_internal_targets)
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(
            transport=SafeTransport(
                SafeNetworkBackend(self.policy, resolver),
                httpx.Limits(
                    max_connections=max(settings.feed_max_concurrency * 2, 10),
                    max_keepalive_connections=settings.feed_max_concurrency,
                    keepalive_expiry=30.0,
                ),
            ),
            timeout=httpx.Timeout(
                connect=settings.feed_connect_timeout_s,
                read=settings.feed_read_timeout_s,
                write=settings.feed_read_timeout_s,
                pool=settings.feed_request_timeout_s,
            ),
            headers={"User-Agent": settings.feed_user_agent},
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would bypass the checks
        )
        self._robots: dict[str, _Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._gates: dict[str, asyncio.Lock] = {}
        self._last_request: dict[str, float] = {}
        self._crawl_delay: dict[str, float] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- public --------------------------------------------------------------------------------

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        accept: str,
        etag: str | None = None,
        last_modified: str | None = None,
        obey_robots: bool = True,
    ) -> Response:
        """GET ``url`` following redirects safely; retries transient failures with backoff.

        Raises ``FetchError`` with a kind and a message fit for the source's health.
        """
        attempt = 0
        while True:
            try:
                return await self._get_once(
                    url,
                    max_bytes=max_bytes,
                    accept=accept,
                    etag=etag,
                    last_modified=last_modified,
                    obey_robots=obey_robots,
                )
            except FetchError as exc:
                if not exc.retryable or attempt >= self.settings.feed_retries:
                    raise
                if exc.retry_after_s is not None and exc.retry_after_s > MAX_RETRY_AFTER_S:
                    raise
                base = self.settings.feed_retry_backoff_s * 2**attempt
                delay = max(exc.retry_after_s or 0.0, base * self.rng.uniform(0.5, 1.5))
                log.info(
                    "fetch_retry", url=url, attempt=attempt + 1, error=exc.message, delay_s=delay
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def robots_allows(self, url: str) -> tuple[bool, str | None]:
        """Whether robots.txt lets us fetch ``url`` (and why not)."""
        origin = origin_of(url)
        entry = await self._robots_for(origin)
        if entry.disallow_reason is not None:
            return False, entry.disallow_reason
        if entry.parser is None:
            return True, None
        if entry.parser.can_fetch(self.settings.feed_robots_agent, url):
            return True, None
        return False, f"robots.txt of {origin} disallows {urlsplit(url).path or '/'}"

    # -- one request ---------------------------------------------------------------------------

    async def _get_once(
        self,
        url: str,
        *,
        max_bytes: int,
        accept: str,
        etag: str | None,
        last_modified: str | None,
        obey_robots: bool,
    ) -> Response:
        current = url
        redirects: list[str] = []
        started = time.monotonic()
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        # Time spent waiting on the network, over every hop (pacing and robots.txt aside).
        budget = _Budget(self.settings.feed_request_timeout_s)
        for _hop in range(self.settings.feed_max_redirects + 1):
            where = f"redirect to {current}" if redirects else current
            status, resp_headers, body = await self._hop(
                current, where, headers, max_bytes, obey_robots, budget
            )
            if status in REDIRECT_STATUSES:
                location = resp_headers.get("location")
                if not location:
                    raise FetchError(
                        ErrorKind.HTTP_STATUS,
                        f"{where}: HTTP {status} without a Location",
                        url=current,
                        http_status=status,
                    )
                current = urljoin(current, location.strip())
                redirects.append(current)
                continue
            elapsed = int((time.monotonic() - started) * 1000)
            if status == 304:
                return Response(
                    url, current, status, None, etag, last_modified, b"", tuple(redirects), elapsed
                )
            if status >= 400 or status < 200:
                raise FetchError(
                    ErrorKind.HTTP_STATUS,
                    f"{where}: HTTP {status}",
                    url=current,
                    http_status=status,
                    retryable=retryable_status(status),
                    retry_after_s=_retry_after(resp_headers.get("retry-after")),
                )
            return Response(
                url,
                current,
                status,
                resp_headers.get("content-type"),
                resp_headers.get("etag"),
                resp_headers.get("last-modified"),
                body,
                tuple(redirects),
                elapsed,
            )
        raise FetchError(
            ErrorKind.REDIRECTS,
            f"{url}: more than {self.settings.feed_max_redirects} redirects",
            url=current,
        )

    async def _hop(
        self,
        url: str,
        where: str,
        headers: dict[str, str],
        max_bytes: int,
        obey_robots: bool,
        budget: _Budget,
    ) -> tuple[int, httpx.Headers, bytes]:
        """One request of a chain of redirects: the address checked, robots.txt asked, the
        site paced; every failure a ``FetchError`` naming ``where``."""
        try:
            check_url(url, self.policy)
        except UrlRefused as exc:
            raise FetchError(ErrorKind.ADDRESS_REFUSED, f"{where} refused: {exc}", url=url) from exc
        if obey_robots:
            allowed, why = await self.robots_allows(url)
            if not allowed:
                raise FetchError(ErrorKind.ROBOTS, why or "robots.txt disallows", url=url)
        await self._pace(url)
        try:
            with budget.spending():
                async with asyncio.timeout(budget.left()):
                    try:
                        return await self._request(url, headers, max_bytes)
                    finally:
                        self._answered(url)
        except AddressRefused as exc:
            raise FetchError(ErrorKind.ADDRESS_REFUSED, f"{where} refused: {exc}", url=url) from exc
        except TimeoutError as exc:
            message = (
                f"{where}: no complete answer within {budget.total_s:g} s (every redirect included)"
            )
            raise FetchError(ErrorKind.TIMEOUT, message, url=url, retryable=True) from exc
        except httpx.TimeoutException as exc:
            message = f"{where}: timed out ({type(exc).__name__})"
            raise FetchError(ErrorKind.TIMEOUT, message, url=url, retryable=True) from exc
        except httpx.TransportError as exc:
            message = f"{where}: {type(exc).__name__}: {exc}"[:500]
            raise FetchError(ErrorKind.CONNECTION, message, url=url, retryable=True) from exc

    async def _request(
        self, url: str, headers: dict[str, str], max_bytes: int
    ) -> tuple[int, httpx.Headers, bytes]:
        async with self.client.stream("GET", url, headers=headers) as resp:
            status = resp.status_code
            if status in REDIRECT_STATUSES or status == 304 or status >= 400:
                return status, resp.headers, b""
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    ErrorKind.TOO_LARGE,
                    f"{url}: {declared} bytes announced, the limit is {max_bytes}",
                    url=url,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():  # decompressed: a zip bomb counts in full
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        ErrorKind.TOO_LARGE, f"{url}: larger than {max_bytes} bytes", url=url
                    )
                chunks.append(chunk)
            return status, resp.headers, b"".join(chunks)

    # -- pacing and robots.txt -----------------------------------------------------------------

    async def _pace(self, url: str) -> None:
        """At most one request at a time per site, with the least delay between them."""
        origin = origin_of(url)
        delay = max(self.settings.host_min_delay_s, self._crawl_delay.get(origin, 0.0))
        if delay <= 0:
            return
        lock = self._gates.setdefault(origin, asyncio.Lock())
        async with lock:
            wait = self._last_request.get(origin, 0.0) + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request[origin] = time.monotonic()

    def _answered(self, url: str) -> None:
        """The delay counts from the end of the site's answer: a slow answer (or one slow to
        arrive) never brings the next request closer to it than the delay."""
        origin = origin_of(url)
        if origin in self._last_request:
            self._last_request[origin] = time.monotonic()

    async def _robots_for(self, origin: str) -> _Robots:
        entry = self._robots.get(origin)
        if entry is not None and entry.expires > time.monotonic():
            return entry
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            entry = self._robots.get(origin)
            if entry is not None and entry.expires > time.monotonic():
                return entry
            entry = await self._load_robots(origin)
            self._robots[origin] = entry
            return entry

    async def _load_robots(self, origin: str) -> _Robots:
        ttl = float(self.settings.robots_cache_s)
        url = f"{origin}/robots.txt"
        try:
            resp = await self._get_once(
                url,
                max_bytes=self.settings.robots_max_bytes,
                accept="text/plain",
                etag=None,
                last_modified=None,
                obey_robots=False,
            )
        except FetchError as exc:
            status = exc.http_status
            if exc.kind is ErrorKind.HTTP_STATUS and status is not None and 400 <= status < 500:
                return _Robots(time.monotonic() + ttl, None)  # RFC 9309: no rules
            if exc.kind is ErrorKind.TOO_LARGE:
                return _Robots(time.monotonic() + ttl, None)
            # Unreachable or 5xx: assume complete disallow for a while (RFC 9309 2.3.1.4).
            return _Robots(
                time.monotonic() + min(ttl, 300.0),
                None,
                f"robots.txt of {origin} unavailable ({exc.message}); nothing fetched",
            )
        parser = RobotFileParser(url)
        parser.parse(resp.body.decode("utf-8", errors="replace").splitlines())
        delay = parser.crawl_delay(self.settings.feed_robots_agent)
        if delay is not None:
            self._crawl_delay[origin] = min(float(delay), MAX_CRAWL_DELAY_S)
        else:
            self._crawl_delay.pop(origin, None)
        return _Robots(time.monotonic() + ttl, parser)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
