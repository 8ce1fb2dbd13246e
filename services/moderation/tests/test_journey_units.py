"""The article journey page's pure parts: Jaeger's OTLP JSON as a waterfall, the journey's rows,
who may see it. The OTLP documents are shaped as Jaeger v2's /api/v3/traces answers them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from portal_moderation.desk.journey_view import (
    MAX_TRACES,
    article_id_of,
    gap_text,
    journey_view,
    may_see_journey,
)
from portal_moderation.desk.waterfall import (
    MIN_BAR,
    SCALE,
    TraceFormatError,
    duration_text,
    restrict_to_source,
    valid_trace_id,
    waterfall_from_otlp,
)
from portal_moderation.domain import Editor, Role

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ARTICLE = "0d5c1b7e-8f0a-5c3e-9b1d-2a4f6e8c0b13"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
MS = 1_000_000


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # OTLP JSON: int64 as a string
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
        }
    return {"key": key, "value": {"stringValue": value}}


def _span(
    span_id: str,
    parent: str,
    name: str,
    kind: int,
    start_ms: float,
    end_ms: float,
    error: str | None = None,
    **attrs: Any,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(T0 + int(start_ms * MS)),
        "endTimeUnixNano": str(T0 + int(end_ms * MS)),
        "attributes": [_attr(k.replace("__", "."), v) for k, v in attrs.items()],
        "status": {"code": 2, "message": error} if error else {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def _resource(service: str, *spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": {
            "attributes": [
                _attr("service.name", service),
                _attr("telemetry.sdk.language", "python"),
            ]
        },
        "scopeSpans": [
            {"scope": {"name": "opentelemetry.instrumentation.fastapi"}, "spans": list(spans)}
        ],
    }


def pushed_article(source: str = "bao-nhan-dan") -> dict[str, Any]:
    """A partner's push through ingest, normalize and moderation, as Jaeger answers it. The
    resources come in any order (normalize first here); the partner's own span is not in it."""
    art = {"portal__article__id": ARTICLE, "portal__article__source": source}
    return {
        "result": {
            "resourceSpans": [
                _resource(
                    "normalize",
                    _span(
                        "b1",
                        "a3",
                        "article.ingested process",
                        5,
                        40,
                        95,
                        messaging__system="kafka",
                        messaging__destination__name="article.ingested",
                        messaging__consumer__group__name="normalize",
                        portal__article__revision=1,
                        **art,
                    ),
                    _span(
                        "b2",
                        "b1",
                        "INSERT moderation",
                        3,
                        60,
                        70,
                        db__system__name="postgresql",
                        db__statement="INSERT INTO outbox (id, topic, key, payload, headers) "
                        "VALUES ($1, $2, $3, $4, $5) RETURNING outbox.id, outbox.created_at",
                    ),
                ),
                _resource(
                    "ingest",
                    _span(
                        "a1",
                        "feedfacecafebeef",
                        "PUT /v1/articles/{external_id}",
                        2,
                        0,
                        30,
                        http__request__method="PUT",
                        http__route="/v1/articles/{external_id}",
                        http__response__status_code=202,
                        **art,
                    ),
                    _span(
                        "a2",
                        "a1",
                        "PutObject",
                        3,
                        5,
                        12,
                        rpc__service="S3",
                        rpc__method="PutObject",
                        url__query="X-Amz-Signature=secret",
                    ),
                    _span(
                        "a3",
                        "a1",
                        "article.ingested publish",
                        4,
                        25,
                        28,
                        messaging__system="kafka",
                        messaging__destination__name="article.ingested",
                        **art,
                    ),
                ),
                _resource(
                    "moderation",
                    _span(
                        "c1",
                        "b1",
                        "article.normalized process",
                        5,
                        100,
                        130,
                        error="IntegrityError: duplicate key",
                        **art,
                    ),
                ),
            ]
        }
    }


def test_spans_are_in_tree_order_with_depth_and_bars_in_time() -> None:
    w = waterfall_from_otlp(pushed_article(), TRACE)
    assert [s.span_id for s in w.spans] == ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert [s.depth for s in w.spans] == [0, 1, 1, 2, 3, 3]
    assert w.services == ("ingest", "normalize", "moderation")
    assert w.duration_ns == 130 * MS
    assert w.started_at == datetime(2026, 1, 1, tzinfo=UTC)
    root = w.spans[0]
    # The partner's span is not in the trace: ingest's server span is shown as the root.
    assert root.parent_id == "feedfacecafebeef" and root.kind == "máy chủ"
    assert (root.bar_x, root.bar_width) == (0.0, round(30 * SCALE / 130, 2))
    consumer = w.spans[3]
    assert consumer.offset_ns == 40 * MS and consumer.kind == "nhận tin"
    assert consumer.bar_x == round(40 * SCALE / 130, 2)
    assert all(s.bar_x + s.bar_width <= SCALE + 0.01 for s in w.spans)


