"""One trace as a waterfall for the desk's article journey page (pure: no I/O).

The trace comes from Jaeger's query API v3 as OTLP JSON (``resourceSpans`` → ``scopeSpans`` →
``spans``, ids in hex, times as nanosecond strings, attribute values as ``{"stringValue": …}``).
``waterfall_from_otlp`` turns it into rows ordered as a tree (roots, then each span's children,
each level by start time) with the offset and width of each span's bar on a 0–1000 scale, and only
the attributes an operator needs (an allow-list: nothing else of a span reaches the page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SCALE = 1000  # the bars' coordinate space (SVG viewBox width)
MIN_BAR = 2.0  # a span of a few microseconds is still visible
MAX_DEPTH_SHOWN = 24  # deeper spans are drawn at this indent
MAX_SPANS = 1500
MAX_VALUE = 300  # characters of an attribute value shown

ARTICLE_ID = "portal.article.id"
ARTICLE_SOURCE = "portal.article.source"

# The attributes shown on a span's row when opened, in this order, with their Vietnamese labels.
KEY_ATTRIBUTES: dict[str, str] = {
    ARTICLE_ID: "Mã bài viết",
    "portal.article.revision": "Phiên bản",
    ARTICLE_SOURCE: "Nguồn tin",
    "messaging.system": "Hệ thống tin nhắn",
    "messaging.operation.type": "Thao tác tin nhắn",
    "messaging.destination.name": "Chủ đề (topic)",
    "messaging.consumer.group.name": "Nhóm tiêu thụ",
    "messaging.destination.partition.id": "Phân vùng",
    "messaging.kafka.offset": "Vị trí (offset)",
    "db.system.name": "Cơ sở dữ liệu",
    "db.system": "Cơ sở dữ liệu",
    "db.operation.name": "Thao tác CSDL",
    "db.collection.name": "Bảng / chỉ mục",
    "db.query.summary": "Tóm tắt truy vấn",
    "db.statement": "Câu lệnh",
    "db.query.text": "Câu lệnh",
    "http.request.method": "Phương thức HTTP",
    "http.route": "Đường dẫn HTTP",
    "http.response.status_code": "Mã trả về HTTP",
    "rpc.service": "Dịch vụ gọi",
    "rpc.method": "Lệnh gọi",
    "server.address": "Máy chủ",
    "error.type": "Loại lỗi",
}
# A statement is summed up by its first words: enough to tell the query, no literal values.
STATEMENT_KEYS = frozenset({"db.statement", "db.query.text"})
STATEMENT_WORDS = 12

KIND_LABELS = {
    0: "",
    1: "nội bộ",
    2: "máy chủ",
    3: "máy khách",
    4: "gửi tin",
    5: "nhận tin",
}
_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_ERROR = 2
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class TraceFormatError(ValueError):
    """The answer is not an OTLP trace."""


def valid_trace_id(value: object) -> str | None:
    """A W3C trace id (32 lowercase hex characters, not all zeros), or None."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not TRACE_ID.match(value) or value == "0" * 32:
        return None
    return value


@dataclass(frozen=True)
class SpanRow:
    span_id: str
    parent_id: str | None  # None for a root of the shown trace
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    depth: int = 0
    offset_ns: int = 0
    bar_x: float = 0.0
    bar_width: float = MIN_BAR
    error: bool = False
    status_message: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # (label, value), allow-listed
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_DEPTH_SHOWN)

    @property
    def source(self) -> str | None:
        return self.raw.get(ARTICLE_SOURCE)


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    spans: tuple[SpanRow, ...]
    started_at: datetime | None
    duration_ns: int
    services: tuple[str, ...]
    errors: int
    truncated: int = 0  # spans left out (beyond MAX_SPANS)
    hidden: int = 0  # spans of other agencies left out for an agency's account

    @property
    def empty(self) -> bool:
        return not self.spans


