"""HTTP routes: the operators' admin API and the public read API, feeds and sitemaps.

The public API is read-only and unauthenticated. Every GET answers with a strong ETag, a
Last-Modified where one is meaningful, Cache-Control, and 304 to a matching conditional request.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from portal_publishing import repository as repo
from portal_publishing import surrogate
from portal_publishing.caching import HTML, JSON, RSS, XML
from portal_publishing.deps import ApiDeps, Deps, Session
from portal_publishing.domain import CursorError
from portal_publishing.schemas import (
    ArticleFull,
    Gone,
    Home,
    Problem,
    SectionArticles,
    SiteIn,
    SiteOut,
    SubsiteArticles,
)
from portal_publishing.settings import Settings
from portal_publishing.views import NotFound, Retracted, Viewed
from portal_runtime.auth import require_admin
from portal_runtime.httpcache import StoredResponse, StoredResponseAnswer, request_target

CodeParam = Annotated[str, Path(max_length=64, description="Section or sub-site code.")]
SlugParam = Annotated[str, Path(max_length=200, description="The article's slug.")]
CursorParam = Annotated[
    str | None,
    Query(description="`next_cursor` of the previous page; omit for the first page."),
]
# The page sizes documented are the settings' defaults (PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX).
_PAGE_SIZE_DEFAULT = Settings.model_fields["page_size_default"].default
_PAGE_SIZE_MAX = Settings.model_fields["page_size_max"].default
LimitParam = Annotated[
    int | None,
    Query(
        ge=1,
        description=(
            f"Page size (default {_PAGE_SIZE_DEFAULT}); values above {_PAGE_SIZE_MAX} are capped."
        ),
    ),
]

_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the client's copy (If-None-Match/If-Modified-Since)"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown section, sub-site or article"}
}
_BAD_CURSOR: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The cursor is malformed, altered or of another list"}
}


def _xml_doc(media: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media.split(";")[0]: {}}, "description": "The document"}}


async def render(
    request: Request,
    deps: ApiDeps,
    produce: Callable[[], Awaitable[Viewed]],
    *,
    cache: str,
    media_type: str = JSON,
) -> Response:
    """The stored response of this request target, or ``produce``'s view rendered and stored."""
    # The representation depends on the target only (path and query), never on headers.
    # Stored pages are normally answered before routing (the service's front); a request
    # that reaches this point while the page was stored meanwhile is answered the same.
    key = request_target(request.scope)
    hit = deps.pages.get(key)
    if hit is not None:
        return StoredResponseAnswer(hit)
    token = deps.pages.token()  # before reading: a change from now on is not in this render
    try:
        viewed = await produce()
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except CursorError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"cursor: {exc}") from exc
    except Retracted as exc:
        viewed = _gone(exc)
        media_type = JSON
    body = viewed.body
    data = body.model_dump_json().encode() if isinstance(body, BaseModel) else body
    stored = StoredResponse.build(
        data,
        media_type=media_type,
        cache_control=cache,
        status=viewed.status_code,
        last_modified=viewed.last_modified,
        surrogate_keys=viewed.keys,
    )
    deps.pages.put(key, token, stored)
    return StoredResponseAnswer(stored)


def _gone(exc: Retracted) -> Viewed:
    gone = Gone(
        detail=f"article {exc.slug!r} was retracted",
        slug=exc.slug,
        retracted_at=exc.retracted_at,
    )
    return Viewed(
        gone.model_dump_json().encode(),
        None,
        status.HTTP_410_GONE,
        keys=tuple(surrogate.article(exc.article_id)),
    )


# --- admin -------------------------------------------------------------------------------------

# Its body limit (ADMIN_MAX_BODY_BYTES) is set where app.py includes it.
admin = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)])


@admin.put(
    "/site",
    response_model=SiteOut,
    summary="Replace the site structure",
    description=(
        "Blocks with their sections, the standard sections of every sub-site, and the "
        "sub-sites. Sections and sub-sites no longer listed become inactive (their articles "
        "stay stored). Called by `portal seed` with deploy/seed/site.yaml and sources.yaml."
    ),
    responses={401: {"model": Problem}, 413: {"model": Problem}},
)
async def put_site(site: SiteIn, db: Session, deps: Deps) -> SiteOut:
    await db.begin()
    await repo.replace_site(db, site)
    loaded = await repo.load_site(db)
    with deps.pages.writing():
        await db.commit()
    return loaded.out()


# --- public API --------------------------------------------------------------------------------

public = APIRouter(prefix="/v1", tags=["public"])


@public.get(
    "/site",
    response_model=SiteOut,
    summary="Blocks, sections and sub-sites",
    responses=_NOT_MODIFIED,
)
async def get_site(request: Request, db: Session, deps: Deps) -> Response:
    return await render(request, deps, lambda: deps.views.site(db), cache=deps.cache.lists)


