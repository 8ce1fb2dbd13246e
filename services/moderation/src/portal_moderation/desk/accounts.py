"""Editors' accounts (admins): create, change role or agency, reset a password, deactivate."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation import accounts_repository as accounts_repo
from portal_moderation.desk import forms
from portal_moderation.desk.auth import DESK_PREFIX, form_value
from portal_moderation.desk.deps import Deps, Signed, SignedPost, on_page
from portal_moderation.desk.errors import DeskError
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import DeskPage, Editor, Role
from portal_moderation.passwords import MAX_LENGTH, MIN_LENGTH

router = APIRouter(prefix=f"{DESK_PREFIX}/users", include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.USERS, "Tài khoản", "g u")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def account_form(form: Any, editor: Editor) -> dict[str, Any]:
    """The account as filled in; an admin may not demote or deactivate themself."""
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
    source = forms.code(form_value(form, "source"), "cơ quan")
    if role is Role.AGENCY_PUBLISHER and source is None:
        raise DeskError(422, "Tài khoản cơ quan cần chọn cơ quan.", "source: required")
    password = form_value(form, "password") or None
    if password is not None and not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise DeskError(
            422, f"Mật khẩu cần từ {MIN_LENGTH} đến {MAX_LENGTH} ký tự.", "password: length"
        )
    active = form_value(form, "active") is not None
    if username == editor.username and (role is not Role.ADMIN or not active):
        raise DeskError(
            422, "Không thể tự hạ quyền hoặc khóa tài khoản của chính mình.", "username: self"
        )
    return {
        "username": username,
        "password": password,
        "role": role,
        "display_name": display_name,
        "source": source if role is Role.AGENCY_PUBLISHER else None,
        "active": active,
    }


@router.get("")
async def users_page(
    request: Request,
    who: Signed,
    deps: Deps,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    on_page(who, DeskPage.USERS)
    async with deps.desk.sessions() as session:
        users = await accounts_repo.list_users(session)
    return deps.templates.render(
        request,
        who,
        "users.html",
        active="users",
        users=users,
        roles=list(Role),
        sources=await deps.source_names(),
        message="Đã lưu tài khoản." if done else None,
        error=None,
        min_length=MIN_LENGTH,
    )


@router.post("")
async def save_user(request: Request, who: SignedPost, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.USERS)
    values = account_form(await request.form(), editor)
    username = values.pop("username")
    try:
        await deps.accounts.save_user(username, **values, actor=editor.username)
    except ValueError as exc:
        raise DeskError(422, "Tài khoản mới cần mật khẩu.", str(exc)) from exc
    return RedirectResponse(f"{router.prefix}?done=saved", status_code=303)
