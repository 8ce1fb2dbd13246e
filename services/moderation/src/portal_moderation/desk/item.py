"""The editors' web desk: server-rendered pages (Jinja2) with htmx, under /desk.

Thin routers: each checks the role on the server (``domain``), calls a use case
(``services``) or a query (``repository``, ``reports``) and renders a template. Pages work
without JavaScript (forms post and redirect); with htmx they swap fragments in place.
"""

# No `from __future__ import annotations`: FastAPI must see the routers' local dependencies.
import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from portal_contracts.articles import NormalizedArticle, QualityReport
from portal_moderation import reports
from portal_moderation import repository as repo
from portal_moderation.desk import charts, present
from portal_moderation.desk.auth import (
    DESK_PREFIX,
    CsrfRefused,
    DeskAuth,
    NotSignedIn,
    Visitor,
    form_value,
    is_htmx,
    login_redirect_target,
    safe_next,
)
from portal_moderation.desk.templating import STATIC_DIR, Templates
from portal_moderation.domain import (
    AGE_BUCKET_CODES,
    AGE_BUCKETS,
    Action,
    Claim,
    Conflict,
    DeskPage,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    Policy,
    Role,
    authorize,
    authorize_page,
    category_key,
    claim_by_other,
    may,
    received_between,
    visible_source,
)
from portal_moderation.passwords import MAX_LENGTH, MIN_LENGTH
from portal_moderation.peers import PeerRefused, PeerUnavailable, Site, SiteDirectory
from portal_moderation.usecases import (
    Accounts,
    NotFound,
    ReviewDesk,
    SignInRefused,
    SourcesDesk,
)

CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
ArticleId = Annotated[str, Path(min_length=1, max_length=64)]
SourceCodePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", min_length=2, max_length=64)]
PAGE_SIZE = 50
MAX_BULK = 200
PERIODS: dict[str, timedelta | None] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "180d": timedelta(days=180),
    "all": None,
}
PERIOD_LABELS = {"7d": "7 ngày", "30d": "30 ngày", "180d": "6 tháng", "all": "Từ đầu"}
DONE_MESSAGES = {
    "approved": "Đã duyệt: bài được đưa lên cổng.",
    "rejected": "Đã từ chối: cơ quan gửi tin sẽ thấy lý do.",
    "edited": "Đã lưu thay đổi.",
    "edited_approved": "Đã lưu thay đổi và duyệt: bài được đưa lên cổng.",
    "retracted": "Đã gỡ bài khỏi cổng.",
    "released": "Đã trả mục này cho biên tập viên khác.",
    "unchanged": "Không có gì thay đổi.",
}
QUEUE_STATES = {
    "pending": "Chờ duyệt",
    "auto_published": "Chờ hậu kiểm (đã đăng)",
    "waiting": "Cần xử lý (chờ duyệt + chờ hậu kiểm)",
    "published": "Đã duyệt",
    "rejected": "Đã từ chối",
    "retracted": "Đã gỡ",
    "all": "Tất cả",
}
STALE_SOURCE_AFTER = timedelta(days=7)
DASHBOARD_CACHE_S = 10.0