def test_error_spans_are_flagged_with_their_message() -> None:
    w = waterfall_from_otlp(pushed_article(), TRACE)
    errors = [s for s in w.spans if s.error]
    assert [s.span_id for s in errors] == ["c1"] and w.errors == 1
    assert errors[0].status_message == "IntegrityError: duplicate key"


def test_only_allow_listed_attributes_are_shown_and_statements_are_summed_up() -> None:
    w = waterfall_from_otlp(pushed_article(), TRACE)
    by_id = {s.span_id: dict(s.attributes) for s in w.spans}
    assert by_id["a1"] == {
        "Mã bài viết": ARTICLE,
        "Nguồn tin": "bao-nhan-dan",
        "Phương thức HTTP": "PUT",
        "Đường dẫn HTTP": "/v1/articles/{external_id}",
        "Mã trả về HTTP": "202",
    }
    assert by_id["b1"]["Chủ đề (topic)"] == "article.ingested"
    assert by_id["b1"]["Nhóm tiêu thụ"] == "normalize"
    assert by_id["b1"]["Phiên bản"] == "1"
    # A signed URL's query is no key attribute: it never reaches the page.
    assert "X-Amz-Signature=secret" not in str(by_id["a2"])
    statement = by_id["b2"]["Câu lệnh"]
    assert statement.startswith("INSERT INTO outbox") and statement.endswith("…")
    assert len(statement.split()) <= 13


def test_bars_of_very_short_spans_stay_visible_and_inside_the_track() -> None:
    doc = {
        "result": {
            "resourceSpans": [
                _resource(
                    "search",
                    _span("d1", "", "index", 3, 0, 1000),
                    _span("d2", "d1", "tiny", 1, 1000, 1000.001),
                )
            ]
        }
    }
    w = waterfall_from_otlp(doc, TRACE)
    tiny = w.spans[1]
    assert tiny.bar_width >= MIN_BAR and tiny.bar_x + tiny.bar_width <= SCALE


def test_an_agency_sees_no_span_about_another_agencys_articles() -> None:
    doc = pushed_article(source="tp-ha-noi")
    # An editor's bulk approval in the same trace touches another agency's article too.
    doc["result"]["resourceSpans"].append(
        _resource(
            "moderation",
            _span("e1", "a1", "approve other", 1, 10, 20, portal__article__source="bo-y-te"),
            _span("e2", "e1", "UPDATE items", 3, 11, 12, db__system__name="postgresql"),
        )
    )
    full = waterfall_from_otlp(doc, TRACE)
    assert {"e1", "e2"} <= {s.span_id for s in full.spans}
    mine = restrict_to_source(full, "tp-ha-noi")
    assert {s.span_id for s in mine.spans} == {"a1", "a2", "a3", "b1", "b2", "c1"}
    assert mine.hidden == 2
    assert restrict_to_source(full, "nobody").spans == ()


def test_spans_in_a_parent_cycle_or_listed_twice_are_shown_once() -> None:
    doc = pushed_article()
    spans = doc["result"]["resourceSpans"][1]["scopeSpans"][0]["spans"]
    spans.append(copy.deepcopy(spans[0]))  # the same span stored twice
    doc["result"]["resourceSpans"].append(
        _resource("x", _span("f1", "f2", "loop a", 1, 1, 2), _span("f2", "f1", "loop b", 1, 1, 2))
    )
    w = waterfall_from_otlp(doc, TRACE)
    ids = [s.span_id for s in w.spans]
    assert len(ids) == len(set(ids)) == 8 and {"f1", "f2"} <= set(ids)


def test_string_enums_and_missing_fields_are_read() -> None:
    span = _span("g1", "", "op", 0, 0, 5)
    span["kind"] = "SPAN_KIND_PRODUCER"
    span["status"] = {"code": "STATUS_CODE_ERROR"}
    del span["endTimeUnixNano"]
    nameless: dict[str, Any] = {"spanId": "g2", "startTimeUnixNano": str(T0)}
    w = waterfall_from_otlp({"result": {"resourceSpans": [_resource("s", span, nameless)]}}, TRACE)
    assert [(s.kind, s.error, s.duration_ns) for s in w.spans] == [
        ("gửi tin", True, 0),
        ("", False, 0),
    ]


