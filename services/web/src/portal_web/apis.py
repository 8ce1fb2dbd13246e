"""The website's only outgoing calls: the public APIs of publishing, search and engagement.

Every request goes to one of the configured base URLs plus a path built here, with each
dynamic segment percent-encoded, so nothing a reader types can point a request elsewhere. The
reader's address travels in ``X-Forwarded-For`` (the APIs' rate limits count readers, not the
website). API answers become typed exceptions the pages turn into Vietnamese messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from portal_runtime.logs import get_logger
from portal_runtime.memo import Memo

log = get_logger(__name__)

Params = Mapping[str, str | int | list[str] | None]


def seg(value: str) -> str:
    """One path segment, percent-encoded ('/', '?', '#' and '..' cannot escape it)."""
    return quote(value, safe="")


class ApiError(Exception):
    def __init__(self, api: str, status: int, detail: Any = None) -> None:
        super().__init__(f"{api}: {status} {str(detail)[:200]}")
        self.api = api
        self.status = status
        self.detail = detail


class NotFound(ApiError):
    """404: what the page is about does not exist (or is not public)."""


class BadRequest(ApiError):
    """400: e.g. a pagination cursor that was altered or belongs to another list."""


class Gone(ApiError):
    """410: a retracted article; ``detail`` is the API's body."""


class Refused(ApiError):
    """422: the submission is invalid; ``detail`` lists the fields and reasons."""


class Closed(ApiError):
    """409: the dialogue ended, the feedback deadline passed."""


class RateLimited(ApiError):
    def __init__(self, api: str, retry_after_s: int, detail: Any = None) -> None:
        super().__init__(api, 429, detail)
        self.retry_after_s = retry_after_s


class Unavailable(ApiError):
    """The API did not answer, or answered with an error that is not the reader's."""


def _retry_after(resp: httpx.Response) -> int:
    try:
        return max(1, int(resp.headers.get("retry-after", "60")))
    except ValueError:
        return 60


def _detail(resp: httpx.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    return body.get("detail", body) if isinstance(body, dict) else body


class Api:
    """One public API: JSON over a pooled HTTP client, errors as exceptions."""

    def __init__(self, name: str, base_url: str, *, timeout_s: float) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self.http.aclose()

    @staticmethod
    def _headers(client_ip: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if client_ip:
            headers["X-Forwarded-For"] = client_ip
        if extra:
            headers.update(extra)
        return headers

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.http.send(request)
        except httpx.HTTPError as exc:
            log.warning("api_unreachable", api=self.name, path=request.url.path, error=repr(exc))
            raise Unavailable(self.name, 0, repr(exc)) from exc

    def _raise_for(self, resp: httpx.Response) -> None:
        status = resp.status_code
        if status < 300:
            return
        detail = _detail(resp)
        if status == 400:
            raise BadRequest(self.name, status, detail)
        if status == 404:
            raise NotFound(self.name, status, detail)
        if status == 410:
            raise Gone(self.name, status, resp.json() if resp.content else None)
        if status == 409:
            raise Closed(self.name, status, detail)
        if status == 422:
            raise Refused(self.name, status, detail)
        if status == 429:
            raise RateLimited(self.name, _retry_after(resp), detail)
        log.warning("api_error", api=self.name, path=resp.request.url.path, status=status)
        raise Unavailable(self.name, status, detail)

    async def get(self, path: str, *, params: Params | None = None, client_ip: str | None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        request = self.http.build_request(
            "GET", path, params=clean, headers=self._headers(client_ip)
        )
        resp = await self._send(request)
        self._raise_for(resp)
        return resp.json()

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        client_ip: str | None,
        idempotency_key: str | None = None,
    ) -> Any:
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        request = self.http.build_request(
            "POST", path, json=dict(body), headers=self._headers(client_ip, extra)
        )
        resp = await self._send(request)
        self._raise_for(resp)
        return resp.json()

    async def raw_get(self, path: str, headers: Mapping[str, str]) -> httpx.Response:
        """The API's answer as it is (media bytes and their caching headers)."""
        return await self._send(self.http.build_request("GET", path, headers=dict(headers)))

    async def ping(self) -> None:
        resp = await self._send(self.http.build_request("GET", "/healthz"))
        if resp.status_code != 200:
            raise ConnectionError(f"{self.name} /healthz answered {resp.status_code}")

    @asynccontextmanager
    async def events(
        self, path: str, *, client_ip: str | None, last_event_id: str | None
    ) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """A server-sent-event stream (no read timeout: the API sends keep-alives)."""
        headers = self._headers(client_ip, {"Accept": "text/event-stream"})
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with aconnect_sse(
                self.http,
                "GET",
                path,
                headers=headers,
                timeout=httpx.Timeout(self.http.timeout.connect, read=None),
            ) as source:
                self._raise_for(source.response)
                yield source.aiter_sse()
        except httpx.HTTPError as exc:
            raise Unavailable(self.name, 0, repr(exc)) from exc


class Apis:
    """The three APIs; answers that may be a few seconds old are kept in ``memo``."""

    def __init__(
        self,
        *,
        publishing_url: str,
        search_url: str,
        engagement_url: str,
        timeout_s: float,
        cache_s: float,
    ) -> None:
        self.publishing = Api("publishing", publishing_url, timeout_s=timeout_s)
        self.search = Api("search", search_url, timeout_s=timeout_s)
        self.engagement = Api("engagement", engagement_url, timeout_s=timeout_s)
        self.memo: Memo[Any] = Memo(cache_s)

    async def site(self, client_ip: str | None) -> dict[str, Any]:
        site: dict[str, Any] = await self.memo.get(
            "site", lambda: self.publishing.get("/v1/site", client_ip=client_ip)
        )
        return site

    async def recent(
        self, api: Api, path: str, *, params: Params | None = None, client_ip: str | None
    ) -> Any:
        """GET through the memo: for what a page shows beside its content."""
        key = f"{api.name} {path} {sorted((params or {}).items())}"
        return await self.memo.get(key, lambda: api.get(path, params=params, client_ip=client_ip))

    async def close(self) -> None:
        for api in (self.publishing, self.search, self.engagement):
            await api.close()
