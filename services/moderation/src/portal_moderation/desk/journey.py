"""The article journey in the editors' desk: /desk/journey (search) and /desk/journey/{id}.

Every stage one article passed (ingest's admin API, called server-side with ADMIN_TOKEN) with
times and the time between stages, and its trace(s) drawn as a waterfall from Jaeger's query API.
Ingest answering is required (the journey is the page); Jaeger is not: when it is not set up or
does not answer, the page says so and shows the journey alone.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation import repository as repo
from portal_moderation.desk.auth import DESK_PREFIX
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, on_page
from portal_moderation.desk.errors import DeskError
from portal_moderation.desk.journey_view import (
    STATUS_LABELS,
    JourneyView,
    article_id_of,
    journey_view,
    may_see_journey,
)
from portal_moderation.desk.templating import NavLink
from portal_moderation.desk.waterfall import (
    SCALE,
    TraceFormatError,
    Waterfall,
    restrict_to_source,
    waterfall_from_otlp,
)
from portal_moderation.domain import DeskPage, Editor, Role
from portal_moderation.jaeger import TraceUnavailable
from portal_moderation.peers import PeerRefused, PeerUnavailable

PAGE = f"{DESK_PREFIX}/journey"
NAV_KEY = "journey"
router = APIRouter(prefix=PAGE, include_in_schema=False)
NAV: NavLink | None = NavLink("Hành trình bài viết", PAGE, NAV_KEY, frozenset(Role))
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


async def panel(deps: DeskDeps, editor: Editor, trace_id: str) -> TracePanel:
    try:
        answer = await deps.jaeger.trace(trace_id)
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


async def panels(
    deps: DeskDeps, editor: Editor, view: JourneyView
) -> tuple[list[TracePanel], str | None]:
    """The journey's traces, fetched together; one notice instead when Jaeger is not set up."""
    if not view.trace_ids:
        return [], None
    if not deps.jaeger.configured:
        return [], TRACE_PROBLEMS["not_configured"]
    found = list(await asyncio.gather(*(panel(deps, editor, t) for t in view.trace_ids)))
    if all(p.problem == TRACE_PROBLEMS["unreachable"] for p in found):
        return [], TRACE_PROBLEMS["unreachable"]
    return found, None


async def journey_of(deps: DeskDeps, editor: Editor, article_id: str) -> JourneyView:
    """The article's journey from ingest; another agency's article is answered as if it did
    not exist (ids are not confirmed)."""
    try:
        data = await deps.sources.ingest.journey(article_id)
    except PeerUnavailable as exc:
        raise DeskError(
            503,
            "Không kết nối được dịch vụ tiếp nhận (ingest) để lấy hành trình. Thử lại sau.",
            str(exc),
        ) from exc
    except PeerRefused as exc:
        raise DeskError(502, "Dịch vụ tiếp nhận từ chối yêu cầu.", exc.detail) from exc
    view = journey_view(data) if data is not None else None
    if view is None or not may_see_journey(editor, view.source):
        raise DeskError(404, NOT_FOUND, f"article_id: {article_id}")
    return view


@router.get("")
async def search(
    request: Request,
    who: Signed,
    deps: Deps,
    id: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    on_page(who, DeskPage.QUEUE)
    error = None
    if id is not None and id.strip():
        article_id = article_id_of(id)
        if article_id is not None:
            return RedirectResponse(f"{PAGE}/{article_id}", status_code=303)
        error = "Mã bài viết gồm 32 chữ số hệ 16 dạng UUID, ví dụ 3f2b…-…; hãy kiểm tra lại."
    return deps.templates.render(
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
    deps: Deps,
    article_id: Annotated[str, Path(max_length=64)],
) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    canonical = article_id_of(article_id)
    if canonical is None:
        raise DeskError(404, NOT_FOUND, "article_id: not a UUID")
    view = await journey_of(deps, editor, canonical)
    traces, trace_notice = await panels(deps, editor, view)
    async with deps.desk.sessions() as session:
        in_desk = await repo.get_item(session, canonical) is not None
    return deps.templates.render(
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
        sources=await deps.source_names(),
        status_labels=STATUS_LABELS,
        scale=SCALE,
    )
