"""The partner API: an agency pushes, withdraws and reads its own articles with its API key."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    Channel,
    article_id_for,
)
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import partner_topic
from portal_ingest import domain
from portal_ingest import repository as repo
from portal_ingest.api import _ERRORS, ExternalId, Problem
from portal_ingest.deps import Deps, Partner
from portal_ingest.domain import Status
from portal_ingest.intake_usecases import Receipt
from portal_ingest.settings import Settings
from portal_ingest.usecases import Sessions

# -- models: partner API ----------------------------------------------------------------------


class ArticleUpsert(BaseModel):
    """A partner article (the Kafka message without ``external_id``, which is in the path)."""

    model_config = ConfigDict(extra="forbid")

    revision: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,  # as the partner message's (a PostgreSQL integer)
        description="Your revision number. Omit it and the portal numbers revisions in arrival "
        "order; send one and an older revision than the newest is refused (409).",
    )
    content: ArticleContent
    backfill: bool = Field(
        default=False,
        description="True for an archive import rather than news: it is passed on at the pace "
        "the pipeline allows, after other agencies' news (an agency sending many items at "
        "once is treated so anyway). Omit it for news.",
    )


class ArticleReceiptOut(BaseModel):
    article_id: str = Field(description="The portal's id of the article (stable).")
    external_id: str
    revision: int
    action: ArticleAction
    status: Status
    duplicate: bool = Field(
        description="True if this content was already received: no new revision."
    )
    received_at: datetime


class HistoryEntryOut(BaseModel):
    revision: int
    status: Status
    reason: str | None = None
    at: datetime


class RevisionOut(BaseModel):
    revision: int
    action: ArticleAction
    channel: str
    content_hash: str = Field(description="SHA-256 of the canonical content (idempotency key).")
    received_at: datetime


class ArticleSummaryOut(BaseModel):
    article_id: str
    external_id: str
    revision: int
    action: ArticleAction
    status: Status
    reason: str | None = Field(default=None, description="Why, when rejected or retracted.")
    title: str | None = None
    section: str | None = None
    public_path: str | None = Field(default=None, description="Public path once published.")
    created_at: datetime
    updated_at: datetime


class ArticleOut(ArticleSummaryOut):
    source: str
    status_revision: int = Field(description="The revision the status is about.")
    history: list[HistoryEntryOut]
    revisions: list[RevisionOut]


class ArticlePage(BaseModel):
    items: list[ArticleSummaryOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class PartnerErrorOut(BaseModel):
    id: int
    topic: str
    partition: int
    offset: int
    external_id: str | None
    revision: int | None
    error_type: str = Field(
        description="decode, size, validation, forbidden, stale_revision, too_large, ..."
    )
    reason: str
    failed_at: datetime


class PartnerErrorPage(BaseModel):
    items: list[PartnerErrorOut]
    next_cursor: str | None


class SourceSelfOut(BaseModel):
    code: str
    name: str
    kind: str
    sections: list[str] = Field(description="Sections this source may publish to.")
    kafka_topic: str


def receipt_answer(r: Receipt) -> Response:
    """The answer to a push or a retraction: 202 for a new revision, 200 for a repeat. Encoded
    here, once, as the route's ``response_model`` (which documents it) would: FastAPI's
    validation and serialisation of a returned model cost more than the rest of the answer."""
    return Response(
        receipt_out(r).model_dump_json().encode(),
        status.HTTP_200_OK if r.duplicate else status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def receipt_out(r: Receipt) -> ArticleReceiptOut:
    return ArticleReceiptOut(
        article_id=r.article_id,
        external_id=r.external_id,
        revision=r.revision,
        action=r.action,
        status=r.status,
        duplicate=r.duplicate,
        received_at=r.received_at,
    )


def _summary_fields(a: repo.ArticleRow) -> dict[str, Any]:
    return {
        "article_id": a.article_id,
        "external_id": a.external_id,
        "revision": a.revision,
        "action": ArticleAction(a.action),
        "status": a.status,
        "reason": a.status_reason,
        "title": a.title,
        "section": a.section,
        "public_path": a.public_path,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return domain.decode_cursor(value)
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "cursor: not a cursor from a previous page"
        ) from exc


# -- partner API ------------------------------------------------------------------------------

# The largest page the API documents; a deployment may set a lower one (PAGE_SIZE_MAX).
PAGE_SIZE_BOUND = Settings.model_fields["page_size_max"].default
PageLimit = Annotated[int | None, Query(ge=1, le=PAGE_SIZE_BOUND)]


def _page_size(settings: Settings, limit: int | None) -> int:
    """The page size asked for, or the default; a limit above a lower bound the deployment set
    is refused as the documented one is."""
    bound = settings.page_size_max
    if limit is not None and limit > bound:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "limit"),
                    "msg": f"Input should be less than or equal to {bound}",
                    "input": limit,
                    "ctx": {"le": bound},
                }
            ]
        )
    return limit or settings.page_size_default


router = APIRouter(prefix="/v1", tags=["partner"], responses=_ERRORS)

# What a retraction may answer besides 202, whichever channel asks for it.
RETRACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ArticleReceiptOut, "description": "Already retracted"},
    404: {"model": Problem},
    409: {"model": Problem},
    503: {"model": Problem},
}


@router.get("/me", summary="The agency this key belongs to", response_model=SourceSelfOut)
async def me(who: Partner, deps: Deps) -> SourceSelfOut:
    row = await deps.admin.get_source(who.source)
    return SourceSelfOut(
        code=row.code,
        name=row.name,
        kind=row.kind,
        sections=list(row.sections),
        kafka_topic=partner_topic(row.code),
    )


@router.get(
    "/articles",
    summary="The agency's articles, newest first",
    response_model=ArticlePage,
)
async def list_articles(
    who: Partner,
    deps: Deps,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: PageLimit = None,
) -> ArticlePage:
    size = _page_size(deps.settings, limit)
    async with deps.sessions() as session:
        rows = await repo.list_articles(
            session, source=who.source, status=status_, before_seq=_cursor(cursor), limit=size
        )
    return ArticlePage(
        items=[ArticleSummaryOut(**_summary_fields(a)) for a in rows],
        next_cursor=domain.encode_cursor(rows[-1].seq) if len(rows) == size else None,
    )


async def _article_view(sessions: Sessions, article: repo.ArticleRow) -> ArticleOut:
    async with sessions() as session:
        history = await repo.list_history(session, article.article_id)
        revisions = await repo.list_revisions(session, article.article_id)
    return ArticleOut(
        **_summary_fields(article),
        source=article.source,
        status_revision=article.status_revision,
        history=[
            HistoryEntryOut(revision=h.revision, status=h.status, reason=h.reason, at=h.occurred_at)
            for h in history
        ],
        revisions=[
            RevisionOut(
                revision=r.revision,
                action=ArticleAction(r.action),
                channel=r.channel,
                content_hash=r.content_hash,
                received_at=r.received_at,
            )
            for r in revisions
        ],
    )


# Declared before /articles/{external_id}, whose ids may contain '/'.
@router.get(
    "/articles/by-id/{article_id}",
    summary="Status and history of an article, by the portal's id",
    response_model=ArticleOut,
    responses={404: {"model": Problem}},
)
async def get_by_id(
    who: Partner, deps: Deps, article_id: Annotated[str, Path(max_length=64)]
) -> ArticleOut:
    async with deps.sessions() as session:
        article = await repo.get_article(session, article_id)
    if article is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"article {article_id} not found")
    refusal = domain.access_refusal(article.source, who.source, article_id)
    if refusal is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    return await _article_view(deps.sessions, article)


@router.get(
    "/articles/{external_id:path}",
    summary="Status and history of one of the agency's articles",
    response_model=ArticleOut,
    responses={404: {"model": Problem}},
)
async def get_article(who: Partner, deps: Deps, external_id: ExternalId) -> ArticleOut:
    async with deps.sessions() as session:
        article = await repo.get_article(session, article_id_for(who.source, external_id))
    if article is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"article '{external_id}' not found")
    return await _article_view(deps.sessions, article)


@router.put(
    "/articles/{external_id:path}",
    summary="Create or update an article",
    description=(
        "202 when a new revision was accepted (it goes to normalisation and review), 200 "
        "when this content was already received (nothing new happens). The raw request is "
        "archived as received."
    ),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ArticleReceiptOut,
    responses={
        200: {"model": ArticleReceiptOut, "description": "Same content already received"},
        409: {"model": Problem, "description": "Revision older than (or equal to) the newest"},
        413: {
            "model": Problem,
            "description": "Body larger than the limit, or the article too large to pass on",
        },
        503: {"model": Problem, "description": "Storage unavailable; retry later"},
    },
)
async def put_article(
    who: Partner,
    deps: Deps,
    external_id: ExternalId,
    body: ArticleUpsert,
    request: Request,
) -> Response:
    raw = await request.body()  # cached by FastAPI: the exact bytes received
    message = PartnerArticleMessage(
        external_id=external_id,
        action=ArticleAction.UPSERT,
        revision=body.revision,
        content=body.content,
        backfill=body.backfill,
    )
    receipt = await deps.pushes.submit(who.source, message, Channel.REST, raw)
    return receipt_answer(receipt)


@router.delete(
    "/articles/{external_id:path}",
    summary="Retract an article",
    description="A new revision with action 'retract'; every read model removes the article.",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ArticleReceiptOut,
    responses=RETRACT_RESPONSES,
)
async def retract_article(
    who: Partner,
    deps: Deps,
    external_id: ExternalId,
    revision: Annotated[int | None, Query(ge=1, description="Your revision number.")] = None,
    backfill: Annotated[
        bool, Query(description="Part of an archive clean-up rather than news.")
    ] = False,
) -> Response:
    message = PartnerArticleMessage(
        external_id=external_id,
        action=ArticleAction.RETRACT,
        revision=revision,
        backfill=backfill,
    )
    # No body: the archived record is the retraction as the portal understood it.
    raw = message.model_dump_json(exclude_defaults=True).encode()
    receipt = await deps.pushes.submit(who.source, message, Channel.REST, raw)
    return receipt_answer(receipt)


@router.get(
    "/errors",
    summary="The agency's Kafka messages that were refused (dead-lettered), newest first",
    response_model=PartnerErrorPage,
)
async def list_errors(
    who: Partner,
    deps: Deps,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: PageLimit = None,
) -> PartnerErrorPage:
    size = _page_size(deps.settings, limit)
    async with deps.sessions() as session:
        rows = await repo.list_partner_errors(
            session, source=who.source, before_id=_cursor(cursor), limit=size
        )
    return PartnerErrorPage(
        items=[
            PartnerErrorOut(
                id=e.id,
                topic=e.topic,
                partition=e.partition,
                offset=e.offset,
                external_id=e.external_id,
                revision=e.revision,
                error_type=e.error_type,
                reason=e.reason,
                failed_at=e.failed_at,
            )
            for e in rows
        ],
        next_cursor=domain.encode_cursor(rows[-1].id) if len(rows) == size else None,
    )
