"""How the desk refuses: ``DeskError`` carries a Vietnamese message for the editor and an
English detail; the app answers it as an error page, or as a fragment in place with htmx.
Not signed in redirects to the sign-in form; a missing CSRF token is a 403 page."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from portal_moderation.desk.auth import CsrfRefused, NotSignedIn, is_htmx, login_redirect_target
from portal_moderation.domain import Forbidden


class DeskError(Exception):
    """A refusal shown to the editor as a page (or a fragment in place, with htmx)."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def forbidden(exc: Forbidden) -> DeskError:
    return DeskError(403, "Tài khoản của bạn không được phép làm việc này.", str(exc))


async def _render_error(
    request: Request, status: int, message: str, detail: str | None
) -> Response:
    deps = request.app.state.desk
    who = await deps.auth.visitor_of(request)
    name = "_message.html" if is_htmx(request) else "error.html"
    response: Response = deps.templates.render(
        request, who, name, status=status, message=message, detail=detail, kind="error"
    )
    return response


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    target = login_redirect_target(request)
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRefused)
    return await _render_error(
        request,
        403,
        "Yêu cầu bị từ chối vì thiếu hoặc sai mã bảo vệ (CSRF). Hãy tải lại trang rồi thử lại.",
        exc.reason,
    )


async def _desk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeskError)
    return await _render_error(request, exc.status, exc.message, exc.detail)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(DeskError, _desk_error)
