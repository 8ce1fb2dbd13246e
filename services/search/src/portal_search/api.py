"""HTTP routes: the public search API and the operators' index administration."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aiokafka.errors import KafkaError
from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from opensearchpy.exceptions import TransportError
from pydantic import BaseModel, ConfigDict, Field

from portal_runtime.auth import require_admin
from portal_runtime.httpcache import StoredResponse, StoredResponseAnswer, request_target
from portal_runtime.logs import get_logger
from portal_runtime.replay import ReplayStalled
from portal_search.deps import Deps
from portal_search.domain import (
    DEFAULT_PAGE_SIZE,
    MAX_FILTER_VALUES,
    MAX_PAGE_SIZE,
    MAX_QUERY_CHARS,
    MAX_RELATED,
    SearchQuery,
    SearchValidationError,
    build_related_body,
    build_search_body,
    parse_response,
    parse_search,
)
from portal_search.index import IndexBusy
from portal_search.rebuild import RebuildJob

log = get_logger(__name__)


class _FromAttributes(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class HighlightOut(_FromAttributes):
    title: list[str] = Field(
        description="The title with matches in <mark>; safe HTML (all else escaped). "
        "Empty when the title has no match."
    )
    body: list[str] = Field(
        description="Up to 3 snippets of the body (or summary) with matches in <mark>; safe HTML."
    )


class HitOut(_FromAttributes):
    article_id: str
    title: str = Field(description="Plain text (escape it when rendering).")
    summary: str = Field(description="Plain text (escape it when rendering).")
    url_path: str
    slug: str
    section: str | None
    source: str
    published_at: str = Field(description="UTC, ISO 8601.")
    updated_at: str | None = None
    lead_image_url: str | None = None
    score: float | None = Field(description="Relevance score (also given when sorted by date).")
    highlight: HighlightOut


class FacetBucketOut(_FromAttributes):
    key: str
    count: int


class SearchResponse(_FromAttributes):
    total: int = Field(description="Number of matching articles.")
    page: int
    size: int
    hits: list[HitOut]
    facets: dict[str, list[FacetBucketOut]] = Field(
        description="Counts by 'section' and 'source'. Each facet applies the query, the date "
        "range and the other facet's filter, not its own (so every choice stays visible)."
    )


class RelatedOut(_FromAttributes):
    article_id: str
    title: str = Field(description="Plain text (escape it when rendering).")
    summary: str = Field(description="Plain text (escape it when rendering).")
    url_path: str
    slug: str
    section: str | None
    source: str
    published_at: str = Field(description="UTC, ISO 8601.")


class RelatedResponse(BaseModel):
    article_id: str
    items: list[RelatedOut] = Field(
        description="Best first; empty when the article is unknown or has no neighbours."
    )


class ValidationDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationResponse(BaseModel):
    detail: list[ValidationDetail]


class IndexInfoOut(BaseModel):
    alias: str = Field(description="The alias searches and writes go through.")
    index: str | None = Field(description="The physical index the alias points at.")
    documents: int = Field(description="Searchable (published) articles.")
    retracted: int = Field(description="Tombstones kept for retracted articles.")
    building: str | None = Field(description="The index a running reindex is filling, if any.")


class ReindexOut(BaseModel):
    index: str = Field(description="The new physical index, now behind the alias.")
    previous_index: str | None = Field(description="The index replaced (deleted).")
    documents: int = Field(description="Searchable (published) articles in the new index.")
    retracted: int
    replayed: int = Field(description="Messages of article.published replayed.")
    skipped: int = Field(description="Replayed messages that are not valid events.")
    took_ms: int


class ReindexJobOut(BaseModel):
    job_id: str
    state: Literal["running", "succeeded", "failed"]
    status_url: str = Field(description="Where to poll this job (GET).")
    started_at: str = Field(description="UTC, ISO 8601.")
    finished_at: str | None = None
    result: ReindexOut | None = Field(default=None, description="When it succeeded.")
    error: str | None = Field(default=None, description="When it failed.")


class ErrorOut(BaseModel):
    detail: str


def _unavailable(exc: Exception) -> HTTPException:
    log.warning("search_backend_error", error=repr(exc))
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "search is unavailable, retry later")


# --- public ------------------------------------------------------------------------------------

public = APIRouter(tags=["search"])


@public.get(
    "/v1/search",
    response_model=SearchResponse,
    summary="Search published articles",
    description=(
        "Full-text search over titles, summaries and bodies, with or without Vietnamese "
        "diacritics ('dang cong san' finds 'Đảng Cộng sản'); words typed with their marks "
        "rank matches with the same marks higher. Both tone-mark placements ('hoà'/'hòa') "
        "match alike. Without `q`, lists the newest articles matching the filters."
    ),
    responses={
        422: {"model": ValidationResponse, "description": "A parameter is invalid"},
        503: {"model": ErrorOut, "description": "OpenSearch does not answer"},
    },
)
async def search(
    request: Request,
    deps: Deps,
    q: str = Query(
        "", max_length=MAX_QUERY_CHARS, description="Words to find; empty lists newest."
    ),
    section: list[str] = Query(
        default_factory=list,
        description=f"Section code(s) to keep (repeat for several, at most {MAX_FILTER_VALUES}).",
    ),
    source: list[str] = Query(
        default_factory=list, description="Source (agency) code(s) to keep (repeatable)."
    ),
    from_: str | None = Query(
        None,
        alias="from",
        max_length=40,
        description="Published at or after: ISO date or date-time; no zone = Vietnam time.",
    ),
    to: str | None = Query(
        None,
        max_length=40,
        description="Published at or before; a bare date includes that whole day.",
    ),
    sort: Literal["relevance", "date"] = Query(
        "relevance", description="'relevance' (newest first without q) or 'date'."
    ),
    page: int = Query(1, ge=1, le=10_000),
    size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
) -> Response:
    try:
        query = parse_search(
            q=q,
            sections=section,
            sources=source,
            date_from=from_,
            date_to=to,
            sort=sort,
            page=page,
            size=size,
        )
    except SearchValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[p.as_detail() for p in exc.problems],
        ) from None
    token = deps.results.token()
    answer = await _search_answer(deps, query)
    # Kept ready to send for this exact request target too (answered in the front).
    stored = StoredResponse.build(answer, media_type="application/json", cache_control=None)
    deps.results.keep_response(request_target(request.scope), token, stored)
    return StoredResponseAnswer(stored)


async def _search_answer(deps: Deps, query: SearchQuery) -> bytes:
    """The answer's JSON, shared by equal searches (the OpenSearch request is the normalised
    search)."""
    body = build_search_body(query)
    key = json.dumps(body, sort_keys=True, ensure_ascii=False)

    async def ask_opensearch() -> bytes:
        raw = await deps.index.search(body)
        return SearchResponse.model_validate(parse_response(raw, query)).model_dump_json().encode()

    try:
        return await deps.results.answer(key, ask_opensearch)
    except (TransportError, OSError) as exc:
        raise _unavailable(exc) from exc


@public.get(
    "/v1/articles/{article_id}/related",
    response_model=RelatedResponse,
    summary="Published articles related to one article",
    description=(
        "Articles about the same things (their words weigh by how rare they are across the "
        "portal), best first; never the article itself. For 'related items' on an article "
        "page."
    ),
    responses={
        422: {"model": ValidationResponse, "description": "A parameter is invalid"},
        503: {"model": ErrorOut, "description": "OpenSearch does not answer"},
    },
)
async def related(
    deps: Deps,
    article_id: str = Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$"),
    size: int = Query(5, ge=1, le=MAX_RELATED),
) -> Response:
    body = build_related_body(article_id, index=deps.index.alias, size=size)
    key = json.dumps(body, sort_keys=True, ensure_ascii=False)
    answer = deps.results.get(key)
    if answer is None:
        token = deps.results.token()
        answer = await _related_answer(deps, article_id, body)
        deps.results.put(key, token, answer)
    return Response(answer, media_type="application/json")


async def _related_answer(deps: Deps, article_id: str, body: dict[str, Any]) -> bytes:
    try:
        raw = await deps.index.search(body)
    except (TransportError, OSError) as exc:
        raise _unavailable(exc) from exc
    items = [
        RelatedOut.model_validate({k: hit["_source"].get(k) for k in RelatedOut.model_fields})
        for hit in raw.get("hits", {}).get("hits", [])
    ]
    return RelatedResponse(article_id=article_id, items=items).model_dump_json().encode()


# --- admin -------------------------------------------------------------------------------------

admin = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)])
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Admin token missing or wrong"},
    503: {"model": ErrorOut, "description": "Admin API not configured or OpenSearch down"},
}


@admin.get(
    "/index",
    response_model=IndexInfoOut,
    summary="The alias, the index behind it and its counts",
    responses=_AUTH_ERRORS,
)
async def index_info(deps: Deps) -> IndexInfoOut:
    try:
        info = await deps.index.info()
    except (TransportError, OSError) as exc:
        raise _unavailable(exc) from exc
    return IndexInfoOut(**info.__dict__)


@admin.post(
    "/reindex",
    response_model=ReindexOut | ReindexJobOut,
    summary="Rebuild the index from article.published, with no downtime",
    description=(
        "Creates a new physical index, replays the compacted article.published topic into "
        "it while live events are written to both, then moves the alias atomically and "
        "deletes the old index. Searches keep working throughout. Answers when done; with "
        "the header `Prefer: respond-async` it answers 202 at once with a job to poll "
        "(`status_url`, also in `Location`): a big topic takes longer than a request."
    ),
    responses={
        **_AUTH_ERRORS,
        202: {"model": ReindexJobOut, "description": "Started in the background (asked for)"},
        409: {"model": ErrorOut, "description": "A reindex is already running"},
    },
)
async def reindex(
    deps: Deps,
    request: Request,
    response: Response,
    prefer: Annotated[str | None, Header(max_length=200)] = None,
) -> ReindexOut | ReindexJobOut:
    if prefer is not None and "respond-async" in prefer.lower():
        try:
            job = deps.rebuilder.start_job()
        except IndexBusy as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        out = _job_out(job, request)
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = out.status_url
        return out
    try:
        result = await deps.rebuilder.run()
    except IndexBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except (TransportError, OSError, KafkaError, ReplayStalled) as exc:
        raise _unavailable(exc) from exc
    return ReindexOut(**result.__dict__)


@admin.get(
    "/reindex/jobs/{job_id}",
    response_model=ReindexJobOut,
    summary="How a reindex started with `Prefer: respond-async` is going",
    responses={**_AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such job here"}},
)
async def reindex_job(
    deps: Deps,
    request: Request,
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> ReindexJobOut:
    job = deps.rebuilder.job(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such reindex job in this instance")
    return _job_out(job, request)


def _job_out(job: RebuildJob, request: Request) -> ReindexJobOut:
    return ReindexJobOut(
        job_id=job.id,
        state=job.state,
        status_url=str(request.url_for("reindex_job", job_id=job.id).path),
        started_at=job.started_at.isoformat(),
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        result=ReindexOut(**job.result.__dict__) if job.result else None,
        error=job.error,
    )