@public.get(
    "/home",
    response_model=Home,
    summary="The home page: latest articles per block, and the leader pages",
    responses=_NOT_MODIFIED,
)
async def get_home(request: Request, db: Session, deps: Deps) -> Response:
    return await render(request, deps, lambda: deps.views.home(db), cache=deps.cache.lists)


@public.get(
    "/sections/{code}/articles",
    response_model=SectionArticles,
    summary="Articles of a section, newest first",
    responses={**_NOT_MODIFIED, **_NOT_FOUND, **_BAD_CURSOR},
)
async def get_section_articles(
    request: Request,
    code: CodeParam,
    db: Session,
    deps: Deps,
    cursor: CursorParam = None,
    limit: LimitParam = None,
) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.section_articles(db, code, cursor, limit),
        cache=deps.cache.lists,
    )


@public.get(
    "/subsites/{code}/articles",
    response_model=SubsiteArticles,
    summary="Articles of a partner sub-site, newest first",
    responses={**_NOT_MODIFIED, **_NOT_FOUND, **_BAD_CURSOR},
)
async def get_subsite_articles(
    request: Request,
    code: CodeParam,
    db: Session,
    deps: Deps,
    section: Annotated[
        str | None, Query(max_length=64, description="Only this section of the sub-site.")
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = None,
) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.subsite_articles(db, code, section, cursor, limit),
        cache=deps.cache.lists,
    )


@public.get(
    "/articles/{slug}",
    response_model=ArticleFull,
    summary="One article, in full",
    responses={
        **_NOT_MODIFIED,
        **_NOT_FOUND,
        410: {"model": Gone, "description": "The article was retracted"},
    },
)
async def get_article(request: Request, slug: SlugParam, db: Session, deps: Deps) -> Response:
    return await render(
        request, deps, lambda: deps.views.article(db, slug), cache=deps.cache.article
    )


# --- feeds, sitemaps and the public page -------------------------------------------------------

documents = APIRouter(tags=["feeds"])


@documents.get(
    "/rss/sections/{code}.xml",
    response_class=Response,
    summary="RSS 2.0 feed of a section (latest articles)",
    responses={**_xml_doc(RSS), **_NOT_MODIFIED, **_NOT_FOUND},
)
async def section_rss(request: Request, code: CodeParam, db: Session, deps: Deps) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.section_feed(db, code),
        cache=deps.cache.feed,
        media_type=RSS,
    )


@documents.get(
    "/rss/subsites/{code}.xml",
    response_class=Response,
    summary="RSS 2.0 feed of a sub-site (latest articles)",
    responses={**_xml_doc(RSS), **_NOT_MODIFIED, **_NOT_FOUND},
)
async def subsite_rss(request: Request, code: CodeParam, db: Session, deps: Deps) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.subsite_feed(db, code),
        cache=deps.cache.feed,
        media_type=RSS,
    )


@documents.get(
    "/sitemap.xml",
    response_class=Response,
    summary="Sitemap index: the article sitemaps and the news sitemap",
    responses={**_xml_doc(XML), **_NOT_MODIFIED},
)
async def sitemap_index(request: Request, db: Session, deps: Deps) -> Response:
    return await render(
        request, deps, lambda: deps.views.sitemap_index(db), cache=deps.cache.feed, media_type=XML
    )


@documents.get(
    "/sitemaps/articles-{n}.xml",
    response_class=Response,
    summary="Article sitemap number n (from 1; up to 50,000 URLs each)",
    responses={**_xml_doc(XML), **_NOT_MODIFIED, **_NOT_FOUND},
)
async def sitemap_articles(
    request: Request, n: Annotated[int, Path(ge=1, le=100_000)], db: Session, deps: Deps
) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.sitemap_articles(db, n),
        cache=deps.cache.feed,
        media_type=XML,
    )


@documents.get(
    "/sitemaps/news.xml",
    response_class=Response,
    summary="Google News sitemap: articles published in the last 48 hours",
    responses={**_xml_doc(XML), **_NOT_MODIFIED},
)
async def news_sitemap(request: Request, db: Session, deps: Deps) -> Response:
    return await render(
        request, deps, lambda: deps.views.news_sitemap(db), cache=deps.cache.lists, media_type=XML
    )


@documents.get(
    "/bai-viet/{slug}",
    response_class=Response,
    summary="The article's public page (minimal HTML; the target of feed and sitemap links)",
    responses={
        **_xml_doc(HTML),
        **_NOT_MODIFIED,
        **_NOT_FOUND,
        410: {"description": "Retracted"},
    },
)
async def article_page(request: Request, slug: SlugParam, db: Session, deps: Deps) -> Response:
    return await render(
        request,
        deps,
        lambda: deps.views.article_html(db, slug),
        cache=deps.cache.article,
        media_type=HTML,
    )
