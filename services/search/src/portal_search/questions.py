"""Answered questions in search: ``question.answered`` -> the ``questions`` alias -> an API.

The same design as the article index (``index.ArticleIndex``: physical indices behind an alias,
external versioning by revision, a tombstone for a withdrawn answer) and the same analysers
(``layout.text_field``: written and folded words in one field), in an index of its own.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import TransportError
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from portal_contracts.questions import QuestionAnswered, QuestionAnsweredEvent
from portal_contracts.topics import QUESTION_ANSWERED
from portal_runtime.batch import Message, newest_per_key
from portal_runtime.consumer import Subscription
from portal_runtime.logs import get_logger
from portal_runtime.unit_of_work import UnitOfWork
from portal_search.domain import (
    CODE_PATTERN,
    MARK_END,
    MARK_START,
    MAX_QUERY_CHARS,
    MAX_RESULT_WINDOW,
    PUBLISHED,
    IndexOp,
    clean_text,
    normalize_query,
    pick_fragments,
    text_clauses,
)
from portal_search.handlers import index_batch
from portal_search.index import ArticleIndex
from portal_search.layout import LAYOUT_VERSION, STOCK_FOLDING, index_definition, text_field

log = get_logger(__name__)

WITHDRAWN = "withdrawn"
MAX_PAGE_SIZE = 50
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>", re.IGNORECASE)

SOURCE_FIELDS = [
    "question_id",
    "kind",
    "dialogue_id",
    "topic",
    "agency",
    "title",
    "question",
    "answered_by",
    "asked_at",
    "answered_at",
]


class QuestionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    questions_index_alias: str = Field(default="questions", pattern=r"^[a-z][a-z0-9_]*$")


def questions_definition(
    *, shards: int, replicas: int, folding: str = STOCK_FOLDING
) -> dict[str, Any]:
    """The articles' analysers, with the fields of a question and its answer."""
    settings = index_definition(shards=shards, replicas=replicas, folding=folding)["settings"]
    return {
        "settings": settings,
        "mappings": {
            "dynamic": "strict",
            "_meta": {"layout": LAYOUT_VERSION},
            "properties": {
                "question_id": {"type": "keyword"},
                "state": {"type": "keyword"},
                "revision": {"type": "long"},
                "kind": {"type": "keyword"},
                "dialogue_id": {"type": "keyword"},
                "topic": {"type": "keyword"},
                "agency": {"type": "keyword"},
                "title": text_field(),
                "question": text_field(),
                "answer_text": text_field(),
                "answered_by": {"type": "keyword"},
                "asked_at": {"type": "date"},
                "answered_at": {"type": "date"},
            },
        },
    }


class QuestionIndex(ArticleIndex):
    """The article index's alias, versioning and rebuild-safe writes, with its own mapping."""

    def definition(self) -> dict[str, Any]:
        return questions_definition(
            shards=self.shards, replicas=self.replicas, folding=self.folding
        )


def html_to_text(value: str) -> str:
    return html.unescape(_TAG.sub(" ", _BREAK.sub("\n", value)))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def question_document(data: QuestionAnswered) -> IndexOp:
    """The write a question.answered payload asks for (a tombstone when withdrawn)."""
    common: dict[str, Any] = {
        "question_id": data.question_id,
        "revision": data.revision,
        "kind": data.kind,
        "dialogue_id": data.dialogue_id,
        "topic": data.topic,
        "agency": data.agency,
        "asked_at": _iso(data.asked_at),
        "answered_at": _iso(data.answered_at),
    }
    if data.state == WITHDRAWN:
        return IndexOp(data.question_id, data.revision, {**common, "state": WITHDRAWN})
    return IndexOp(
        data.question_id,
        data.revision,
        {
            **common,
            "state": PUBLISHED,
            "title": clean_text(data.title),
            "question": clean_text(data.question_body),
            "answer_text": clean_text(html_to_text(data.answer_html)),
            "answered_by": data.answered_by,
        },
    )


def answered_subscription(index: QuestionIndex) -> Subscription[QuestionAnsweredEvent]:
    """question.answered -> the questions index (one ``_bulk`` per batch, versioned)."""

    async def handle(batch: list[Message[QuestionAnsweredEvent]], uow: UnitOfWork) -> None:
        valid: list[Message[QuestionAnsweredEvent]] = []
        for message in batch:
            if message.event.subject != message.event.data.question_id:
                uow.reject(message, "subject: is not the question id", "invalid")
            else:
                valid.append(message)
        newest = newest_per_key(valid, lambda e: e.data.question_id, lambda e: e.data.revision)
        await index_batch(
            index, [(m, question_document(m.event.data)) for m in newest.values()], uow
        )

    return Subscription(group="search", topics=[QUESTION_ANSWERED], handler=handle, inbox=False)


# --- the public search ----------------------------------------------------------------------


