"""The engagement block's public pages: online Q&A, dialogues (live), feedback, the forum.

Public and cacheable like the reading pages. Their forms carry no token (see ``csrf``): they
post to ``/gui/...``, whose pages are private. A live dialogue's answers arrive over
server-sent events that this website relays from engagement, each rendered here as the same
HTML fragment the transcript uses; readers without JavaScript get a page that refreshes.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from httpx_sse import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.responses import Response

from portal_web import forms, views
from portal_web.apis import NotFound, Unavailable, seg
from portal_web.deps import WebDep
from portal_web.pages import NOT_FOUND, Web, unavailable

CODE = r"^[a-z0-9][a-z0-9-]*$"
CodePath = Annotated[str, Path(pattern=CODE, max_length=64)]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]
PageQuery = Annotated[int, Query(alias="trang", ge=1, le=500)]
QA_PAGE = 20
FORUM_PAGE = 20
REPLIES_PAGE = 50
LIVE_PING_S = 15


router = APIRouter(include_in_schema=False)


async def _get(web: Web, request: Request, path: str, **params: Any) -> Any:
    try:
        return await web.apis.engagement.get(path, params=params, client_ip=web.client_ip(request))
    except NotFound as exc:
        raise NOT_FOUND from exc
    except Unavailable as exc:
        raise unavailable() from exc


async def _topics(web: Web, request: Request, path: str) -> list[dict[str, Any]]:
    try:
        found: list[dict[str, Any]] = await web.apis.recent(
            web.apis.engagement, path, client_ip=web.client_ip(request)
        )
    except Unavailable as exc:
        raise unavailable() from exc
    return found


# --- online Q&A -------------------------------------------------------------------------------


async def _qa_list(
    web: Web, request: Request, *, topic: str | None, page: int, path: str
) -> Response:
    site, topic_list, found = await asyncio.gather(
        web.site(request),
        _topics(web, request, "/v1/qa/topics"),
        _get(web, request, "/v1/qa/questions", topic=topic, page=page, size=QA_PAGE),
    )
    names = {t["code"]: t["name"] for t in topic_list}
    if topic is not None and topic not in names:
        raise NOT_FOUND
    return web.page(
        request,
        "qa.html",
        site=site,
        policy=web.content,
        keys=["site", "qa"],
        active="hoi-dap",
        topics=topic_list,
        topic=topic,
        topic_name=names.get(topic or ""),
        questions=[views.question_view(q, topics=names, site=site) for q in found["items"]],
        total=found["total"],
        pages=views.page_links(path, {}, page=page, total=found["total"], size=QA_PAGE),
        canonical=web.settings.public_base_url + path,
    )


@router.get("/hoi-dap")
async def qa(request: Request, web: WebDep, page: PageQuery = 1) -> Response:
    return await _qa_list(web, request, topic=None, page=page, path="/hoi-dap")


@router.get("/hoi-dap/linh-vuc/{code}")
async def qa_topic(request: Request, web: WebDep, code: CodePath, page: PageQuery = 1) -> Response:
    return await _qa_list(web, request, topic=code, page=page, path=f"/hoi-dap/linh-vuc/{code}")


@router.get("/hoi-dap/cau-hoi/{question_id}")
async def question(request: Request, web: WebDep, question_id: IdPath) -> Response:
    site, topic_list, item = await asyncio.gather(
        web.site(request),
        _topics(web, request, "/v1/qa/topics"),
        _get(web, request, f"/v1/qa/questions/{seg(question_id)}"),
    )
    view = views.question_view(item, topics={t["code"]: t["name"] for t in topic_list}, site=site)
    return web.page(
        request,
        "question.html",
        site=site,
        policy=web.content,
        keys=["site", "qa"],
        active="hoi-dap",
        q=view,
        canonical=web.settings.public_base_url + view.href,
    )


@router.get("/hoi-dap/co-quan")
async def qa_agencies(request: Request, web: WebDep) -> Response:
    site, rows = await asyncio.gather(web.site(request), _get(web, request, "/v1/qa/agencies"))
    return web.page(
        request,
        "agencies.html",
        site=site,
        policy=web.content,
        keys=["site", "qa"],
        active="hoi-dap",
        agencies=views.agency_times(rows, site),
        canonical=web.settings.public_base_url + "/hoi-dap/co-quan",
    )


# --- online dialogues -------------------------------------------------------------------------


@router.get("/doi-thoai")
async def dialogues(request: Request, web: WebDep) -> Response:
    site, rows = await asyncio.gather(web.site(request), _get(web, request, "/v1/dialogues"))
    listed = views.dialogue_order(views.dialogue_view(d) for d in rows)
    return web.page(
        request,
        "dialogues.html",
        site=site,
        policy=web.live,
        keys=["site", *(f"dialogue:{d.code}" for d in listed)],
        active="doi-thoai",
        dialogues=listed,
        canonical=web.settings.public_base_url + "/doi-thoai",
    )


@router.get("/doi-thoai/{code}")
async def dialogue(
    request: Request,
    web: WebDep,
    code: CodePath,
    refresh: Annotated[str | None, Query(alias="tu-dong", max_length=1)] = None,
) -> Response:
    site, found = await asyncio.gather(
        web.site(request), _get(web, request, f"/v1/dialogues/{seg(code)}/transcript")
    )
    view = views.dialogue_view(found["dialogue"])
    entries = [views.entry_view(e) for e in found["entries"]]
    headers = None
    auto = refresh == "1" and view.phase == "live"
    if auto:
        headers = {"Refresh": str(web.settings.live_refresh_s)}
    return web.page(
        request,
        "dialogue.html",
        site=site,
        policy=web.content if view.phase == "ended" else web.live,
        keys=["site", f"dialogue:{code}"],
        active="doi-thoai",
        headers=headers,
        d=view,
        entries=entries,
        complete=found.get("complete", False),
        auto_refresh=auto,
        refresh_s=web.settings.live_refresh_s,
        form=None,
        spec=forms.DIALOGUE_QUESTION,
        canonical=web.settings.public_base_url + view.href,
    )


@router.get("/doi-thoai/{code}/truc-tiep")
async def dialogue_live(
    request: Request,
    web: WebDep,
    code: CodePath,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^\d+$")
    ] = None,
) -> Response:
    stack = contextlib.AsyncExitStack()
    try:
        events = await stack.enter_async_context(
            web.apis.engagement.events(
                f"/v1/dialogues/{seg(code)}/live",
                client_ip=web.client_ip(request),
                last_event_id=last_event_id,
            )
        )
    except NotFound:
        await stack.aclose()
        return Response("Not found\n", status_code=404, media_type="text/plain")
    except Exception:
        await stack.aclose()
        return Response(
            "Live stream unavailable\n",
            status_code=503,
            media_type="text/plain",
            headers={"Retry-After": "10"},
        )
    return EventSourceResponse(
        _relay(web, events, stack),
        ping=LIVE_PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _relay(
    web: Web, events: AsyncIterator[ServerSentEvent], stack: contextlib.AsyncExitStack
) -> AsyncIterator[dict[str, Any]]:
    """Engagement's live events as the page takes them; closes the upstream stream at the end."""
    try:
        async for event in events:
            out = live_event(web, event.event, event.data)
            if out is not None:
                if event.id:
                    out["id"] = event.id
                yield out
    finally:
        await stack.aclose()