def _value(value: Any) -> str | None:
    """An OTLP AnyValue as text (arrays joined); None for what is not a value."""
    if not isinstance(value, Mapping) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "arrayValue":
        items = inner.get("values", []) if isinstance(inner, Mapping) else []
        parts = [v for v in (_value(i) for i in items) if v is not None]
        return ", ".join(parts)
    if kind in ("stringValue", "intValue", "doubleValue"):
        return str(inner)
    if kind == "boolValue":
        return "true" if inner else "false"
    return None


def _attributes(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            value = _value(item.get("value"))
            if value is not None:
                out[item["key"]] = value
    return out


def _nanos(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _enum(value: Any, names: Mapping[str, int]) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return names.get(value, int(value) if value.isdigit() else 0)
    return 0


def _statement_summary(text: str) -> str:
    words = text.split()
    summary = " ".join(words[:STATEMENT_WORDS])
    return summary + (" …" if len(words) > STATEMENT_WORDS else "")


def shown_attributes(raw: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The allow-listed attributes of a span as (label, value), one line per label."""
    out: list[tuple[str, str]] = []
    labels_seen: set[str] = set()
    for key, label in KEY_ATTRIBUTES.items():
        value = raw.get(key)
        if value is None or label in labels_seen:
            continue
        if key in STATEMENT_KEYS:
            value = _statement_summary(value)
        labels_seen.add(label)
        out.append((label, value if len(value) <= MAX_VALUE else value[:MAX_VALUE] + "…"))
    return tuple(out)


def _spans(data: Mapping[str, Any]) -> Iterable[SpanRow]:
    result = data.get("result", data)
    if not isinstance(result, Mapping) or not isinstance(result.get("resourceSpans"), list):
        raise TraceFormatError("no resourceSpans in the answer")
    for resource_spans in result["resourceSpans"]:
        if not isinstance(resource_spans, Mapping):
            continue
        resource = resource_spans.get("resource")
        resource_attrs = _attributes(
            resource.get("attributes") if isinstance(resource, Mapping) else None
        )
        service = resource_attrs.get("service.name") or "(không rõ dịch vụ)"
        for scope in resource_spans.get("scopeSpans") or []:
            if not isinstance(scope, Mapping):
                continue
            for span in scope.get("spans") or []:
                if not isinstance(span, Mapping):
                    continue
                span_id = span.get("spanId")
                start, end = (
                    _nanos(span.get("startTimeUnixNano")),
                    _nanos(span.get("endTimeUnixNano")),
                )
                if not isinstance(span_id, str) or not span_id or start is None:
                    continue
                raw = _attributes(span.get("attributes"))
                status = span.get("status") if isinstance(span.get("status"), Mapping) else {}
                assert isinstance(status, Mapping)
                message = status.get("message")
                parent = span.get("parentSpanId")
                yield SpanRow(
                    span_id=span_id,
                    parent_id=parent if isinstance(parent, str) and parent else None,
                    service=service,
                    name=str(span.get("name") or "(không tên)"),
                    kind=KIND_LABELS.get(_enum(span.get("kind"), _KIND_NAMES), ""),
                    start_ns=start,
                    end_ns=max(start, end or start),
                    error=_enum(status.get("code"), _STATUS_NAMES) == STATUS_ERROR,
                    status_message=message[:MAX_VALUE]
                    if isinstance(message, str) and message
                    else None,
                    attributes=shown_attributes(raw),
                    raw=raw,
                )


def _tree_order(spans: list[SpanRow]) -> list[SpanRow]:
    """Roots by start, each followed by its subtree (children by start); depth set on the way.

    A span whose parent is not in the trace (the partner's own span, a span not exported) is a
    root; a cycle in broken data cannot loop: each span is placed once.
    """
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[SpanRow]] = {}
    roots: list[SpanRow] = []
    for span in spans:
        if (
            span.parent_id is not None
            and span.parent_id in by_id
            and span.parent_id != span.span_id
        ):
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)

    def order(s: SpanRow) -> tuple[int, int, str]:
        return (s.start_ns, s.end_ns, s.span_id)

    out: list[SpanRow] = []
    placed: set[str] = set()
    stack = [(root, 0) for root in sorted(roots, key=order, reverse=True)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in placed:
            continue
        placed.add(span.span_id)
        out.append(replace(span, depth=depth))
        for child in sorted(children.get(span.span_id, []), key=order, reverse=True):
            stack.append((child, depth + 1))
    # Spans caught in a parent cycle have no root above them: shown at the end, unindented.
    for span in sorted((s for s in spans if s.span_id not in placed), key=order):
        if span.span_id not in placed:
            placed.add(span.span_id)
            out.append(span)
    return out


def _laid_out(trace_id: str, rows: list[SpanRow], truncated: int, hidden: int) -> Waterfall:
    if not rows:
        return Waterfall(trace_id, (), None, 0, (), 0, truncated, hidden)
    start = min(s.start_ns for s in rows)
    end = max(s.end_ns for s in rows)
    total = max(end - start, 1)
    laid = []
    for span in rows:
        x = (span.start_ns - start) * SCALE / total
        width = max(span.duration_ns * SCALE / total, MIN_BAR)
        x = min(x, SCALE - MIN_BAR)
        laid.append(
            replace(
                span,
                offset_ns=span.start_ns - start,
                bar_x=round(x, 2),
                bar_width=round(min(width, SCALE - x), 2),
            )
        )
    services = tuple(dict.fromkeys(s.service for s in laid))
    return Waterfall(
        trace_id=trace_id,
        spans=tuple(laid),
        started_at=datetime.fromtimestamp(start / 1e9, UTC),
        duration_ns=end - start,
        services=services,
        errors=sum(s.error for s in laid),
        truncated=truncated,
        hidden=hidden,
    )


def waterfall_from_otlp(
    data: Mapping[str, Any], trace_id: str, *, max_spans: int = MAX_SPANS
) -> Waterfall:
    """The trace in Jaeger's OTLP JSON answer as a waterfall (spans of other traces ignored)."""
    spans: dict[str, SpanRow] = {}
    for span in _spans(data):
        spans.setdefault(span.span_id, span)  # a span stored twice is shown once
    ordered = _tree_order(list(spans.values()))
    kept = ordered[:max_spans]
    return _laid_out(trace_id, kept, len(ordered) - len(kept), 0)


def restrict_to_source(waterfall: Waterfall, source: str) -> Waterfall:
    """The waterfall as an agency's account may see it: spans about another agency's articles
    (an editor's bulk approval, a partner reusing a trace id) are left out with their subtrees."""
    rows = list(waterfall.spans)
    foreign: set[str] = set()
    kept: list[SpanRow] = []
    for span in rows:  # tree order: a parent comes before its children
        if (span.parent_id in foreign) or (span.source is not None and span.source != source):
            foreign.add(span.span_id)
            continue
        kept.append(span)
    if not foreign:
        return waterfall
    return _laid_out(waterfall.trace_id, kept, waterfall.truncated, waterfall.hidden + len(foreign))


def duration_text(nanos: int | float | None) -> str:
    """A span's duration for people, Vietnamese decimals: '0,42 ms', '12,3 ms', '1,25 giây'."""
    if nanos is None:
        return "–"
    ms = max(0.0, float(nanos)) / 1e6
    if ms < 1:
        text = f"{ms:.2f} ms"
    elif ms < 100:
        text = f"{ms:.1f} ms"
    elif ms < 1000:
        text = f"{ms:.0f} ms"
    elif ms < 60_000:
        text = f"{ms / 1000:.2f} giây"
    else:
        minutes, seconds = divmod(ms / 1000, 60)
        return f"{int(minutes)} phút {int(seconds)} giây"
    return text.replace(".", ",")
