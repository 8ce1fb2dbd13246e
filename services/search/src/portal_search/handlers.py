"""Kafka consumers: thin, the rules live in ``domain`` and the writes in ``index``.

Idempotent by article id + revision through OpenSearch external versioning (a repeat rewrites
the same version; an older revision is refused by OpenSearch and counted as stale). No inbox row
is written: the effect lives in OpenSearch, not in the database, and is idempotent by itself.
A batch is one ``_bulk`` request (the newest revision of each article in it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal_contracts.articles import ArticlePublishedEvent
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_runtime.batch import Message, newest_per_key
from portal_runtime.consumer import Subscription
from portal_runtime.unit_of_work import UnitOfWork
from portal_search.domain import IndexOp, InvalidEvent, document_for
from portal_search.index import ArticleIndex, IndexRefused
from portal_search.resultcache import ResultCache

GROUP = "search"


async def index_batch(
    index: ArticleIndex,
    ops: list[tuple[Message[Any], IndexOp]],
    uow: UnitOfWork,
    results: ResultCache | None = None,
    on_written: Callable[[], None] | None = None,
) -> None:
    """Write a batch's documents in one ``_bulk``; a document refused for good is rejected.
    ``on_written`` is told when any document was written (it asks for a refresh)."""
    outcomes = await index.write_many([op for _, op in ops])
    written = False
    for (message, _), outcome in zip(ops, outcomes, strict=True):
        if isinstance(outcome, IndexRefused):
            uow.reject(message, str(outcome), "index")
        written = written or outcome == "written"
    if written and on_written is not None:
        on_written()  # in OpenSearch already, whatever becomes of the batch's transaction
    if written and results is not None:
        uow.after_commit(results.changed)  # cached answers may lack them (or still show them)


def published_subscription(
    index: ArticleIndex,
    *,
    max_body_chars: int,
    results: ResultCache | None = None,
    on_written: Callable[[], None] | None = None,
) -> Subscription[ArticlePublishedEvent]:
    async def handle(batch: list[Message[ArticlePublishedEvent]], uow: UnitOfWork) -> None:
        valid: dict[int, IndexOp] = {}
        for message in batch:
            event, data = message.event, message.event.data
            if event.subject != data.article_id:
                uow.reject(
                    message,
                    f"subject {event.subject!r} is not the article id {data.article_id!r}",
                    "invalid",
                )
                continue
            try:
                valid[id(message)] = document_for(data, max_body_chars=max_body_chars)
            except InvalidEvent as exc:
                uow.reject(message, str(exc), "invalid")
        newest = newest_per_key(
            [m for m in batch if id(m) in valid],
            lambda e: e.data.article_id,
            lambda e: e.data.revision,
        )
        ops = [(m, valid[id(m)]) for m in newest.values()]
        await index_batch(index, ops, uow, results, on_written)

    return Subscription(group=GROUP, topics=[ARTICLE_PUBLISHED], handler=handle, inbox=False)
