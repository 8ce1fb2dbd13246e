"""The partner API: an agency pushes, withdraws and reads its own articles with its API key."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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
from portal_ingest.api import _ERRORS, Context, ExternalId, Problem
from portal_ingest.domain import Status
from portal_ingest.usecases import (
    Receipt,
)

# -- models: partner API ----------------------------------------------------------------------


class ArticleUpsert(BaseModel):
    """A partner article (the Kafka message without ``external_id``, which is in the path)."""

    model_config = ConfigDict(extra="forbid")

    revision: int | None = Field(
        default=None,
        ge=1,
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


def _receipt_out(r: Receipt) -> ArticleReceiptOut:
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


@dataclass(frozen=True)
class Caller:
    source: str
    key_id: str


_partner_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PartnerApiKey",
    description="The agency's API key: `Authorization: Bearer pk_<key_id>_<secret>`.",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def partner_router(ctx: Context) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["partner"],
        max_body_size=ctx.settings.max_body_bytes,
        responses=_ERRORS,
    )

    async def caller(
        credentials: HTTPAuthorizationCredentials | None = Depends(_partner_bearer),
    ) -> Caller:
        """The agency is whoever the API key belongs to, never anything in the request."""
        if credentials is None:
            raise _unauthorized("API key missing: send 'Authorization: Bearer <api key>'")
        parsed = domain.parse_api_key(credentials.credentials)
        if parsed is None:
            raise _unauthorized("API key invalid")
        key_id, secret = parsed
        async with ctx.sessions() as session:
            key = await repo.get_api_key(session, key_id)
            src = None if key is None else await repo.get_source(session, key.source)
        if key is None or not domain.verify_api_key(key_id, secret, key.secret_hash):
            raise _unauthorized("API key invalid")
        if key.revoked_at is not None:
            raise _unauthorized("API key revoked")
        refusal = domain.source_refusal(None if src is None else src.info(), key.source)
        if refusal is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
        return Caller(source=key.source, key_id=key_id)

    Authenticated = Annotated[Caller, Depends(caller)]

    @router.get("/me", summary="The agency this key belongs to", response_model=SourceSelfOut)
    async def me(who: Authenticated) -> SourceSelfOut:
        row = await ctx.admin.get_source(who.source)
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
        who: Authenticated,
        status_: Annotated[Status | None, Query(alias="status")] = None,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int | None, Query(ge=1, le=ctx.settings.page_size_max)] = None,
    ) -> ArticlePage:
        size = limit or ctx.settings.page_size_default
        async with ctx.sessions() as session:
            rows = await repo.list_articles(
                session, source=who.source, status=status_, before_seq=_cursor(cursor), limit=size
            )
        return ArticlePage(
            items=[ArticleSummaryOut(**_summary_fields(a)) for a in rows],
            next_cursor=domain.encode_cursor(rows[-1].seq) if len(rows) == size else None,
        )

    async def _article_view(article: repo.ArticleRow) -> ArticleOut:
        async with ctx.sessions() as session:
            history = await repo.list_history(session, article.article_id)
            revisions = await repo.list_revisions(session, article.article_id)
        return ArticleOut(
            **_summary_fields(article),
            source=article.source,
            status_revision=article.status_revision,
            history=[
                HistoryEntryOut(
                    revision=h.revision, status=h.status, reason=h.reason, at=h.occurred_at
                )
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
        who: Authenticated, article_id: Annotated[str, Path(max_length=64)]
    ) -> ArticleOut:
        async with ctx.sessions() as session:
            article = await repo.get_article(session, article_id)
        if article is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"article {article_id} not found")
        refusal = domain.access_refusal(article.source, who.source, article_id)
        if refusal is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
        return await _article_view(article)

    @router.get(
        "/articles/{external_id:path}",
        summary="Status and history of one of the agency's articles",
        response_model=ArticleOut,
        responses={404: {"model": Problem}},
    )
    async def get_article(who: Authenticated, external_id: ExternalId) -> ArticleOut:
        async with ctx.sessions() as session:
            article = await repo.get_article(session, article_id_for(who.source, external_id))
        if article is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"article '{external_id}' not found")
        return await _article_view(article)

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
        who: Authenticated,
        external_id: ExternalId,
        body: ArticleUpsert,
        request: Request,
        response: Response,
    ) -> ArticleReceiptOut:
        raw = await request.body()  # cached by FastAPI: the exact bytes received
        message = PartnerArticleMessage(
            external_id=external_id,
            action=ArticleAction.UPSERT,
            revision=body.revision,
            content=body.content,
            backfill=body.backfill,
        )
        receipt = await ctx.ingestor.submit(who.source, message, Channel.REST, raw)
        if receipt.duplicate:
            response.status_code = status.HTTP_200_OK
        return _receipt_out(receipt)

    @router.delete(
        "/articles/{external_id:path}",
        summary="Retract an article",
        description="A new revision with action 'retract'; every read model removes the article.",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ArticleReceiptOut,
        responses={
            200: {"model": ArticleReceiptOut, "description": "Already retracted"},
            404: {"model": Problem},
            409: {"model": Problem},
            503: {"model": Problem},
        },
    )
    async def retract_article(
        who: Authenticated,
        external_id: ExternalId,
        response: Response,
        revision: Annotated[int | None, Query(ge=1, description="Your revision number.")] = None,
        backfill: Annotated[
            bool, Query(description="Part of an archive clean-up rather than news.")
        ] = False,
    ) -> ArticleReceiptOut:
        message = PartnerArticleMessage(
            external_id=external_id,
            action=ArticleAction.RETRACT,
            revision=revision,
            backfill=backfill,
        )
        # No body: the archived record is the retraction as the portal understood it.
        raw = message.model_dump_json(exclude_defaults=True).encode()
        receipt = await ctx.ingestor.submit(who.source, message, Channel.REST, raw)
        if receipt.duplicate:
            response.status_code = status.HTTP_200_OK
        return _receipt_out(receipt)

    @router.get(
        "/errors",
        summary="The agency's Kafka messages that were refused (dead-lettered), newest first",
        response_model=PartnerErrorPage,
    )
    async def list_errors(
        who: Authenticated,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int | None, Query(ge=1, le=ctx.settings.page_size_max)] = None,
    ) -> PartnerErrorPage:
        size = limit or ctx.settings.page_size_default
        async with ctx.sessions() as session:
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

    return router