class DeskError(Exception):
    """A refusal shown to the editor as a page (or a fragment in place, with htmx)."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _forbidden(exc: Forbidden) -> DeskError:
    return DeskError(403, "Tài khoản của bạn không được phép làm việc này.", str(exc))


def _code(value: str | None, name: str, *, required: bool = False) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise DeskError(422, f"Thiếu {name}.", f"{name}: required")
        return None
    if len(value) > 64 or not CODE.match(value):
        raise DeskError(422, f"Giá trị của {name} không hợp lệ.", f"{name}: not a code")
    return value


def _int(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: not a number") from exc
    if number < 1 or number > 2**31:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: out of range")
    return number


def _text(value: str | None, name: str, max_len: int) -> str | None:
    if value is None:
        return None
    if len(value) > max_len:
        raise DeskError(422, f"{name} dài quá {max_len} ký tự.", f"{name}: longer than {max_len}")
    return value


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
    _text(q, "Từ khóa", 200)
    flag = params.get("flag") or None
    if flag is not None and flag not in present.FLAG_LABELS:
        raise DeskError(422, "Dấu hiệu chất lượng không hợp lệ.", "flag: unknown")
    try:
        source = visible_source(editor, _code(params.get("source"), "nguồn"))
    except Forbidden as exc:
        raise _forbidden(exc) from exc
    return QueueFilter(
        state=state,
        source=source,
        section=_code(params.get("section"), "chuyên mục"),
        flag=flag,
        age=age,
        order=order,
        q=q,
    )


@dataclass
class DeskDeps:
    desk: ReviewDesk
    accounts: Accounts
    auth: DeskAuth
    templates: Templates
    sites: SiteDirectory
    sources: SourcesDesk
    claim_ttl: timedelta


def desk_router(deps: DeskDeps) -> APIRouter:
    router = APIRouter(prefix=DESK_PREFIX, include_in_schema=False)
    auth, templates, desk = deps.auth, deps.templates, deps.desk
    Anyone = Annotated[Visitor, Depends(auth.visitor)]
    Signed = Annotated[Visitor, Depends(auth.editor)]
    SignedPost = Annotated[Visitor, Depends(auth.editor_csrf)]
    AnyonePost = Annotated[Visitor, Depends(auth.csrf)]

    def editor_of(who: Visitor) -> Editor:
        assert who.editor is not None
        return who.editor

    def page(who: Visitor, which: DeskPage) -> Editor:
        editor = editor_of(who)
        try:
            authorize_page(editor, which)
        except Forbidden as exc:
            raise _forbidden(exc) from exc
        return editor

    async def source_names() -> dict[str, str]:
        async with desk.sessions() as session:
            return {s["code"]: s["name"] for s in await repo.list_sources(session)}

    # --- sign-in ----------------------------------------------------------------------------

    @router.get("")
    @router.get("/")
    async def home(who: Anyone) -> Response:
        target = f"{DESK_PREFIX}/queue" if who.editor else f"{DESK_PREFIX}/login"
        return RedirectResponse(target, status_code=303)

    @router.get("/login")
    async def login_form(
        request: Request,
        who: Anyone,
        next: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        if who.editor is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return templates.render(request, who, "login.html", next=safe_next(next), error=None)

    @router.post("/login")
    async def login(request: Request, who: AnyonePost) -> Response:
        form = await request.form()
        username = (form_value(form, "username") or "").strip().lower()
        password = form_value(form, "password") or ""
        target = safe_next(form_value(form, "next"))
        if not username or not password or len(username) > 64 or len(password) > MAX_LENGTH:
            return templates.render(
                request,
                who,
                "login.html",
                status=422,
                next=target,
                error="Nhập tên đăng nhập và mật khẩu.",
                username=username[:64],
            )
        try:
            issued = await deps.accounts.sign_in(username, password)
        except SignInRefused as exc:
            if exc.locked_until is not None:
                message = (
                    "Tài khoản tạm khóa do đăng nhập sai nhiều lần. Thử lại sau "
                    f"{present.local_time(exc.locked_until)}."
                )
                status = 429
            else:
                message = "Tên đăng nhập hoặc mật khẩu không đúng."
                status = 401
            return templates.render(
                request,
                who,
                "login.html",
                status=status,
                next=target,
                error=message,
                username=username,
            )
        response = RedirectResponse(target, status_code=303)
        auth.start_session(response, request, issued.token)
        return response

    @router.post("/logout")
    async def logout(request: Request, who: SignedPost) -> Response:
        assert who.session_token is not None
        await deps.accounts.sign_out(who.session_token)
        response: Response = RedirectResponse(f"{DESK_PREFIX}/login", status_code=303)
        if is_htmx(request):
            response = Response(status_code=204, headers={"HX-Redirect": f"{DESK_PREFIX}/login"})
        auth.end_session(response)
        return response

    # --- the queue --------------------------------------------------------------------------

    async def queue_rows(
        editor: Editor, filters: QueueFilter, cursor: str | None
    ) -> dict[str, Any]:
        now = _utcnow()
        state: ItemState | None = None
        states: tuple[ItemState, ...] | None = None
        if filters.state == "waiting":
            states = (ItemState.PENDING, ItemState.AUTO_PUBLISHED)
        elif filters.state != "all":
            state = ItemState(filters.state)
        after = before = None
        if filters.age:
            after, before = received_between(filters.age, now)
        async with desk.sessions() as session:
            try:
                page_ = await repo.list_items(
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
            claims = await repo.claims_for(session, [i["article_id"] for i in page_.items], now)
        return {
            "items": page_.items,
            "next_cursor": page_.next_cursor,
            "claims": {k: c for k, c in claims.items() if claim_by_other(c, editor.username, now)},
            "filters": filters,
        }

    @router.get("/queue")
    async def queue(
        request: Request,
        who: Signed,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        editor = page(who, DeskPage.QUEUE)
        filters = parse_filter(editor, request.query_params)
        rows = await queue_rows(editor, filters, cursor)
        site = await deps.sites.site()
        names = await source_names()
        return templates.render(
            request,
            who,
            "queue.html",
            active="queue",
            site=site,
            sources=names,
            states=QUEUE_STATES,
            age_codes=AGE_BUCKET_CODES,
            **rows,
        )

    @router.get("/queue/rows")
    async def queue_more(
        request: Request,
        who: Signed,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        editor = page(who, DeskPage.QUEUE)
        filters = parse_filter(editor, request.query_params)
        rows = await queue_rows(editor, filters, cursor)
        site = await deps.sites.site()
        # A new filter is a new address (back button, a link to share); a next page is not.
        push = (
            {"HX-Push-Url": f"{DESK_PREFIX}/queue?{filters.params()}"} if cursor is None else None
        )
        return templates.render(
            request,
            who,
            "_queue_rows.html",
            headers=push,
            site=site,
            sources=await source_names(),
            append=cursor is not None,
            **rows,
        )

    # --- one item ---------------------------------------------------------------------------

    async def load_item(editor: Editor, article_id: str) -> dict[str, Any]:
        async with desk.sessions() as session:
            row = await repo.get_item(session, article_id)
        if row is None:
            raise DeskError(404, "Không tìm thấy tin, bài này.", f"article_id: {article_id}")
        try:
            authorize(editor, Action.VIEW, row["source"])
        except Forbidden as exc:
            raise _forbidden(exc) from exc
        return row

    async def item_context(editor: Editor, row: dict[str, Any], *, claim: bool) -> dict[str, Any]:
        now = _utcnow()
        article_id = row["article_id"]
        actionable = row["state"] in (ItemState.PENDING.value, ItemState.AUTO_PUBLISHED.value)
        held: Claim | None = None
        if claim and actionable and may(editor, Action.APPROVE):
            held = await desk.claim(editor, article_id, deps.claim_ttl)
        async with desk.sessions() as session:
            if held is None:
                held = (await repo.claims_for(session, [article_id], now)).get(article_id)
            original = await repo.get_original(session, article_id)
            twins = await repo.twins_of(session, row)
            history = await repo.history(session, article_id)
        visible_twins = [
            t
            for t in twins
            if editor.role is not Role.AGENCY_PUBLISHER or t["source"] == editor.source
        ]
        article = NormalizedArticle.model_validate(row["article"]) if row["article"] else None
        quality = QualityReport.model_validate(row["quality"]) if row["quality"] else None
        return {
            "item": row,
            "article": article,
            "quality": quality,
            "original": original,
            "twins": visible_twins,
            "history": history,
            "other_claim": claim_by_other(held, editor.username, now),
            "site": await deps.sites.site(),
            "sources": await source_names(),
            "reject_reasons": present.REJECT_REASONS,
        }

    @router.get("/items/{article_id}")
    async def item_page(
        request: Request,
        who: Signed,
        article_id: ArticleId,
        done: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        editor = page(who, DeskPage.QUEUE)
        row = await load_item(editor, article_id)
        context = await item_context(editor, row, claim=True)
        return templates.render(
            request,
            who,
            "item.html",
            active="queue",
            message=DONE_MESSAGES.get(done or ""),
            error=None,
            **context,
        )

    @router.get("/items/{article_id}/panel")
    async def item_panel(request: Request, who: Signed, article_id: ArticleId) -> Response:
        editor = page(who, DeskPage.QUEUE)
        row = await load_item(editor, article_id)
        context = await item_context(editor, row, claim=True)
        return templates.render(
            request, who, "_item_panel.html", message=None, error=None, **context
        )

    @router.get("/items/{article_id}/compare/{other_id}")
    async def compare(
        request: Request, who: Signed, article_id: ArticleId, other_id: ArticleId
    ) -> Response:
        editor = page(who, DeskPage.QUEUE)
        left = await load_item(editor, article_id)
        right = await load_item(editor, other_id)
        site = await deps.sites.site()
        return templates.render(
            request,
            who,
            "compare.html",
            active="queue",
            pair=[
                (
                    row,
                    NormalizedArticle.model_validate(row["article"]) if row["article"] else None,
                )
                for row in (left, right)
            ],
            site=site,
            sources=await source_names(),
        )

    async def panel_after(
        request: Request,
        who: Visitor,
        article_id: str,
        *,
        message: str | None,
        error: str | None,
        status: int = 200,
    ) -> Response:
        editor = editor_of(who)
        row = await load_item(editor, article_id)
        context = await item_context(editor, row, claim=False)
        return templates.render(
            request,
            who,
            "_item_panel.html",
            status=status,
            message=message,
            error=error,
            oob_row=True,
            **context,
        )

    async def act(
        request: Request,
        who: Visitor,
        article_id: str,
        steps: list[tuple[Action, dict[str, Any]]],
        done: str,
    ) -> Response:
        """Run the editor's action(s) on the item and show the item as it is afterwards."""
        editor = editor_of(who)
        form = await request.form()
        version = _int(form_value(form, "version"), "version")
        revision = _int(form_value(form, "revision"), "revision")
        changed = True
        try:
            for action, kwargs in steps:
                before = version
                row = await desk.act(
                    editor, article_id, action, revision=revision, version=version, **kwargs
                )
                version = row.get("version", version)
                if action is Action.EDIT and version == before:
                    changed = False
        except Forbidden as exc:
            raise _forbidden(exc) from exc
        except NotFound as exc:
            raise DeskError(404, "Không tìm thấy tin, bài này.", str(exc)) from exc
        except Conflict as exc:
            return await panel_after(
                request,
                who,
                article_id,
                message=None,
                error=conflict_message(exc),
                status=409,
            )
        except InvalidEdit as exc:
            return await panel_after(
                request,
                who,
                article_id,
                message=None,
                error=f"Nội dung sửa không hợp lệ: {exc}",
                status=422,
            )
        if done == "edited" and not changed:
            done = "unchanged"
        if not is_htmx(request):
            return RedirectResponse(
                f"{DESK_PREFIX}/items/{article_id}?done={done}", status_code=303
            )
        return await panel_after(request, who, article_id, message=DONE_MESSAGES[done], error=None)

    def conflict_message(exc: Conflict) -> str:
        if exc.reason.startswith("version:"):
            return (
                "Mục này vừa được thay đổi (bởi đồng nghiệp hoặc do cơ quan gửi phiên bản mới) "
                "sau khi bạn mở nó. Dưới đây là nội dung hiện tại; hãy xem lại rồi thao tác."
            )
        if exc.reason.startswith("revision:"):
            return f"Đã có phiên bản mới hơn ({exc.current_revision}). Hãy xem lại phiên bản mới."
        return f"Không thực hiện được ở trạng thái hiện tại ({present.label(present.STATE_LABELS, exc.state.value)})."

    def edits_from(form: Any) -> dict[str, str | None]:
        edits: dict[str, str | None] = {}
        for name, limit in (
            ("title", 500),
            ("summary", 5000),
            ("section", 64),
            ("lead_image", 2000),
        ):
            value = form_value(form, name)
            if value is not None:
                edits[name] = _text(value, present.FIELD_LABELS[name], limit)
        if not edits:
            raise DeskError(422, "Không có trường nào để sửa.", "title, summary, section: none")
        return edits

    def reason_from(form: Any) -> str:
        reason = (form_value(form, "reason") or "").strip() or (
            form_value(form, "preset") or ""
        ).strip()
        if not reason:
            raise DeskError(422, "Cần ghi lý do.", "reason: required")
        return _text(reason, "Lý do", 2000) or ""

    @router.post("/items/{article_id}/approve")
    async def approve(request: Request, who: SignedPost, article_id: ArticleId) -> Response:
        return await act(request, who, article_id, [(Action.APPROVE, {})], "approved")

    @router.post("/items/{article_id}/reject")
    async def reject(request: Request, who: SignedPost, article_id: ArticleId) -> Response:
        form = await request.form()
        reason = reason_from(form)
        return await act(
            request, who, article_id, [(Action.REJECT, {"reason": reason})], "rejected"
        )

    @router.post("/items/{article_id}/edit")
    async def edit(request: Request, who: SignedPost, article_id: ArticleId) -> Response:
        form = await request.form()
        steps: list[tuple[Action, dict[str, Any]]] = [(Action.EDIT, {"edits": edits_from(form)})]
        done = "edited"
        if form_value(form, "and_approve"):
            steps.append((Action.APPROVE, {}))
            done = "edited_approved"
        return await act(request, who, article_id, steps, done)

    @router.post("/items/{article_id}/retract")
    async def retract(request: Request, who: SignedPost, article_id: ArticleId) -> Response:
        form = await request.form()
        reason = reason_from(form)
        return await act(
            request, who, article_id, [(Action.RETRACT, {"reason": reason})], "retracted"
        )

    @router.post("/items/{article_id}/release")
    async def release(request: Request, who: SignedPost, article_id: ArticleId) -> Response:
        editor = editor_of(who)
        await load_item(editor, article_id)
        await desk.release(editor, article_id)
        if not is_htmx(request):
            return RedirectResponse(f"{DESK_PREFIX}/queue", status_code=303)
        return await panel_after(
            request, who, article_id, message=DONE_MESSAGES["released"], error=None
        )

    @router.post("/items/bulk-approve")
    async def bulk_approve(request: Request, who: SignedPost) -> Response:
        editor = editor_of(who)
        try:
            authorize(editor, Action.APPROVE)
        except Forbidden as exc:
            raise _forbidden(exc) from exc
        form = await request.form()
        picked: list[tuple[str, int | None]] = []
        for value in form.getlist("item"):
            if not isinstance(value, str) or ":" not in value:
                raise DeskError(422, "Lựa chọn không hợp lệ.", "item: article_id:version")
            article_id, _, version = value.rpartition(":")
            if not article_id or len(article_id) > 64:
                raise DeskError(422, "Lựa chọn không hợp lệ.", "item: article_id")
            picked.append((article_id, _int(version, "version")))
        if not picked:
            raise DeskError(422, "Chưa chọn mục nào.", "item: none selected")
        if len(picked) > MAX_BULK:
            raise DeskError(422, f"Chọn tối đa {MAX_BULK} mục mỗi lần.", "item: too many")
        results = await desk.bulk_approve(editor, picked)
        titles: dict[str, str] = {}
        async with desk.sessions() as session:
            rows = await repo.get_items(session, [r.article_id for r in results])
        titles = {k: v["title"] or k for k, v in rows.items()}
        if not is_htmx(request):
            ok = sum(r.ok for r in results)
            return RedirectResponse(
                f"{DESK_PREFIX}/queue?{urlencode({'bulk_ok': ok, 'bulk_failed': len(results) - ok})}",
                status_code=303,
            )
        return templates.render(
            request,
            who,
            "_bulk_result.html",
            results=results,
            titles=titles,
            headers={"HX-Trigger": "queue-changed"},
        )

    # --- the dashboard ----------------------------------------------------------------------

    cache: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}

    async def dashboard_figures(
        period_code: str, span: timedelta | None, scope: str | None
    ) -> dict[str, Any]:
        """The dashboard's figures, each query on its own connection (in parallel), shared
        for a few seconds by everyone looking at the same scope (the page refreshes itself)."""
        key = (period_code, scope)
        hit = cache.get(key)
        clock = asyncio.get_running_loop().time()
        if hit is not None and hit[0] > clock:
            return hit[1]
        now = _utcnow()
        period = reports.Period(since=now - span if span else None, until=now)

        async def run(query: Any, *args: Any) -> Any:
            async with desk.sessions() as session:
                return await query(session, *args)

        results = await asyncio.gather(
            run(reports.totals, period, scope),
            run(reports.per_source, period, scope),
            run(reports.latency, period, scope),
            run(reports.backlog_by_age, scope, now),
            run(reports.daily, period, scope),
            run(reports.rejection_reasons, period, scope),
            run(reports.error_types, period, scope),
            run(lambda session: repo.list_dead_letters(session, source=scope, limit=10)),
        )
        names = (
            "total",
            "by_source",
            "latency",
            "backlog",
            "days",
            "reasons",
            "errors",
            "recent_errors",
        )
        figures = {"now": now, "period": period, **dict(zip(names, results, strict=True))}
        if len(cache) > 256:
            cache.clear()
        cache[key] = (clock + DASHBOARD_CACHE_S, figures)
        return figures

    async def pull_health(scope: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Health of the sources ingest pulls (feeds, sitemaps); the dashboard works without it."""
        try:
            overview = await deps.sources.ingest.pull_health()
        except (PeerUnavailable, PeerRefused) as exc:
            return [], str(exc)
        rows = [
            {
                **s,
                **{
                    k: datetime.fromisoformat(s[k]) if s.get(k) else None
                    for k in ("last_success_at", "last_new_item_at")
                },
            }
            for s in overview.get("sources", [])
            if s.get("mode") == "pull" and (scope is None or s.get("source") == scope)
        ]
        return rows, None

    async def dashboard_context(editor: Editor, params: Any) -> dict[str, Any]:
        period_code = params.get("period") or "all"
        if period_code not in PERIODS:
            raise DeskError(422, "Khoảng thời gian không hợp lệ.", "period: unknown")
        try:
            scope = visible_source(editor, _code(params.get("source"), "nguồn"))
        except Forbidden as exc:
            raise _forbidden(exc) from exc
        sort = params.get("sort") or "integrated"
        if sort not in ("integrated", "name", "backlog", "errors", "last", "reviewed"):
            raise DeskError(422, "Cách sắp xếp không hợp lệ.", "sort: unknown")
        span = PERIODS[period_code]
        figures = await dashboard_figures(period_code, span, scope)
        now = figures["now"]
        period = figures["period"]
        total, by_source, latency = figures["total"], figures["by_source"], figures["latency"]
        backlog, days, reasons = figures["backlog"], figures["days"], figures["reasons"]
        errors, recent_errors = figures["errors"], figures["recent_errors"]
        site = await deps.sites.site()
        pull_rows, pull_error = await pull_health(scope)
        rows = list(by_source.values())
        keys = {
            "integrated": lambda r: (-r.counts.integrated, r.name),
            "name": lambda r: (r.name,),
            "backlog": lambda r: (-r.backlog, r.name),
            "errors": lambda r: (-r.errors, r.name),
            "last": lambda r: (r.last_received or datetime.min.replace(tzinfo=UTC), r.name),
            "reviewed": lambda r: (
                present.ratio(r.counts.reviewed, r.counts.integrated),
                r.name,
            ),
        }
        rows.sort(key=keys[sort])
        missing = {
            r.code: [s for s in site.standard_sections if s not in r.sections_seen] for r in rows
        }
        day_list, series = charts.daily_series(
            days,
            first=present.local_day(period.since) if period.since else None,
            last=present.local_day(now),
            names=("Tích hợp", "Hậu kiểm", "Xuất bản"),
        )
        unit = "ngày"
        if len(day_list) > 62:
            day_list, series = charts.weekly(day_list, series)
            unit = "tuần"
        age_names = [present.AGE_LABELS[b.code] for b in AGE_BUCKETS]
        return {
            "period_code": period_code,
            "periods": PERIOD_LABELS,
            "scope": scope,
            "sort": sort,
            "total": total,
            "latency": latency,
            "rows": rows,
            "missing": missing,
            "site": site,
            "backlog": backlog,
            "recent_errors": recent_errors,
            "pull_rows": pull_rows,
            "pull_error": pull_error,
            "error_types": errors,
            "reasons": reasons,
            "stale_after": STALE_SOURCE_AFTER,
            "updated_at": now,
            "unit": unit,
            "chart_days": charts.lines(
                day_list, series, title=f"Tin, bài tích hợp, hậu kiểm, xuất bản theo {unit}"
            ),
            "chart_backlog": charts.stacked_bars(
                age_names,
                [
                    charts.Series(
                        "Chờ duyệt", "s4", [backlog["pending"][b.code] for b in AGE_BUCKETS]
                    ),
                    charts.Series(
                        "Chờ hậu kiểm",
                        "s2",
                        [backlog["post_review"][b.code] for b in AGE_BUCKETS],
                    ),
                ],
                title="Tin, bài đang chờ xử lý theo thời gian chờ",
            ),
            "chart_reasons": charts.hbars(
                reasons, title="Lý do từ chối", css="s5", label_width=200
            ),
            "chart_errors": charts.hbars(
                [(present.label(present.ERROR_TYPE_LABELS, t), n) for t, n in errors],
                title="Lỗi tích hợp theo loại",
                css="s5",
            ),
            "meter": charts.meter,
            "query": lambda **kw: urlencode(
                {
                    k: v
                    for k, v in {"period": period_code, "source": scope, "sort": sort, **kw}.items()
                    if v
                }
            ),
        }

    @router.get("/dashboard")
    async def dashboard(request: Request, who: Signed) -> Response:
        editor = page(who, DeskPage.DASHBOARD)
        context = await dashboard_context(editor, request.query_params)
        return templates.render(
            request,
            who,
            "dashboard.html",
            active="dashboard",
            sources=await source_names(),
            **context,
        )

    @router.get("/dashboard/live")
    async def dashboard_live(request: Request, who: Signed) -> Response:
        editor = page(who, DeskPage.DASHBOARD)
        context = await dashboard_context(editor, request.query_params)
        return templates.render(request, who, "_dashboard_live.html", **context)

    # --- the audit log ----------------------------------------------------------------------

    @router.get("/audit")
    async def audit(request: Request, who: Signed) -> Response:
        page(who, DeskPage.AUDIT)
        params = request.query_params
        tab = params.get("tab") or "decisions"
        if tab not in ("decisions", "admin"):
            raise DeskError(422, "Mục nhật ký không hợp lệ.", "tab: decisions or admin")
        before = _int(params.get("before"), "before")
        actor = _text((params.get("actor") or "").strip() or None, "Người thực hiện", 64)
        item = _text((params.get("item") or "").strip() or None, "Tin, bài", 200)
        action = params.get("action") or None
        if action is not None and action not in present.ACTION_LABELS:
            raise DeskError(422, "Thao tác không hợp lệ.", "action: unknown")
        since = _date(params.get("since"), "Từ ngày")
        until = _date(params.get("until"), "Đến ngày")
        if until is not None:
            until += timedelta(days=1)  # the whole last day
        async with desk.sessions() as session:
            if tab == "decisions":
                entries = await repo.search_decisions(
                    session,
                    repo.AuditFilter(
                        actor=actor,
                        item=item,
                        action=action,
                        source=_code(params.get("source"), "nguồn"),
                        since=since,
                        until=until,
                    ),
                    before_id=before,
                    limit=PAGE_SIZE,
                )
            else:
                entries = await repo.search_admin_audit(
                    session, actor=actor, target=item, before_id=before, limit=PAGE_SIZE
                )
            people = [u["username"] for u in await repo.list_users(session)]
        older = entries[-1]["id"] if len(entries) == PAGE_SIZE else None
        query = {k: v for k, v in params.items() if k != "before" and v}
        return templates.render(
            request,
            who,
            "audit.html",
            active="audit",
            tab=tab,
            entries=entries,
            older=urlencode({**query, "before": older}) if older else None,
            filters={
                "actor": actor or "",
                "item": item or "",
                "action": action or "",
                "source": params.get("source") or "",
                "since": params.get("since") or "",
                "until": params.get("until") or "",
            },
            people=people,
            sources=await source_names(),
        )

    # --- sources and policies (admin) -------------------------------------------------------

    async def sources_context() -> dict[str, Any]:
        async with desk.sessions() as session:
            mine = await repo.list_sources(session)
        ingest: dict[str, dict[str, Any]] = {}
        ingest_error = None
        try:
            ingest = {s["code"]: s for s in await deps.sources.ingest.list_sources()}
        except (PeerUnavailable, PeerRefused) as exc:
            ingest_error = str(exc)
        return {"mine": mine, "ingest": ingest, "ingest_error": ingest_error}

    @router.get("/sources")
    async def sources_page(request: Request, who: Signed) -> Response:
        page(who, DeskPage.SOURCES)
        return templates.render(
            request,
            who,
            "sources.html",
            active="sources",
            site=await deps.sites.site(),
            error=None,
            form={},
            **(await sources_context()),
        )

    def source_form(form: Any, site: Site, code: str | None) -> dict[str, Any]:
        code = code or _code(form_value(form, "code"), "mã cơ quan", required=True)
        assert code is not None
        if len(code) < 2:
            raise DeskError(422, "Mã cơ quan quá ngắn.", "code: at least 2 characters")
        name = (form_value(form, "name") or "").strip()
        if not name or len(name) > 300:
            raise DeskError(422, "Tên cơ quan không được trống (tối đa 300 ký tự).", "name")
        kind = _code(form_value(form, "kind"), "loại cơ quan", required=True)
        try:
            policy = Policy(form_value(form, "policy") or "")
        except ValueError as exc:
            raise DeskError(422, "Chính sách không hợp lệ.", "policy: unknown") from exc
        sections = []
        for value in form.getlist("sections"):
            section = _code(value if isinstance(value, str) else None, "chuyên mục")
            if section and section not in sections:
                sections.append(section)
        extra = form_value(form, "sections_text") or ""
        for value in re.split(r"[\s,;]+", extra):
            section = _code(value, "chuyên mục")
            if section and section not in sections:
                sections.append(section)
        for standard in site.standard_sections:
            if standard not in sections:
                sections.insert(0, standard)
        return {
            "code": code,
            "name": name,
            "kind": kind,
            "policy": policy,
            "sections": sections,
            "active": form_value(form, "active") is not None,
        }

    async def peer_error(exc: Exception) -> DeskError:
        if isinstance(exc, PeerUnavailable):
            return DeskError(
                503,
                "Không kết nối được dịch vụ tiếp nhận (ingest); chưa có gì thay đổi. Thử lại sau.",
                str(exc),
            )
        assert isinstance(exc, PeerRefused)
        return DeskError(
            422 if exc.status != 404 else 404,
            "Dịch vụ tiếp nhận từ chối yêu cầu.",
            exc.detail,
        )

    @router.post("/sources")
    async def add_source(request: Request, who: SignedPost) -> Response:
        editor = page(who, DeskPage.SOURCES)
        form = await request.form()
        values = source_form(form, await deps.sites.site(), None)
        values["active"] = True
        try:
            await deps.sources.save_source(editor, **values)
        except (PeerUnavailable, PeerRefused) as exc:
            raise await peer_error(exc) from exc
        return RedirectResponse(
            f"{DESK_PREFIX}/sources/{values['code']}?done=created", status_code=303
        )

    async def source_detail(
        request: Request,
        who: Visitor,
        code: str,
        *,
        message: str | None = None,
        secret: dict[str, Any] | None = None,
    ) -> Response:
        async with desk.sessions() as session:
            mine = await repo.get_source(session, code)
        ingest_error = None
        ingest_source = keys = kafka = None
        try:
            ingest_source = await deps.sources.ingest.get_source(code)
            if ingest_source is not None:
                keys = await deps.sources.ingest.list_keys(code)
                kafka = await deps.sources.ingest.kafka_access(code)
        except (PeerUnavailable, PeerRefused) as exc:
            ingest_error = str(exc)
        if mine is None and ingest_source is None and ingest_error is None:
            raise DeskError(404, "Không có cơ quan này.", f"code: {code}")
        return templates.render(
            request,
            who,
            "source.html",
            active="sources",
            code=code,
            mine=mine,
            ingest_source=ingest_source,
            keys=keys or [],
            kafka=kafka,
            ingest_error=ingest_error,
            site=await deps.sites.site(),
            message=message,
            secret=secret,
        )

    @router.get("/sources/{code}")
    async def source_page(
        request: Request,
        who: Signed,
        code: SourceCodePath,
        done: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        page(who, DeskPage.SOURCES)
        messages = {
            "created": "Đã thêm cơ quan.",
            "saved": "Đã lưu.",
            "categories": "Đã lưu ánh xạ chuyên mục.",
            "revoked": "Đã thu hồi khóa API.",
        }
        return await source_detail(request, who, code, message=messages.get(done or ""))

    @router.post("/sources/{code}")
    async def save_source(request: Request, who: SignedPost, code: SourceCodePath) -> Response:
        editor = page(who, DeskPage.SOURCES)
        form = await request.form()
        values = source_form(form, await deps.sites.site(), code)
        try:
            await deps.sources.save_source(editor, **values)
        except (PeerUnavailable, PeerRefused) as exc:
            raise await peer_error(exc) from exc
        return RedirectResponse(f"{DESK_PREFIX}/sources/{code}?done=saved", status_code=303)

    @router.post("/sources/{code}/categories")
    async def save_categories(request: Request, who: SignedPost, code: SourceCodePath) -> Response:
        editor = page(who, DeskPage.SOURCES)
        form = await request.form()
        names = form.getlist("category")
        targets = form.getlist("target")
        if len(names) != len(targets) or len(names) > 500:
            raise DeskError(422, "Ánh xạ chuyên mục không hợp lệ.", "category, target")
        mapping: dict[str, str] = {}
        for name, target in zip(names, targets, strict=True):
            if not isinstance(name, str) or not isinstance(target, str):
                continue
            key = category_key(_text(name, "Chuyên mục của cơ quan", 200) or "")
            section = _code(target, "chuyên mục của cổng")
            if key and section:
                mapping[key] = section
        try:
            await deps.sources.set_categories(editor, code, mapping)
        except NotFound as exc:
            raise DeskError(404, "Không có cơ quan này.", str(exc)) from exc
        return RedirectResponse(f"{DESK_PREFIX}/sources/{code}?done=categories", status_code=303)

    @router.post("/sources/{code}/keys")
    async def issue_key(request: Request, who: SignedPost, code: SourceCodePath) -> Response:
        editor = page(who, DeskPage.SOURCES)
        form = await request.form()
        label = _text((form_value(form, "label") or "").strip() or None, "Nhãn", 200)
        try:
            issued = await deps.sources.issue_key(editor, code, label)
        except (PeerUnavailable, PeerRefused) as exc:
            raise await peer_error(exc) from exc
        # The plaintext key is shown in this answer only (ingest keeps a hash).
        return await source_detail(
            request,
            who,
            code,
            message="Đã cấp khóa API mới. Sao chép ngay: khóa chỉ hiện một lần.",
            secret={"kind": "api_key", **issued},
        )

    @router.post("/sources/{code}/keys/{key_id}/revoke")
    async def revoke_key(
        request: Request,
        who: SignedPost,
        code: SourceCodePath,
        key_id: Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")],
    ) -> Response:
        editor = page(who, DeskPage.SOURCES)
        try:
            await deps.sources.revoke_key(editor, code, key_id)
        except (PeerUnavailable, PeerRefused) as exc:
            raise await peer_error(exc) from exc
        return RedirectResponse(f"{DESK_PREFIX}/sources/{code}?done=revoked", status_code=303)

    @router.post("/sources/{code}/kafka")
    async def grant_kafka(request: Request, who: SignedPost, code: SourceCodePath) -> Response:
        editor = page(who, DeskPage.SOURCES)
        try:
            granted = await deps.sources.grant_kafka(editor, code)
        except (PeerUnavailable, PeerRefused) as exc:
            raise await peer_error(exc) from exc
        return await source_detail(
            request,
            who,
            code,
            message="Đã cấp mật khẩu Kafka mới (mật khẩu cũ hết hiệu lực). Mật khẩu chỉ hiện một lần.",
            secret={"kind": "kafka", **granted},
        )

    # --- accounts (admin) -------------------------------------------------------------------

    async def users_page_response(
        request: Request, who: Visitor, *, message: str | None, error: str | None, status: int = 200
    ) -> Response:
        async with desk.sessions() as session:
            users = await repo.list_users(session)
        return templates.render(
            request,
            who,
            "users.html",
            status=status,
            active="users",
            users=users,
            roles=list(Role),
            sources=await source_names(),
            message=message,
            error=error,
            min_length=MIN_LENGTH,
        )

    @router.get("/users")
    async def users_page(
        request: Request, who: Signed, done: Annotated[str | None, Query(max_length=32)] = None
    ) -> Response:
        page(who, DeskPage.USERS)
        return await users_page_response(
            request, who, message="Đã lưu tài khoản." if done else None, error=None
        )

    @router.post("/users")
    async def save_user(request: Request, who: SignedPost) -> Response:
        editor = page(who, DeskPage.USERS)
        form = await request.form()
        username = (form_value(form, "username") or "").strip().lower()
        if not USERNAME.match(username):
            raise DeskError(
                422,
                "Tên đăng nhập: 2–64 ký tự a-z, 0-9, dấu chấm, gạch dưới, gạch ngang.",
                "username: pattern",
            )
        try:
            role = Role(form_value(form, "role") or "")
        except ValueError as exc:
            raise DeskError(422, "Vai trò không hợp lệ.", "role: unknown") from exc
        display_name = (form_value(form, "display_name") or "").strip()
        if not display_name or len(display_name) > 200:
            raise DeskError(422, "Tên hiển thị không được trống.", "display_name")
        source = _code(form_value(form, "source"), "cơ quan")
        if role is Role.AGENCY_PUBLISHER and source is None:
            raise DeskError(422, "Tài khoản cơ quan cần chọn cơ quan.", "source: required")
        if role is not Role.AGENCY_PUBLISHER:
            source = None
        password = form_value(form, "password") or None
        if password is not None and not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            raise DeskError(
                422, f"Mật khẩu cần từ {MIN_LENGTH} đến {MAX_LENGTH} ký tự.", "password: length"
            )
        if username == editor.username and (
            role is not Role.ADMIN or not form_value(form, "active")
        ):
            raise DeskError(
                422, "Không thể tự hạ quyền hoặc khóa tài khoản của chính mình.", "username: self"
            )
        try:
            await deps.accounts.save_user(
                username,
                password=password,
                role=role,
                display_name=display_name,
                source=source,
                active=form_value(form, "active") is not None,
                actor=editor.username,
            )
        except ValueError as exc:
            raise DeskError(422, "Tài khoản mới cần mật khẩu.", str(exc)) from exc
        return RedirectResponse(f"{DESK_PREFIX}/users?done=saved", status_code=303)

    return router


def _date(value: str | None, name: str) -> datetime | None:
    """A day picked in the form (YYYY-MM-DD), as the start of that day in Vietnam."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise DeskError(422, f"{name} không hợp lệ.", f"{name}: YYYY-MM-DD") from exc
    return day.replace(tzinfo=present.LOCAL).astimezone(UTC)


def install_desk(app: FastAPI, deps: DeskDeps) -> None:
    """Mount the desk on the app: pages, static assets, error pages."""
    app.include_router(desk_router(deps))
    app.mount(f"{DESK_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="desk-static")
    templates, auth = deps.templates, deps.auth

    async def render_error(
        request: Request, status: int, message: str, detail: str | None
    ) -> Response:
        who = await auth.visitor_of(request)
        name = "_message.html" if is_htmx(request) else "error.html"
        return templates.render(
            request, who, name, status=status, message=message, detail=detail, kind="error"
        )

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        target = login_redirect_target(request)
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return await render_error(
            request,
            403,
            "Yêu cầu bị từ chối vì thiếu hoặc sai mã bảo vệ (CSRF). Hãy tải lại trang rồi thử lại.",
            exc.reason,
        )

    @app.exception_handler(DeskError)
    async def desk_error(request: Request, exc: DeskError) -> Response:
        return await render_error(request, exc.status, exc.message, exc.detail)
