"""Review desk rules: roles, trust policy, state transitions, the revision lock (no infrastructure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal_contracts.articles import ArticleAction, NormalizedArticle, ReviewDecision
from portal_moderation.domain import (
    Action,
    Conflict,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    ItemStatus,
    Policy,
    Role,
    SignInLimits,
    apply_edits,
    authorize,
    decide,
    on_normalized,
    reviewed_event,
    sign_in_throttled_until,
    throttled_until,
    token_digest,
    visible_source,
)

EDITOR = Editor("bien-tap", Role.EDITOR)
CHIEF = Editor("tong-bien-tap", Role.CHIEF_EDITOR)
ADMIN = Editor("quan-tri", Role.ADMIN)
AGENCY = Editor("tinh-ha-noi-1", Role.AGENCY_PUBLISHER, source="tinh-ha-noi")


# --- who may do what ------------------------------------------------------------------------


@pytest.mark.parametrize("editor", [EDITOR, CHIEF, ADMIN])
@pytest.mark.parametrize("action", [Action.VIEW, Action.APPROVE, Action.REJECT, Action.EDIT])
def test_editors_review_any_source(editor: Editor, action: Action) -> None:
    authorize(editor, action, "bo-y-te")


def test_only_chief_editors_and_admins_retract() -> None:
    authorize(CHIEF, Action.RETRACT, "bo-y-te")
    authorize(ADMIN, Action.RETRACT, "bo-y-te")
    with pytest.raises(Forbidden, match="retract"):
        authorize(EDITOR, Action.RETRACT, "bo-y-te")


@pytest.mark.parametrize("action", [Action.APPROVE, Action.REJECT, Action.EDIT, Action.RETRACT])
def test_agency_publisher_cannot_act_even_on_its_own_items(action: Action) -> None:
    with pytest.raises(Forbidden):
        authorize(AGENCY, action, "tinh-ha-noi")


def test_agency_publisher_sees_only_its_own_source() -> None:
    authorize(AGENCY, Action.VIEW, "tinh-ha-noi")
    with pytest.raises(Forbidden, match="source"):
        authorize(AGENCY, Action.VIEW, "bo-y-te")
    assert visible_source(AGENCY, None) == "tinh-ha-noi"
    assert visible_source(AGENCY, "tinh-ha-noi") == "tinh-ha-noi"
    with pytest.raises(Forbidden):
        visible_source(AGENCY, "bo-y-te")
    assert visible_source(EDITOR, None) is None
    assert visible_source(EDITOR, "bo-y-te") == "bo-y-te"


# --- incoming revisions ---------------------------------------------------------------------


def _status(revision: int, state: ItemState, published: int | None = None) -> ItemStatus:
    return ItemStatus(revision=revision, state=state, published_revision=published)


def test_pre_review_waits_for_an_editor() -> None:
    outcome = on_normalized(None, 1, ArticleAction.UPSERT, Policy.PRE_REVIEW)
    assert outcome is not None
    assert outcome.state is ItemState.PENDING
    assert outcome.decision is None
    assert outcome.published_revision is None


def test_trusted_source_is_auto_published_at_once() -> None:
    outcome = on_normalized(None, 1, ArticleAction.UPSERT, Policy.TRUSTED)
    assert outcome is not None
    assert outcome.state is ItemState.AUTO_PUBLISHED
    assert outcome.decision is ReviewDecision.AUTO_PUBLISHED
    assert outcome.reviewer == "policy:trusted"
    assert outcome.published_revision == 1


@pytest.mark.parametrize("policy", list(Policy))
def test_partner_retraction_is_passed_on_at_once(policy: Policy) -> None:
    current = _status(1, ItemState.PUBLISHED, 1)
    outcome = on_normalized(current, 2, ArticleAction.RETRACT, policy)
    assert outcome is not None
    assert outcome.state is ItemState.RETRACTED
    assert outcome.decision is ReviewDecision.RETRACTED
    assert outcome.reviewer == "partner"
    assert outcome.published_revision is None


def test_new_revision_of_a_published_article_goes_back_to_review() -> None:
    current = _status(1, ItemState.PUBLISHED, 1)
    outcome = on_normalized(current, 2, ArticleAction.UPSERT, Policy.PRE_REVIEW)
    assert outcome is not None
    assert outcome.state is ItemState.PENDING
    assert outcome.decision is None
    assert outcome.published_revision == 1  # the approved version stays public meanwhile


@pytest.mark.parametrize("revision", [1, 2])
def test_an_older_or_equal_revision_is_ignored(revision: int) -> None:
    current = _status(2, ItemState.PENDING)
    assert on_normalized(current, revision, ArticleAction.UPSERT, Policy.TRUSTED) is None
    assert on_normalized(current, revision, ArticleAction.RETRACT, Policy.TRUSTED) is None


# --- editors' decisions ---------------------------------------------------------------------


def test_approve_publishes_the_reviewed_revision() -> None:
    outcome = decide(_status(3, ItemState.PENDING, 2), Action.APPROVE, 3)
    assert outcome.state is ItemState.PUBLISHED
    assert outcome.published_revision == 3
    assert outcome.decision is ReviewDecision.APPROVED


def test_stale_revision_is_a_conflict() -> None:
    with pytest.raises(Conflict) as caught:
        decide(_status(3, ItemState.PENDING), Action.APPROVE, 2)
    assert caught.value.current_revision == 3
    assert "revision" in caught.value.reason
    for action in (Action.REJECT, Action.EDIT, Action.RETRACT):
        with pytest.raises(Conflict):
            decide(_status(3, ItemState.PUBLISHED, 3), action, 2)


def test_a_second_approval_of_the_same_revision_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="already approved"):
        decide(_status(1, ItemState.PUBLISHED, 1), Action.APPROVE, 1)


def test_post_review_of_an_auto_published_item_confirms_it() -> None:
    outcome = decide(_status(1, ItemState.AUTO_PUBLISHED, 1), Action.APPROVE, 1)
    assert outcome.state is ItemState.PUBLISHED
    assert outcome.decision is ReviewDecision.APPROVED


def test_reject_only_a_pending_item() -> None:
    outcome = decide(_status(2, ItemState.PENDING, 1), Action.REJECT, 2)
    assert outcome.state is ItemState.REJECTED
    assert outcome.decision is ReviewDecision.REJECTED
    assert outcome.published_revision == 1  # rejecting an update keeps the approved version
    with pytest.raises(Conflict, match="retract"):
        decide(_status(1, ItemState.AUTO_PUBLISHED, 1), Action.REJECT, 1)


def test_a_rejected_item_can_still_be_approved() -> None:
    assert decide(_status(1, ItemState.REJECTED), Action.APPROVE, 1).state is ItemState.PUBLISHED


def test_retract_needs_something_public() -> None:
    for status in (
        _status(1, ItemState.PUBLISHED, 1),
        _status(1, ItemState.AUTO_PUBLISHED, 1),
        _status(2, ItemState.PENDING, 1),
    ):
        outcome = decide(status, Action.RETRACT, None)
        assert outcome.state is ItemState.RETRACTED
        assert outcome.published_revision is None
        assert outcome.decision is ReviewDecision.RETRACTED
    with pytest.raises(Conflict, match="reject"):
        decide(_status(1, ItemState.PENDING), Action.RETRACT, None)


@pytest.mark.parametrize("action", [Action.APPROVE, Action.REJECT, Action.EDIT, Action.RETRACT])
def test_nothing_but_a_new_revision_reopens_a_retracted_item(action: Action) -> None:
    with pytest.raises(Conflict, match="retracted"):
        decide(_status(2, ItemState.RETRACTED), action, 2)


def test_editing_a_public_item_republishes_it_at_the_same_revision() -> None:
    outcome = decide(_status(2, ItemState.PUBLISHED, 2), Action.EDIT, 2)
    assert outcome.decision is ReviewDecision.APPROVED
    assert outcome.state is ItemState.PUBLISHED
    pending = decide(_status(2, ItemState.PENDING, 1), Action.EDIT, 2)
    assert pending.decision is None  # the edit waits for the approval
    assert pending.state is ItemState.PENDING


# --- edits and events -----------------------------------------------------------------------


def _article() -> NormalizedArticle:
    return NormalizedArticle(
        title="Tiêu đề cũ",
        summary="Tóm tắt cũ",
        body_html="<p>Nội dung</p>",
        body_text="Nội dung",
        section="ct-tin-tuc-hoat-dong",
    )


def test_edits_record_before_and_after_of_what_changed() -> None:
    edited, changes = apply_edits(
        _article(), {"title": "  Tiêu đề   mới ", "section": "ct-tin-tuc-hoat-dong"}
    )
    assert edited.title == "Tiêu đề mới"
    assert changes == {"title": {"before": "Tiêu đề cũ", "after": "Tiêu đề mới"}}
    assert edited.body_html == "<p>Nội dung</p>"


def test_an_edit_that_changes_nothing_has_no_changes() -> None:
    edited, changes = apply_edits(_article(), {"title": "Tiêu đề cũ"})
    assert changes == {}
    assert edited == _article()


def test_invalid_edits_name_the_field() -> None:
    with pytest.raises(InvalidEdit, match="title"):
        apply_edits(_article(), {"title": "   "})
    with pytest.raises(InvalidEdit, match="section"):
        apply_edits(_article(), {"section": "Not A Code"})


def test_reviewed_event_carries_the_article_only_when_published() -> None:
    now = datetime.now(UTC)
    common = {
        "article_id": "a1",
        "source": "tinh-ha-noi",
        "external_id": "x",
        "revision": 2,
        "reviewer": "bien-tap",
        "reviewed_at": now,
        "article": _article(),
    }
    approved = reviewed_event(decision=ReviewDecision.APPROVED, reason=None, **common)  # type: ignore[arg-type]
    assert approved.producer == "moderation"
    assert approved.subject == "a1"
    assert approved.data.article == _article()
    rejected = reviewed_event(decision=ReviewDecision.REJECTED, reason="sai", **common)  # type: ignore[arg-type]
    assert rejected.data.article is None
    assert rejected.data.reason == "sai"


# --- accounts -------------------------------------------------------------------------------


WINDOW = timedelta(minutes=15)
LIMITS = SignInLimits(per_name_and_address=3, per_address=5, window=WINDOW)


def test_sign_ins_go_ahead_below_the_limits() -> None:
    now = datetime.now(UTC)
    two = [now - timedelta(minutes=1), now - timedelta(minutes=2)]
    assert sign_in_throttled_until(LIMITS, by_address=two, by_name_and_address=two, now=now) is None
    assert throttled_until(two * 2, limit=5, window=WINDOW, now=now) is None


def test_a_name_tried_too_often_from_one_address_waits_for_the_window_to_slide() -> None:
    now = datetime.now(UTC)
    failures = [now - timedelta(minutes=m) for m in (1, 5, 9)]
    until = sign_in_throttled_until(
        LIMITS, by_address=failures, by_name_and_address=failures, now=now
    )
    # The third-newest failure (9 minutes ago) leaves the 15-minute window in 6 minutes.
    assert until == now - timedelta(minutes=9) + WINDOW
    assert throttled_until(failures, limit=3, window=WINDOW, now=until) is None


def test_many_names_from_one_address_hit_the_per_address_limit() -> None:
    now = datetime.now(UTC)
    spraying = [now - timedelta(seconds=s) for s in range(5)]
    until = sign_in_throttled_until(LIMITS, by_address=spraying, by_name_and_address=[], now=now)
    assert until == now - timedelta(seconds=4) + WINDOW


def test_the_later_of_the_two_throttles_wins() -> None:
    now = datetime.now(UTC)
    by_name = [now - timedelta(minutes=m) for m in (1, 2, 3)]
    by_address = [now - timedelta(minutes=m) for m in (1, 2, 3, 4, 10)]
    until = sign_in_throttled_until(
        LIMITS, by_address=by_address, by_name_and_address=by_name, now=now
    )
    assert until == now - timedelta(minutes=3) + WINDOW


def test_failures_older_than_the_window_do_not_count() -> None:
    now = datetime.now(UTC)
    old = [now - WINDOW - timedelta(seconds=s) for s in range(10)]
    assert sign_in_throttled_until(LIMITS, by_address=old, by_name_and_address=old, now=now) is None


def test_a_per_address_limit_of_zero_is_no_limit() -> None:
    now = datetime.now(UTC)
    many = [now - timedelta(seconds=s) for s in range(100)]
    off = SignInLimits(per_name_and_address=3, per_address=0, window=WINDOW)
    assert sign_in_throttled_until(off, by_address=many, by_name_and_address=[], now=now) is None
    assert throttled_until(many, limit=0, window=WINDOW, now=now) is None


def test_token_digest_is_stable_and_not_the_token() -> None:
    assert token_digest("abc") == token_digest("abc")
    assert token_digest("abc") != "abc"
    assert len(token_digest("abc")) == 64
