"""The article journey as the desk shows it (pure: no I/O).

Ingest's admin API answers the stages one article passed (``GET /admin/v1/articles/{id}/journey``);
this module checks who may see it and turns the answer into rows for the page: Vietnamese stage
names, local times, the time since the stage before, and the trace ids worth fetching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from portal_moderation.desk.waterfall import valid_trace_id
from portal_moderation.domain import Editor, Role

MAX_TRACES = 5  # traces drawn on one page (an article edited and re-sent many times has more)

STAGE_LABELS = {
    "received": "Tiếp nhận từ cơ quan",
    "retraction_received": "Nhận yêu cầu gỡ từ cơ quan",
    "normalized": "Chuẩn hóa, kiểm tra chất lượng",
    "auto_published": "Tự động đăng (nguồn tin cậy)",
    "approved": "Biên tập viên duyệt",
    "rejected": "Biên tập viên từ chối",
    "retracted": "Biên tập viên gỡ bài",
    "published": "Xuất bản lên cổng",
    "removed": "Gỡ khỏi cổng",
}
STATUS_LABELS = {
    "received": "Đã tiếp nhận",
    "in_review": "Đang chờ duyệt",
    "published": "Đã đăng",
    "rejected": "Bị từ chối",
    "retracted": "Đã gỡ",
}


def article_id_of(value: str | None) -> str | None:
    """The canonical form of an article id (a UUID) typed or linked, or None."""
    if not value:
        return None
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


def may_see_journey(editor: Editor, source: str | None) -> bool:
    """Portal staff see every article's journey; an agency's account only its own agency's."""
    if editor.role is not Role.AGENCY_PUBLISHER:
        return True
    return source is not None and source == editor.source


@dataclass(frozen=True)
class StageRow:
    stage: str
    label: str
    service: str
    revision: int | None
    at: datetime | None
    since_previous_s: float | None
    detail: str | None
    trace_id: str | None


@dataclass(frozen=True)
class JourneyView:
    article_id: str
    source: str | None
    external_id: str | None
    title: str | None
    status: str | None
    latest_revision: int | None
    stages: tuple[StageRow, ...]
    trace_ids: tuple[str, ...]  # in the order of their first stage, at most MAX_TRACES
    more_traces: int  # traces not drawn
    total_s: float | None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def journey_view(data: Mapping[str, Any]) -> JourneyView:
    """Ingest's journey answer as the page's rows (unknown fields ignored, bad trace ids dropped)."""
    stages: list[StageRow] = []
    for raw in data.get("stages") or []:
        if not isinstance(raw, Mapping):
            continue
        stage = str(raw.get("stage") or "")
        revision = raw.get("revision")
        stages.append(
            StageRow(
                stage=stage,
                label=STAGE_LABELS.get(stage, stage),
                service=str(raw.get("service") or ""),
                revision=revision if isinstance(revision, int) else None,
                at=_time(raw.get("at")),
                since_previous_s=_number(raw.get("since_previous_s")),
                detail=_text(raw.get("detail")),
                trace_id=valid_trace_id(raw.get("trace_id")),
            )
        )
    traces = list(dict.fromkeys(s.trace_id for s in stages if s.trace_id))
    revision = data.get("latest_revision")
    return JourneyView(
        article_id=str(data.get("article_id") or ""),
        source=_text(data.get("source")),
        external_id=_text(data.get("external_id")),
        title=_text(data.get("title")),
        status=_text(data.get("status")),
        latest_revision=revision if isinstance(revision, int) else None,
        stages=tuple(stages),
        trace_ids=tuple(traces[:MAX_TRACES]),
        more_traces=max(0, len(traces) - MAX_TRACES),
        total_s=_number(data.get("total_s")),
    )


def gap_text(seconds: float | None) -> str:
    """Time between two stages: '350 ms', '2,4 giây', '3 phút 5 giây', '2 giờ 15 phút'."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} giây".replace(".", ",")
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} phút {rest} giây" if rest else f"{minutes} phút"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"
    days, hours = divmod(hours, 24)
    return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"
