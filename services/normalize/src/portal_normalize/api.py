"""The normalize service's HTTP API: operators look up what was normalised (admin token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel

from portal_contracts.articles import QualityReport
from portal_normalize import repository
from portal_runtime.auth import admin_guard
from portal_runtime.settings import ServiceSettings


class NormalizedStatus(BaseModel):
    article_id: str
    source: str
    external_id: str
    revision: int
    action: str
    normalized_at: datetime
    quality: QualityReport | None


def admin_router(settings: ServiceSettings) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1", tags=["admin"], dependencies=[Depends(admin_guard(settings))]
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

    return router
