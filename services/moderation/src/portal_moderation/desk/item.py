"""One item of the queue: its page and panel (the article as the public will see it, the
original as received, the quality report, near-duplicates, history), the side-by-side
comparison, and the editor's actions on it (approve, reject, edit, retract, release).

Opening an item claims it for a few minutes, so two editors never act on it unknowingly; every
action carries the version the editor saw (409 when it changed since).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_contracts.articles import NormalizedArticle, QualityReport
from portal_moderation import repository as repo
from portal_moderation.desk import forms, present
from portal_moderation.desk.auth import DESK_PREFIX, Visitor, form_value, is_htmx
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, SignedPost, editor_of, on_page
from portal_moderation.desk.errors import DeskError, forbidden
from portal_moderation.desk.templating import NavLink
from portal_moderation.domain import (
    Action,
    Claim,
    Conflict,
    DeskPage,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    Role,
    authorize,
    claim_by_other,
    may,
)
from portal_moderation.usecases import NotFound
from portal_runtime.clock import utcnow

router = APIRouter(prefix=f"{DESK_PREFIX}/items", include_in_schema=False)
NAV: NavLink | None = None

ArticleId = Annotated[str, Path(min_length=1, max_length=64)]
Steps = list[tuple[Action, dict[str, Any]]]
DONE_MESSAGES = {
    "approved": "Đã duyệt: bài được đưa lên cổng.",
    "rejected": "Đã từ chối: cơ quan gửi tin sẽ thấy lý do.",
    "edited": "Đã lưu thay đổi.",
    "edited_approved": "Đã lưu thay đổi và duyệt: bài được đưa lên cổng.",
    "retracted": "Đã gỡ bài khỏi cổng.",
    "released": "Đã trả mục này cho biên tập viên khác.",
    "unchanged": "Không có gì thay đổi.",
}
EDITABLE = (("title", 500), ("summary", 5000), ("section", 64), ("lead_image", 2000))


# --- reading an item ----------------------------------------------------------------------


async def load_item(deps: DeskDeps, editor: Editor, article_id: str) -> dict[str, Any]:
    async with deps.desk.sessions() as session:
        row = await repo.get_item(session, article_id)
    if row is None:
        raise DeskError(404, "Không tìm thấy tin, bài này.", f"article_id: {article_id}")
    try:
        authorize(editor, Action.VIEW, row["source"])
    except Forbidden as exc:
        raise forbidden(exc) from exc
    return row


def article_of(row: dict[str, Any]) -> NormalizedArticle | None:
    return NormalizedArticle.model_validate(row["article"]) if row["article"] else None


async def item_context(
    deps: DeskDeps, editor: Editor, row: dict[str, Any], *, claim: bool
) -> dict[str, Any]:
    """What the item page and panel show; ``claim``: the editor takes the item for a while."""
    now = utcnow()
    article_id = row["article_id"]
    actionable = row["state"] in (ItemState.PENDING.value, ItemState.AUTO_PUBLISHED.value)
    held: Claim | None = None
    if claim and actionable and may(editor, Action.APPROVE):
        held = await deps.desk.claim(editor, article_id, deps.claim_ttl)
    async with deps.desk.sessions() as session:
        if held is None:
            held = (await repo.claims_for(session, [article_id], now)).get(article_id)
        original = await repo.get_original(session, article_id)
        twins = await repo.twins_of(session, row)
        history = await repo.history(session, article_id)
    agency = editor.source if editor.role is Role.AGENCY_PUBLISHER else None
    return {
        "item": row,
        "article": article_of(row),
        "quality": QualityReport.model_validate(row["quality"]) if row["quality"] else None,
        "original": original,
        "twins": [t for t in twins if agency is None or t["source"] == agency],
        "history": history,
        "other_claim": claim_by_other(held, editor.username, now),
        "site": await deps.sites.site(),
        "sources": await deps.source_names(),
        "reject_reasons": present.REJECT_REASONS,
    }


@router.get("/{article_id}")
async def item_page(
    request: Request,
    who: Signed,
    deps: Deps,
    article_id: ArticleId,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    row = await load_item(deps, editor, article_id)
    context = await item_context(deps, editor, row, claim=True)
    return deps.templates.render(
        request,
        who,
        "item.html",
        active="queue",
        message=DONE_MESSAGES.get(done or ""),
        error=None,
        **context,
    )


@router.get("/{article_id}/panel")
async def item_panel(request: Request, who: Signed, deps: Deps, article_id: ArticleId) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    row = await load_item(deps, editor, article_id)
    context = await item_context(deps, editor, row, claim=True)
    return deps.templates.render(
        request, who, "_item_panel.html", message=None, error=None, **context
    )


@router.get("/{article_id}/compare/{other_id}")
async def compare(
    request: Request, who: Signed, deps: Deps, article_id: ArticleId, other_id: ArticleId
) -> Response:
    editor = on_page(who, DeskPage.QUEUE)
    rows = [await load_item(deps, editor, i) for i in (article_id, other_id)]
    return deps.templates.render(
        request,
        who,
        "compare.html",
        active="queue",
        pair=[(row, article_of(row)) for row in rows],
        site=await deps.sites.site(),
        sources=await deps.source_names(),
    )


# --- acting on an item --------------------------------------------------------------------


async def panel_after(
    request: Request,
    who: Visitor,
    deps: DeskDeps,
    article_id: str,
    *,
    message: str | None,
    error: str | None,
    status: int = 200,
) -> Response:
    """The item's panel as it is after an action (and its queue row, out of band)."""
    editor = editor_of(who)
    row = await load_item(deps, editor, article_id)
    context = await item_context(deps, editor, row, claim=False)
    return deps.templates.render(
        request,
        who,
        "_item_panel.html",
        status=status,
        message=message,
        error=error,
        oob_row=True,
        **context,
    )


