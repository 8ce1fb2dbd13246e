"""The pure part of the store rebuild: the newest state per article, and the row it restores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_publishing.domain import fingerprint
from portal_publishing.rebuild import Latest, fold, is_newer, row_values

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
ARTICLE = NormalizedArticle(
    title="Hội nghị Trung ương",
    summary="Tóm tắt.",
    body_html="<p>Nội dung.</p>",
    body_text="Nội dung.",
    section="thoi-su",
)


def event(revision: int, state: PublishedState, updated: datetime) -> ArticlePublishedEvent:
    return ArticlePublishedEvent(
        producer="publishing",
        subject="a1",
        data=ArticlePublished(
            article_id="a1",
            source="bo-y-te",
            revision=revision,
            state=state,
            slug="hoi-nghi-trung-uong-a1",
            url_path="/bai-viet/hoi-nghi-trung-uong-a1",
            published_at=T0,
            updated_at=updated,
            article=ARTICLE if state == PublishedState.PUBLISHED else None,
        ),
    )


def test_last_event_wins_and_a_retraction_keeps_what_earlier_events_told() -> None:
    latest: dict[str, Latest] = {}
    fold(latest, [event(1, PublishedState.PUBLISHED, T0)])
    fold(latest, [event(2, PublishedState.RETRACTED, T0 + timedelta(hours=1))])
    row = row_values(latest["a1"])
    assert (row["revision"], row["state"], row["article"]) == (2, "retracted", None)
    # The 410 page keeps its title and the section lists know what to invalidate.
    assert (row["title"], row["section"]) == (ARTICLE.title, "thoi-su")
    assert row["retracted_at"] == T0 + timedelta(hours=1)


def test_a_published_row_is_what_publishing_itself_would_store() -> None:
    latest: dict[str, Latest] = {}
    fold(latest, [event(1, PublishedState.PUBLISHED, T0)])
    row = row_values(latest["a1"])
    assert row["fingerprint"] == fingerprint("bo-y-te", ARTICLE)
    assert row["article"] == ARTICLE.model_dump(mode="json")
    assert (row["slug"], row["published_at"], row["state"]) == (
        "hoi-nghi-trung-uong-a1",
        T0,
        "published",
    )


def test_only_an_older_row_is_replaced() -> None:
    e = event(2, PublishedState.PUBLISHED, T0 + timedelta(minutes=5))
    assert is_newer(e, 1, T0 + timedelta(days=1))
    assert is_newer(e, 2, T0)
    assert not is_newer(e, 2, T0 + timedelta(minutes=5))  # the same: unchanged, idempotent
    assert not is_newer(e, 3, T0)  # the store is ahead of the log (outbox not yet relayed)
