"""The other services the desk calls over HTTP, server-side (never from the browser).

* ingest's admin API (ADMIN_TOKEN): agencies' granted sections and active flag, API keys,
  Kafka credentials — ingest owns them, the sources screen only asks it; an article's journey;
* publishing's public API: the site structure (section names, the standard sections of every
  sub-site), cached for a few minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import TracerProvider

from portal_runtime.logs import get_logger

log = get_logger(__name__)


class PeerUnavailable(Exception):
    """The service does not answer (or answers 5xx): nothing was changed by us."""


class PeerRefused(Exception):
    """The service refused the request (4xx); ``detail`` is its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _client(
    base_url: str, timeout_s: float, headers: dict[str, str], tracer: TracerProvider | None
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers)
    if tracer is not None:
        # The call joins the editor's request trace (W3C traceparent on the way out).
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracer)
    return client


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    params: dict[str, str] | None = None,
    name: str,
) -> httpx.Response:
    try:
        resp = await client.request(method, path, json=json, content=content, params=params)
    except httpx.HTTPError as exc:
        log.warning("peer_unavailable", peer=name, path=path, error=repr(exc))
        raise PeerUnavailable(f"{name} does not answer: {type(exc).__name__}") from exc
    if resp.status_code >= 500:
        raise PeerUnavailable(f"{name} answered {resp.status_code}")
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise PeerRefused(resp.status_code, detail if isinstance(detail, str) else str(detail))
    return resp


class IngestAdmin:
    """ingest's /admin/v1 API, as the sources screen needs it."""

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        timeout_s: float = 5.0,
        tracer: TracerProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.http = _client(base_url, timeout_s, headers, tracer)
        if transport is not None:
            self.http = httpx.AsyncClient(
                base_url=base_url, timeout=timeout_s, headers=headers, transport=transport
            )

    async def close(self) -> None:
        await self.http.aclose()

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        resp = await _call(self.http, method, path, json=body, name="ingest")
        return resp.json() if resp.content else None

    @staticmethod
    def _src(code: str) -> str:
        return f"/admin/v1/sources/{quote(code, safe='')}"

    async def list_sources(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._json("GET", "/admin/v1/sources")
        return data

    async def get_source(self, code: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = await self._json("GET", self._src(code))
        except PeerRefused as exc:
            if exc.status == 404:
                return None
            raise
        return data

    async def put_source(
        self, code: str, *, name: str, kind: str, sections: list[str], active: bool
    ) -> dict[str, Any]:
        body = {"name": name, "kind": kind, "sections": sections, "active": active}
        data: dict[str, Any] = await self._json("PUT", self._src(code), body)
        return data

    async def list_keys(self, code: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._json("GET", f"{self._src(code)}/api-keys")
        return data

    async def issue_key(self, code: str, label: str | None) -> dict[str, Any]:
        data: dict[str, Any] = await self._json(
            "POST", f"{self._src(code)}/api-keys", {"label": label}
        )
        return data

    async def revoke_key(self, code: str, key_id: str) -> None:
        await self._json("DELETE", f"{self._src(code)}/api-keys/{quote(key_id, safe='')}")

    async def kafka_access(self, code: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = await self._json("GET", f"{self._src(code)}/kafka-credentials")
        except PeerRefused as exc:
            if exc.status == 404:
                return None
            raise
        return data

    async def pull_health(self) -> dict[str, Any]:
        """Integration health of every source (feeds pulled by ingest, fetch errors, arrivals)."""
        data: dict[str, Any] = await self._json("GET", "/admin/v1/health")
        return data

    async def grant_kafka(self, code: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("POST", f"{self._src(code)}/kafka-credentials")
        return data

    # -- the desk channel: an agency's article written in the desk, submitted as that agency --

    def _desk(self, code: str) -> str:
        return f"/admin/v1/desk/sources/{quote(code, safe='')}"

    async def desk_submit(
        self, code: str, external_id: str, content: dict[str, Any], written_by: str
    ) -> dict[str, Any]:
        """A new revision of the agency's article (ingest's receipt: article id, revision)."""
        path = f"{self._desk(code)}/articles/{quote(external_id, safe='')}"
        body = {"content": content, "written_by": written_by}
        data: dict[str, Any] = await self._json("PUT", path, body)
        return data

    async def desk_retract(self, code: str, external_id: str, written_by: str) -> dict[str, Any]:
        path = f"{self._desk(code)}/articles/{quote(external_id, safe='')}"
        resp = await _call(
            self.http, "DELETE", path, params={"written_by": written_by}, name="ingest"
        )
        data: dict[str, Any] = resp.json()
        return data

    async def desk_image(self, code: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded image for the agency; its public URL, size and type."""
        resp = await _call(
            self.http, "POST", f"{self._desk(code)}/images", content=data, name="ingest"
        )
        found: dict[str, Any] = resp.json()
        return found

    async def journey(self, article_id: str) -> dict[str, Any] | None:
        """Every stage one article passed, with times and trace ids (None: no such article)."""
        try:
            data: dict[str, Any] = await self._json(
                "GET", f"/admin/v1/articles/{quote(article_id, safe='')}/journey"
            )
        except PeerRefused as exc:
            if exc.status == 404:
                return None
            raise
        return data


@dataclass(frozen=True)
class Site:
    """What the desk needs of the portal's structure."""

    section_names: dict[str, str] = field(default_factory=dict)
    standard_sections: list[str] = field(default_factory=list)
    blocks: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    available: bool = False

    def name_of(self, code: str | None) -> str:
        if not code:
            return ""
        return self.section_names.get(code, code)


def site_from(data: dict[str, Any]) -> Site:
    """Parse publishing's GET /v1/site (blocks of sections, standard sections)."""
    names: dict[str, str] = {}
    blocks: list[tuple[str, list[tuple[str, str]]]] = []
    for block in data.get("blocks") or []:
        sections = []
        for section in block.get("sections") or []:
            code, name = section.get("code"), section.get("name")
            if isinstance(code, str):
                names[code] = name if isinstance(name, str) else code
                sections.append((code, names[code]))
        blocks.append((str(block.get("name") or block.get("code") or ""), sections))
    standard: list[str] = []
    for section in data.get("standard_sections") or []:
        code = section.get("code") if isinstance(section, dict) else section
        if isinstance(code, str):
            standard.append(code)
            if isinstance(section, dict) and isinstance(section.get("name"), str):
                names.setdefault(code, section["name"])
    return Site(names, standard, blocks, available=True)


class SiteDirectory:
    """publishing's site structure, cached ``ttl_s`` (a miss costs one call, an outage none)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 3.0,
        ttl_s: float = 300.0,
        tracer: TracerProvider | None = None,
    ) -> None:
        self.http = _client(base_url, timeout_s, {}, tracer)
        self.ttl_s = ttl_s
        self._site = Site()
        self._fetched = float("-inf")

    async def close(self) -> None:
        await self.http.aclose()

    async def site(self) -> Site:
        now = time.monotonic()
        # After a failure, wait a little before asking again (30 s), not the full TTL.
        if now - self._fetched < (self.ttl_s if self._site.available else 30.0):
            return self._site
        self._fetched = now
        try:
            resp = await _call(self.http, "GET", "/v1/site", name="publishing")
            self._site = site_from(resp.json())
        except (PeerUnavailable, PeerRefused, ValueError) as exc:
            log.warning("site_structure_unavailable", error=repr(exc))
        return self._site