def conflict_message(exc: Conflict) -> str:
    if exc.reason.startswith("version:"):
        return (
            "Mục này vừa được thay đổi (bởi đồng nghiệp hoặc do cơ quan gửi phiên bản mới) "
            "sau khi bạn mở nó. Dưới đây là nội dung hiện tại; hãy xem lại rồi thao tác."
        )
    if exc.reason.startswith("revision:"):
        return f"Đã có phiên bản mới hơn ({exc.current_revision}). Hãy xem lại phiên bản mới."
    state = present.label(present.STATE_LABELS, exc.state.value)
    return f"Không thực hiện được ở trạng thái hiện tại ({state})."


async def run_steps(
    deps: DeskDeps, editor: Editor, article_id: str, steps: Steps, form: Any
) -> bool:
    """Run the editor's action(s) at the version they saw; whether an edit changed anything."""
    version = forms.number(form_value(form, "version"), "version")
    revision = forms.number(form_value(form, "revision"), "revision")
    changed = True
    for action, kwargs in steps:
        before = version
        row = await deps.desk.act(
            editor, article_id, action, revision=revision, version=version, **kwargs
        )
        version = row.get("version", version)
        if action is Action.EDIT and version == before:
            changed = False
    return changed


async def act(
    request: Request, who: Visitor, deps: DeskDeps, article_id: str, steps: Steps, done: str
) -> Response:
    """Run the editor's action(s) on the item and show the item as it is afterwards."""
    try:
        changed = await run_steps(deps, editor_of(who), article_id, steps, await request.form())
    except Forbidden as exc:
        raise forbidden(exc) from exc
    except NotFound as exc:
        raise DeskError(404, "Không tìm thấy tin, bài này.", str(exc)) from exc
    except Conflict as exc:
        return await panel_after(
            request, who, deps, article_id, message=None, error=conflict_message(exc), status=409
        )
    except InvalidEdit as exc:
        error = f"Nội dung sửa không hợp lệ: {exc}"
        return await panel_after(
            request, who, deps, article_id, message=None, error=error, status=422
        )
    if done == "edited" and not changed:
        done = "unchanged"
    if not is_htmx(request):
        return RedirectResponse(f"{DESK_PREFIX}/items/{article_id}?done={done}", status_code=303)
    return await panel_after(
        request, who, deps, article_id, message=DONE_MESSAGES[done], error=None
    )


def edits_from(form: Any) -> dict[str, str | None]:
    edits: dict[str, str | None] = {}
    for name, limit in EDITABLE:
        value = form_value(form, name)
        if value is not None:
            edits[name] = forms.text(value, present.FIELD_LABELS[name], limit)
    if not edits:
        raise DeskError(422, "Không có trường nào để sửa.", "title, summary, section: none")
    return edits


def reason_from(form: Any) -> str:
    reason = (form_value(form, "reason") or "").strip() or (
        form_value(form, "preset") or ""
    ).strip()
    if not reason:
        raise DeskError(422, "Cần ghi lý do.", "reason: required")
    return forms.text(reason, "Lý do", 2000) or ""


@router.post("/{article_id}/approve")
async def approve(request: Request, who: SignedPost, deps: Deps, article_id: ArticleId) -> Response:
    return await act(request, who, deps, article_id, [(Action.APPROVE, {})], "approved")


@router.post("/{article_id}/reject")
async def reject(request: Request, who: SignedPost, deps: Deps, article_id: ArticleId) -> Response:
    reason = reason_from(await request.form())
    steps: Steps = [(Action.REJECT, {"reason": reason})]
    return await act(request, who, deps, article_id, steps, "rejected")


@router.post("/{article_id}/edit")
async def edit(request: Request, who: SignedPost, deps: Deps, article_id: ArticleId) -> Response:
    form = await request.form()
    steps: Steps = [(Action.EDIT, {"edits": edits_from(form)})]
    done = "edited"
    if form_value(form, "and_approve"):
        steps.append((Action.APPROVE, {}))
        done = "edited_approved"
    return await act(request, who, deps, article_id, steps, done)


@router.post("/{article_id}/retract")
async def retract(request: Request, who: SignedPost, deps: Deps, article_id: ArticleId) -> Response:
    reason = reason_from(await request.form())
    steps: Steps = [(Action.RETRACT, {"reason": reason})]
    return await act(request, who, deps, article_id, steps, "retracted")


@router.post("/{article_id}/release")
async def release(request: Request, who: SignedPost, deps: Deps, article_id: ArticleId) -> Response:
    editor = editor_of(who)
    await load_item(deps, editor, article_id)
    await deps.desk.release(editor, article_id)
    if not is_htmx(request):
        return RedirectResponse(f"{DESK_PREFIX}/queue", status_code=303)
    return await panel_after(
        request, who, deps, article_id, message=DONE_MESSAGES["released"], error=None
    )
