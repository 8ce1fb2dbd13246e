"""HTTP API: the partner push API (/v1, API keys) and the operators' admin API (/admin/v1).

Thin routers: they authenticate, validate, call a use case and shape the answer. Every refusal
is a 4xx whose ``detail`` says what is wrong and names the field.
"""

# No `from __future__ import annotations`: FastAPI must see the routers' local dependencies.
import pathlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    Channel,
    SectionCode,
    article_id_for,
)
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import partner_topic
from portal_ingest import domain
from portal_ingest import repository as repo
from portal_ingest.domain import Status
from portal_ingest.kafka_admin import SCRAM_MECHANISM, ProvisioningError
from portal_ingest.settings import Settings
from portal_ingest.usecases import (
    Admin,
    Ingestor,
    Receipt,
    RefusalKind,
    Refused,
    Sessions,
    StorageUnavailable,
)
from portal_runtime.auth import admin_guard
from portal_runtime.kafka import is_transient
from portal_runtime.logs import get_logger
from portal_runtime.problems import FieldError, ValidationShape, http_problem

log = get_logger(__name__)

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:/-]+$"
SOURCE_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]*$"

ExternalId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=EXTERNAL_ID_PATTERN,
        description="The partner's own id of the article (letters, digits and . _ : / -).",
    ),
]
SourceCodePath = Annotated[
    str,
    Path(
        min_length=2,
        max_length=64,
        pattern=SOURCE_CODE_PATTERN,
        description="Code of the partner agency, e.g. 'tp-ha-noi'.",
    ),
]


@dataclass(frozen=True)
class Context:
    settings: Settings
    sessions: Sessions
    ingestor: Ingestor
    admin: Admin


class Problem(BaseModel):
    detail: str


class FieldProblem(BaseModel):
    field: str = Field(description="The field at fault, e.g. 'content.title' or 'external_id'.")
    message: str
    type: str | None = None


class ValidationProblem(BaseModel):
    detail: str = Field(description="Every problem in one line: '<field>: <message>; ...'.")
    errors: list[FieldProblem]


def _validation_problem(errors: list[FieldError]) -> dict[str, Any]:
    # Name each field; never echo the input back (it can be megabytes).
    problems = [
        FieldProblem(field=_field(e.loc), message=e.msg, type=e.type).model_dump() for e in errors
    ]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
    return {"detail": summary, "errors": problems}


# The partner API's 422 shape, on every 422 of this service (portal_runtime.problems).
VALIDATION = ValidationShape(ValidationProblem, _validation_problem)


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
    error_type: str = Field(description="decode, size, validation, forbidden, stale_revision, ...")
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


# -- models: admin API ------------------------------------------------------------------------


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=300)
    kind: str = Field(
        min_length=1,
        max_length=64,
        pattern=SOURCE_CODE_PATTERN,
        description="central-party-body, socio-political, ministry, province, ...",
    )
    sections: list[SectionCode] = Field(
        default_factory=list,
        max_length=500,
        description="Every section code the agency may publish to.",
    )
    active: bool = True

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL: refuse it here (422), not at the INSERT (500).
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


class SourceOut(BaseModel):
    code: str
    name: str
    kind: str
    sections: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str | None = Field(default=None, max_length=200, description="e.g. 'CMS production'.")


class ApiKeyOut(BaseModel):
    key_id: str
    source: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class IssuedApiKeyOut(ApiKeyOut):
    api_key: str = Field(description="Shown once; only a hash is kept. Send as 'Bearer <key>'.")


class KafkaCredentialsOut(BaseModel):
    username: str
    password: str = Field(description="Shown once; calling again sets a new one.")
    topic: str
    bootstrap_servers: str
    mechanism: str = SCRAM_MECHANISM
    security_protocol: str = "SASL_SSL"
    ssl_ca_pem: str | None = Field(
        default=None,
        description="The CA certificate (PEM) to verify the broker with, when the portal's "
        "own CA signs it; null: a public CA does.",
    )
    produce_byte_rate: int = Field(
        description="Bytes per second this agency may produce; beyond it the broker delays it."
    )


class KafkaAccessOut(BaseModel):
    username: str
    topic: str
    bootstrap_servers: str
    mechanism: str = SCRAM_MECHANISM
    security_protocol: str = "SASL_SSL"
    ssl_ca_pem: str | None = None
    created_at: datetime
    rotated_at: datetime


def _partner_ca(settings: Settings) -> str | None:
    path = settings.kafka_partner_ca_file
    return pathlib.Path(path).read_text() if path else None


def _source_out(row: repo.SourceRow) -> SourceOut:
    return SourceOut(
        code=row.code,
        name=row.name,
        kind=row.kind,
        sections=list(row.sections),
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _key_out(row: repo.ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=row.key_id,
        source=row.source,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


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


_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationProblem, "description": "A field is invalid (named in the answer)"},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key missing, invalid or revoked"},
    403: {"model": Problem, "description": "Source inactive, section not allowed, or not yours"},
    **_INVALID,
}


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
            413: {"model": Problem, "description": "Body larger than the limit"},
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
    ) -> ArticleReceiptOut:
        message = PartnerArticleMessage(
            external_id=external_id, action=ArticleAction.RETRACT, revision=revision
        )
        # No body: the archived record is the retraction as the portal understood it.
        raw = message.model_dump_json(exclude_none=True).encode()
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


# -- admin API --------------------------------------------------------------------------------