def build_question_search(
    *,
    q: str,
    topics: list[str],
    agencies: list[str],
    kind: str | None,
    page: int,
    size: int,
) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"state": PUBLISHED}}]
    if topics:
        filters.append({"terms": {"topic": topics}})
    if agencies:
        filters.append({"terms": {"agency": agencies}})
    if kind:
        filters.append({"term": {"kind": kind}})
    query: dict[str, Any] = {"filter": filters}
    if q:
        folded, boosts = text_clauses(q, ("title^3", "question^2", "answer_text"))
        query["must"] = [folded]
        query["should"] = boosts
    whole = {"number_of_fragments": 0}
    snippets = {"fragment_size": 180, "number_of_fragments": 2}
    body: dict[str, Any] = {
        "query": {"bool": query},
        "from": (page - 1) * size,
        "size": size,
        "track_total_hits": True,
        "_source": SOURCE_FIELDS,
        "sort": (["_score"] if q else []) + [{"answered_at": "desc"}, {"question_id": "asc"}],
        "aggs": {
            "topic": {"terms": {"field": "topic", "size": 50}},
            "agency": {"terms": {"field": "agency", "size": 50}},
        },
    }
    if q:
        body["highlight"] = {
            "type": "unified",
            "pre_tags": [MARK_START],
            "post_tags": [MARK_END],
            "fields": {"title": whole, "question": snippets, "answer_text": snippets},
        }
    return body


class QuestionHitOut(BaseModel):
    question_id: str
    kind: str
    dialogue_id: str | None
    topic: str
    agency: str | None
    title: str = Field(description="Plain text (escape it when rendering).")
    question: str = Field(description="Plain text.")
    answered_by: str | None
    asked_at: str
    answered_at: str
    path: str = Field(description="The answered question in the engagement API.")
    highlight: dict[str, list[str]] = Field(
        description="'title', 'question', 'answer': safe HTML with matches in <mark>."
    )


class BucketOut(BaseModel):
    key: str
    count: int


class QuestionSearchOut(BaseModel):
    total: int
    page: int
    size: int
    hits: list[QuestionHitOut]
    facets: dict[str, list[BucketOut]] = Field(description="Counts by 'topic' and 'agency'.")


def _path(src: dict[str, Any]) -> str:
    if src.get("kind") == "dialogue" and src.get("dialogue_id"):
        return f"/v1/dialogues/{src['dialogue_id']}/transcript"
    return f"/v1/qa/questions/{src['question_id']}"


def parse_question_response(
    raw: dict[str, Any], *, q: str, page: int, size: int
) -> QuestionSearchOut:
    hits = []
    for item in raw.get("hits", {}).get("hits", []):
        src = item.get("_source", {})
        hl = item.get("highlight", {})
        hits.append(
            QuestionHitOut(
                question_id=src["question_id"],
                kind=src.get("kind", "qa"),
                dialogue_id=src.get("dialogue_id"),
                topic=src.get("topic", ""),
                agency=src.get("agency"),
                title=src.get("title", ""),
                question=src.get("question", ""),
                answered_by=src.get("answered_by"),
                asked_at=src.get("asked_at", ""),
                answered_at=src.get("answered_at", ""),
                path=_path(src),
                highlight={
                    "title": pick_fragments(hl, ("title",)),
                    "question": pick_fragments(hl, ("question",)),
                    "answer": pick_fragments(hl, ("answer_text",)),
                },
            )
        )
    total = raw.get("hits", {}).get("total", {})
    aggs = raw.get("aggregations", {})
    return QuestionSearchOut(
        total=int(total.get("value", 0)) if isinstance(total, dict) else int(total),
        page=page,
        size=size,
        hits=hits,
        facets={
            name: [
                BucketOut(key=str(b["key"]), count=int(b["doc_count"]))
                for b in aggs.get(name, {}).get("buckets", [])
            ]
            for name in ("topic", "agency")
        },
    )


def questions_router(index: QuestionIndex) -> APIRouter:
    router = APIRouter(tags=["search"])

    @router.get(
        "/v1/questions/search",
        response_model=QuestionSearchOut,
        summary="Search answered questions (online Q&A and dialogues)",
        description="Words in the question or its answer, with or without diacritics; filters by "
        "topic and agency (repeatable). Without `q`, the newest answers first.",
    )
    async def search_questions(
        q: str = Query("", max_length=MAX_QUERY_CHARS),
        topic: list[str] = Query(default_factory=list, max_length=20),
        agency: list[str] = Query(default_factory=list, max_length=20),
        kind: Literal["qa", "dialogue"] | None = None,
        page: int = Query(1, ge=1, le=1000),
        size: int = Query(10, ge=1, le=MAX_PAGE_SIZE),
    ) -> QuestionSearchOut:
        for name, values in (("topic", topic), ("agency", agency)):
            bad = [v for v in values if not CODE_PATTERN.match(v)]
            if bad:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    [
                        {
                            "loc": ["query", name],
                            "msg": f"{bad[0][:70]!r} is not a code",
                            "type": "value_error",
                        }
                    ],
                )
        if page * size > MAX_RESULT_WINDOW:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [
                    {
                        "loc": ["query", "page"],
                        "msg": "page * size is too deep",
                        "type": "value_error",
                    }
                ],
            )
        text = normalize_query(q)
        body = build_question_search(
            q=text, topics=topic, agencies=agency, kind=kind, page=page, size=size
        )
        try:
            raw = await index.search(body)
        except (TransportError, OSError) as exc:
            log.warning("question_search_failed", error=repr(exc))
            raise HTTPException(503, "search is unavailable, retry later") from exc
        return parse_question_response(raw, q=text, page=page, size=size)

    return router


def make_question_index(client: AsyncOpenSearch, *, shards: int, replicas: int) -> QuestionIndex:
    alias = QuestionSettings().questions_index_alias
    return QuestionIndex(client, alias=alias, shards=shards, replicas=replicas)
