"""The article journey in the editors' desk: /desk/journey (search) and /desk/journey/{id}.

Every stage one article passed (ingest's admin API, called server-side with ADMIN_TOKEN) with
times and the time between stages, and its trace(s) drawn as a waterfall from Jaeger's query API.
Ingest answering is required (the journey is the page); Jaeger is not: when it is not set up or
does not answer, the page says so and shows the journey alone.
"""

# No `from __future__ import annotations`: FastAPI must see the routers' local dependencies.
import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation import repository as repo
from portal_moderation.desk.auth import DESK_PREFIX, Visitor
from portal_moderation.desk.item import DeskDeps, DeskError
from portal_moderation.desk.journey_view import (
    STATUS_LABELS,
    JourneyView,
    article_id_of,
    gap_text,
    journey_view,
    may_see_journey,
)
from portal_moderation.desk.waterfall import (
    SCALE,
    TraceFormatError,
    Waterfall,
    duration_text,
    restrict_to_source,
    waterfall_from_otlp,
)
from portal_moderation.domain import DeskPage, Editor, Forbidden, Role, authorize_page
from portal_moderation.jaeger import JaegerQuery, TraceUnavailable
from portal_moderation.peers import PeerRefused, PeerUnavailable

PAGE = f"{DESK_PREFIX}/journey"
NAV_KEY = "journey"
NOT_FOUND = "Không tìm thấy bài viết có mã này."

TRACE_PROBLEMS = {
    "not_configured": "Máy chủ truy vết (Jaeger) chưa được cấu hình cho bàn biên tập "
    "(JAEGER_QUERY_URL).",
    "unreachable": "Không kết nối được máy chủ truy vết (Jaeger). Hãy thử lại sau.",
    "not_found": "Máy chủ truy vết chưa nhận (hoặc không còn lưu) dấu vết này. Dấu vết đến sau "
    "vài giây và được giữ 72 giờ.",
    "too_large": "Dấu vết quá lớn để hiển thị trên trang.",
    "invalid": "Máy chủ truy vết trả về dữ liệu không đọc được.",
}


@dataclass(frozen=True)
class TracePanel:
    trace_id: str
    waterfall: Waterfall | None
    problem: str | None  # Vietnamese, when the trace cannot be shown


def journey_router(deps: DeskDeps, jaeger: JaegerQuery) -> APIRouter:
    router = APIRouter(prefix=PAGE, include_in_schema=False)
    auth, templates = deps.auth, deps.templates
    Signed = Annotated[Visitor, Depends(auth.editor)]

    def editor_of(who: Visitor) -> Editor:
        assert who.editor is not None
        try:
            authorize_page(who.editor, DeskPage.QUEUE)
        except Forbidden as exc:
            raise DeskError(
                403, "Tài khoản của bạn không được phép làm việc này.", str(exc)
            ) from exc
        return who.editor

    async def panel(editor: Editor, trace_id: str) -> TracePanel:
        try:
            answer = await jaeger.trace(trace_id)
            waterfall = waterfall_from_otlp(answer, trace_id)
        except TraceUnavailable as exc:
            return TracePanel(trace_id, None, TRACE_PROBLEMS.get(exc.reason, exc.reason))
        except TraceFormatError:
            return TracePanel(trace_id, None, TRACE_PROBLEMS["invalid"])
        if editor.role is Role.AGENCY_PUBLISHER and editor.source is not None:
            waterfall = restrict_to_source(waterfall, editor.source)
        if waterfall.empty:
            return TracePanel(trace_id, None, TRACE_PROBLEMS["not_found"])
        return TracePanel(trace_id, waterfall, None)

    async def panels(editor: Editor, view: JourneyView) -> tuple[list[TracePanel], str | None]:
        """The journey's traces, fetched together; one notice instead when Jaeger is not set up."""
        if not view.trace_ids:
            return [], None
        if not jaeger.configured:
            return [], TRACE_PROBLEMS["not_configured"]
        found = list(await asyncio.gather(*(panel(editor, t) for t in view.trace_ids)))
        if all(p.problem == TRACE_PROBLEMS["unreachable"] for p in found):
            return [], TRACE_PROBLEMS["unreachable"]
        return found, None

    @router.get("")
    async def search(
        request: Request,
        who: Signed,
        id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        editor_of(who)
        error = None
        if id is not None and id.strip():
            article_id = article_id_of(id)
            if article_id is not None:
                return RedirectResponse(f"{PAGE}/{article_id}", status_code=303)
            error = "Mã bài viết gồm 32 chữ số hệ 16 dạng UUID, ví dụ 3f2b…-…; hãy kiểm tra lại."
        return templates.render(
            request,
            who,
            "journey.html",
            status=422 if error else 200,
            active=NAV_KEY,
            query=(id or "")[:200],
            error=error,
            view=None,
        )

    @router.get("/{article_id}")
    async def journey_page(
        request: Request,
        who: Signed,
        article_id: Annotated[str, Path(max_length=64)],
    ) -> Response:
        editor = editor_of(who)
        canonical = article_id_of(article_id)
        if canonical is None:
            raise DeskError(404, NOT_FOUND, "article_id: not a UUID")
        try:
            data = await deps.sources.ingest.journey(canonical)
        except PeerUnavailable as exc:
            raise DeskError(
                503,
                "Không kết nối được dịch vụ tiếp nhận (ingest) để lấy hành trình. Thử lại sau.",
                str(exc),
            ) from exc
        except PeerRefused as exc:
            raise DeskError(502, "Dịch vụ tiếp nhận từ chối yêu cầu.", exc.detail) from exc
        view = journey_view(data) if data is not None else None
        # Another agency's article is answered as if it did not exist (ids are not confirmed).
        if view is None or not may_see_journey(editor, view.source):
            raise DeskError(404, NOT_FOUND, f"article_id: {canonical}")
        traces, trace_notice = await panels(editor, view)
        async with deps.desk.sessions() as session:
            in_desk = await repo.get_item(session, canonical) is not None
            sources = {s["code"]: s["name"] for s in await repo.list_sources(session)}
        return templates.render(
            request,
            who,
            "journey.html",
            active=NAV_KEY,
            query=canonical,
            error=None,
            view=view,
            traces=traces,
            trace_notice=trace_notice,
            in_desk=in_desk,
            sources=sources,
            status_labels=STATUS_LABELS,
            scale=SCALE,
        )

    return router


def install_journey_desk(app: FastAPI, deps: DeskDeps, jaeger: JaegerQuery) -> None:
    """Add the journey pages to the web desk (navigation, filters of its template)."""
    deps.templates.add_nav("Hành trình bài viết", PAGE, NAV_KEY, frozenset(Role))
    deps.templates.env.filters.update(span_duration=duration_text, gap=gap_text)
    app.include_router(journey_router(deps, jaeger))
