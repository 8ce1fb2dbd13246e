"""Jaeger's HTTP query API, server-side, for the desk's article journey page (an adapter).

``GET {JAEGER_QUERY_URL}/api/v3/traces/{trace_id}`` answers the trace as OTLP JSON. The base URL
is an operator's setting (never taken from a request) and the trace id is checked as 32 hex
characters before it is put in the path. Every failure is a ``TraceUnavailable`` with a reason
for the page: the journey is shown without the trace, never an error page.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from portal_moderation.desk.waterfall import valid_trace_id
from portal_runtime.logs import get_logger

log = get_logger(__name__)

MAX_TRACE_BYTES = 16 * 1024 * 1024  # a bulk approval's trace is large; a bigger answer is refused


class TraceUnavailable(Exception):
    """The trace cannot be shown; ``reason`` is one of: not_configured, unreachable, not_found,
    too_large, invalid."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class JaegerQuery:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Not instrumented: reading traces must not add spans to the trace backend.
        self.http = (
            httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=transport)
            if self.base_url
            else None
        )

    @property
    def configured(self) -> bool:
        return self.http is not None

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    async def trace(self, trace_id: str) -> dict[str, Any]:
        """The trace as Jaeger's OTLP JSON answer."""
        if self.http is None:
            raise TraceUnavailable("not_configured")
        checked = valid_trace_id(trace_id)
        if checked is None:
            raise TraceUnavailable("invalid", "trace id is not 32 hex characters")
        try:
            async with self.http.stream("GET", f"/api/v3/traces/{checked}") as resp:
                if resp.status_code == 404:
                    raise TraceUnavailable("not_found")
                if resp.status_code != 200:
                    raise TraceUnavailable("unreachable", f"Jaeger answered {resp.status_code}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_TRACE_BYTES:
                        raise TraceUnavailable("too_large", f"more than {MAX_TRACE_BYTES} bytes")
        except httpx.HTTPError as exc:
            log.warning("jaeger_unavailable", error=repr(exc))
            raise TraceUnavailable("unreachable", type(exc).__name__) from exc
        try:
            data = json.loads(bytes(body))
        except ValueError as exc:
            raise TraceUnavailable("invalid", "not JSON") from exc
        if not isinstance(data, dict):
            raise TraceUnavailable("invalid", "not a JSON object")
        error = data.get("error")
        if isinstance(error, dict):
            # The gateway reports a missing trace in the body too.
            if error.get("httpCode") == 404 or error.get("code") == 5:
                raise TraceUnavailable("not_found")
            raise TraceUnavailable("unreachable", str(error.get("message", ""))[:200])
        return data
