"""Engagement pages: questions, dialogues, documents for comment and forum posts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from portal_web import present
from portal_web.views.common import plain_paragraphs, safe_answer
from portal_web.views.site import Site

# --- engagement -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionView:
    id: str
    href: str
    title: str
    question: list[str]
    asker: str
    asked: str
    asked_iso: str
    topic: str
    agency: str
    answer: Markup | None
    answered_by: str
    answered: str
    answered_iso: str
    time_to_answer: str


def question_view(
    item: Mapping[str, Any], *, topics: Mapping[str, str], site: Site
) -> QuestionView:
    asked = present.parse_time(item.get("asked_at"))
    answered = present.parse_time(item.get("answered_at"))
    took = answered - asked if asked and answered and answered >= asked else None
    agency = item.get("agency")
    return QuestionView(
        id=item["id"],
        href=f"/hoi-dap/cau-hoi/{item['id']}",
        title=item.get("title") or _first_words(item.get("question", "")),
        question=plain_paragraphs(item.get("question", "")),
        asker=item.get("asker") or "Bạn đọc",
        asked=present.time_vn(asked),
        asked_iso=present.iso(asked),
        topic=topics.get(item.get("topic") or "", ""),
        agency=site.subsite_name(agency) if agency else "",
        answer=safe_answer(item.get("answer_html")),
        answered_by=item.get("answered_by") or (site.subsite_name(agency) if agency else ""),
        answered=present.time_vn(answered),
        answered_iso=present.iso(answered),
        time_to_answer=present.duration_vn(took) if took is not None else "",
    )


def _first_words(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + "…"


@dataclass(frozen=True)
class AgencyTimes:
    name: str
    answered: int
    median: str
    p90: str
    waiting: int


def agency_times(rows: Iterable[Mapping[str, Any]], site: Site) -> list[AgencyTimes]:
    out = [
        AgencyTimes(
            name=site.subsite_name(r["agency"]),
            answered=int(r.get("answered", 0)),
            median=present.duration_vn(r.get("median_hours")),
            p90=present.duration_vn(r.get("p90_hours")),
            waiting=int(r.get("waiting", 0)),
        )
        for r in rows
    ]
    return sorted(out, key=lambda a: (-a.answered, a.name))


PHASE_LABELS = {
    "upcoming": "Sắp diễn ra",
    "live": "Đang diễn ra",
    "ended": "Đã kết thúc",
    "open": "Đang lấy ý kiến",
    "closed": "Đã hết hạn góp ý",
}


@dataclass(frozen=True)
class EntryView:
    """A dialogue question and (once given) its answer; the live stream sends the same."""

    question_id: str
    question: list[str]
    asker: str
    asked: str
    answer: Markup | None
    answered_by: str
    answered: str
    answered_iso: str


def entry_view(item: Mapping[str, Any]) -> EntryView:
    return EntryView(
        question_id=str(item.get("question_id", "")),
        question=plain_paragraphs(item.get("question", "")),
        asker=item.get("asker") or "Bạn đọc",
        asked=present.time_vn(item.get("asked_at")),
        answer=safe_answer(item.get("answer_html")),
        answered_by=item.get("answered_by") or "",
        answered=present.time_vn(item.get("answered_at")),
        answered_iso=present.iso(item.get("answered_at")),
    )


@dataclass(frozen=True)
class DialogueView:
    code: str
    href: str
    title: str
    topic: str
    description: list[str]
    guests: list[dict[str, str]]
    starts: str
    starts_iso: str
    ends: str
    phase: str
    phase_label: str
    accepts_questions: bool
    answered: int


def dialogue_view(item: Mapping[str, Any]) -> DialogueView:
    phase = item.get("phase", "upcoming")
    return DialogueView(
        code=item["code"],
        href=f"/doi-thoai/{item['code']}",
        title=item.get("title", ""),
        topic=item.get("topic", ""),
        description=plain_paragraphs(item.get("description", "")),
        guests=[
            {"name": g.get("name", ""), "position": g.get("position", "")}
            for g in item.get("guests", [])
        ],
        starts=present.time_vn(item.get("starts_at")),
        starts_iso=present.iso(item.get("starts_at")),
        ends=present.time_vn(item.get("ends_at")),
        phase=phase,
        phase_label=PHASE_LABELS.get(phase, phase),
        accepts_questions=bool(item.get("accepts_questions")),
        answered=int(item.get("answered", 0)),
    )


def dialogue_order(items: Iterable[DialogueView]) -> list[DialogueView]:
    """Live first, then upcoming (soonest first), then ended (latest first)."""
    rank = {"live": 0, "upcoming": 1, "ended": 2}
    listed = list(items)
    upcoming = sorted((d for d in listed if d.phase == "upcoming"), key=lambda d: d.starts_iso)
    ended = sorted(
        (d for d in listed if d.phase == "ended"), key=lambda d: d.starts_iso, reverse=True
    )
    live = [d for d in listed if d.phase == "live"]
    others = [d for d in listed if d.phase not in rank]
    return [*live, *upcoming, *ended, *others]


@dataclass(frozen=True)
class DocumentView:
    code: str
    href: str
    title: str
    summary: list[str]
    requested_by: str
    opens: str
    deadline: str
    deadline_iso: str
    phase: str
    phase_label: str
    sections: list[dict[str, Any]]
    feedback_total: int
    feedback_on_whole: int


def document_view(item: Mapping[str, Any]) -> DocumentView:
    phase = item.get("phase", "open")
    return DocumentView(
        code=item["code"],
        href=f"/gop-y/{item['code']}",
        title=item.get("title", ""),
        summary=plain_paragraphs(item.get("summary", "")),
        requested_by=item.get("requested_by", ""),
        opens=present.time_vn(item.get("opens_at")),
        deadline=present.time_vn(item.get("deadline")),
        deadline_iso=present.iso(item.get("deadline")),
        phase=phase,
        phase_label=PHASE_LABELS.get(phase, phase),
        sections=[
            {
                "code": s["code"],
                "title": s.get("title", ""),
                "text": plain_paragraphs(s.get("text", "")),
                "feedback": int(s.get("feedback", 0)),
            }
            for s in item.get("sections", [])
        ],
        feedback_total=int(item.get("feedback_total", 0)),
        feedback_on_whole=int(item.get("feedback_on_whole", 0)),
    )


@dataclass(frozen=True)
class PostView:
    id: str
    title: str | None
    body: list[str]
    author: str
    published: str
    published_iso: str
    replies: int
    href: str
    last_activity: str


def post_view(item: Mapping[str, Any], *, thread_href: str | None = None) -> PostView:
    return PostView(
        id=item["id"],
        title=item.get("title") or None,
        body=plain_paragraphs(item.get("body", "")),
        author=item.get("author") or "Bạn đọc",
        published=present.time_vn(item.get("published_at")),
        published_iso=present.iso(item.get("published_at")),
        replies=int(item.get("replies", 0)),
        href=thread_href or f"/dien-dan/bai/{item['id']}",
        last_activity=present.time_vn(item.get("last_activity_at") or item.get("published_at")),
    )
