"""The review queue: filters (state, source, section, quality flag, age, text), cursor pages
that htmx appends, and bulk approval of the rows picked."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation import repository as repo
from portal_moderation.desk import forms, present
from portal_moderation.desk.auth import DESK_PREFIX, is_htmx
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, SignedPost, editor_of, on_page
from portal_moderation.desk.errors import DeskError, forbidden
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import (
    AGE_BUCKET_CODES,
    Action,
    DeskPage,
    Editor,
    Forbidden,
    ItemState,
    Role,
    authorize,
    claim_by_other,
    received_between,
    visible_source,
)
from portal_runtime.clock import utcnow

router = APIRouter(prefix=DESK_PREFIX, include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.QUEUE, "Hàng chờ duyệt", "g q")

PAGE_SIZE = 50
MAX_BULK = 200
QUEUE_STATES = {
    "pending": "Chờ duyệt",
    "auto_published": "Chờ hậu kiểm (đã đăng)",
    "waiting": "Cần xử lý (chờ duyệt + chờ hậu kiểm)",
    "published": "Đã duyệt",
    "rejected": "Đã từ chối",
    "retracted": "Đã gỡ",
    "all": "Tất cả",
}


@dataclass
class QueueFilter:
    state: str = "pending"
    source: str | None = None
    section: str | None = None
    flag: str | None = None
    age: str | None = None
    order: str = "oldest"
    q: str | None = None

    def params(self, **override: Any) -> str:
        values = {
            "state": self.state,
            "source": self.source,
            "section": self.section,
            "flag": self.flag,
            "age": self.age,
            "order": self.order,
            "q": self.q,
            **override,
        }
        return urlencode({k: v for k, v in values.items() if v})


def parse_filter(editor: Editor, params: Any) -> QueueFilter:
    default_state = "all" if editor.role is Role.AGENCY_PUBLISHER else "pending"
    state = params.get("state") or default_state
    if state not in QUEUE_STATES:
        raise DeskError(422, "Trạng thái lọc không hợp lệ.", "state: unknown")
    age = params.get("age") or None
    if age is not None and age not in AGE_BUCKET_CODES:
        raise DeskError(422, "Độ tuổi lọc không hợp lệ.", "age: unknown")
    order = params.get("order") or "oldest"
    if order not in ("oldest", "newest"):
        raise DeskError(422, "Thứ tự không hợp lệ.", "order: oldest or newest")
    q = (params.get("q") or "").strip() or None
    forms.text(q, "Từ khóa", 200)
    flag = params.get("flag") or None
    if flag is not None and flag not in present.FLAG_LABELS:
        raise DeskError(422, "Dấu hiệu chất lượng không hợp lệ.", "flag: unknown")
    try:
        source = visible_source(editor, forms.code(params.get("source"), "nguồn"))
    except Forbidden as exc:
        raise forbidden(exc) from exc
    return QueueFilter(
        state=state,
        source=source,
        section=forms.code(params.get("section"), "chuyên mục"),
        flag=flag,
        age=age,
        order=order,
        q=q,
    )


async def queue_rows(
    deps: DeskDeps, editor: Editor, filters: QueueFilter, cursor: str | None
) -> dict[str, Any]:
    """One page of the queue, and who else holds each row."""
    now = utcnow()
    state: ItemState | None = None
    states: tuple[ItemState, ...] | None = None
    if filters.state == "waiting":
        states = (ItemState.PENDING, ItemState.AUTO_PUBLISHED)
    elif filters.state != "all":
        state = ItemState(filters.state)
    after, before = received_between(filters.age, now) if filters.age else (None, None)
    async with deps.desk.sessions() as session:
        try:
            found = await repo.list_items(
                session,
                state=state,
                states=states,
                source=filters.source,
                section=filters.section,
                flag=filters.flag,
                received_after=after,
                received_before=before,
                text=filters.q,
                newest_first=filters.order == "newest",
                cursor=cursor,
                limit=PAGE_SIZE,
            )
        except repo.BadCursor as exc:
            raise DeskError(422, "Trang không hợp lệ.", str(exc)) from exc
        claims = await repo.claims_for(session, [i["article_id"] for i in found.items], now)
    return {
        "items": found.items,
        "next_cursor": found.next_cursor,
        "claims": {k: c for k, c in claims.items() if claim_by_other(c, editor.username, now)},
        "filters": filters,
    }


@router.get("/queue")
async def queue(
    request: Request,
    who: Signed,
    deps: Deps,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    filters = parse_filter(editor, request.query_params)
    rows = await queue_rows(deps, editor, filters, cursor)
    return deps.templates.render(
        request,
        who,
        "queue.html",
        active="queue",
        site=await deps.sites.site(),
        sources=await deps.source_names(),
        states=QUEUE_STATES,
        age_codes=AGE_BUCKET_CODES,
        **rows,
    )


@router.get("/queue/rows")
async def queue_more(
    request: Request,
    who: Signed,
    deps: Deps,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    filters = parse_filter(editor, request.query_params)
    rows = await queue_rows(deps, editor, filters, cursor)
    # A new filter is a new address (back button, a link to share); a next page is not.
    push = {"HX-Push-Url": f"{DESK_PREFIX}/queue?{filters.params()}"} if cursor is None else None
    return deps.templates.render(
        request,
        who,
        "_queue_rows.html",
        headers=push,
        site=await deps.sites.site(),
        sources=await deps.source_names(),
        append=cursor is not None,
        **rows,
    )


def picked_items(values: list[Any]) -> list[tuple[str, int | None]]:
    """The rows ticked in the queue, each ``article_id:version``."""
    picked: list[tuple[str, int | None]] = []
    for value in values:
        if not isinstance(value, str) or ":" not in value:
            raise DeskError(422, "Lựa chọn không hợp lệ.", "item: article_id:version")
        article_id, _, version = value.rpartition(":")
        if not article_id or len(article_id) > 64:
            raise DeskError(422, "Lựa chọn không hợp lệ.", "item: article_id")
        picked.append((article_id, forms.number(version, "version")))
    if not picked:
        raise DeskError(422, "Chưa chọn mục nào.", "item: none selected")
    if len(picked) > MAX_BULK:
        raise DeskError(422, f"Chọn tối đa {MAX_BULK} mục mỗi lần.", "item: too many")
    return picked


@router.post("/items/bulk-approve")
async def bulk_approve(request: Request, who: SignedPost, deps: Deps) -> Response:
    editor = editor_of(who)
    try:
        authorize(editor, Action.APPROVE)
    except Forbidden as exc:
        raise forbidden(exc) from exc
    form = await request.form()
    results = await deps.desk.bulk_approve(editor, picked_items(form.getlist("item")))
    if not is_htmx(request):
        ok = sum(r.ok for r in results)
        counts = urlencode({"bulk_ok": ok, "bulk_failed": len(results) - ok})
        return RedirectResponse(f"{DESK_PREFIX}/queue?{counts}", status_code=303)
    async with deps.desk.sessions() as session:
        rows = await repo.get_items(session, [r.article_id for r in results])
    return deps.templates.render(
        request,
        who,
        "_bulk_result.html",
        results=results,
        titles={k: v["title"] or k for k, v in rows.items()},
        headers={"HX-Trigger": "queue-changed"},
    )
