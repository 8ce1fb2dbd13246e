"""The edge cache as the purger sees it: `PURGE` requests to every Varnish of the deployment.

A purge names surrogate keys (``xkey``); ``xkey-purge: soft`` marks the objects stale instead
of removing them. The edge accepts it only from its purgers' addresses with the bearer token
(deploy/edge/portal.vcl). A failed purge raises ``EdgeUnavailable``, a ``ConnectionError``: the
consumer retries the event until every edge has taken it, so no purge is ever skipped.

A batch's keys go in as many requests as it takes to keep each ``xkey`` header well under
Varnish's limit on a request header (``http_req_hdr_len``, 8 KB): one header over it is refused
with a 400, which no retry would ever get through.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from portal_publishing.surrogate import Purge

# Bytes of keys per ``xkey`` header (Varnish refuses a request header over 8 KB).
MAX_XKEY_BYTES = 4096


class EdgeUnavailable(ConnectionError):
    """An edge did not take a purge (down, refused, or answered an error)."""


def parse_urls(value: str) -> list[str]:
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


class Edge:
    def __init__(self, urls: Sequence[str], token: str, client: httpx.AsyncClient) -> None:
        if not urls:
            raise ValueError("no edge to purge: set EDGE_PURGE_URLS")
        if not token:
            raise ValueError("the edge refuses purges without its token: set EDGE_PURGE_TOKEN")
        self.urls = list(urls)
        self.token = token
        self.client = client

    async def purge(self, purge: Purge) -> int:
        """Invalidate ``purge``'s keys on every edge (hard ones first); the number of objects."""
        total = 0
        for keys, mode in ((purge.hard, "hard"), (purge.soft, "soft")):
            for part in key_groups(keys, MAX_XKEY_BYTES):
                total += await self._purge(part, mode)
        return total

    async def _purge(self, keys: tuple[str, ...], mode: str) -> int:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "xkey": " ".join(keys),
            "xkey-purge": mode,
        }
        total = 0
        for url in self.urls:
            try:
                resp = await self.client.request("PURGE", f"{url}/", headers=headers)
            except httpx.HTTPError as exc:
                raise EdgeUnavailable(f"edge {url}: {type(exc).__name__}: {exc}") from exc
            if resp.status_code != 200:
                raise EdgeUnavailable(
                    f"edge {url} refused the purge: {resp.status_code} {resp.text[:200]}"
                )
            total += purged_count(resp.text)
        return total


def key_groups(keys: Sequence[str], max_bytes: int) -> list[tuple[str, ...]]:
    """``keys`` in order, in groups whose space-separated header value fits ``max_bytes``
    (a key longer than that alone in its group)."""
    groups: list[tuple[str, ...]] = []
    group: list[str] = []
    size = 0
    for key in keys:
        added = len(key.encode()) + (1 if group else 0)
        if group and size + added > max_bytes:
            groups.append(tuple(group))
            group, size, added = [], 0, len(key.encode())
        group.append(key)
        size += added
    if group:
        groups.append(tuple(group))
    return groups


def purged_count(answer: str) -> int:
    """The edge answers "Purged <n>"."""
    words = answer.split()
    return int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
