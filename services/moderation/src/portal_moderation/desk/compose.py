"""Writing for an agency's sub-site (agency accounts, and editors acting for an agency): the
agency's articles with their review state and the editors' reasons, the compose form (rich
text editor, lead image), preview, submit, retract.

The routes read the form and call ``compose.usecases.Composer``, which checks on every request
that the account writes only for its own agency and that agency's sections.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from portal_moderation.compose import pasted_text
from portal_moderation.compose.rules import DraftFields, InvalidDraft, writing_source
from portal_moderation.compose.usecases import Draft
from portal_moderation.compose.word_import import WordImportError
from portal_moderation.desk import forms, present
from portal_moderation.desk.auth import DESK_PREFIX, Visitor, form_value
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, SignedPost, on_page
from portal_moderation.desk.errors import DeskError, forbidden
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import DeskPage, Editor, Forbidden, Role
from portal_moderation.peers import PeerRefused, PeerUnavailable
from portal_moderation.usecases import NotFound

COMPOSE_PREFIX = f"{DESK_PREFIX}/compose"
router = APIRouter(prefix=COMPOSE_PREFIX, include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.COMPOSE, "Viết bài", "g w")

DraftIdPath = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]
IMAGE_MAX_BYTES = 5 * 1024 * 1024
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
DONE_MESSAGES = {
    "saved": "Đã lưu bản thảo.",
    "submitted": "Đã gửi bài. Bài vào hàng chờ duyệt như tin của mọi cơ quan.",
    "retracted": "Đã gỡ bài.",
    "sent_back": "Đã trả bài về đơn vị kèm ý kiến.",
}
FIELD_NAMES = {
    "title": "Tiêu đề",
    "summary": "Tóm tắt",
    "author": "Tác giả",
    "body_html": "Nội dung",
    "caption": "Chú thích ảnh",
    "source": "Cơ quan",
    "article": "Bài viết",
    "comment": "Ý kiến",
    "state": "Trạng thái",
}


def _refusal(exc: Exception) -> DeskError:
    if isinstance(exc, Forbidden):
        return forbidden(exc)
    if isinstance(exc, NotFound):
        return DeskError(404, "Không tìm thấy bài viết.", str(exc))
    if isinstance(exc, InvalidDraft):
        name = FIELD_NAMES.get(exc.field, exc.field)
        return DeskError(422, f"{name}: chưa hợp lệ ({exc.message}).", str(exc))
    if isinstance(exc, PeerUnavailable):
        return DeskError(
            503, "Không kết nối được dịch vụ tiếp nhận; chưa gửi được. Thử lại sau.", str(exc)
        )
    assert isinstance(exc, PeerRefused)
    if exc.status == 403:
        return DeskError(403, "Dịch vụ tiếp nhận từ chối: không được đăng vào đây.", exc.detail)
    return DeskError(422, f"Dịch vụ tiếp nhận từ chối: {exc.detail}", exc.detail)


_LEGACY_NOTE = re.compile(r"^text in (.+) converted to Unicode \((\d+) runs?\)$")


def import_note(warning: str) -> str:
    """An import warning for the writer, in Vietnamese where it is a known one."""
    found = _LEGACY_NOTE.match(warning)
    if found:
        return f"Chữ gõ bằng phông cũ {found.group(1)} đã được chuyển sang Unicode ({found.group(2)} đoạn)."
    return warning


REFUSALS = (Forbidden, NotFound, InvalidDraft, PeerUnavailable, PeerRefused)


async def _form_page(
    request: Request,
    who: Visitor,
    deps: DeskDeps,
    editor: Editor,
    *,
    source: str,
    draft: Draft | None,
    message: str | None = None,
    warnings: tuple[str, ...] = (),
) -> Response:
    site = await deps.sites.site()
    sections = await deps.composer.sections_of(source)
    review = await deps.composer.review_of(editor, draft) if draft else None
    return deps.templates.render(
        request,
        who,
        "compose_form.html",
        active="compose",
        source=source,
        source_name=(await deps.source_names()).get(source, source),
        sections=[(code, site.name_of(code)) for code in sections],
        draft=draft,
        fields=draft.fields if draft else DraftFields(title=""),
        review=review,
        message=message,
        warnings=warnings,
        draft_labels=present.DRAFT_STATE_LABELS,
        may_send_back=editor.role is not Role.AGENCY_PUBLISHER,
    )


@router.get("")
async def my_articles(request: Request, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    requested = forms.code(request.query_params.get("source"), "cơ quan")
    try:
        rows = await deps.composer.list_for(editor, requested)
    except REFUSALS as exc:
        raise _refusal(exc) from exc
    names = await deps.source_names()
    return deps.templates.render(
        request,
        who,
        "compose_list.html",
        active="compose",
        rows=rows,
        names=names,
        source=requested or editor.source,
        draft_labels=present.DRAFT_STATE_LABELS,
        choose_source=editor.role is not Role.AGENCY_PUBLISHER,
    )


@router.get("/new")
async def new_form(request: Request, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    try:
        source = writing_source(editor, forms.code(request.query_params.get("source"), "cơ quan"))
        return await _form_page(request, who, deps, editor, source=source, draft=None)
    except REFUSALS as exc:
        raise _refusal(exc) from exc


def _fields(form: Any, lead_image_url: str | None) -> DraftFields:
    return DraftFields(
        title=form_value(form, "title") or "",
        summary=form_value(form, "summary"),
        section=forms.code(form_value(form, "section"), "chuyên mục"),
        author=form_value(form, "author"),
        body_html=form_value(form, "body_html") or "",
        lead_image_url=lead_image_url,
        lead_caption=form_value(form, "lead_caption"),
    )


async def _uploaded(form: Any, name: str) -> bytes | None:
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(IMAGE_MAX_BYTES + 1)
    if len(data) > IMAGE_MAX_BYTES:
        raise DeskError(413, "Ảnh lớn quá 5 MB.", "image: larger than 5 MiB")
    return data or None


async def _save_and_act(
    request: Request, who: Visitor, deps: DeskDeps, draft_id: str | None
) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    form = await request.form()
    action = form_value(form, "do") or "save"
    try:
        current = await deps.composer.get(editor, draft_id) if draft_id else None
        source = current.source if current else form_value(form, "source")
        # The lead image is one uploaded here: the one kept, a new one, or none.
        lead = current.fields.lead_image_url if current else None
        if form_value(form, "remove_lead_image"):
            lead = None
        image = await _uploaded(form, "lead_image")
        if image is not None:
            stored = await deps.composer.upload_image(editor, source or None, image)
            lead = stored["url"]
        draft = await deps.composer.save(
            editor, draft_id, _fields(form, lead), source=source or None
        )
        done = "saved"
        if action == "submit":
            draft = await deps.composer.submit(editor, draft.draft_id)
            done = "submitted"
    except REFUSALS as exc:
        raise _refusal(exc) from exc
    if action == "preview":
        return RedirectResponse(f"{COMPOSE_PREFIX}/{draft.draft_id}/preview", status_code=303)
    return RedirectResponse(f"{COMPOSE_PREFIX}/{draft.draft_id}?done={done}", status_code=303)


@router.post("/new")
async def create(request: Request, who: SignedPost, deps: Deps) -> Response:
    return await _save_and_act(request, who, deps, None)


@router.post("/legacy-text")
async def legacy_text(request: Request, who: SignedPost, deps: Deps) -> Response:
    """Text runs pasted into the editor with their fonts -> the runs in Unicode (JSON)."""
    on_page(who, DeskPage.COMPOSE)
    try:
        body = await request.json()
        runs = [(str(r["font"])[:200], str(r["text"])) for r in body["runs"]]
        texts, repaired = pasted_text.repair_runs(runs)
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"detail": f"runs: {exc}"}, status_code=422)
    return JSONResponse({"texts": texts, "repaired": repaired})


@router.get("/import")
async def import_form(request: Request, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    return deps.templates.render(
        request,
        who,
        "compose_import.html",
        active="compose",
        names=await deps.source_names(),
        choose_source=editor.role is not Role.AGENCY_PUBLISHER,
        source=forms.code(request.query_params.get("source"), "cơ quan") or editor.source,
    )


@router.post("/import")
async def import_document(request: Request, who: SignedPost, deps: Deps) -> Response:
    """A .docx becomes a draft (body, images); the page shows it with the import's notes."""
    editor = on_page(who, DeskPage.COMPOSE)
    form = await request.form()
    upload = form.get("document")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise DeskError(422, "Chưa chọn tệp Word (.docx).", "document: required")
    data = await upload.read(DOCUMENT_MAX_BYTES + 1)
    if len(data) > DOCUMENT_MAX_BYTES:
        raise DeskError(413, "Tệp lớn quá 10 MB.", "document: larger than 10 MiB")
    try:
        draft, warnings = await deps.composer.import_docx(
            editor, forms.code(form_value(form, "source"), "cơ quan"), data
        )
        return await _form_page(
            request,
            who,
            deps,
            editor,
            source=draft.source,
            draft=draft,
            message="Đã nhập tệp Word thành bản thảo. Hãy kiểm tra lại trước khi gửi duyệt.",
            warnings=tuple(import_note(w) for w in warnings),
        )
    except WordImportError as exc:
        raise DeskError(422, f"Không nhập được tệp Word: {exc.reason}", exc.reason) from exc
    except REFUSALS as exc:
        raise _refusal(exc) from exc


