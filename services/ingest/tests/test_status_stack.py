"""Partner status follows the pipeline's events on the real broker (normalized, reviewed,
published), once per event and never backwards to an older revision."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from portal_contracts.articles import (
    ArticleAction,
    ArticleNormalized,
    ArticleNormalizedEvent,
    ArticlePublished,
    ArticlePublishedEvent,
    ArticleReviewed,
    ArticleReviewedEvent,
    PublishedState,
    ReviewDecision,
)
from portal_contracts.codec import encode
from portal_contracts.envelope import Envelope
from portal_contracts.topics import ARTICLE_NORMALIZED, ARTICLE_PUBLISHED, ARTICLE_REVIEWED

from .conftest import Ingest, produce

pytestmark = pytest.mark.stack


async def _send(ingest: Ingest, topic: str, event: Envelope) -> None:
    await produce(ingest.kafka, topic, encode(event), key=event.subject.encode())


async def _article(ingest: Ingest) -> tuple[str, dict[str, str], dict[str, Any]]:
    source, headers = await ingest.partner()
    external_id = f"st-{uuid.uuid4().hex[:8]}"
    resp = await ingest.http.put(
        f"/v1/articles/{external_id}",
        json={"content": {"title": "Bài viết theo dõi trạng thái"}},
        headers=headers,
    )
    assert resp.status_code == 202
    return external_id, headers, {"source": source, **resp.json()}


def _reviewed(
    a: dict[str, Any], decision: ReviewDecision, reason: str | None = None, revision: int = 1
) -> ArticleReviewedEvent:
    return ArticleReviewedEvent(
        producer="moderation",
        subject=a["article_id"],
        data=ArticleReviewed(
            article_id=a["article_id"],
            source=a["source"],
            external_id=a["external_id"],
            revision=revision,
            decision=decision,
            reviewer="bientap",
            reviewed_at=datetime.now(UTC),
            reason=reason,
        ),
    )


async def test_rejection_is_reported_with_its_reason(ingest: Ingest) -> None:
    external_id, headers, a = await _article(ingest)
    reason = "Bài viết thiếu nguồn trích dẫn"

    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(a, ReviewDecision.REJECTED, reason))

    view = await ingest.wait_status(headers, external_id, "rejected")
    assert view["reason"] == reason
    assert [(h["status"], h["reason"]) for h in view["history"]] == [
        ("received", None),
        ("rejected", reason),
    ]


async def test_full_path_to_published_ignores_repeats_and_late_events(ingest: Ingest) -> None:
    external_id, headers, a = await _article(ingest)
    now = datetime.now(UTC)
    normalized = ArticleNormalizedEvent(
        producer="normalize",
        subject=a["article_id"],
        data=ArticleNormalized(
            article_id=a["article_id"],
            source=a["source"],
            external_id=external_id,
            revision=1,
            action=ArticleAction.UPSERT,
            received_at=now,
        ),
    )
    published = ArticlePublishedEvent(
        producer="publishing",
        subject=a["article_id"],
        data=ArticlePublished(
            article_id=a["article_id"],
            source=a["source"],
            revision=1,
            state=PublishedState.PUBLISHED,
            slug="bai-viet-theo-doi-trang-thai",
            url_path="/bai-viet/bai-viet-theo-doi-trang-thai",
            published_at=now,
            updated_at=now,
        ),
    )

    await _send(ingest, ARTICLE_NORMALIZED.name, normalized)
    await ingest.wait_status(headers, external_id, "in_review")
    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(a, ReviewDecision.APPROVED))
    await ingest.wait_status(headers, external_id, "approved")
    await _send(ingest, ARTICLE_PUBLISHED.name, published)
    await _send(ingest, ARTICLE_PUBLISHED.name, published)  # redelivered
    view = await ingest.wait_status(headers, external_id, "published")
    assert view["public_path"] == "/bai-viet/bai-viet-theo-doi-trang-thai"

    # A late event about revision 1 cannot move it back, and once the partner sent revision 2
    # events about revision 1 are ignored. Each wait is for an event sent after the ones that
    # must be ignored, on the same topic and key (so the same partition, in order).
    late = ArticleNormalizedEvent(**{**normalized.model_dump(), "event_id": uuid.uuid4()})
    await _send(ingest, ARTICLE_NORMALIZED.name, late)
    update = await ingest.http.put(
        f"/v1/articles/{external_id}", json={"content": {"title": "Bản sửa"}}, headers=headers
    )
    assert update.json()["revision"] == 2
    second = ArticleNormalizedEvent(
        producer="normalize",
        subject=a["article_id"],
        data=normalized.data.model_copy(update={"revision": 2}),
    )
    await _send(ingest, ARTICLE_NORMALIZED.name, second)
    await ingest.wait_status(headers, external_id, "in_review")
    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(a, ReviewDecision.REJECTED, "cũ"))
    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(a, ReviewDecision.APPROVED, revision=2))

    view = await ingest.wait_status(headers, external_id, "approved")
    assert view["status_revision"] == 2
    assert view["reason"] is None
    assert [(h["revision"], h["status"]) for h in view["history"]] == [
        (1, "received"),
        (1, "in_review"),
        (1, "approved"),
        (1, "published"),
        (2, "received"),
        (2, "in_review"),
        (2, "approved"),
    ]
    assert view["public_path"] == "/bai-viet/bai-viet-theo-doi-trang-thai"  # still online


async def test_unknown_articles_are_ignored_without_dead_letters(ingest: Ingest) -> None:
    ghost = {
        "article_id": str(uuid.uuid4()),
        "source": "khong-ton-tai",
        "external_id": "ghost",
    }
    _, headers, a = await _article(ingest)
    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(ghost, ReviewDecision.REJECTED, "x"))
    await _send(ingest, ARTICLE_REVIEWED.name, _reviewed(a, ReviewDecision.REJECTED, "sau"))
    # The known article after the ghost is processed: the consumer moved on.
    view = await ingest.wait_status(headers, a["external_id"], "rejected")
    assert view["reason"] == "sau"
