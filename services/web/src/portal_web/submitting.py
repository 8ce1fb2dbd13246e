"""The forms' own pages under /gui/: every submission, its acknowledgement and status link.

Everything here is private (``private, no-store``; no referrer; not indexed). One flow serves
every form (``FormKind``): the form page (GET), and the post, which is checked (CSRF, spam trap,
required fields), sent to engagement with the reader's address and an idempotency key, and
answered either with the form again (all that was typed kept, each reason beside its field or,
for a rate limit, how long to wait) or with a redirect to the private status page.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from portal_web import forms, views
from portal_web.apis import Closed, NotFound, RateLimited, Refused, Unavailable, seg
from portal_web.caching import PRIVATE
from portal_web.csrf import FIELD, FORMS_PREFIX, CsrfFailure, FormSession
from portal_web.deps import WebDep
from portal_web.form_kinds import (
    CODE,
    COMMENT,
    DIALOGUE_QUESTION,
    FEEDBACK,
    QUESTION,
    REPLY,
    REPORT,
    THREAD,
    FormContext,
    FormKind,
)
from portal_web.forms import FormState
from portal_web.pages import NOT_FOUND, PageError, Web, unavailable
from portal_web.views import Site

# What each path parameter of a form's address may be (anything else is a 404).
_PATH_PARAMS = {
    "code": re.compile(CODE),
    "slug": re.compile(r"^[^/]{1,200}$"),
    "thread_id": re.compile(r"^[A-Za-z0-9-]{1,64}$"),
    "post_id": re.compile(r"^[A-Za-z0-9-]{1,64}$"),
    "kind": re.compile(r"^(binh-luan|dien-dan)$"),
}
TokenPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$")]
IDEM_FIELD = "idem"
_IDEM = re.compile(r"^[A-Za-z0-9_.:-]{8,100}$")
FORBIDDEN = PageError(
    403,
    "Yêu cầu không hợp lệ",
    "Biểu mẫu này được gửi từ một trang khác, nên Cổng không nhận. Hãy mở lại trang trên Cổng "
    "và gửi từ đó.",
)

router = APIRouter(prefix=FORMS_PREFIX, include_in_schema=False)

# --- every form: GET shows it, POST submits it (path parameters and ?query go to its ``load``)


@router.get("/binh-luan/{slug}")
async def comment_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, COMMENT)


@router.post("/binh-luan/{slug}")
async def send_comment(request: Request, web: WebDep) -> Response:
    return await submit(web, request, COMMENT)


@router.get("/hoi-dap")
async def question_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, QUESTION)


@router.post("/hoi-dap")
async def send_question(request: Request, web: WebDep) -> Response:
    return await submit(web, request, QUESTION)


@router.get("/doi-thoai/{code}")
async def dialogue_question_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, DIALOGUE_QUESTION)


@router.post("/doi-thoai/{code}")
async def send_dialogue_question(request: Request, web: WebDep) -> Response:
    return await submit(web, request, DIALOGUE_QUESTION)


@router.get("/gop-y/{code}")
async def feedback_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, FEEDBACK)


@router.post("/gop-y/{code}")
async def send_feedback(request: Request, web: WebDep) -> Response:
    return await submit(web, request, FEEDBACK)


@router.get("/dien-dan/{code}")
async def thread_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, THREAD)


@router.post("/dien-dan/{code}")
async def send_thread(request: Request, web: WebDep) -> Response:
    return await submit(web, request, THREAD)


@router.get("/tra-loi/{thread_id}")
async def reply_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, REPLY)


@router.post("/tra-loi/{thread_id}")
async def send_reply(request: Request, web: WebDep) -> Response:
    return await submit(web, request, REPLY)


@router.get("/bao-cao/{kind}/{post_id}")
async def report_form(request: Request, web: WebDep) -> Response:
    return await show(web, request, REPORT)


@router.post("/bao-cao/{kind}/{post_id}")
async def send_report(request: Request, web: WebDep) -> Response:
    return await submit(web, request, REPORT)


# --- the token for public pages' forms, and the status link -----------------------------------


@router.get("/phien")
async def form_session(request: Request, web: WebDep) -> Response:
    session = web.csrf.session(request)
    response = JSONResponse(
        {"token": session.token, "idem": secrets.token_urlsafe(18)},
        headers={"Cache-Control": PRIVATE},
    )
    web.csrf.remember(response, request, session)
    return response


@router.get("/trang-thai/{token}")
async def status_page(
    request: Request,
    web: WebDep,
    token: TokenPath,
    new: Annotated[str | None, Query(alias="moi", max_length=1)] = None,
) -> Response:
    site = await web.site(request)
    try:
        item = await web.apis.engagement.get(
            f"/v1/status/{seg(token)}", client_ip=web.client_ip(request)
        )
    except NotFound as exc:
        raise PageError(
            404,
            "Không tìm thấy",
            "Đường dẫn theo dõi này không đúng hoặc không còn dùng được. Hãy kiểm tra lại "
            "đường dẫn đã lưu.",
        ) from exc
    except Unavailable as exc:
        raise unavailable() from exc
    return web.page(
        request,
        "status.html",
        site=site,
        policy=None,
        s=views.status_view(item),
        new=new == "1",
        robots="noindex, nofollow",
        canonical=None,
    )


# --- the one flow of every form ---------------------------------------------------------------


async def show(web: Web, request: Request, kind: FormKind) -> Response:
    site = await web.site(request)
    ctx = await kind.load(web, request, site, _params(request))
    state = FormState(values={f.name: ctx.defaults.get(f.name, "") for f in ctx.spec.fields})
    return _render(web, request, site, kind, ctx, state, web.csrf.session(request))


async def submit(web: Web, request: Request, kind: FormKind) -> Response:
    params = _params(request)
    data = await request.form()
    site = await web.site(request)
    ctx = await kind.load(web, request, site, params)
    session = web.csrf.session(request)
    state = forms.read_form(ctx.spec, data)
    state.values[IDEM_FIELD] = _idempotency_key(data)
    try:
        web.csrf.check(request, _text(data, FIELD))
    except CsrfFailure as exc:
        if exc.forged and request.headers.get("origin") not in (None, "null", ""):
            raise FORBIDDEN from exc
        state.notice = forms.CONFIRM_NOTICE
        return _render(web, request, site, kind, ctx, state, session, status=403)
    if forms.trapped(data):
        # A robot filled in the field people never see: it is told what a person would be.
        return web.page(
            request, "received.html", site=site, policy=None, robots="noindex", canonical=None
        )
    if state.errors:
        return _render(web, request, site, kind, ctx, state, session, status=422)
    return await _send(web, request, site, kind, ctx, state, session)


async def _send(
    web: Web,
    request: Request,
    site: Site,
    kind: FormKind,
    ctx: FormContext,
    state: FormState,
    session: FormSession,
) -> Response:
    """Post a checked form to engagement; its refusal is the form again with the reasons."""
    try:
        receipt = await web.apis.engagement.post(
            ctx.api_path,
            forms.payload(ctx.spec, state),
            client_ip=web.client_ip(request),
            idempotency_key=state.values[IDEM_FIELD],
        )
    except Refused as exc:
        state.errors, general = forms.field_errors(exc.detail, ctx.spec)
        state.notice = general
        return _render(web, request, site, kind, ctx, state, session, status=422)
    except RateLimited as exc:
        state.notice = forms.rate_limited_notice(exc.retry_after_s)
        retry = {"Retry-After": str(exc.retry_after_s)}
        return _render(web, request, site, kind, ctx, state, session, status=429, headers=retry)
    except Closed:
        state.notice = forms.CLOSED_NOTICE
        return _render(web, request, site, kind, ctx, state, session, status=409)
    except NotFound as exc:
        raise NOT_FOUND from exc
    except Unavailable:
        state.notice = forms.UNAVAILABLE_NOTICE
        return _render(web, request, site, kind, ctx, state, session, status=503)
    if kind is REPORT:
        return web.page(
            request,
            "reported.html",
            site=site,
            policy=None,
            ctx=ctx,
            received=bool(receipt.get("received", True)),
            robots="noindex",
            canonical=None,
        )
    return RedirectResponse(
        f"{FORMS_PREFIX}/trang-thai/{seg(receipt['status_token'])}?moi=1", status_code=303
    )


def _render(
    web: Web,
    request: Request,
    site: Site,
    kind: FormKind,
    ctx: FormContext,
    state: FormState,
    session: FormSession,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    response = web.page(
        request,
        "form_page.html",
        site=site,
        policy=None,
        status=status,
        headers=headers,
        kind=kind.name,
        ctx=ctx,
        spec=ctx.spec,
        state=state,
        csrf_token=session.token,
        idem=state.values.get(IDEM_FIELD) or secrets.token_urlsafe(18),
        action=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        robots="noindex, nofollow",
        canonical=None,
    )
    web.csrf.remember(response, request, session)
    return response


def _params(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if len(v) <= 300}
    for name, value in request.path_params.items():
        pattern = _PATH_PARAMS.get(name)
        if pattern is None or not pattern.match(str(value)):
            raise NOT_FOUND
        params[name] = str(value)
    return params


def _text(data: FormData, name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def _idempotency_key(data: FormData) -> str:
    value = _text(data, IDEM_FIELD) or ""
    return value if _IDEM.match(value) else secrets.token_urlsafe(18)
