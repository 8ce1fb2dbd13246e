"""Sources and their policies (admins): the agencies, their trust policy and sections, the
mapping of their own categories to the portal's sections, API keys and Kafka credentials.

The desk keeps the policy; ingest keeps what partners authenticate with (keys, Kafka users),
reached through its admin API (``peers.IngestAdmin``). A new key or password is shown once.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation import repository as repo
from portal_moderation.desk import forms
from portal_moderation.desk.auth import DESK_PREFIX, Visitor, form_value
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, SignedPost, on_page
from portal_moderation.desk.errors import DeskError
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import DeskPage, Policy, category_key
from portal_moderation.peers import PeerRefused, PeerUnavailable, Site
from portal_moderation.usecases import NotFound

router = APIRouter(prefix=f"{DESK_PREFIX}/sources", include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.SOURCES, "Nguồn tin, chính sách", "g s")

SourceCodePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", min_length=2, max_length=64)]
KeyIdPath = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
DONE_MESSAGES = {
    "created": "Đã thêm cơ quan.",
    "saved": "Đã lưu.",
    "categories": "Đã lưu ánh xạ chuyên mục.",
    "revoked": "Đã thu hồi khóa API.",
}


def peer_error(exc: PeerUnavailable | PeerRefused) -> DeskError:
    if isinstance(exc, PeerUnavailable):
        return DeskError(
            503,
            "Không kết nối được dịch vụ tiếp nhận (ingest); chưa có gì thay đổi. Thử lại sau.",
            str(exc),
        )
    return DeskError(
        422 if exc.status != 404 else 404, "Dịch vụ tiếp nhận từ chối yêu cầu.", exc.detail
    )


def sections_from(form: Any, site: Site) -> list[str]:
    """The source's sections: ticked, typed (comma or space separated), and the standard ones."""
    sections: list[str] = []
    typed = re.split(r"[\s,;]+", form_value(form, "sections_text") or "")
    for value in [*form.getlist("sections"), *typed]:
        section = forms.code(value if isinstance(value, str) else None, "chuyên mục")
        if section and section not in sections:
            sections.append(section)
    for standard in site.standard_sections:
        if standard not in sections:
            sections.insert(0, standard)
    return sections


def source_form(form: Any, site: Site, code: str | None) -> dict[str, Any]:
    code = code or forms.code(form_value(form, "code"), "mã cơ quan", required=True)
    assert code is not None
    if len(code) < 2:
        raise DeskError(422, "Mã cơ quan quá ngắn.", "code: at least 2 characters")
    name = (form_value(form, "name") or "").strip()
    if not name or len(name) > 300:
        raise DeskError(422, "Tên cơ quan không được trống (tối đa 300 ký tự).", "name")
    kind = forms.code(form_value(form, "kind"), "loại cơ quan", required=True)
    try:
        policy = Policy(form_value(form, "policy") or "")
    except ValueError as exc:
        raise DeskError(422, "Chính sách không hợp lệ.", "policy: unknown") from exc
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "policy": policy,
        "sections": sections_from(form, site),
        "active": form_value(form, "active") is not None,
    }


def category_mapping(form: Any) -> dict[str, str]:
    """The agency's category names (case-folded) mapped to portal sections."""
    names = form.getlist("category")
    targets = form.getlist("target")
    if len(names) != len(targets) or len(names) > 500:
        raise DeskError(422, "Ánh xạ chuyên mục không hợp lệ.", "category, target")
    mapping: dict[str, str] = {}
    for name, target in zip(names, targets, strict=True):
        if not isinstance(name, str) or not isinstance(target, str):
            continue
        key = category_key(forms.text(name, "Chuyên mục của cơ quan", 200) or "")
        section = forms.code(target, "chuyên mục của cổng")
        if key and section:
            mapping[key] = section
    return mapping