@router.get("/{draft_id}")
async def edit_form(request: Request, draft_id: DraftIdPath, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    try:
        draft = await deps.composer.get(editor, draft_id)
        message = DONE_MESSAGES.get(request.query_params.get("done") or "")
        return await _form_page(
            request, who, deps, editor, source=draft.source, draft=draft, message=message
        )
    except REFUSALS as exc:
        raise _refusal(exc) from exc


@router.post("/{draft_id}")
async def save(request: Request, draft_id: DraftIdPath, who: SignedPost, deps: Deps) -> Response:
    return await _save_and_act(request, who, deps, draft_id)


@router.get("/{draft_id}/preview")
async def preview(request: Request, draft_id: DraftIdPath, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    try:
        draft = await deps.composer.get(editor, draft_id)
    except REFUSALS as exc:
        raise _refusal(exc) from exc
    site = await deps.sites.site()
    return deps.templates.render(
        request,
        who,
        "compose_preview.html",
        active="compose",
        draft=draft,
        section_name=site.name_of(draft.fields.section),
        source_name=(await deps.source_names()).get(draft.source, draft.source),
    )


@router.post("/{draft_id}/send-back")
async def send_back(
    request: Request, draft_id: DraftIdPath, who: SignedPost, deps: Deps
) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    form = await request.form()
    try:
        await deps.composer.send_back(editor, draft_id, form_value(form, "comment") or "")
    except REFUSALS as exc:
        raise _refusal(exc) from exc
    return RedirectResponse(f"{COMPOSE_PREFIX}/{draft_id}?done=sent_back", status_code=303)


@router.post("/{draft_id}/retract")
async def retract(request: Request, draft_id: DraftIdPath, who: SignedPost, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.COMPOSE)
    try:
        await deps.composer.retract(editor, draft_id)
    except REFUSALS as exc:
        raise _refusal(exc) from exc
    return RedirectResponse(f"{COMPOSE_PREFIX}/{draft_id}?done=retracted", status_code=303)


@router.post("/{draft_id}/images")
async def inline_image(
    request: Request, draft_id: DraftIdPath, who: SignedPost, deps: Deps
) -> Response:
    """An image put into the body by the editor (JSON answer: the URL to insert)."""
    editor = on_page(who, DeskPage.COMPOSE)
    form = await request.form()
    try:
        draft = await deps.composer.get(editor, draft_id)
        data = await _uploaded(form, "image")
        if data is None:
            raise DeskError(422, "Chưa chọn ảnh.", "image: required")
        stored = await deps.composer.upload_image(editor, draft.source, data)
    except REFUSALS as exc:
        refusal = _refusal(exc)
        return JSONResponse({"detail": refusal.message}, status_code=refusal.status)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    return JSONResponse({"url": stored["url"]}, status_code=201)
