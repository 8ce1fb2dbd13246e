"""What each form of ``/gui/`` is about (``FormKind``): its heading, the thing it concerns, its
fields and defaults, and the engagement API it posts to, loaded from the APIs for the form's
page and for its post alike."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from portal_web import forms, views
from portal_web.apis import NotFound, Unavailable, seg
from portal_web.forms import FormSpec, Option
from portal_web.pages import NOT_FOUND, Web, unavailable
from portal_web.views import Site

CODE = r"^[a-z0-9][a-z0-9-]*$"


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


Load = Callable[[Web, Request, Site, dict[str, str]], Awaitable[FormContext]]


@dataclass(frozen=True)
class FormKind:
    name: str  # the template's variant
    load: Load  # gets the path parameters and ?query of the form's address


async def _api_get(web: Web, request: Request, api: Any, path: str, **params: Any) -> Any:
    try:
        return await api.get(path, params=params, client_ip=web.client_ip(request))
    except NotFound as exc:
        raise NOT_FOUND from exc
    except Unavailable as exc:
        raise unavailable() from exc


async def _comment(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    slug = p["slug"]
    item = await _api_get(web, request, web.apis.publishing, f"/v1/articles/{seg(slug)}")
    return FormContext(
        title="Gửi bình luận",
        about=item["title"],
        about_href=views.article_href(item),
        api_path=f"/v1/articles/{seg(item['article_id'])}/comments",
        spec=forms.COMMENT,
        submit_label="Gửi bình luận",
    )


async def _question(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    topics = await _api_get(web, request, web.apis.engagement, "/v1/qa/topics")
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


async def _dialogue(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    code = p["code"]
    item = await _api_get(web, request, web.apis.engagement, f"/v1/dialogues/{seg(code)}")
    return FormContext(
        title="Gửi câu hỏi tới buổi đối thoại",
        about=item["title"],
        about_href=f"/doi-thoai/{code}",
        api_path=f"/v1/dialogues/{seg(code)}/questions",
        spec=forms.DIALOGUE_QUESTION,
        submit_label="Gửi câu hỏi",
    )


async def _feedback(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    code = p["code"]
    item = await _api_get(web, request, web.apis.engagement, f"/v1/feedback/documents/{seg(code)}")
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


async def _thread(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    code = p["code"]
    topics = await _api_get(web, request, web.apis.engagement, "/v1/forum/topics")
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


async def _reply(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
    tid = p["thread_id"]
    found = await _api_get(
        web, request, web.apis.engagement, f"/v1/forum/threads/{seg(tid)}", size=1
    )
    return FormContext(
        title="Trả lời chủ đề",
        about=found["thread"].get("title") or "Chủ đề trên Diễn đàn",
        about_href=f"/dien-dan/bai/{tid}",
        api_path=f"/v1/forum/threads/{seg(tid)}/replies",
        spec=forms.REPLY,
        submit_label="Gửi trả lời",
    )


async def _report(web: Web, request: Request, site: Site, p: dict[str, str]) -> FormContext:
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


def _local_page(path: str) -> bool:
    """Only the website's own article and forum pages, so the link back is never elsewhere."""
    return bool(re.match(r"^/(bai-viet|dien-dan/bai)/[A-Za-z0-9._~%-]{1,200}$", path))


COMMENT = FormKind("comment", _comment)
QUESTION = FormKind("question", _question)
DIALOGUE_QUESTION = FormKind("dialogue", _dialogue)
FEEDBACK = FormKind("feedback", _feedback)
THREAD = FormKind("thread", _thread)
REPLY = FormKind("reply", _reply)
REPORT = FormKind("report", _report)