@router.get("")
async def sources_page(request: Request, who: Signed, deps: Deps) -> Response:
    on_page(who, DeskPage.SOURCES)
    async with deps.desk.sessions() as session:
        mine = await repo.list_sources(session)
    ingest: dict[str, dict[str, Any]] = {}
    ingest_error = None
    try:
        ingest = {s["code"]: s for s in await deps.sources.ingest.list_sources()}
    except (PeerUnavailable, PeerRefused) as exc:
        ingest_error = str(exc)
    return deps.templates.render(
        request,
        who,
        "sources.html",
        active="sources",
        site=await deps.sites.site(),
        error=None,
        form={},
        mine=mine,
        ingest=ingest,
        ingest_error=ingest_error,
    )


@router.post("")
async def add_source(request: Request, who: SignedPost, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    values = source_form(await request.form(), await deps.sites.site(), None)
    values["active"] = True
    try:
        await deps.sources.save_source(editor, **values)
    except (PeerUnavailable, PeerRefused) as exc:
        raise peer_error(exc) from exc
    return RedirectResponse(f"{router.prefix}/{values['code']}?done=created", status_code=303)


async def source_detail(
    request: Request,
    who: Visitor,
    deps: DeskDeps,
    code: str,
    *,
    message: str | None = None,
    secret: dict[str, Any] | None = None,
) -> Response:
    """One source as the desk and ingest know it; ``secret``: a key or password shown once."""
    async with deps.desk.sessions() as session:
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
    return deps.templates.render(
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


@router.get("/{code}")
async def source_page(
    request: Request,
    who: Signed,
    deps: Deps,
    code: SourceCodePath,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    on_page(who, DeskPage.SOURCES)
    return await source_detail(request, who, deps, code, message=DONE_MESSAGES.get(done or ""))


@router.post("/{code}")
async def save_source(
    request: Request, who: SignedPost, deps: Deps, code: SourceCodePath
) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    values = source_form(await request.form(), await deps.sites.site(), code)
    try:
        await deps.sources.save_source(editor, **values)
    except (PeerUnavailable, PeerRefused) as exc:
        raise peer_error(exc) from exc
    return RedirectResponse(f"{router.prefix}/{code}?done=saved", status_code=303)


@router.post("/{code}/categories")
async def save_categories(
    request: Request, who: SignedPost, deps: Deps, code: SourceCodePath
) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    mapping = category_mapping(await request.form())
    try:
        await deps.sources.set_categories(editor, code, mapping)
    except NotFound as exc:
        raise DeskError(404, "Không có cơ quan này.", str(exc)) from exc
    return RedirectResponse(f"{router.prefix}/{code}?done=categories", status_code=303)


@router.post("/{code}/keys")
async def issue_key(
    request: Request, who: SignedPost, deps: Deps, code: SourceCodePath
) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    form = await request.form()
    label = forms.text((form_value(form, "label") or "").strip() or None, "Nhãn", 200)
    try:
        issued = await deps.sources.issue_key(editor, code, label)
    except (PeerUnavailable, PeerRefused) as exc:
        raise peer_error(exc) from exc
    # The plaintext key is shown in this answer only (ingest keeps a hash).
    return await source_detail(
        request,
        who,
        deps,
        code,
        message="Đã cấp khóa API mới. Sao chép ngay: khóa chỉ hiện một lần.",
        secret={"kind": "api_key", **issued},
    )


@router.post("/{code}/keys/{key_id}/revoke")
async def revoke_key(
    who: SignedPost, deps: Deps, code: SourceCodePath, key_id: KeyIdPath
) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    try:
        await deps.sources.revoke_key(editor, code, key_id)
    except (PeerUnavailable, PeerRefused) as exc:
        raise peer_error(exc) from exc
    return RedirectResponse(f"{router.prefix}/{code}?done=revoked", status_code=303)


@router.post("/{code}/kafka")
async def grant_kafka(
    request: Request, who: SignedPost, deps: Deps, code: SourceCodePath
) -> Response:
    editor = on_page(who, DeskPage.SOURCES)
    try:
        granted = await deps.sources.grant_kafka(editor, code)
    except (PeerUnavailable, PeerRefused) as exc:
        raise peer_error(exc) from exc
    return await source_detail(
        request,
        who,
        deps,
        code,
        message="Đã cấp mật khẩu Kafka mới (mật khẩu cũ hết hiệu lực). Mật khẩu chỉ hiện một lần.",
        secret={"kind": "kafka", **granted},
    )