# --- feedback on Party building ---------------------------------------------------------------


@router.get("/gop-y")
async def documents(request: Request, web: WebDep) -> Response:
    site, rows = await asyncio.gather(
        web.site(request), _get(web, request, "/v1/feedback/documents")
    )
    listed = [views.document_view(d) for d in rows]
    return web.page(
        request,
        "documents.html",
        site=site,
        policy=web.content,
        keys=["site", *(f"feedback:{d.code}" for d in listed)],
        active="gop-y",
        documents=listed,
        canonical=web.settings.public_base_url + "/gop-y",
    )


@router.get("/gop-y/{code}")
async def document(request: Request, web: WebDep, code: CodePath) -> Response:
    site, item = await asyncio.gather(
        web.site(request), _get(web, request, f"/v1/feedback/documents/{seg(code)}")
    )
    view = views.document_view(item)
    return web.page(
        request,
        "document.html",
        site=site,
        policy=web.content,
        keys=["site", f"feedback:{code}"],
        active="gop-y",
        doc=view,
        canonical=web.settings.public_base_url + view.href,
    )


# --- the forum --------------------------------------------------------------------------------


@router.get("/dien-dan")
async def forum(request: Request, web: WebDep, page: PageQuery = 1) -> Response:
    site, topic_list, found = await asyncio.gather(
        web.site(request),
        _topics(web, request, "/v1/forum/topics"),
        _get(web, request, "/v1/forum/threads", page=page, size=FORUM_PAGE),
    )
    return web.page(
        request,
        "forum.html",
        site=site,
        policy=web.content,
        keys=["site", "forum"],
        active="dien-dan",
        topics=topic_list,
        topic=None,
        threads=[views.post_view(t) for t in found["items"]],
        pages=views.page_links("/dien-dan", {}, page=page, total=found["total"], size=FORUM_PAGE),
        canonical=web.settings.public_base_url + "/dien-dan",
    )


