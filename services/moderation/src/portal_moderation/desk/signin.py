"""Signing in and out of the desk; the desk's home sends each visitor to the right page."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation.desk import present
from portal_moderation.desk.auth import DESK_PREFIX, form_value, is_htmx, safe_next
from portal_moderation.desk.deps import Anyone, AnyonePost, Deps, SignedPost
from portal_moderation.desk.templating import NavLink
from portal_moderation.passwords import MAX_LENGTH, HashingBusy
from portal_moderation.usecases import SignInRefused

router = APIRouter(prefix=DESK_PREFIX, include_in_schema=False)
NAV: NavLink | None = None


@router.get("")
@router.get("/")
async def home(who: Anyone) -> Response:
    target = f"{DESK_PREFIX}/queue" if who.editor else f"{DESK_PREFIX}/login"
    return RedirectResponse(target, status_code=303)


@router.get("/login")
async def login_form(
    request: Request,
    who: Anyone,
    deps: Deps,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    if who.editor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return deps.templates.render(request, who, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, who: AnyonePost, deps: Deps) -> Response:
    form = await request.form()
    username = (form_value(form, "username") or "").strip().lower()
    password = form_value(form, "password") or ""
    target = safe_next(form_value(form, "next"))

    def refused(status: int, error: str) -> Response:
        return deps.templates.render(
            request,
            who,
            "login.html",
            status=status,
            next=target,
            error=error,
            username=username[:64],
        )

    if (
        not username
        or not password
        or len(username) > 64
        or len(password) > MAX_LENGTH
        or "\x00" in username
    ):
        return refused(422, "Nhập tên đăng nhập và mật khẩu.")
    try:
        issued = await deps.accounts.sign_in(
            username, password, request.client.host if request.client else "unknown"
        )
    except SignInRefused as exc:
        if exc.retry_at is not None:
            page = refused(
                429,
                "Đăng nhập sai quá nhiều lần từ địa chỉ này. Vui lòng thử lại sau "
                f"{present.local_time(exc.retry_at)}.",
            )
            left = (exc.retry_at - datetime.now(exc.retry_at.tzinfo)).total_seconds()
            page.headers["Retry-After"] = str(max(1, math.ceil(left)))
            return page
        return refused(401, "Tên đăng nhập hoặc mật khẩu không đúng.")
    except HashingBusy as exc:
        page = refused(503, "Hệ thống đang bận. Vui lòng thử lại sau ít giây.")
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    response = RedirectResponse(target, status_code=303)
    deps.auth.start_session(response, request, issued.token)
    return response


@router.post("/logout")
async def logout(request: Request, who: SignedPost, deps: Deps) -> Response:
    assert who.session_token is not None
    await deps.accounts.sign_out(who.session_token)
    response: Response = RedirectResponse(f"{DESK_PREFIX}/login", status_code=303)
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": f"{DESK_PREFIX}/login"})
    deps.auth.end_session(response)
    return response
