"""The article journey's pure parts: what each event means, and how stages are ordered and
grouped by trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    Channel,
    ReviewDecision,
)
from portal_ingest.journey import build_stages, stage_of, trace_url

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def test_events_become_stages_with_a_readable_detail() -> None:
    ingested = ArticleIngestedEvent(
        producer="ingest",
        subject="a1",
        data=ArticleIngested(
            article_id="a1",
            source="bo-y-te",
            external_id="x",
            revision=2,
            action=ArticleAction.RETRACT,
            channel=Channel.KAFKA,
            received_at=T0,
            content=None,
            raw_object_key="raw/x",
        ),
    )
    stage = stage_of(ingested)
    assert stage is not None
    assert (stage.stage, stage.service, stage.revision, stage.occurred_at) == (
        "retraction_received",
        "ingest",
        2,
        T0,
    )
    assert stage.detail == "retract via kafka"

    reviewed = ArticleReviewedEvent(
        producer="moderation",
        subject="a1",
        occurred_at=T0 + timedelta(minutes=5),
        data=ArticleReviewed(
            article_id="a1",
            source="bo-y-te",
            external_id="x",
            revision=1,
            decision=ReviewDecision.REJECTED,
            reviewer="bientap1",
            reviewed_at=T0 + timedelta(minutes=5),
            reason="Sai chuyên mục",
        ),
    )
    stage = stage_of(reviewed)
    assert stage is not None
    assert stage.stage == "rejected"
    assert stage.detail == "rejected by bientap1: Sai chuyên mục"


def _row(i: int, stage: str, at: datetime, trace: str | None) -> SimpleNamespace:
    return SimpleNamespace(
        id=i,
        stage=stage,
        service="svc",
        revision=1,
        occurred_at=at,
        logged_at=None,
        detail=None,
        trace_id=trace,
    )


def test_stages_are_ordered_timed_and_grouped_by_trace() -> None:
    partner, editor = "a" * 32, "b" * 32
    rows = [
        _row(3, "approved", T0 + timedelta(hours=2), editor),
        _row(1, "received", T0, partner),
        _row(4, "published", T0 + timedelta(hours=2, seconds=1), editor),
        _row(2, "normalized", T0 + timedelta(seconds=2), partner),
    ]
    stages, traces = build_stages(rows, "http://jaeger:16686/")
    assert [s.stage for s in stages] == ["received", "normalized", "approved", "published"]
    assert [s.since_previous_s for s in stages] == [None, 2.0, 7198.0, 1.0]
    assert [(t.trace_id, t.stages) for t in traces] == [
        (partner, ["received", "normalized"]),
        (editor, ["approved", "published"]),
    ]
    assert stages[0].trace_url == f"http://jaeger:16686/trace/{partner}"


def test_no_link_without_a_trace_ui_or_a_trace() -> None:
    assert trace_url("", "a" * 32) is None
    desk = "http://desk/desk/journey/{article_id}#trace-{trace_id}"
    assert trace_url(desk, "a" * 32, "art1") == f"http://desk/desk/journey/art1#trace-{'a' * 32}"
    assert trace_url("http://jaeger", None) is None