@router.get("/dien-dan/{code}")
async def forum_topic(
    request: Request, web: WebDep, code: CodePath, page: PageQuery = 1
) -> Response:
    site, topic_list, found = await asyncio.gather(
        web.site(request),
        _topics(web, request, "/v1/forum/topics"),
        _get(web, request, f"/v1/forum/topics/{seg(code)}/threads", page=page, size=FORUM_PAGE),
    )
    topic = next((t for t in topic_list if t["code"] == code), None)
    if topic is None:
        raise NOT_FOUND
    path = f"/dien-dan/{code}"
    return web.page(
        request,
        "forum.html",
        site=site,
        policy=web.content,
        keys=["site", "forum"],
        active="dien-dan",
        topics=topic_list,
        topic=topic,
        threads=[views.post_view(t) for t in found["items"]],
        pages=views.page_links(path, {}, page=page, total=found["total"], size=FORUM_PAGE),
        canonical=web.settings.public_base_url + path,
    )


@router.get("/dien-dan/bai/{thread_id}")
async def thread(request: Request, web: WebDep, thread_id: IdPath, page: PageQuery = 1) -> Response:
    site, topic_list, found = await asyncio.gather(
        web.site(request),
        _topics(web, request, "/v1/forum/topics"),
        _get(web, request, f"/v1/forum/threads/{seg(thread_id)}", page=page, size=REPLIES_PAGE),
    )
    head = views.post_view(found["thread"])
    topic_code = found["thread"].get("topic")
    topic = next((t for t in topic_list if t["code"] == topic_code), None)
    path = f"/dien-dan/bai/{thread_id}"
    replies = found["replies"]
    return web.page(
        request,
        "thread.html",
        site=site,
        policy=web.content,
        keys=["site", "forum"],
        active="dien-dan",
        thread=head,
        topic=topic,
        replies=[views.post_view(r, thread_href=path) for r in replies["items"]],
        pages=views.page_links(path, {}, page=page, total=replies["total"], size=REPLIES_PAGE),
        form=None,
        spec=forms.REPLY,
        canonical=web.settings.public_base_url + path,
    )


def live_event(web: Web, event: str, data: str) -> dict[str, Any] | None:
    """One event of engagement's live stream as the page's script takes it: the phase with its
    Vietnamese label, or a question/answer rendered as the transcript's HTML fragment."""
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if event == "status":
        phase = str(payload.get("phase", ""))
        label = views.PHASE_LABELS.get(phase, phase)
        return {"event": "status", "data": json.dumps({"phase": phase, "label": label})}
    if event in ("question", "answer"):
        entry = views.entry_view(payload)
        return {
            "event": "entry",
            "data": web.templates.fragment("_entry.html", entry=entry),
        }
    if event == "withdrawn":
        return {"event": "withdrawn", "data": str(payload.get("question_id", ""))}
    return None
