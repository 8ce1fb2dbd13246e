"""The reading pages: home, sections, sub-sites, articles, search; and /media/ passed through.

All public and cacheable (``Web.content``), each labelled with the surrogate keys of what it
shows, so the edge cache purges it when that changes.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.
import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_web import forms, views
from portal_web.apis import ApiError, BadRequest, Gone, NotFound, Refused, Unavailable, seg
from portal_web.deps import WebDep
from portal_web.pages import NOT_FOUND, PageError, Web, unavailable
from portal_web.views import EngagementBlock, SearchView

CODE = r"^[a-z0-9][a-z0-9-]*$"
CodePath = Annotated[str, Path(pattern=CODE, max_length=64)]
SlugPath = Annotated[str, Path(min_length=1, max_length=200)]
CursorQuery = Annotated[str | None, Query(alias="tiep", max_length=500)]
PAGE_SIZE = 20
_MEDIA_KEY = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,300}$")
_MEDIA_PASS = ("content-type", "etag", "cache-control", "last-modified", "content-length")


async def _optional(call: Any) -> Any:
    """A side block: None when its API does not answer (the page still renders)."""
    try:
        return await call
    except (ApiError, ValueError):
        return None


router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, web: WebDep) -> Response:
    site, home_data, block = await _home_parts(web, request)
    view = views.home_view(site, home_data, block)
    return web.page(
        request,
        "home.html",
        site=site,
        policy=web.content,
        keys=view.keys,
        active="home",
        home=view,
        canonical=web.settings.public_base_url + "/",
    )


async def _home_parts(
    web: Web, request: Request
) -> tuple[views.Site, dict[str, Any], EngagementBlock]:
    """The site, publishing's home and the engagement block, read in parallel. Publishing (or
    the site) not answering is the page's 503; a side block not answering is left out."""
    apis = web.apis
    ip = web.client_ip(request)

    def side(path: str, **params: Any) -> Any:
        return _optional(apis.recent(apis.engagement, path, params=params, client_ip=ip))

    site, home_data, topics, questions, dialogues, documents, threads = await asyncio.gather(
        web.site(request),
        apis.publishing.get("/v1/home", client_ip=ip),
        _qa_topics(web, ip),
        side("/v1/qa/questions", size=4),
        side("/v1/dialogues"),
        side("/v1/feedback/documents", phase="open"),
        side("/v1/forum/threads", size=4),
        return_exceptions=True,
    )
    if isinstance(site, BaseException) or isinstance(home_data, BaseException):
        failed = site if isinstance(site, BaseException) else home_data
        assert isinstance(failed, BaseException)
        if isinstance(failed, PageError | Unavailable | NotFound):
            raise unavailable() from failed
        raise failed
    assert not isinstance(topics, BaseException)
    block = EngagementBlock(
        questions=[views.question_view(q, topics=topics, site=site) for q in questions["items"]]
        if isinstance(questions, dict)
        else None,
        dialogues=views.dialogue_order(views.dialogue_view(d) for d in dialogues)[:3]
        if isinstance(dialogues, list)
        else None,
        documents=[views.document_view(d) for d in documents][:3]
        if isinstance(documents, list)
        else None,
        threads=[views.post_view(t) for t in threads["items"]]
        if isinstance(threads, dict)
        else None,
    )
    return site, home_data, block


@router.get("/chuyen-muc/{code}")
async def section(
    request: Request, web: WebDep, code: CodePath, cursor: CursorQuery = None
) -> Response:
    if code in views.ENGAGEMENT_PATHS:
        return RedirectResponse(views.ENGAGEMENT_PATHS[code], status_code=301)
    site, listing = await asyncio.gather(
        web.site(request),
        _listing(web, request, f"/v1/sections/{seg(code)}/articles", {"cursor": cursor}),
    )
    info = site.sections.get(code)
    if info is None:
        raise NOT_FOUND
    crumbs = [
        views.Link("Trang chủ", "/"),
        views.Link(site.block_name(info.block), f"/#khoi-{info.block}"),
    ]
    return web.page(
        request,
        "listing.html",
        site=site,
        policy=web.content,
        keys=["site", f"section:{code}"],
        active=f"section:{code}",
        heading=info.name,
        leader=info.kind == views.LEADER_KIND,
        breadcrumb=crumbs,
        tabs=[],
        teasers=[site.teaser(a) for a in listing["items"]],
        pager=views.cursor_pager(
            request.url.path,
            {},
            next_cursor=listing.get("next_cursor"),
            on_first_page=cursor is None,
        ),
        canonical=web.settings.public_base_url + request.url.path,
        feed=f"/rss/sections/{code}.xml",
    )