def admin_router(ctx: Context) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1",
        tags=["admin"],
        dependencies=[Depends(admin_guard(ctx.settings))],
        max_body_size=ctx.settings.max_body_bytes,
        responses={
            401: {"model": Problem, "description": "Admin token missing or wrong"},
            **_INVALID,
        },
    )

    @router.put(
        "/sources/{code}",
        summary="Create or replace a partner agency (source)",
        response_model=SourceOut,
        responses={201: {"model": SourceOut, "description": "Created"}},
    )
    async def put_source(code: SourceCodePath, body: SourceIn, response: Response) -> SourceOut:
        row, created = await ctx.admin.put_source(
            code, name=body.name, kind=body.kind, sections=body.sections, active=body.active
        )
        if created:
            response.status_code = status.HTTP_201_CREATED
        return _source_out(row)

    @router.get("/sources", summary="Every partner agency", response_model=list[SourceOut])
    async def list_sources() -> list[SourceOut]:
        return [_source_out(r) for r in await ctx.admin.list_sources()]

    @router.get(
        "/sources/{code}",
        summary="One partner agency",
        response_model=SourceOut,
        responses={404: {"model": Problem}},
    )
    async def get_source(code: SourceCodePath) -> SourceOut:
        return _source_out(await ctx.admin.get_source(code))

    @router.post(
        "/sources/{code}/api-keys",
        summary="Issue an API key (the plaintext is in this answer only)",
        status_code=status.HTTP_201_CREATED,
        response_model=IssuedApiKeyOut,
        responses={404: {"model": Problem}},
    )
    async def issue_key(code: SourceCodePath, body: ApiKeyIn | None = None) -> IssuedApiKeyOut:
        issued = await ctx.admin.issue_api_key(code, None if body is None else body.label)
        return IssuedApiKeyOut(**_key_out(issued.row).model_dump(), api_key=issued.token)

    @router.get(
        "/sources/{code}/api-keys",
        summary="The agency's API keys (metadata only)",
        response_model=list[ApiKeyOut],
        responses={404: {"model": Problem}},
    )
    async def list_keys(code: SourceCodePath) -> list[ApiKeyOut]:
        return [_key_out(k) for k in await ctx.admin.list_api_keys(code)]

    @router.delete(
        "/sources/{code}/api-keys/{key_id}",
        summary="Revoke an API key (rotation: issue a new key, then revoke the old one)",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={404: {"model": Problem}},
    )
    async def revoke_key(
        code: SourceCodePath, key_id: Annotated[str, Path(max_length=32)]
    ) -> Response:
        await ctx.admin.revoke_api_key(code, key_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(
        "/sources/{code}/kafka-credentials",
        summary="Provision (or rotate) the agency's Kafka access",
        description=(
            "Creates the topic partner.<code>.articles, a SCRAM-SHA-512 user with a new random "
            "password, ACLs allowing it to write (and describe) exactly that topic, and its "
            "produce quota. The listener is SASL_SSL; ssl_ca_pem verifies it. Calling it again "
            "sets a new password (the old one stops working)."
        ),
        status_code=status.HTTP_201_CREATED,
        response_model=KafkaCredentialsOut,
        responses={404: {"model": Problem}, 503: {"model": Problem}},
    )
    async def grant_kafka(code: SourceCodePath) -> KafkaCredentialsOut:
        access = await ctx.admin.grant_kafka(code)
        return KafkaCredentialsOut(
            username=access.username,
            password=access.password,
            topic=access.topic,
            bootstrap_servers=access.bootstrap_servers,
            ssl_ca_pem=_partner_ca(ctx.settings),
            produce_byte_rate=ctx.settings.partner_produce_byte_rate,
        )

    @router.get(
        "/sources/{code}/kafka-credentials",
        summary="The agency's Kafka user and topic (never the password)",
        response_model=KafkaAccessOut,
        responses={404: {"model": Problem}},
    )
    async def kafka_access(code: SourceCodePath) -> KafkaAccessOut:
        row = await ctx.admin.kafka_access(code)
        return KafkaAccessOut(
            username=row.username,
            topic=row.topic,
            bootstrap_servers=ctx.settings.kafka_partner_bootstrap_servers,
            ssl_ca_pem=_partner_ca(ctx.settings),
            created_at=row.created_at,
            rotated_at=row.rotated_at,
        )

    return router


# -- errors -----------------------------------------------------------------------------------

_REFUSAL_STATUS = {
    RefusalKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    RefusalKind.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    RefusalKind.STALE: status.HTTP_409_CONFLICT,
    RefusalKind.CONFLICT: status.HTTP_409_CONFLICT,
}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "content", "title") -> "content.title"; ("path", "external_id") -> "external_id"
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.reason, "code": exc.kind.value}, _REFUSAL_STATUS[exc.kind]
        )

    @app.exception_handler(StorageUnavailable)
    async def storage_down(request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": "the raw archive is unavailable; nothing was stored, retry later"},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ProvisioningError)
    async def kafka_down(request: Request, exc: ProvisioningError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"}
        )

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_transient(exc):
            return JSONResponse(
                {"detail": "the database is unavailable; retry later"},
                status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        log.exception("database_error", exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
            detail = f"request body exceeds the limit of {settings.max_body_bytes} bytes"
            return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)
        # 422s (raised or from FastAPI) in VALIDATION's shape, like every other refusal here.
        return await http_problem(request, exc, VALIDATION)
