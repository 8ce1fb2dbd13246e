"""The engagement block's rules: references, windows, contact details, moderation results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from portal_contracts.submissions import SubmissionKind, SubmissionState
from portal_engagement.domain import (
    Current,
    DialogueTimes,
    InvalidContact,
    after_moderation,
    answer_applies,
    answer_visible,
    dialogue_phase,
    dialogue_refusal,
    feedback_refusal,
    identity_key,
    new_status_token,
    normalize_email,
    normalize_phone,
    reference,
    title_from_body,
    token_digest,
    validate_times,
)
from portal_engagement.settings import Settings

NOW = datetime(2026, 3, 28, 3, 0, tzinfo=UTC)


def test_reference_uses_vietnam_year_and_kind() -> None:
    # 31 Dec 20:00 UTC is already 1 Jan in Vietnam.
    at = datetime(2025, 12, 31, 20, 0, tzinfo=UTC)
    assert reference(SubmissionKind.QA, at, 42) == "HD-2026-000042"
    assert reference(SubmissionKind.FEEDBACK, NOW, 7).startswith("GY-2026-")
    assert reference(SubmissionKind.COMMENT, NOW, 1).startswith("BL-")


def test_status_tokens_are_random_and_stored_as_digests() -> None:
    a, b = new_status_token(), new_status_token()
    assert a != b and len(a) >= 40
    assert token_digest(a) != a and len(token_digest(a)) == 64


def test_dialogue_takes_questions_before_and_during_not_after() -> None:
    times = DialogueTimes(
        NOW - timedelta(days=2), NOW + timedelta(hours=1), NOW + timedelta(hours=3)
    )
    assert dialogue_phase(times, NOW) == "upcoming"
    assert dialogue_refusal(times, NOW) is None
    assert dialogue_phase(times, NOW + timedelta(hours=2)) == "live"
    assert dialogue_refusal(times, NOW + timedelta(hours=2)) is None
    assert dialogue_phase(times, NOW + timedelta(hours=3)) == "ended"
    assert "ended" in (dialogue_refusal(times, NOW + timedelta(hours=3)) or "")
    assert "from" in (dialogue_refusal(times, NOW - timedelta(days=3)) or "")


def test_dialogue_times_are_checked() -> None:
    assert validate_times(starts_at=NOW, ends_at=NOW, questions_open_at=None)
    assert validate_times(
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        questions_open_at=NOW + timedelta(minutes=1),
    )
    assert (
        validate_times(starts_at=NOW, ends_at=NOW + timedelta(hours=1), questions_open_at=None)
        is None
    )


def test_feedback_deadline() -> None:
    opens, deadline = NOW, NOW + timedelta(days=30)
    assert feedback_refusal(opens, deadline, NOW + timedelta(days=1)) is None
    assert "opens" in (feedback_refusal(opens, deadline, NOW - timedelta(seconds=1)) or "")
    assert "deadline" in (feedback_refusal(opens, deadline, deadline) or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912 345 678", "+84912345678"),
        ("+84 912-345-678", "+84912345678"),
        ("(024) 3825.1234", "+842438251234"),
    ],
)
def test_phone_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_bad_contact_details_name_the_field() -> None:
    with pytest.raises(InvalidContact) as exc:
        normalize_phone("12345")
    assert exc.value.field == "phone"
    with pytest.raises(InvalidContact) as exc2:
        normalize_email("not-an-email")
    assert exc2.value.field == "email"
    assert normalize_email("  Ten.Ho@Example.VN ") == "Ten.Ho@example.vn"
    assert normalize_email("") is None and normalize_phone(None) is None


def test_identity_key_is_the_same_for_the_same_person() -> None:
    assert identity_key("a@b.vn", None) == identity_key("A@B.VN", None)
    assert identity_key(None, None) is None
    assert identity_key("a@b.vn", "+84912345678") != identity_key("a@b.vn", None)


def _current(kind: SubmissionKind, **kw: object) -> Current:
    base: dict[str, object] = {
        "kind": kind,
        "state": "received",
        "moderation_revision": 0,
        "answer_revision": None,
        "public": False,
    }
    base.update(kw)
    return Current(**base)  # type: ignore[arg-type]


def test_a_post_is_public_exactly_while_published() -> None:
    post = _current(SubmissionKind.COMMENT)
    step = after_moderation(post, 1, SubmissionState.PUBLISHED)
    assert step is not None and step.public
    published = _current(
        SubmissionKind.COMMENT, state="published", moderation_revision=1, public=True
    )
    withdrawn = after_moderation(published, 2, SubmissionState.WITHDRAWN)
    assert withdrawn is not None and not withdrawn.public


def test_older_steps_are_ignored() -> None:
    item = _current(SubmissionKind.FORUM_THREAD, moderation_revision=3)
    assert after_moderation(item, 3, SubmissionState.PUBLISHED) is None
    assert after_moderation(item, 2, SubmissionState.REJECTED) is None


def test_feedback_is_never_public() -> None:
    step = after_moderation(_current(SubmissionKind.FEEDBACK), 1, SubmissionState.PUBLISHED)
    assert step is not None and not step.public


def test_a_question_becomes_public_through_its_answer_only() -> None:
    q = _current(SubmissionKind.QA, moderation_revision=3, state="answered")
    step = after_moderation(q, 4, SubmissionState.PUBLISHED)
    assert step is not None and not step.public  # the answer event makes it public
    assert answer_applies(q, 4) and answer_visible(q, 4, True)


def test_a_late_answer_does_not_undo_a_newer_withdrawal() -> None:
    withdrawn = _current(SubmissionKind.QA, moderation_revision=6, state="withdrawn")
    assert not answer_visible(withdrawn, 5, True)
    answered = _current(SubmissionKind.QA, moderation_revision=5, answer_revision=5, public=True)
    assert not answer_applies(answered, 5) and not answer_applies(answered, 4)


def test_title_from_body_cuts_at_a_word() -> None:
    body = "Xin hỏi " + "rất " * 60
    title = title_from_body(body, max_chars=40)
    assert len(title) <= 41 and title.endswith("…") and not title.endswith(" …")
    assert title_from_body("Ngắn gọn\nphần sau") == "Ngắn gọn"


@pytest.mark.parametrize("salt", [None, "", "ngan-qua"])
def test_the_service_refuses_to_start_without_a_real_client_address_salt(
    salt: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLIENT_HASH_SALT", raising=False)
    assert Settings(client_hash_salt="m" * 16).client_hash_salt.get_secret_value() == "m" * 16
    values = {} if salt is None else {"client_hash_salt": salt}
    with pytest.raises(ValidationError, match="client_hash_salt"):
        Settings(**values)
