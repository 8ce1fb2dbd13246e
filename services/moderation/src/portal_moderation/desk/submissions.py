"""The submissions desk in the editors' web desk: /desk/submissions (server-rendered, Jinja2).

It reuses the article desk's sign-in, CSRF protection, layout and error pages (``webauth``,
``templating``, ``templates/base.html``) and the submissions use cases. Pages work without
JavaScript: forms post and redirect back.
"""

# No `from __future__ import annotations`: FastAPI must see the routers' local dependencies.
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation.desk.auth import DESK_PREFIX, DeskAuth, Visitor, form_value
from portal_moderation.desk.item import DeskDeps, DeskError
from portal_moderation.desk.templating import Templates
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
from portal_moderation.submissions.usecases import SubmissionNotFound, SubmissionsDesk, sub_item

PAGE = f"{DESK_PREFIX}/submissions"
NAV_KEY = "submissions"
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


def submissions_desk_router(
    auth: DeskAuth, templates: Templates, submissions: SubmissionsDesk
) -> APIRouter:
    router = APIRouter(prefix=PAGE, include_in_schema=False)
    Signed = Annotated[Visitor, Depends(auth.editor)]
    SignedPost = Annotated[Visitor, Depends(auth.editor_csrf)]
    sessions = submissions.sessions
    common: dict[str, Any] = {
        "kind_labels": KIND_LABELS,
        "state_labels": STATE_LABELS,
        "action_labels": ACTION_LABELS,
        "report_labels": REPORT_LABELS,
        "flag_parts": flag_parts,
        "tabs": TABS,
        "page": PAGE,
    }

    def editor_of(who: Visitor) -> Editor:
        assert who.editor is not None
        try:
            authorize_sub(who.editor, SubAction.VIEW)
        except Forbidden as exc:
            raise DeskError(403, "Tài khoản này không xem được mục bạn đọc gửi.", str(exc)) from exc
        return who.editor

    async def agencies() -> dict[str, str]:
        async with sessions() as session:
            return await repo.agency_names(session)

    @router.get("")
    async def queue(
        request: Request,
        who: Signed,
        tab: Annotated[str, Query(max_length=20)] = "qa",
        state: Annotated[str | None, Query(max_length=20)] = None,
        flagged: Annotated[str | None, Query(max_length=5)] = None,
        agency: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9-]*$")] = None,
        context: Annotated[str | None, Query(max_length=100)] = None,
        order: Annotated[str, Query(pattern="^(oldest|newest)$")] = "oldest",
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        editor = editor_of(who)
        if tab not in TABS:
            raise DeskError(404, "Không có mục này.", f"tab: {tab}")
        if state is not None and state not in STATE_LABELS:
            state = None
        kinds = TABS[tab][1]
        agency_states = None
        if editor.role is Role.AGENCY_PUBLISHER:
            tab, kinds, agency = "qa", ["qa"], editor.source
            agency_states = [s.value for s in AGENCY_STATES]
        try:
            async with sessions() as session:
                page = await repo.list_items(
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
                counts = await repo.counts(
                    session, agency=editor.source if editor.role is Role.AGENCY_PUBLISHER else None
                )
        except repo.BadCursor as exc:
            raise DeskError(422, "Trang không hợp lệ.", str(exc)) from exc
        waiting: dict[str, int] = {}
        for row in counts:
            for key, (_, tab_kinds) in TABS.items():
                if row["kind"] in tab_kinds:
                    if key == "reported":
                        waiting[key] = waiting.get(key, 0) + row["reported"]
                    elif row["state"] in ("pending", "accepted", "routed", "picked", "answered"):
                        waiting[key] = waiting.get(key, 0) + row["count"]
        filters = {
            "tab": tab,
            "state": state or "",
            "flagged": flagged or "",
            "agency": agency or "",
            "context": context or "",
            "order": order,
        }
        next_url = None
        if page.next_cursor:
            next_url = f"{PAGE}?{urlencode({**filters, 'cursor': page.next_cursor})}"
        return templates.render(
            request,
            who,
            "submissions/queue.html",
            active=NAV_KEY,
            items=page.items,
            waiting=waiting,
            filters=filters,
            next_url=next_url,
            agencies=await agencies(),
            now=datetime.now(UTC),
            **common,
        )

    async def load(editor: Editor, submission_id: str) -> dict[str, Any]:
        async with sessions() as session:
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
        document: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)],
    ) -> Response:
        editor = editor_of(who)
        if editor.role is Role.AGENCY_PUBLISHER:
            raise DeskError(403, "Tài khoản cơ quan không xuất góp ý.")
        async with sessions() as session:
            rows = await repo.feedback_of(session, document)
        return Response(
            feedback_csv(feedback_records(rows)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="gop-y-{document}.csv"'},
        )

    @router.get("/{submission_id}")
    async def item(request: Request, who: Signed, submission_id: SubmissionId) -> Response:
        editor = editor_of(who)
        row = await load(editor, submission_id)
        async with sessions() as session:
            history = await repo.history(session, submission_id)
            reports = await repo.reports_of(session, submission_id)
        return templates.render(
            request,
            who,
            "submissions/item.html",
            active=NAV_KEY,
            item=row,
            history=history,
            reports=reports,
            may_do=allowed_actions(editor, sub_item(row)),
            SubAction=SubAction,
            agencies=await agencies(),
            done=request.query_params.get("done"),
            **common,
        )

    @router.post("/{submission_id}/{action}")
    async def act(
        request: Request,
        who: SignedPost,
        submission_id: SubmissionId,
        action: Annotated[str, Path(max_length=20)],
    ) -> Response:
        editor = editor_of(who)
        try:
            what = SubAction(action.replace("-", "_"))
        except ValueError as exc:
            raise DeskError(404, "Không có thao tác này.", f"action: {action}") from exc
        form = await request.form()
        raw_revision = form_value(form, "revision") or ""
        if not raw_revision.isdigit():
            raise DeskError(422, "Thiếu phiên bản của mục; hãy tải lại trang.", "revision")

        def text(name: str, limit: int) -> str | None:
            value = (form_value(form, name) or "").strip()
            if len(value) > limit:
                raise DeskError(422, f"Nội dung quá dài (tối đa {limit} ký tự).", name)
            return value or None

        try:
            await submissions.act(
                editor,
                submission_id,
                what,
                revision=int(raw_revision),
                reason=text("reason", 2000),
                agency=text("agency", 64),
                answer=text("answer", 20_000),
                answered_by=text("answered_by", 300),
            )
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

    return router


def install_submissions_desk(app: FastAPI, deps: DeskDeps, submissions: SubmissionsDesk) -> None:
    """Add the submissions pages to the web desk (its navigation, auth and error pages)."""
    deps.templates.add_nav("Bạn đọc gửi", PAGE, NAV_KEY, frozenset(Role))
    app.include_router(submissions_desk_router(deps.auth, deps.templates, submissions))
