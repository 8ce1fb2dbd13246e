"""The OpenSearch adapter: physical indices behind an alias, versioned writes, searches.

Layout: physical indices ``<alias>-v<UTC time>`` all share one definition; the service reads and
writes through the alias ``<alias>``. While a rebuild fills a new index, a second alias
``<alias>-building`` points at it and every live write goes there too (first), so nothing the
live consumer writes during the rebuild is missing after the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Literal

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import (
    AuthorizationException,
    NotFoundError,
    RequestError,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger
from portal_search.domain import PUBLISHED, IndexOp
from portal_search.layout import FAST_FOLDING, STOCK_FOLDING, index_definition, merge_settings

log = get_logger(__name__)

WriteOutcome = Literal["written", "stale"]

# Statuses that mean "OpenSearch is busy or failing over": retry, never dead-letter.
_RETRYABLE_STATUSES = {429, 502, 503, 504}


class SearchUnavailable(ConnectionError):
    """OpenSearch cannot take the request now. A ConnectionError, so the runtime retries it."""


class IndexRefused(Exception):
    """OpenSearch refused one document for good (a mapping error): not worth retrying."""


class IndexBusy(RuntimeError):
    """Another rebuild is filling an index."""


def _unavailable(exc: TransportError) -> bool:
    return isinstance(exc, OpenSearchConnectionError) or exc.status_code in _RETRYABLE_STATUSES


def _error_type(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    return str(error.get("type", "")) if isinstance(error, dict) else str(exc.error)


async def has_token_filter(client: AsyncOpenSearch, name: str) -> bool:
    """Whether the cluster knows the token filter ``name``: one ``_analyze`` of one letter.

    OpenSearch answers 400 for a filter it does not have; any other failure propagates (start-up
    retries an unavailable OpenSearch)."""
    body = {"tokenizer": "keyword", "filter": [name], "text": "đ"}
    try:
        await client.indices.analyze(body=body)
    except RequestError:
        return False
    return True


async def folding_filter(client: AsyncOpenSearch) -> str:
    """The folding filter to make indices with: the table-driven ``portal_asciifolding`` where
    the cluster has it (the local stack's node), else OpenSearch's ``asciifolding``. Both give
    the same tokens, so an index made with either stays valid; but an index made with the fast
    one opens only on nodes that have it."""
    try:
        fast = await has_token_filter(client, FAST_FOLDING)
    except AuthorizationException:
        # A role limited to the service's indices (production's security plugin) may be refused
        # an _analyze that names no index: the stock filter is valid on every node.
        log.warning("search_folding_filter_unknown", reason="403 on _analyze")
        return STOCK_FOLDING
    return FAST_FOLDING if fast else STOCK_FOLDING


@dataclass(frozen=True)
class BulkStats:
    written: int
    stale: int


@dataclass(frozen=True)
class IndexInfo:
    alias: str
    index: str | None
    documents: int
    retracted: int
    building: str | None


class ArticleIndex:
    def __init__(
        self,
        client: AsyncOpenSearch,
        *,
        alias: str = "articles",
        shards: int = 1,
        replicas: int = 0,
        refresh_interval: str | None = None,
        bulk_timeout_s: float | None = None,
        folding: str = STOCK_FOLDING,
    ) -> None:
        self.client = client
        self.alias = alias
        self.building_alias = f"{alias}-building"
        self.shards = shards
        self.replicas = replicas
        # None: OpenSearch's default (1 s, and none while no one searches).
        self.refresh_interval = refresh_interval
        # None: the client's request timeout.
        self.bulk_timeout_s = bulk_timeout_s
        # The folding filter of the indices it makes (start-up sets it: folding_filter).
        self.folding = folding

    # ---------------------------------------------------------------- names and layout

    def new_index_name(self) -> str:
        return f"{self.alias}-v{utcnow().strftime('%Y%m%d%H%M%S%f')}"

    async def _targets(self, alias: str) -> list[str]:
        try:
            found = await self.client.indices.get_alias(name=alias)
        except NotFoundError:
            return []
        return sorted(found)

    async def current_index(self) -> str | None:
        targets = await self._targets(self.alias)
        return targets[0] if targets else None

    async def building_index(self) -> str | None:
        targets = await self._targets(self.building_alias)
        return targets[0] if targets else None

    async def _creation_ms(self, index: str) -> int:
        found = await self.client.indices.get_settings(index=index, name="index.creation_date")
        return int(found[index]["settings"]["index"]["creation_date"])

    def definition(self) -> dict[str, Any]:
        return index_definition(shards=self.shards, replicas=self.replicas, folding=self.folding)

    async def create_index(self, name: str, *, alias: str, building: bool = False) -> None:
        body = self.definition()
        # Bulk loading: no refresh until the rebuild is done.
        refresh = "-1" if building else self.refresh_interval
        if refresh is not None:
            body["settings"]["index"]["refresh_interval"] = refresh
        body["aliases"] = {alias: {}}
        await self.client.indices.create(index=name, body=body)

    async def _apply_dynamic_settings(self, index: str) -> None:
        """Give an index made under other settings this one's refresh interval and merge
        policy (both dynamic); None resets the interval to OpenSearch's default."""
        found = await self.client.indices.get_settings(index=index, flat_settings=True)
        current = found.get(index, {}).get("settings", {})
        wanted: dict[str, str | None] = {
            "index.refresh_interval": self.refresh_interval,
            **merge_settings(),
        }
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            await self.client.indices.put_settings(index=index, body=changed)

    async def ensure(self) -> str:
        """Make sure the alias exists and points at one index; idempotent, safe to race.

        Two instances starting together may both create an index with the alias. Both then see
        the same set and keep the same one, the oldest (by creation date, then name); the other
        leaves the alias and is deleted while still empty (writes to an alias with two indices
        fail, so nothing was written to it in between).
        """
        targets = await self._targets(self.alias)
        if not targets and await self.client.indices.exists(index=self.alias):
            # The name exists: an index, or the alias made since the look-up (a create that
            # timed out here, on a loaded node, can still be carried out by OpenSearch).
            targets = await self._targets(self.alias)
            if not targets:
                raise RuntimeError(
                    f"an index named {self.alias!r} exists where the alias should be; "
                    "remove it (it was not created by this service)"
                )
        if not targets:
            name = self.new_index_name()
            try:
                await self.create_index(name, alias=self.alias)
                log.info("search_index_created", index=name, alias=self.alias)
            except RequestError as exc:
                if _error_type(exc) != "resource_already_exists_exception":
                    raise
            targets = await self._targets(self.alias)
        if len(targets) > 1:
            targets = await self._settle(self.alias, targets)
        if not targets:
            raise RuntimeError(f"alias {self.alias!r} could not be created")
        await self._apply_dynamic_settings(targets[0])
        return targets[0]

    async def outdated(self) -> bool:
        """Whether the index behind the alias was made with an older layout (its mapping's
        ``_meta.layout`` is not this definition's): it must be rebuilt to be searched as the
        queries of this version expect."""
        index = await self.current_index()
        if index is None:
            return False
        found = await self.client.indices.get_mapping(index=index)
        meta = found.get(index, {}).get("mappings", {}).get("_meta", {})
        wanted = self.definition()["mappings"].get("_meta", {}).get("layout")
        return bool(meta.get("layout") != wanted)

    async def _settle(self, alias: str, targets: list[str]) -> list[str]:
        ages = {name: await self._creation_ms(name) for name in targets}
        keep = min(targets, key=lambda n: (ages[n], n))
        for loser in targets:
            if loser == keep:
                continue
            # NotFound: the other instance settled it first.
            with contextlib.suppress(NotFoundError):
                await self.client.indices.update_aliases(
                    body={"actions": [{"remove": {"index": loser, "alias": alias}}]}
                )
            if await self.count(loser, published_only=False) == 0:
                with contextlib.suppress(NotFoundError):
                    await self.client.indices.delete(index=loser)
            log.warning("search_alias_race_settled", alias=alias, kept=keep, removed=loser)
        return [keep]

    # ---------------------------------------------------------------- writes

    async def write(self, op: IndexOp) -> WriteOutcome:
        """Apply one live event (``write_many`` of one)."""
        (outcome,) = await self.write_many([op])
        if isinstance(outcome, IndexRefused):
            raise outcome
        return outcome

    async def write_many(self, ops: list[IndexOp]) -> list[WriteOutcome | IndexRefused]:
        """Apply live events with ``_bulk``: to the index being built (if any), then to the
        alias; one outcome per op, in order.

        The order matters: if the rebuild swaps the alias between the two writes, the second
        write already lands in the new index; if it swapped before the first, the building alias
        is gone (ignored) and the alias write lands in the new index. Either way the new index
        has the events. A 200 whose items failed is not a success: each item is looked at. A
        version conflict means a newer revision is there (stale, the desired state); OpenSearch
        busy or failing over raises ``SearchUnavailable`` (the batch is retried, the versions
        make the repeat harmless); an item OpenSearch refuses for good is an ``IndexRefused``.
        """
        if not ops:
            return []
        if await self._building():
            await self._bulk(self.building_alias, ops, missing_ok=True)
        outcomes = await self._bulk(self.alias, ops)
        assert outcomes is not None  # only a missing_ok write may find no target
        return outcomes

    async def _building(self) -> bool:
        """Whether an index is being built now: a HEAD of its alias per batch (no rebuild is the
        normal case, and sending it every document to be refused cost a second ``_bulk``).
        Asked after the batch was read, as the first write was: a rebuild that starts later
        replays this batch's records (its end offsets are read after the alias exists)."""
        try:
            return bool(await self.client.indices.exists_alias(name=self.building_alias))
        except TransportError as exc:
            if _unavailable(exc):
                raise SearchUnavailable(f"OpenSearch unavailable: {exc}") from exc
            raise

    async def _bulk(
        self, target: str, ops: list[IndexOp], *, missing_ok: bool = False
    ) -> list[WriteOutcome | IndexRefused] | None:
        lines: list[dict[str, Any]] = []
        for op in ops:
            lines.append(
                {
                    "index": {
                        "_index": target,
                        "_id": op.article_id,
                        "version": op.version,
                        "version_type": "external_gte",
                    }
                }
            )
            lines.append(op.body)
        try:
            # require_alias: never let a write create an index named like the alias. Only each
            # item's status and error are read: the rest of the answer is not sent.
            result = await self.client.bulk(
                body=lines,
                require_alias=True,
                filter_path="items.*.status,items.*.error",
                **self._bulk_options(),
            )
        except TransportError as exc:
            if _unavailable(exc):
                raise SearchUnavailable(f"OpenSearch unavailable: {exc}") from exc
            raise
        outcomes: list[WriteOutcome | IndexRefused] = []
        missing = 0
        for item in result.get("items", []):
            outcome = item.get("index", {})
            status = int(outcome.get("status", 500))
            error = outcome.get("error")
            error_type = str(error.get("type", "")) if isinstance(error, dict) else str(error)
            if status < 300:
                outcomes.append("written")
            elif status == 409:
                outcomes.append("stale")
            elif status == 404 and error_type == "index_not_found_exception":
                missing += 1
                outcomes.append("stale")
            elif status in _RETRYABLE_STATUSES or status >= 500:
                raise SearchUnavailable(f"bulk item refused for now ({status}): {error}")
            else:
                outcomes.append(
                    IndexRefused(f"OpenSearch refused the document ({status}): {error}")
                )
        if len(outcomes) != len(ops):
            raise SearchUnavailable(f"bulk answered {len(outcomes)} items for {len(ops)}")
        if missing:
            if missing_ok:
                return None  # no build in progress: the normal case
            if target != self.alias:
                raise RuntimeError(f"{target!r} points at no index (the build was abandoned)")
            # The alias vanished (deleted by hand?): recreate it, then retry the batch.
            await self.ensure()
            raise SearchUnavailable(f"alias {target!r} was missing; recreated")
        return outcomes

    def _bulk_options(self) -> dict[str, Any]:
        # A _bulk given up on is still carried out by OpenSearch, and then sent again in full by
        # the retry: on a loaded node, a short timeout multiplies the indexing work it avoids.
        return {} if self.bulk_timeout_s is None else {"request_timeout": self.bulk_timeout_s}

    async def bulk_write(self, ops: list[IndexOp]) -> BulkStats:
        """Write many events into the index being built, with the same versioning.

        Through the building alias (``require_alias``): if the build was abandoned meanwhile, the
        writes fail instead of creating a stray index with a guessed mapping.
        """
        if not ops:
            return BulkStats(0, 0)
        outcomes = await self._bulk(self.building_alias, ops)
        assert outcomes is not None
        refused = [o for o in outcomes if isinstance(o, IndexRefused)]
        if refused:
            raise RuntimeError(f"bulk write to the new index failed: {refused[0]}")
        return BulkStats(outcomes.count("written"), outcomes.count("stale"))

    async def refresh(self) -> None:
        """Make every write so far searchable (the index behind the alias)."""
        try:
            await self.client.indices.refresh(index=self.alias)
        except TransportError as exc:
            if _unavailable(exc):
                raise SearchUnavailable(f"OpenSearch unavailable: {exc}") from exc
            raise

    # ---------------------------------------------------------------- reads

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.search(index=self.alias, body=body)
        return result

    async def count(self, index: str, *, published_only: bool = True) -> int:
        body = {"query": {"term": {"state": PUBLISHED}}} if published_only else None
        result = await self.client.count(index=index, body=body)
        return int(result["count"])

    async def info(self) -> IndexInfo:
        index = await self.current_index()
        documents = retracted = 0
        if index is not None:
            total = await self.count(index, published_only=False)
            documents = await self.count(index)
            retracted = total - documents
        return IndexInfo(
            alias=self.alias,
            index=index,
            documents=documents,
            retracted=retracted,
            building=await self.building_index(),
        )

    # ---------------------------------------------------------------- rebuild steps

    async def start_build(self, *, stale_after_s: float) -> str:
        """Create a new physical index and mark it as being built (the building alias)."""
        other = await self.building_index()
        if other is not None:
            age_s = (utcnow().timestamp() * 1000 - await self._creation_ms(other)) / 1000
            if age_s < stale_after_s:
                raise IndexBusy(f"index {other} is being built by another reindex")
            log.warning("search_abandoned_build_removed", index=other, age_s=round(age_s))
            await self.abandon_build(other)
        name = self.new_index_name()
        await self.create_index(name, alias=self.building_alias, building=True)
        targets = await self._targets(self.building_alias)
        if targets != [name]:
            # Two rebuilds started at once: the younger gives way.
            ages = {t: await self._creation_ms(t) for t in targets}
            if min(targets, key=lambda n: (ages[n], n)) != name:
                await self.abandon_build(name)
                raise IndexBusy("another reindex started at the same time")
        return name

    async def finish_build(self, name: str) -> None:
        await self.client.indices.put_settings(
            index=name, body={"index": {"refresh_interval": self.refresh_interval}}
        )
        await self.client.indices.refresh(index=name)

    async def swap(self, new: str, old: str | None) -> None:
        """Point the alias at ``new`` and end the build, in one atomic alias update."""
        actions: list[dict[str, Any]] = []
        if old is not None:
            actions.append({"remove": {"index": old, "alias": self.alias}})
        actions.append({"add": {"index": new, "alias": self.alias}})
        actions.append({"remove": {"index": new, "alias": self.building_alias}})
        await self.client.indices.update_aliases(body={"actions": actions})

    async def abandon_build(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.client.indices.delete(index=name)

    async def delete_index(self, name: str, *, grace_s: float = 0.0) -> None:
        if grace_s:
            await asyncio.sleep(grace_s)
        with contextlib.suppress(NotFoundError):
            await self.client.indices.delete(index=name)
