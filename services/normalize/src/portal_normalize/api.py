"""The normalize service's HTTP API: for operators (admin token), what was normalised and
each source's rules (its categories mapped to portal sections, its time zone); for publishing's
/media/, an image rendition made on its first request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field, field_validator

from portal_contracts.articles import QualityReport, SectionCode
from portal_normalize import repository
from portal_normalize.domain import DEFAULT_TIMEZONE, SourceRules
from portal_normalize.imaging import ImageRejected
from portal_normalize.media import MediaService, RenditionsBusy
from portal_runtime.auth import ADMIN_RESPONSES, admin_guard
from portal_runtime.settings import ServiceSettings

SourcePath = Annotated[
    str,
    Path(
        min_length=2,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Code of the partner agency (source).",
    ),
]
CategoryName = Annotated[str, Field(min_length=1, max_length=200)]


class NormalizedStatus(BaseModel):
    article_id: str
    source: str
    external_id: str
    revision: int
    action: str
    normalized_at: datetime
    quality: QualityReport | None
    duplicate_of: str | None = Field(description="Article id of the story this one repeats.")


class SourceMapping(BaseModel):
    """A source's rules. Categories match ignoring case, spacing, Unicode form and (as a
    fallback) diacritics; "Tin tức > Xây dựng Đảng" also tries its last part."""

    categories: dict[CategoryName, SectionCode] = Field(
        default_factory=dict,
        max_length=2000,
        description="The source's own category name -> portal section code.",
        examples=[{"Xây dựng Đảng": "ct-xay-dung-dang", "Tin tức": "ct-tin-tuc-hoat-dong"}],
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        max_length=64,
        description="IANA time zone of the source's naive publication times.",
    )
    default_section: SectionCode | None = Field(
        default=None, description="Section of an article that no category places."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class StoredMapping(SourceMapping):
    code: str
    updated_at: datetime


def _stored(found: repository.StoredRules) -> StoredMapping:
    return StoredMapping(
        code=found.code,
        categories=dict(found.rules.categories),
        timezone=found.rules.timezone,
        default_section=found.rules.default_section,
        updated_at=found.updated_at,
    )


def admin_router(settings: ServiceSettings, rules: repository.RulesCache) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1",
        tags=["admin"],
        dependencies=[Depends(admin_guard(settings))],
        responses=ADMIN_RESPONSES,
    )

    @router.get(
        "/articles/{article_id}",
        response_model=NormalizedStatus,
        summary="The newest normalised revision of an article and its quality report",
        responses={404: {"description": "article_id: never normalised"}},
    )
    async def get_article(article_id: str, request: Request) -> Any:
        async with request.app.state.service.engine.connect() as conn:
            row = await repository.get_article(conn, article_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "article_id: never normalised")
        return row

    @router.put(
        "/sources/{code}/mapping",
        response_model=StoredMapping,
        summary="Set a source's category -> section mapping and time zone (replaces it)",
        responses={422: {"description": "The field named in the detail is invalid"}},
    )
    async def put_mapping(
        code: SourcePath, request: Request, body: Annotated[SourceMapping, Body()]
    ) -> Any:
        new_rules = SourceRules(
            categories=body.categories,
            timezone=body.timezone,
            default_section=body.default_section,
        )
        async with request.app.state.service.sessions.begin() as session:
            stored = await repository.put_rules(session, code, new_rules)
        rules.invalidate()
        return _stored(stored)

    @router.get(
        "/sources/{code}/mapping",
        response_model=StoredMapping,
        summary="A source's category mapping and time zone",
        responses={404: {"description": "code: no mapping for this source"}},
    )
    async def get_mapping(code: SourcePath, request: Request) -> Any:
        async with request.app.state.service.engine.connect() as conn:
            found = await repository.get_rules(conn, code)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "code: no mapping for this source")
        return _stored(found)

    return router


def renditions_router(media: MediaService) -> APIRouter:
    """No credentials: it only makes the renditions listed for images already stored (each
    once, then object storage has it), within the image pool's budgets and a queue limit."""
    router = APIRouter(prefix="/v1", tags=["media"])

    @router.get(
        "/renditions/{key:path}",
        summary="A WebP rendition of a stored image, made now if it has not been yet",
        response_class=Response,
        responses={
            200: {"content": {"image/webp": {}}, "description": "The rendition"},
            404: {"description": "No stored image has this rendition"},
            422: {"description": "The stored image cannot be rendered (the reason)"},
            503: {"description": "Too many renditions being made; retry after a moment"},
        },
    )
    async def rendition(key: str) -> Response:
        try:
            data = await media.rendition(key)
        except (RenditionsBusy, ConnectionError) as exc:  # busy, or object storage is down
            raise HTTPException(503, str(exc), headers={"Retry-After": "2"}) from exc
        except ImageRejected as exc:
            raise HTTPException(422, exc.reason) from exc
        if data is None:
            raise HTTPException(404, "no stored image has this rendition")
        return Response(
            content=data,
            media_type="image/webp",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    return router
