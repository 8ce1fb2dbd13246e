"""Admin API of pull integration (``/admin/v1``, bearer ADMIN_TOKEN): feed configuration as
data, fetch now, pause and resume, backfill from sitemaps, held items, integration health."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from portal_ingest import domain as ingest_domain
from portal_ingest.api import SOURCE_CODE_PATTERN, Problem, ValidationProblem
from portal_ingest.pull.domain import ItemState
from portal_ingest.pull.health import PullHealth
from portal_ingest.pull.schemas import (
    BackfillIn,
    BackfillOut,
    FeedsIn,
    FeedsOut,
    FetchNowOut,
    HealthOverviewOut,
    ItemOut,
    ItemPage,
    PauseIn,
    PullStateOut,
    ReleaseIn,
    SourceHealthOut,
)
from portal_ingest.pull.usecases import InvalidConfig, PullAdmin, PullConflict
from portal_runtime.auth import make_admin_router

SourceCode = Annotated[
    str,
    Path(min_length=2, max_length=64, pattern=SOURCE_CODE_PATTERN, description="Source code."),
]
Days = Annotated[int, Query(ge=1, le=90, description="Local days of the items-per-section series.")]
WindowHours = Annotated[
    int, Query(ge=1, le=720, description="Hours over which the error rate is counted.")
]


def pull_admin(request: Request) -> PullAdmin:
    admin: PullAdmin = request.app.state.pull.admin
    return admin


def pull_health(request: Request) -> PullHealth:
    health: PullHealth = request.app.state.pull.health
    return health


Admin = Annotated[PullAdmin, Depends(pull_admin)]
Health = Annotated[PullHealth, Depends(pull_health)]


class ConflictProblem(BaseModel):
    detail: str
    code: str = "conflict"


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown source (or item, backfill)"}
}


router = make_admin_router(
    tags=["admin: pull integration"],
    responses={
        401: {"model": Problem, "description": "Admin token missing or wrong"},
        422: {"model": ValidationProblem, "description": "A field is invalid (named)"},
        **_NOT_FOUND,
    },
)


@router.get("/sources/{code}/feeds", summary="The source's feeds and sitemaps")
async def get_feeds(admin: Admin, code: SourceCode) -> FeedsOut:
    return await admin.get_feeds(code)


@router.put(
    "/sources/{code}/feeds",
    summary="Configure the source's feeds and sitemaps (replaces the list)",
    description=(
        "Connectors are data: kind (rss, atom, jsonfeed, sitemap, news-sitemap), url, a "
        "category mapping (source category -> portal section, on top of the source-wide "
        "`categories`), the feed's own `section` for unmapped items, `interval_s`, "
        "`fetch_full_page` (summary-only feeds), `retract_missing`. A connector with the "
        "same kind and url keeps its poll state. Every section must be allowed for the "
        "source (422 names the field). Items held for lack of a mapping that the new "
        "mapping covers are sent at once (`released_held_items`)."
    ),
)
async def put_feeds(admin: Admin, code: SourceCode, body: FeedsIn) -> FeedsOut:
    return await admin.put_feeds(code, body)


@router.post(
    "/sources/{code}/fetch",
    summary="Fetch the source now",
    description=(
        "Polls every enabled connector now, whatever the schedule, pause or circuit "
        "breaker, and answers with each poll's result (200). A poll still running after "
        "`wait_s` answers 202 with outcome 'running'; one already running, 'busy'."
    ),
    responses={
        202: {"model": FetchNowOut, "description": "Some polls still run"},
        409: {"model": ConflictProblem, "description": "The source has no feed"},
    },
)
async def fetch_now(
    admin: Admin,
    code: SourceCode,
    response: Response,
    wait_s: Annotated[float | None, Query(gt=0, le=600)] = None,
) -> FetchNowOut:
    result = await admin.fetch_now(code, wait_s)
    if not result.finished:
        response.status_code = status.HTTP_202_ACCEPTED
    return result


@router.post("/sources/{code}/pause", summary="Stop polling the source (until resumed)")
async def pause(admin: Admin, code: SourceCode, body: PauseIn | None = None) -> PullStateOut:
    return await admin.pause(code, body.reason if body else None)


@router.post("/sources/{code}/resume", summary="Poll the source again (from now)")
async def resume(admin: Admin, code: SourceCode) -> PullStateOut:
    return await admin.resume(code)


@router.post(
    "/sources/{code}/backfills",
    summary="Backfill a date range from the source's sitemaps",
    description=(
        "Queues a backfill: every address of the source's sitemap (or one sitemap "
        "connector) dated within the local dates `from`..`to` is fetched and sent like a "
        "polled item; items already received unchanged are skipped. Follow it with GET."
    ),
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"model": ConflictProblem, "description": "No sitemap connector"}},
)
async def backfill(admin: Admin, code: SourceCode, body: BackfillIn) -> BackfillOut:
    return await admin.request_backfill(code, body)


@router.get("/sources/{code}/backfills", summary="The source's backfills, newest first")
async def list_backfills(admin: Admin, code: SourceCode) -> list[BackfillOut]:
    return await admin.list_backfills(code)


@router.get("/sources/{code}/backfills/{backfill_id}", summary="One backfill and its counts")
async def get_backfill(admin: Admin, code: SourceCode, backfill_id: int) -> BackfillOut:
    return await admin.get_backfill(code, backfill_id)


@router.post("/sources/{code}/backfills/{backfill_id}/cancel", summary="Cancel a backfill")
async def cancel_backfill(admin: Admin, code: SourceCode, backfill_id: int) -> BackfillOut:
    return await admin.cancel_backfill(code, backfill_id)


@router.get(
    "/sources/{code}/feed-items",
    summary="The source's feed items, newest first (e.g. ?state=held&state=failed)",
)
async def list_items(
    admin: Admin,
    code: SourceCode,
    state: Annotated[list[ItemState] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ItemPage:
    before = None
    if cursor is not None:
        try:
            before = ingest_domain.decode_cursor(cursor)
        except ValueError as exc:
            raise InvalidConfig([("cursor", "not a cursor from a previous page")]) from exc
    return await admin.list_items(code, state or [], before, limit)


@router.post(
    "/sources/{code}/feed-items/{item_id}/release",
    summary="Send a held item to a section",
    responses={409: {"model": ConflictProblem, "description": "The item is not held"}},
)
async def release(admin: Admin, code: SourceCode, item_id: int, body: ReleaseIn) -> ItemOut:
    return await admin.release(code, item_id, body.section)


@router.get(
    "/sources/{code}/health",
    summary="Integration health of one source",
    description=(
        "State, last successful fetch, last new item, error rate and last error, recent "
        "errors, warnings (wrong declared encodings, recovered broken XML), held and "
        "failed items with reasons, the circuit breaker, each connector, and items per "
        "section per local day (standard sections always listed, zeros included)."
    ),
)
async def source_health(
    health: Health, code: SourceCode, days: Days = 14, window_hours: WindowHours = 24
) -> SourceHealthOut:
    return await health.source(code, days=days, window_hours=window_hours)


@router.get(
    "/health",
    summary="Integration health of every source (the editors' dashboard)",
)
async def overview(
    health: Health, days: Days = 14, window_hours: WindowHours = 24
) -> HealthOverviewOut:
    return await health.overview(days=days, window_hours=window_hours)


def install_pull_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidConfig)
    async def invalid(request: Request, exc: InvalidConfig) -> JSONResponse:
        errors = [{"field": f, "message": m, "type": "value_error"} for f, m in exc.problems]
        return JSONResponse(
            {"detail": str(exc), "errors": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT
        )

    @app.exception_handler(PullConflict)
    async def conflict(request: Request, exc: PullConflict) -> JSONResponse:
        return JSONResponse({"detail": exc.reason, "code": "conflict"}, status.HTTP_409_CONFLICT)