@router.get("/chuyen-trang")
async def subsites(request: Request, web: WebDep) -> Response:
    site = await web.site(request)
    return web.page(
        request,
        "subsites.html",
        site=site,
        policy=web.content,
        keys=["site"],
        active="subsites",
        groups=site.subsites_by_kind(),
        canonical=web.settings.public_base_url + "/chuyen-trang",
    )


@router.get("/chuyen-trang/{code}")
async def subsite(
    request: Request,
    web: WebDep,
    code: CodePath,
    section: Annotated[str | None, Query(alias="muc", pattern=CODE, max_length=64)] = None,
    cursor: CursorQuery = None,
) -> Response:
    site, listing = await asyncio.gather(
        web.site(request),
        _listing(
            web,
            request,
            f"/v1/subsites/{seg(code)}/articles",
            {"section": section, "cursor": cursor},
        ),
    )
    info = site.subsites.get(code)
    if info is None:
        raise NOT_FOUND
    base = f"/chuyen-trang/{code}"
    tabs = [views.Link("Tất cả", base, section is None)] + [
        views.Link(site.section_name(s), f"{base}?muc={s}", section == s)
        for s in site.standard_sections
    ]
    return web.page(
        request,
        "listing.html",
        site=site,
        policy=web.content,
        keys=["site", f"subsite:{code}"],
        active="subsites",
        heading=info.name,
        leader=False,
        breadcrumb=[views.Link("Trang chủ", "/"), views.Link("Chuyên trang", "/chuyen-trang")],
        tabs=tabs,
        teasers=[site.teaser(a) for a in listing["items"]],
        pager=views.cursor_pager(
            base,
            {"muc": section},
            next_cursor=listing.get("next_cursor"),
            on_first_page=cursor is None,
        ),
        canonical=web.settings.public_base_url + base + (f"?muc={section}" if section else ""),
        feed=f"/rss/subsites/{code}.xml",
    )


@router.get("/bai-viet/{slug}")
async def article(request: Request, web: WebDep, slug: SlugPath) -> Response:
    apis = web.apis
    ip = web.client_ip(request)
    try:
        site, item = await asyncio.gather(
            web.site(request),
            apis.publishing.get(f"/v1/articles/{seg(slug)}", client_ip=ip),
        )
    except NotFound as exc:
        raise NOT_FOUND from exc
    except Gone as exc:
        return await _gone(web, request, exc)
    except Unavailable as exc:
        raise unavailable() from exc
    view = views.article_view(
        site, item, base_url=web.settings.public_base_url, site_name=web.settings.site_name
    )
    aid = seg(view.article_id)
    comments, related = await asyncio.gather(
        _optional(
            apis.engagement.get(f"/v1/articles/{aid}/comments", params={"size": 50}, client_ip=ip)
        ),
        _optional(
            apis.recent(
                apis.search, f"/v1/articles/{aid}/related", params={"size": 5}, client_ip=ip
            )
        ),
    )
    return web.page(
        request,
        "article.html",
        site=site,
        policy=web.content,
        keys=view.keys,
        active=f"section:{item['section']['code']}" if item.get("section") else None,
        article=view,
        comments=[views.post_view(c) for c in comments["items"]] if comments else [],
        comments_total=comments["total"] if comments else 0,
        related=[
            views.Link(r["title"], views.article_href(r)) for r in (related or {}).get("items", [])
        ],
        comment_action=f"/gui/binh-luan/{seg(slug)}",
        spec=forms.COMMENT,
        canonical=view.canonical,
    )


