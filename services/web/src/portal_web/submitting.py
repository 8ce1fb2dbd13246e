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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from portal_web import forms, views
from portal_web.apis import Closed, NotFound, RateLimited, Refused, Unavailable, seg
from portal_web.caching import PRIVATE
from portal_web.csrf import FIELD, FORMS_PREFIX, CsrfFailure, FormSession
from portal_web.forms import FormSpec, FormState, Option
from portal_web.pages import NOT_FOUND, PageError, Web, unavailable
from portal_web.views import Site

CODE = r"^[a-z0-9][a-z0-9-]*$"
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


@dataclass
class FormContext:
    """What a form is about, loaded from the APIs for its page and its post."""

    title: str  # the page's heading
    about: str | None = None  # e.g. the article's title
    about_href: str | None = None
    quote: list[str] = field(default_factory=list)  # e.g. the section of a draft
    api_path: str = ""
    spec: FormSpec = forms.COMMENT
    defaults: dict[str, str] = field(default_factory=dict)
    intro: str | None = None
    submit_label: str = "Gửi"


@dataclass(frozen=True)
class FormKind:
    name: str  # the template's variant
    load: Callable[[Request, Site, dict[str, str]], Awaitable[FormContext]]


def submitting_router(web: Web) -> APIRouter:
    router = APIRouter(prefix=FORMS_PREFIX, include_in_schema=False)
    apis = web.apis

    async def api_get(request: Request, api: Any, path: str, **params: Any) -> Any:
        try:
            return await api.get(path, params=params, client_ip=web.client_ip(request))
        except NotFound as exc:
            raise NOT_FOUND from exc
        except Unavailable as exc:
            raise unavailable() from exc

    def render(
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

    async def show(request: Request, kind: FormKind, params: dict[str, str]) -> Response:
        site = await web.site(request)
        ctx = await kind.load(request, site, params)
        state = FormState(values={f.name: ctx.defaults.get(f.name, "") for f in ctx.spec.fields})
        return render(request, site, kind, ctx, state, web.csrf.session(request))

    async def submit(request: Request, kind: FormKind, params: dict[str, str]) -> Response:
        data = await request.form()
        site = await web.site(request)
        ctx = await kind.load(request, site, params)
        session = web.csrf.session(request)
        state = forms.read_form(ctx.spec, data)
        state.values[IDEM_FIELD] = _idempotency_key(data)
        try:
            web.csrf.check(request, _text(data, FIELD))
        except CsrfFailure as exc:
            if exc.forged and request.headers.get("origin") not in (None, "null", ""):
                raise FORBIDDEN from exc
            state.notice = forms.CONFIRM_NOTICE
            return render(request, site, kind, ctx, state, session, status=403)
        if forms.trapped(data):
            # A robot filled in the field people never see: it is told what a person would be.
            return web.page(
                request, "received.html", site=site, policy=None, robots="noindex", canonical=None
            )
        if state.errors:
            return render(request, site, kind, ctx, state, session, status=422)
        try:
            receipt = await apis.engagement.post(
                ctx.api_path,
                forms.payload(ctx.spec, state),
                client_ip=web.client_ip(request),
                idempotency_key=state.values[IDEM_FIELD],
            )
        except Refused as exc:
            state.errors, general = forms.field_errors(exc.detail, ctx.spec)
            state.notice = general
            return render(request, site, kind, ctx, state, session, status=422)
        except RateLimited as exc:
            state.notice = forms.rate_limited_notice(exc.retry_after_s)
            return render(
                request,
                site,
                kind,
                ctx,
                state,
                session,
                status=429,
                headers={"Retry-After": str(exc.retry_after_s)},
            )
        except Closed:
            state.notice = forms.CLOSED_NOTICE
            return render(request, site, kind, ctx, state, session, status=409)
        except NotFound as exc:
            raise NOT_FOUND from exc
        except Unavailable:
            state.notice = forms.UNAVAILABLE_NOTICE
            return render(request, site, kind, ctx, state, session, status=503)
        if kind.name == "report":
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

    def routes(path: str, kind: FormKind) -> None:
        """GET shows the form, POST submits it; path parameters and ?query go to ``load``."""

        async def get_form(request: Request) -> Response:
            return await show(request, kind, _params(request))

        async def post_form(request: Request) -> Response:
            return await submit(request, kind, _params(request))

        router.add_api_route(path, get_form, methods=["GET"])
        router.add_api_route(path, post_form, methods=["POST"])

    # --- what each form is about ------------------------------------------------------------

    async def comment(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        slug = p["slug"]
        item = await api_get(request, apis.publishing, f"/v1/articles/{seg(slug)}")
        return FormContext(
            title="Gửi bình luận",
            about=item["title"],
            about_href=views.article_href(item),
            api_path=f"/v1/articles/{seg(item['article_id'])}/comments",
            spec=forms.COMMENT,
            submit_label="Gửi bình luận",
        )

    async def question(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        topics = await api_get(request, apis.engagement, "/v1/qa/topics")
        spec = forms.QUESTION.with_options(
            "topic", [Option(t["code"], t["name"]) for t in topics]
        ).with_options(
            "agency",
            [Option(s.code, s.name) for _, group in site.subsites_by_kind() for s in group],
        )
        topic = p.get("linh-vuc", "")
        return FormContext(
            title="Đặt câu hỏi",
            intro="Câu hỏi được Ban Biên tập tiếp nhận, chuyển tới cơ quan có thẩm quyền trả "
            "lời; câu trả lời được đăng công khai trên Cổng.",
            api_path="/v1/qa/questions",
            spec=spec,
            defaults={"topic": topic} if re.match(CODE, topic) else {},
            submit_label="Gửi câu hỏi",
        )

    async def dialogue(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        code = p["code"]
        item = await api_get(request, apis.engagement, f"/v1/dialogues/{seg(code)}")
        return FormContext(
            title="Gửi câu hỏi tới buổi đối thoại",
            about=item["title"],
            about_href=f"/doi-thoai/{code}",
            api_path=f"/v1/dialogues/{seg(code)}/questions",
            spec=forms.DIALOGUE_QUESTION,
            submit_label="Gửi câu hỏi",
        )

    async def feedback(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        code = p["code"]
        item = await api_get(request, apis.engagement, f"/v1/feedback/documents/{seg(code)}")
        sections = item.get("sections", [])
        spec = forms.FEEDBACK.with_options(
            "section",
            [Option("", "Góp ý chung cho cả văn bản")]
            + [Option(s["code"], s["title"]) for s in sections],
        )
        chosen = p.get("phan", "")
        section = next((s for s in sections if s["code"] == chosen), None)
        return FormContext(
            title="Góp ý dự thảo",
            about=item["title"],
            about_href=f"/gop-y/{code}",
            quote=views.plain_paragraphs(section.get("text", ""))[:6] if section else [],
            api_path=f"/v1/feedback/documents/{seg(code)}/feedback",
            spec=spec,
            defaults={"section": section["code"]} if section else {},
            submit_label="Gửi góp ý",
        )

    async def thread(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        code = p["code"]
        topics = await api_get(request, apis.engagement, "/v1/forum/topics")
        topic = next((t for t in topics if t["code"] == code), None)
        if topic is None:
            raise NOT_FOUND
        return FormContext(
            title="Mở chủ đề mới trên Diễn đàn",
            about=topic["name"],
            about_href=f"/dien-dan/{code}",
            api_path=f"/v1/forum/topics/{seg(code)}/threads",
            spec=forms.THREAD,
            submit_label="Gửi bài",
        )

    async def reply(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        tid = p["thread_id"]
        found = await api_get(request, apis.engagement, f"/v1/forum/threads/{seg(tid)}", size=1)
        return FormContext(
            title="Trả lời chủ đề",
            about=found["thread"].get("title") or "Chủ đề trên Diễn đàn",
            about_href=f"/dien-dan/bai/{tid}",
            api_path=f"/v1/forum/threads/{seg(tid)}/replies",
            spec=forms.REPLY,
            submit_label="Gửi trả lời",
        )

    async def report(request: Request, site: Site, p: dict[str, str]) -> FormContext:
        kind, post_id = p["kind"], p["post_id"]
        wanted = p.get("ve", "")
        back = wanted if _local_page(wanted) else None
        api_path = (
            f"/v1/comments/{seg(post_id)}/reports"
            if kind == "binh-luan"
            else f"/v1/forum/posts/{seg(post_id)}/reports"
        )
        return FormContext(
            title="Báo cáo nội dung vi phạm",
            intro="Cho biết vì sao nội dung này vi phạm; biên tập viên sẽ xem xét.",
            about="Quay lại trang trước" if back else None,
            about_href=back,
            api_path=api_path,
            spec=forms.REPORT,
            submit_label="Gửi báo cáo",
        )

    routes("/binh-luan/{slug}", FormKind("comment", comment))
    routes("/hoi-dap", FormKind("question", question))
    routes("/doi-thoai/{code}", FormKind("dialogue", dialogue))
    routes("/gop-y/{code}", FormKind("feedback", feedback))
    routes("/dien-dan/{code}", FormKind("thread", thread))
    routes("/tra-loi/{thread_id}", FormKind("reply", reply))
    routes("/bao-cao/{kind}/{post_id}", FormKind("report", report))

    # --- the token for public pages' forms, and the status link -----------------------------

    @router.get("/phien")
    async def form_session(request: Request) -> Response:
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
        token: TokenPath,
        new: Annotated[str | None, Query(alias="moi", max_length=1)] = None,
    ) -> Response:
        site = await web.site(request)
        try:
            item = await apis.engagement.get(
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

    return router


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


def _local_page(path: str) -> bool:
    """Only the website's own article and forum pages, so the link back is never elsewhere."""
    return bool(re.match(r"^/(bai-viet|dien-dan/bai)/[A-Za-z0-9._~%-]{1,200}$", path))
