"""The private status link: the steps a submission went through."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from portal_web import present
from portal_web.views.common import plain_paragraphs, safe_answer

# --- the private status link ----------------------------------------------------------------

KIND_LABELS = {
    "qa": "Câu hỏi (Hỏi đáp trực tuyến)",
    "dialogue": "Câu hỏi gửi buổi đối thoại",
    "feedback": "Góp ý xây dựng Đảng",
    "forum_thread": "Chủ đề trên Diễn đàn",
    "forum_reply": "Trả lời trên Diễn đàn",
    "comment": "Bình luận",
}


def public_href(api_path: str | None) -> str | None:
    """Where the public sees a submission on the website (from the API's public path)."""
    if not api_path:
        return None
    parts = api_path.strip("/").split("/")
    if parts[:3] == ["v1", "qa", "questions"] and len(parts) == 4:
        return f"/hoi-dap/cau-hoi/{parts[3]}"
    if parts[:2] == ["v1", "dialogues"] and len(parts) >= 3:
        return f"/doi-thoai/{parts[2]}"
    if parts[:3] == ["v1", "forum", "threads"] and len(parts) == 4:
        return f"/dien-dan/bai/{parts[3]}"
    return None


@dataclass(frozen=True)
class StepView:
    label: str
    at: str
    at_iso: str
    note: str | None


@dataclass(frozen=True)
class StatusView:
    reference: str
    kind: str
    kind_label: str
    state: str
    label: str
    held: bool
    submitted: str
    title: str | None
    body: list[str]
    steps: list[StepView]
    reason: str | None
    answer: Markup | None
    answered_by: str
    public_href: str | None


def status_view(item: Mapping[str, Any]) -> StatusView:
    answer = item.get("answer") or {}
    return StatusView(
        reference=item.get("reference", ""),
        kind=item.get("kind", ""),
        kind_label=KIND_LABELS.get(item.get("kind", ""), item.get("kind", "")),
        state=item.get("state", ""),
        label=item.get("label", ""),
        held=bool(item.get("held_for_review")),
        submitted=present.time_vn(item.get("submitted_at")),
        title=item.get("title") or None,
        body=plain_paragraphs(item.get("body", "")),
        steps=[
            StepView(
                s.get("label", s.get("state", "")),
                present.time_vn(s.get("at")),
                present.iso(s.get("at")),
                s.get("note") or None,
            )
            for s in item.get("steps", [])
        ],
        reason=item.get("reason") or None,
        answer=safe_answer(answer.get("answer_html")),
        answered_by=answer.get("answered_by") or "",
        public_href=public_href(item.get("public_path")),
    )