@router.get("/tim-kiem")
async def search(
    request: Request,
    web: WebDep,
    q: Annotated[str, Query(max_length=200)] = "",
    sections: Annotated[list[str], Query(alias="chuyen-muc", max_length=20)] = [],  # noqa: B006
    sources: Annotated[list[str], Query(alias="nguon", max_length=20)] = [],  # noqa: B006
    date_from: Annotated[str, Query(alias="tu-ngay", max_length=10)] = "",
    date_to: Annotated[str, Query(alias="den-ngay", max_length=10)] = "",
    sort: Annotated[str, Query(alias="sap-xep", pattern=r"^(relevance|date)$")] = "relevance",
    page: Annotated[int, Query(alias="trang", ge=1, le=1000)] = 1,
) -> Response:
    site = await web.site(request)
    form = SearchView(
        q=q.strip(),
        sections=[s for s in sections if re.match(CODE, s)],
        sources=[s for s in sources if re.match(CODE, s)],
        date_from=date_from,
        date_to=date_to,
        sort=sort,
        page=page,
        total=0,
    )
    asked = bool(form.q or form.filtered)
    problem: str | None = None
    answer: dict[str, Any] | None = None
    if asked:
        try:
            answer = await _search_answer(web, request, form)
        except Refused:
            problem = "Điều kiện tìm kiếm chưa hợp lệ: kiểm tra lại ngày (dạng ngày/tháng/năm) hoặc số trang."
        except Unavailable as exc:
            raise unavailable() from exc
    return web.page(
        request,
        "search.html",
        site=site,
        policy=web.live,
        keys=["site"],
        status=422 if problem else 200,
        active="search",
        search=views.search_view(site, form, answer),
        asked=asked and problem is None,
        problem=problem,
        sections=[s for s in site.sections.values() if s.kind not in (views.ENGAGEMENT_KIND,)],
        robots="noindex, follow",
        canonical=None,
    )


async def _search_answer(web: Web, request: Request, form: SearchView) -> dict[str, Any]:
    answer: dict[str, Any] = await web.apis.search.get(
        "/v1/search",
        params={
            "q": form.q,
            "section": form.sections,
            "source": form.sources,
            "from": form.date_from or None,
            "to": form.date_to or None,
            "sort": form.sort,
            "page": form.page,
            "size": views.SEARCH_PAGE_SIZE,
        },
        client_ip=web.client_ip(request),
    )
    return answer


@router.get("/media/{key:path}")
async def media(request: Request, web: WebDep, key: str) -> Response:
    if not _MEDIA_KEY.match(key):
        return Response("Not found\n", status_code=404, media_type="text/plain")
    headers = {}
    if inm := request.headers.get("if-none-match"):
        headers["If-None-Match"] = inm[:200]
    upstream = await web.apis.publishing.raw_get(f"/media/{key}", headers)
    if upstream.status_code not in (200, 304):
        return Response("Not found\n", status_code=404, media_type="text/plain")
    out = {k: v for k, v in upstream.headers.items() if k.lower() in _MEDIA_PASS}
    if upstream.status_code == 304:
        out.pop("content-length", None)
        return Response(status_code=304, headers=out)
    return Response(upstream.content, headers=out)


@router.get("/robots.txt")
async def robots(web: WebDep) -> Response:
    base = web.settings.public_base_url
    body = f"User-agent: *\nDisallow: /gui/\nDisallow: /tim-kiem\n\nSitemap: {base}/sitemap.xml\n"
    return Response(
        body,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": web.content.header()},
    )


@router.get("/static/{name:path}")
async def static(request: Request, web: WebDep, name: str) -> Response:
    return web.templates.assets.respond(request, name)


async def _listing(web: Web, request: Request, path: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        found: dict[str, Any] = await web.apis.publishing.get(
            path, params={**params, "limit": PAGE_SIZE}, client_ip=web.client_ip(request)
        )
    except NotFound as exc:
        raise NOT_FOUND from exc
    except BadRequest as exc:
        raise PageError(
            400,
            "Liên kết trang không hợp lệ",
            "Đường dẫn phân trang này đã bị sửa hoặc không còn dùng được. Hãy về trang đầu của "
            "chuyên mục.",
        ) from exc
    except Unavailable as exc:
        raise unavailable() from exc
    return found


async def _qa_topics(web: Web, ip: str | None) -> dict[str, str]:
    topics = await _optional(web.apis.recent(web.apis.engagement, "/v1/qa/topics", client_ip=ip))
    return {t["code"]: t["name"] for t in topics or []}


async def _gone(web: Web, request: Request, exc: Gone) -> Response:
    site = await web.site_or_none(request)
    body = exc.detail if isinstance(exc.detail, dict) else {}
    return web.page(
        request,
        "gone.html",
        site=site,
        policy=web.live,
        keys=["site"],
        status=410,
        retracted_at=body.get("retracted_at"),
        robots="noindex",
        canonical=None,
    )
