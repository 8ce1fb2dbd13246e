"""Unit tests of the publishing rules: slugs, revisions, cursors (no infrastructure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_contracts.articles import (
    ArticleReviewed,
    NormalizedArticle,
    PublishedState,
    ReviewDecision,
)
from portal_publishing.domain import (
    Cursor,
    CursorError,
    InvalidReview,
    Outcome,
    Stored,
    decide,
    decode_cursor,
    encode_cursor,
    fingerprint,
    make_slug,
    url_path_for,
)

AID = "3f2a9c1e-7b44-5d21-9e0a-1c2b3d4e5f60"
KEY = b"test-key"
NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def article(
    title: str = "Hội nghị Trung ương 8", section: str = "tin-hoat-dong"
) -> NormalizedArticle:
    return NormalizedArticle(
        title=title,
        summary="Tóm tắt",
        body_html="<p>Nội dung</p>",
        body_text="Nội dung",
        section=section,
    )


def review(
    decision: ReviewDecision, revision: int, art: NormalizedArticle | None = None
) -> ArticleReviewed:
    if art is None and decision in (ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED):
        art = article()
    return ArticleReviewed(
        article_id=AID,
        source="bao-nhan-dan",
        external_id="x-1",
        revision=revision,
        decision=decision,
        reviewer="editor1",
        reviewed_at=NOW,
        article=art,
    )


def stored(revision: int, state: PublishedState = PublishedState.PUBLISHED, art=None) -> Stored:
    fp = (
        fingerprint("bao-nhan-dan", art or article()) if state == PublishedState.PUBLISHED else None
    )
    return Stored(revision=revision, state=state, fingerprint=fp)


def outcome(s: Stored | None, r: ArticleReviewed) -> Outcome:
    fp = fingerprint(r.source, r.article) if r.article else None
    return decide(s, r, fp).outcome


# --- slugs ---------------------------------------------------------------------------------------


def test_slug_is_folded_title_plus_first_eight_chars_of_the_id() -> None:
    assert make_slug("Hội nghị Trung ương 8", AID) == "hoi-nghi-trung-uong-8-3f2a9c1e"
    assert url_path_for("abc-3f2a9c1e") == "/bai-viet/abc-3f2a9c1e"


def test_slug_folds_d_with_stroke_and_drops_punctuation() -> None:
    assert (
        make_slug("Đảng Cộng sản Việt Nam: 95 năm!", AID)
        == "dang-cong-san-viet-nam-95-nam-3f2a9c1e"
    )


def test_slug_of_a_title_without_letters_is_the_id_prefix() -> None:
    assert make_slug("!!! ???", AID) == "3f2a9c1e"


def test_slug_stays_short_for_a_long_title() -> None:
    slug = make_slug("Tiêu đề rất dài " * 40, AID)
    assert len(slug) <= 80 + 9
    assert slug.endswith("-3f2a9c1e")


# --- revision rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", [ReviewDecision.APPROVED, ReviewDecision.AUTO_PUBLISHED])
def test_first_approval_publishes(decision: ReviewDecision) -> None:
    assert outcome(None, review(decision, 1)) == Outcome.PUBLISH


def test_newer_revision_updates_and_older_is_ignored() -> None:
    assert outcome(stored(2), review(ReviewDecision.APPROVED, 3)) == Outcome.UPDATE
    assert outcome(stored(2), review(ReviewDecision.APPROVED, 1)) == Outcome.IGNORE


def test_equal_revision_with_edits_is_an_editorial_update() -> None:
    edited = review(ReviewDecision.APPROVED, 2, article(title="Tiêu đề đã sửa"))
    assert outcome(stored(2), edited) == Outcome.UPDATE


def test_equal_revision_with_the_same_content_changes_nothing() -> None:
    assert outcome(stored(2), review(ReviewDecision.APPROVED, 2)) == Outcome.IGNORE


def test_rejection_never_changes_the_public_state() -> None:
    assert outcome(None, review(ReviewDecision.REJECTED, 1)) == Outcome.IGNORE
    assert outcome(stored(1), review(ReviewDecision.REJECTED, 2)) == Outcome.IGNORE


def test_retraction_removes_a_published_article() -> None:
    assert outcome(stored(1), review(ReviewDecision.RETRACTED, 2)) == Outcome.RETRACT
    assert outcome(stored(2), review(ReviewDecision.RETRACTED, 2)) == Outcome.RETRACT
    assert outcome(stored(3), review(ReviewDecision.RETRACTED, 2)) == Outcome.IGNORE


def test_retraction_before_publication_is_remembered_but_not_public() -> None:
    decision = decide(None, review(ReviewDecision.RETRACTED, 2), None)
    assert decision.outcome == Outcome.TOMBSTONE
    assert not decision.emits


def test_after_retraction_only_a_newer_revision_republishes() -> None:
    gone = stored(2, PublishedState.RETRACTED)
    assert outcome(gone, review(ReviewDecision.APPROVED, 1)) == Outcome.IGNORE
    assert outcome(gone, review(ReviewDecision.APPROVED, 2)) == Outcome.IGNORE
    assert outcome(gone, review(ReviewDecision.APPROVED, 3)) == Outcome.PUBLISH
    assert outcome(gone, review(ReviewDecision.RETRACTED, 3)) == Outcome.TOMBSTONE


def test_approval_without_an_article_is_invalid() -> None:
    bad = review(ReviewDecision.APPROVED, 1).model_copy(update={"article": None})
    with pytest.raises(InvalidReview, match="carries no article"):
        decide(None, bad, None)


def test_emitting_outcomes() -> None:
    assert decide(None, review(ReviewDecision.APPROVED, 1), None).emits
    assert not decide(None, review(ReviewDecision.REJECTED, 1), None).emits


# --- cursors -------------------------------------------------------------------------------------

CURSOR = Cursor(published_at=NOW + timedelta(microseconds=123), article_id=AID)


def test_cursor_round_trips_exactly() -> None:
    token = encode_cursor(CURSOR, scope="section:a", key=KEY)
    assert decode_cursor(token, scope="section:a", key=KEY) == CURSOR


@settings(database=None)
@given(
    st.datetimes(timezones=st.just(UTC)),
    st.text(alphabet="0123456789abcdef-", min_size=1, max_size=64),  # ids are UUID-like
)
def test_cursor_round_trips_any_position(moment: datetime, article_id: str) -> None:
    cursor = Cursor(published_at=moment, article_id=article_id)
    assert decode_cursor(encode_cursor(cursor, scope="s", key=KEY), scope="s", key=KEY) == cursor


def test_cursor_of_another_list_is_refused() -> None:
    token = encode_cursor(CURSOR, scope="section:a", key=KEY)
    with pytest.raises(CursorError, match="another list"):
        decode_cursor(token, scope="section:b", key=KEY)


def test_cursor_signed_with_another_key_is_refused() -> None:
    token = encode_cursor(CURSOR, scope="s", key=b"other")
    with pytest.raises(CursorError):
        decode_cursor(token, scope="s", key=KEY)


def test_tampered_cursor_is_refused() -> None:
    import base64
    import json

    token = encode_cursor(CURSOR, scope="s", key=KEY)
    body, tag = token.split(".")
    forged = json.dumps({"t": "2020-01-01T00:00:00+00:00", "id": str(uuid.uuid4())}).encode()
    forged_token = base64.urlsafe_b64encode(forged).rstrip(b"=").decode() + "." + tag
    with pytest.raises(CursorError, match="altered"):
        decode_cursor(forged_token, scope="s", key=KEY)
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + tag
    with pytest.raises(CursorError):
        decode_cursor(flipped, scope="s", key=KEY)


@pytest.mark.parametrize("token", ["", "abc", "abc.", ".abc", "!!!.???", "a" * 600, "e30.AAAA"])
def test_garbage_cursor_is_refused(token: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(token, scope="s", key=KEY)


def test_fingerprint_changes_with_content_only() -> None:
    assert fingerprint("a", article()) == fingerprint("a", article())
    assert fingerprint("a", article()) != fingerprint("a", article(title="Khác"))
    assert fingerprint("a", article()) != fingerprint("b", article())
