"""The queue of public submissions: /desk/submissions (questions, dialogue questions,
feedback, forum posts, comments; reported posts), one submission with its history and the
actions the editor's role allows (route to an agency, answer, publish, reject, withdraw), and
the feedback on a document as CSV. Forms post and redirect back.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation.desk.auth import DESK_PREFIX, Visitor, form_value
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, SignedPost, editor_of
from portal_moderation.desk.errors import DeskError
from portal_moderation.desk.templating import NavLink
from portal_moderation.domain import Editor, Forbidden, Role
from portal_moderation.submissions import repository as repo
from portal_moderation.submissions.domain import (
    AGENCY_STATES,
    SubAction,
    SubConflict,
    SubInvalid,
    allowed_actions,
    authorize_sub,
    feedback_csv,
    feedback_records,
)
from portal_moderation.submissions.usecases import SubmissionNotFound, sub_item

PAGE = f"{DESK_PREFIX}/submissions"
NAV_KEY = "submissions"
router = APIRouter(prefix=PAGE, include_in_schema=False)
NAV: NavLink | None = NavLink("Bạn đọc gửi", PAGE, NAV_KEY, frozenset(Role))
PAGE_SIZE = 50

KIND_LABELS = {
    "qa": "Hỏi đáp",
    "dialogue": "Đối thoại trực tuyến",
    "feedback": "Góp ý xây dựng Đảng",
    "forum_thread": "Diễn đàn: chủ đề",
    "forum_reply": "Diễn đàn: trả lời",
    "comment": "Bình luận",
}
# The queue's tabs: kinds (forum threads and replies together) and the reported posts.
TABS: dict[str, tuple[str, list[str]]] = {
    "qa": ("Hỏi đáp", ["qa"]),
    "dialogue": ("Câu hỏi đối thoại", ["dialogue"]),
    "feedback": ("Góp ý", ["feedback"]),
    "forum": ("Diễn đàn", ["forum_thread", "forum_reply"]),
    "comment": ("Bình luận", ["comment"]),
    "reported": ("Bị báo cáo", ["forum_thread", "forum_reply", "comment"]),
}
STATE_LABELS = {
    "pending": "Chờ xử lý",
    "accepted": "Đã tiếp nhận",
    "routed": "Đã chuyển cơ quan",
    "picked": "Đã chọn cho khách mời",
    "answered": "Có trả lời, chờ duyệt",
    "published": "Đã đăng",
    "rejected": "Đã từ chối",
    "withdrawn": "Đã gỡ",
}
ACTION_LABELS = {
    "received": "Nhận từ bạn đọc",
    "approve": "Duyệt",
    "reject": "Từ chối",
    "route": "Chuyển cơ quan trả lời",
    "pick": "Chọn cho khách mời",
    "answer": "Trả lời",
    "publish": "Duyệt trả lời, đăng",
    "withdraw": "Gỡ",
    "dismiss_reports": "Giữ lại, đóng báo cáo",
}
FLAG_LABELS = {
    "banned_word": "Từ cấm",
    "banned_variant": "Có thể là từ cấm (viết biến thể)",
    "suspect_word": "Từ cần xem xét",
    "link": "Có đường link",
}
REPORT_LABELS = {
    "spam": "Quảng cáo, spam",
    "offensive": "Xúc phạm",
    "false_information": "Thông tin sai",
    "off_topic": "Lạc đề",
    "other": "Khác",
}

SubmissionId = Annotated[str, Path(min_length=1, max_length=64)]


def flag_parts(flag: str) -> tuple[str, str]:
    code, _, detail = flag.partition(":")
    return FLAG_LABELS.get(code, code), detail


COMMON: dict[str, Any] = {
    "kind_labels": KIND_LABELS,
    "state_labels": STATE_LABELS,
    "action_labels": ACTION_LABELS,
    "report_labels": REPORT_LABELS,
    "flag_parts": flag_parts,
    "tabs": TABS,
    "page": PAGE,
}
OPEN_STATES = ("pending", "accepted", "routed", "picked", "answered")


def reader(who: Visitor) -> Editor:
    """The editor, if their role may see the submissions (an agency: its own questions)."""
    editor = editor_of(who)
    try:
        authorize_sub(editor, SubAction.VIEW)
    except Forbidden as exc:
        raise DeskError(403, "Tài khoản này không xem được mục bạn đọc gửi.", str(exc)) from exc
    return editor


async def agencies(deps: DeskDeps) -> dict[str, str]:
    async with deps.submissions.sessions() as session:
        return await repo.agency_names(session)


def waiting_per_tab(counts: list[dict[str, Any]]) -> dict[str, int]:
    """How many wait in each tab: open submissions, or reports on published posts."""
    waiting: dict[str, int] = {}
    for row in counts:
        for key, (_, tab_kinds) in TABS.items():
            if row["kind"] not in tab_kinds:
                continue
            if key == "reported":
                waiting[key] = waiting.get(key, 0) + row["reported"]
            elif row["state"] in OPEN_STATES:
                waiting[key] = waiting.get(key, 0) + row["count"]
    return waiting


@router.get("")
async def queue(
    request: Request,
    who: Signed,
    deps: Deps,
    tab: Annotated[str, Query(max_length=20)] = "qa",
    state: Annotated[str | None, Query(max_length=20)] = None,
    flagged: Annotated[str | None, Query(max_length=5)] = None,
    agency: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9-]*$")] = None,
    context: Annotated[str | None, Query(max_length=100)] = None,
    order: Annotated[str, Query(pattern="^(oldest|newest)$")] = "oldest",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    editor = reader(who)
    if tab not in TABS:
        raise DeskError(404, "Không có mục này.", f"tab: {tab}")
    if state is not None and state not in STATE_LABELS:
        state = None
    kinds = TABS[tab][1]
    agency_states = None
    own = editor.source if editor.role is Role.AGENCY_PUBLISHER else None
    if editor.role is Role.AGENCY_PUBLISHER:
        tab, kinds, agency = "qa", ["qa"], editor.source
        agency_states = [s.value for s in AGENCY_STATES]
    try:
        async with deps.submissions.sessions() as session:
            found = await repo.list_items(
                session,
                kinds=kinds,
                state=state,
                flagged=True if flagged == "1" else None,
                reported=tab == "reported",
                agency=agency or None,
                context=context or None,
                agency_states=agency_states,
                newest_first=order == "newest",
                cursor=cursor,
                limit=PAGE_SIZE,
            )
            counts = await repo.counts(session, agency=own)
    except repo.BadCursor as exc:
        raise DeskError(422, "Trang không hợp lệ.", str(exc)) from exc
    filters = {
        "tab": tab,
        "state": state or "",
        "flagged": flagged or "",
        "agency": agency or "",
        "context": context or "",
        "order": order,
    }
    next_url = None
    if found.next_cursor:
        next_url = f"{PAGE}?{urlencode({**filters, 'cursor': found.next_cursor})}"
    return deps.templates.render(
        request,
        who,
        "submissions/queue.html",
        active=NAV_KEY,
        items=found.items,
        waiting=waiting_per_tab(counts),
        filters=filters,
        next_url=next_url,
        agencies=await agencies(deps),
        **COMMON,
    )


async def load(deps: DeskDeps, editor: Editor, submission_id: str) -> dict[str, Any]:
    async with deps.submissions.sessions() as session:
        row = await repo.get_item(session, submission_id)
    if row is None:
        raise DeskError(404, "Không tìm thấy mục này.", f"submission_id: {submission_id}")
    try:
        authorize_sub(editor, SubAction.VIEW, sub_item(row))
    except Forbidden as exc:
        raise DeskError(403, "Tài khoản này không xem được mục này.", str(exc)) from exc
    return row


@router.get("/export/{document}.csv")
async def export(
    who: Signed,
    deps: Deps,
    document: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)],
) -> Response:
    editor = reader(who)
    if editor.role is Role.AGENCY_PUBLISHER:
        raise DeskError(403, "Tài khoản cơ quan không xuất góp ý.")
    async with deps.submissions.sessions() as session:
        rows = await repo.feedback_of(session, document)
    return Response(
        feedback_csv(feedback_records(rows)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gop-y-{document}.csv"'},
    )


@router.get("/{submission_id}")
async def item(request: Request, who: Signed, deps: Deps, submission_id: SubmissionId) -> Response:
    editor = reader(who)
    row = await load(deps, editor, submission_id)
    async with deps.submissions.sessions() as session:
        history = await repo.history(session, submission_id)
        reports = await repo.reports_of(session, submission_id)
    return deps.templates.render(
        request,
        who,
        "submissions/item.html",
        active=NAV_KEY,
        item=row,
        history=history,
        reports=reports,
        may_do=allowed_actions(editor, sub_item(row)),
        SubAction=SubAction,
        agencies=await agencies(deps),
        done=request.query_params.get("done"),
        **COMMON,
    )


def answer_fields(form: Any) -> dict[str, Any]:
    """The revision the editor saw and the texts of the action (each within its limit)."""
    raw_revision = form_value(form, "revision") or ""
    if not raw_revision.isdigit():
        raise DeskError(422, "Thiếu phiên bản của mục; hãy tải lại trang.", "revision")

    def text(name: str, limit: int) -> str | None:
        value = (form_value(form, name) or "").strip()
        if len(value) > limit:
            raise DeskError(422, f"Nội dung quá dài (tối đa {limit} ký tự).", name)
        return value or None

    return {
        "revision": int(raw_revision),
        "reason": text("reason", 2000),
        "agency": text("agency", 64),
        "answer": text("answer", 20_000),
        "answered_by": text("answered_by", 300),
    }


@router.post("/{submission_id}/{action}")
async def act(
    request: Request,
    who: SignedPost,
    deps: Deps,
    submission_id: SubmissionId,
    action: Annotated[str, Path(max_length=20)],
) -> Response:
    editor = reader(who)
    try:
        what = SubAction(action.replace("-", "_"))
    except ValueError as exc:
        raise DeskError(404, "Không có thao tác này.", f"action: {action}") from exc
    fields = answer_fields(await request.form())
    try:
        await deps.submissions.act(editor, submission_id, what, **fields)
    except Forbidden as exc:
        raise DeskError(403, "Tài khoản này không được làm việc này.", str(exc)) from exc
    except SubmissionNotFound as exc:
        raise DeskError(404, "Không tìm thấy mục này.", str(exc)) from exc
    except SubConflict as exc:
        raise DeskError(
            409,
            "Mục đã thay đổi hoặc không ở trạng thái cho phép; hãy tải lại trang.",
            exc.reason,
        ) from exc
    except SubInvalid as exc:
        raise DeskError(422, "Thiếu hoặc sai thông tin.", str(exc)) from exc
    return RedirectResponse(f"{PAGE}/{submission_id}?done={what.value}", status_code=303)