def test_what_is_not_a_trace_is_refused() -> None:
    with pytest.raises(TraceFormatError):
        waterfall_from_otlp({"error": {"httpCode": 404, "message": "No traces found"}}, TRACE)
    assert waterfall_from_otlp({"result": {"resourceSpans": []}}, TRACE).empty


def test_many_spans_are_cut_and_counted() -> None:
    spans = [_span(f"{i:016x}", "", f"s{i}", 1, i, i + 1) for i in range(30)]
    w = waterfall_from_otlp(
        {"result": {"resourceSpans": [_resource("s", *spans)]}}, TRACE, max_spans=10
    )
    assert len(w.spans) == 10 and w.truncated == 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACE, TRACE),
        (TRACE.upper(), TRACE),
        ("0" * 32, None),
        (TRACE[:31], None),
        (TRACE + "0", None),
        ("../../api/services?x=" + "a" * 11, None),
        ("g" * 32, None),
        (None, None),
        (42, None),
    ],
)
def test_trace_ids_are_32_hex_characters(value: object, expected: str | None) -> None:
    assert valid_trace_id(value) == expected


def test_journey_rows_label_stages_and_keep_only_valid_trace_ids() -> None:
    other = "a" * 32
    data = {
        "article_id": ARTICLE,
        "source": "tp-ha-noi",
        "external_id": "bai-1",
        "title": "Hội nghị",
        "status": "published",
        "latest_revision": 2,
        "stages": [
            {
                "stage": "received",
                "service": "ingest",
                "revision": 1,
                "at": "2026-01-01T00:00:00Z",
                "since_previous_s": None,
                "trace_id": TRACE,
            },
            {
                "stage": "normalized",
                "service": "normalize",
                "revision": 1,
                "at": "2026-01-01T00:00:00.350000Z",
                "since_previous_s": 0.35,
                "trace_id": TRACE,
            },
            {
                "stage": "approved",
                "service": "moderation",
                "revision": 1,
                "at": "2026-01-01T02:15:00Z",
                "since_previous_s": 8099.65,
                "trace_id": other,
                "detail": "approved by bt-1",
            },
            {
                "stage": "future_stage",
                "service": "x",
                "revision": 1,
                "at": "not a time",
                "trace_id": "<script>",
            },
        ],
        "total_s": 8100.0,
    }
    view = journey_view(data)
    assert [s.label for s in view.stages] == [
        "Tiếp nhận từ cơ quan",
        "Chuẩn hóa, kiểm tra chất lượng",
        "Biên tập viên duyệt",
        "future_stage",
    ]
    assert view.stages[1].at == datetime(2026, 1, 1, 0, 0, 0, 350000, tzinfo=UTC)
    assert view.stages[3].at is None and view.stages[3].trace_id is None
    assert view.trace_ids == (TRACE, other) and view.more_traces == 0
    assert [gap_text(s.since_previous_s) for s in view.stages] == [
        "–",
        "350 ms",
        "2 giờ 14 phút",
        "–",
    ]


def test_only_the_first_traces_are_drawn() -> None:
    stages = [{"stage": "received", "trace_id": f"{i + 1:032x}"} for i in range(MAX_TRACES + 3)]
    view = journey_view({"article_id": ARTICLE, "stages": stages})
    assert len(view.trace_ids) == MAX_TRACES and view.more_traces == 3


def test_staff_see_every_journey_an_agency_only_its_own() -> None:
    def who(role: Role, source: str | None = None) -> Editor:
        return Editor(username="u", role=role, display_name="U", source=source)

    for role in (Role.ADMIN, Role.CHIEF_EDITOR, Role.EDITOR):
        assert may_see_journey(who(role), "bo-y-te") and may_see_journey(who(role), None)
    agency = who(Role.AGENCY_PUBLISHER, "tp-ha-noi")
    assert may_see_journey(agency, "tp-ha-noi")
    assert not may_see_journey(agency, "bo-y-te")
    assert not may_see_journey(agency, None)


def test_article_ids_are_uuids() -> None:
    assert article_id_of(f"  {ARTICLE.upper()} ") == ARTICLE
    assert (
        article_id_of("bai-1") is None and article_id_of("") is None and article_id_of(None) is None
    )


def test_durations_read_as_vietnamese_numbers() -> None:
    assert duration_text(420_000) == "0,42 ms"
    assert duration_text(12_345_678) == "12,3 ms"
    assert duration_text(1_250_000_000) == "1,25 giây"
    assert duration_text(None) == "–"
    assert gap_text(2.44) == "2,4 giây" and gap_text(185) == "3 phút 5 giây"
