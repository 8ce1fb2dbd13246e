"""Kafka handlers: thin, the rules live in ``domain`` and the writes in ``index``.

Idempotent by article id + revision through OpenSearch external versioning (a repeat rewrites
the same version; an older revision is refused by OpenSearch and counted as stale). No inbox row
is written: the effect lives in OpenSearch, not in the database, and is idempotent by itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaMessage

from portal_contracts.articles import ArticlePublishedEvent
from portal_runtime.kafka import PermanentError
from portal_runtime.logs import get_logger
from portal_search.domain import InvalidEvent, document_for
from portal_search.index import ArticleIndex
from portal_search.resultcache import ResultCache

log = get_logger(__name__)


def article_published_handler(
    index: ArticleIndex, *, max_body_chars: int, results: ResultCache | None = None
) -> Callable[[ArticlePublishedEvent, KafkaMessage], Awaitable[None]]:
    async def handle(event: ArticlePublishedEvent, msg: KafkaMessage) -> None:
        data = event.data
        if event.subject != data.article_id:
            raise PermanentError(
                f"subject {event.subject!r} is not the article id {data.article_id!r}", "invalid"
            )
        try:
            op = document_for(data, max_body_chars=max_body_chars)
        except InvalidEvent as exc:
            raise PermanentError(str(exc), "invalid") from exc
        outcome = await index.write(op)
        if results is not None and outcome == "written":
            results.changed()  # cached answers may lack it (or still show it)
        log.info(
            "article_indexed",
            article_id=data.article_id,
            revision=data.revision,
            state=data.state.value,
            outcome=outcome,
        )

    return handle
