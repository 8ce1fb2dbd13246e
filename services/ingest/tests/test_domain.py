"""Unit tests of ingest's pure rules (no infrastructure)."""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata

import pytest

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    PublishedState,
    ReviewDecision,
)
from portal_ingest import domain
from portal_ingest.domain import Latest, Outcome, SourceInfo, Status, StatusState

UPSERT = ArticleAction.UPSERT
RETRACT = ArticleAction.RETRACT


def content(**kw: object) -> ArticleContent:
    return ArticleContent.model_validate({"title": "Tin hoạt động", **kw})


# -- idempotency hash -------------------------------------------------------------------------


def test_hash_ignores_key_order_spacing_and_explicit_defaults() -> None:
    a = ArticleContent.model_validate_json('{"title": "Đảng bộ", "summary": "Tóm tắt"}')
    b = ArticleContent.model_validate_json(
        '{ "summary":"Tóm tắt" ,"title":"  Đảng bộ ", "body_html": "", "images": [] }'
    )
    assert domain.content_hash(UPSERT, a) == domain.content_hash(UPSERT, b)


HASHED_CONTENTS: list[dict[str, object]] = [
    {},
    {"title": 'Trích "dẫn" \\ gạch\tchéo\u0001\u001f\u007f\u2028 🇻🇳 \u00a0x'},
    {
        "summary": "Tóm tắt\r\n\b\f",
        "body_html": "<p>Đảng Cộng sản Việt Nam</p>" * 50,
        "author": "Phóng viên",
        "published_at": "2026-12-05T10:00:00+07:00",
        "canonical_url": "https://báo.vn/bài?x=1&y=đ",
        "section": "thoi-su",
        "categories": ["Xây dựng Đảng", "z", "a"],
        "images": [{"url": "https://a.vn/1.jpg", "caption": "Ảnh"}, {"url": "http://b.vn"}],
    },
]


@pytest.mark.parametrize("fields", HASHED_CONTENTS)
def test_hash_is_the_sha256_of_the_canonical_json_of_action_and_content(
    fields: dict[str, object],
) -> None:
    # The hashes already stored keep matching: the same bytes as canonical_json's.
    c = content(**fields)
    document = {"action": "upsert", "content": c.model_dump(mode="json")}
    expected = hashlib.sha256(domain.canonical_json(document)).hexdigest()
    assert domain.content_hash(UPSERT, c) == expected
    retract = {"action": "retract", "content": None}
    assert domain.content_hash(RETRACT, None) == (
        hashlib.sha256(domain.canonical_json(retract)).hexdigest()
    )


@pytest.mark.parametrize("fields", HASHED_CONTENTS)
def test_digest_says_the_bytes_the_content_takes_in_an_event(fields: dict[str, object]) -> None:
    # Intake measures its events' size with it (intake_usecases._record_bytes).
    c = content(**fields)
    assert domain.content_digest(UPSERT, c) == (
        domain.content_hash(UPSERT, c),
        len(c.model_dump_json().encode()),
    )
    assert domain.content_digest(RETRACT, None)[1] == len(b"null")


def test_hash_changes_with_any_content_change_and_with_the_action() -> None:
    base = domain.content_hash(UPSERT, content())
    assert domain.content_hash(UPSERT, content(summary="khác")) != base
    assert domain.content_hash(UPSERT, content(section="ct-xay-dung-dang")) != base
    assert domain.content_hash(RETRACT, None) != base
    # Other Unicode forms (NFD) are other bytes to publish: not the same content.
    nfc = "Đảng"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert domain.content_hash(UPSERT, content(title=nfd)) != domain.content_hash(
        UPSERT, content(title=nfc)
    )


# -- revision rules ---------------------------------------------------------------------------


def decide(
    latest: Latest | None,
    h: str,
    requested: int | None = None,
    action: ArticleAction = UPSERT,
    stored: str | None = None,
) -> domain.RevisionDecision:
    return domain.decide_revision(
        latest, action=action, requested=requested, content_hash=h, hash_of_requested=stored
    )


def test_first_message_is_revision_one_or_the_partners_number() -> None:
    assert decide(None, "a") == domain.RevisionDecision(Outcome.NEW, 1)
    assert decide(None, "a", requested=7) == domain.RevisionDecision(Outcome.NEW, 7)


def test_retracting_an_unknown_article_is_refused() -> None:
    d = decide(None, "r", action=RETRACT)
    assert d.outcome is Outcome.UNKNOWN_ARTICLE
    assert d.reason is not None and "nothing to retract" in d.reason


def test_without_a_number_revisions_follow_arrival_and_repeats_are_duplicates() -> None:
    assert decide(Latest(3, "a"), "a") == domain.RevisionDecision(Outcome.DUPLICATE, 3)
    assert decide(Latest(3, "a"), "b") == domain.RevisionDecision(Outcome.NEW, 4)


def test_an_older_partner_revision_is_stale_with_a_reason() -> None:
    d = decide(Latest(5, "a"), "b", requested=3)
    assert d.outcome is Outcome.STALE
    assert d.reason is not None
    assert d.reason.startswith("revision 3 is older than the newest revision 5")


def test_a_replay_of_a_known_revision_is_a_duplicate_even_if_older() -> None:
    assert decide(Latest(5, "e"), "c", requested=3, stored="c") == domain.RevisionDecision(
        Outcome.DUPLICATE, 3
    )


def test_the_newest_number_with_other_content_is_a_conflict() -> None:
    d = decide(Latest(5, "a"), "b", requested=5, stored="a")
    assert d.outcome is Outcome.CONFLICT
    assert d.reason is not None and "revision 6 or higher" in d.reason


def test_a_higher_number_is_the_new_revision_unless_nothing_changed() -> None:
    assert decide(Latest(5, "a"), "b", requested=9) == domain.RevisionDecision(Outcome.NEW, 9)
    assert decide(Latest(5, "a"), "a", requested=9) == domain.RevisionDecision(Outcome.DUPLICATE, 5)


def test_retract_then_republish_are_new_revisions() -> None:
    retract = domain.content_hash(RETRACT, None)
    up = domain.content_hash(UPSERT, content())
    assert decide(Latest(1, up), retract, action=RETRACT).revision == 2
    assert decide(Latest(2, retract), retract, action=RETRACT).outcome is Outcome.DUPLICATE
    assert decide(Latest(2, retract), up) == domain.RevisionDecision(Outcome.NEW, 3)


def test_a_batch_decides_each_message_against_the_ones_before_it() -> None:
    """The messages about one article in one batch, in offset order."""
    revisions = domain.Revisions(Latest(2, "a"), {2: "a", 1: "z"})

    def step(h: str, requested: int | None = None) -> domain.RevisionDecision:
        d = revisions.decide(action=UPSERT, requested=requested, content_hash=h)
        if d.outcome is Outcome.NEW:
            revisions.accept(d.revision, h)
        return d

    assert step("b") == domain.RevisionDecision(Outcome.NEW, 3)
    assert step("b") == domain.RevisionDecision(Outcome.DUPLICATE, 3)  # a repeat in the batch
    assert step("c", requested=3).outcome is Outcome.CONFLICT  # the batch's revision 3 is "b"
    assert step("c", requested=7) == domain.RevisionDecision(Outcome.NEW, 7)
    assert step("d", requested=5).outcome is Outcome.STALE  # older than the batch's 7
    assert step("b", requested=3) == domain.RevisionDecision(Outcome.DUPLICATE, 3)  # a replay
    assert step("z", requested=1) == domain.RevisionDecision(Outcome.DUPLICATE, 1)  # stored one
    assert step("d") == domain.RevisionDecision(Outcome.NEW, 8)


# -- scope ------------------------------------------------------------------------------------

HANOI = SourceInfo("tp-ha-noi", True, ("ct-tin-tuc-hoat-dong", "ct-xay-dung-dang"))


def test_unknown_and_inactive_sources_are_refused() -> None:
    assert domain.source_refusal(None, "x") == "unknown source 'x'"
    assert domain.source_refusal(SourceInfo("x", False, ()), "x") == "source 'x' is inactive"
    assert domain.source_refusal(HANOI, "tp-ha-noi") is None


def test_section_must_be_one_the_source_may_publish_to() -> None:
    assert domain.section_refusal(HANOI, content(section="ct-xay-dung-dang")) is None
    assert domain.section_refusal(HANOI, content()) is None  # the review desk assigns one
    assert domain.section_refusal(HANOI, None) is None  # a retraction
    refusal = domain.section_refusal(HANOI, content(section="tong-bi-thu"))
    assert refusal == (
        "content.section: section 'tong-bi-thu' is not allowed for source 'tp-ha-noi' "
        "(allowed: ct-tin-tuc-hoat-dong, ct-xay-dung-dang)"
    )


def test_partners_see_only_their_own_articles() -> None:
    assert domain.access_refusal("tp-ha-noi", "tp-ha-noi", "id") is None
    assert (
        domain.access_refusal("bo-y-te", "tp-ha-noi", "id")
        == "article id belongs to another source"
    )


# -- API keys ---------------------------------------------------------------------------------


def test_issued_keys_parse_back_and_verify() -> None:
    key = domain.new_api_key()
    assert key.token.startswith(f"pk_{key.key_id}_")
    assert domain.parse_api_key(key.token) == (key.key_id, key.secret)
    stored = domain.hash_api_key(key.key_id, key.secret)
    assert key.secret not in stored
    assert domain.verify_api_key(key.key_id, key.secret, stored)
    assert not domain.verify_api_key(key.key_id, key.secret[:-1] + "x", stored)
    # A secret is bound to its key id: it does not verify under another id.
    other = domain.new_api_key()
    assert not domain.verify_api_key(other.key_id, key.secret, stored)


@pytest.mark.parametrize(
    "token",
    ["", "pk_", "pk_abc_def", "sk_0123456789abcdef_" + "a" * 43, "pk_0123456789ABCDEF_" + "a" * 43,
     "pk_0123456789abcdef_short", "pk_0123456789abcdef_" + "a" * 42 + "!"],
)  # fmt: skip
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert domain.parse_api_key(token) is None


def test_keys_are_unique_and_secrets_high_entropy() -> None:
    keys = {domain.new_api_key().token for _ in range(200)}
    assert len(keys) == 200
    assert all(len(k.split("_", 2)[2]) >= 43 for k in keys)


# -- Kafka credentials ------------------------------------------------------------------------


def test_kafka_users_are_prefixed_and_passwords_alphanumeric() -> None:
    assert domain.kafka_username("tp-ha-noi") == "partner-tp-ha-noi"
    passwords = {domain.new_kafka_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(p.isascii() and p.isalnum() and len(p) == 40 for p in passwords)


# -- partner messages over Kafka --------------------------------------------------------------


def test_partner_message_parses() -> None:
    msg = domain.parse_partner_message(
        json.dumps({"external_id": "a/1", "revision": 2, "content": {"title": "T"}}).encode(), 1000
    )
    assert (msg.external_id, msg.revision, msg.action) == ("a/1", 2, UPSERT)


@pytest.mark.parametrize(
    ("value", "error_type", "reason"),
    [
        (None, "decode", "empty message value (tombstone)"),
        (b"\xff\xfe", "decode", "not valid UTF-8 JSON"),
        (b"[1, 2]", "decode", "message value is not a JSON object"),
        (b'{"external_id": "a"}', "validation", "content is required"),
        (b'{"external_id": "a", "content": {}}', "validation", "content.title: Field required"),
        (b'{"external_id": "a b", "content": {"title": "t"}}', "validation", "external_id:"),
        (b'{"external_id": "a", "source": "x", "content": {"title": "t"}}', "validation",
         "source: Extra inputs are not permitted"),
        (b"{" + b" " * 2000 + b"}", "size", "exceeds the limit of 1000 bytes"),
    ],
)  # fmt: skip
def test_invalid_partner_messages_say_why(
    value: bytes | None, error_type: str, reason: str
) -> None:
    with pytest.raises(domain.InvalidPartnerMessage) as info:
        domain.parse_partner_message(value, 1000)
    assert info.value.error_type == error_type
    assert reason in info.value.reason


def test_external_id_hint_reads_what_it_can() -> None:
    assert domain.external_id_hint(b'{"external_id": "x-1", "content": 5}') == "x-1"
    assert domain.external_id_hint(b"not json") is None
    assert domain.external_id_hint(b'{"external_id": 5}') is None


# -- raw archive keys -------------------------------------------------------------------------


def test_raw_object_key_keeps_the_id_in_one_segment() -> None:
    key = domain.raw_object_key("tp-ha-noi", "2026/11/bai-1", b"{}")
    assert key.startswith("raw/tp-ha-noi/2026%2F11%2Fbai-1/")
    assert key.count("/") == 3
    assert key.endswith(".json")
    assert domain.raw_object_key("s", "..", b"{}").startswith("raw/s/%2E%2E/")
    assert domain.raw_object_key("s", "a", b"x") != domain.raw_object_key("s", "a", b"y")
    # Named by content: the same bytes sent again are the same archived object.
    assert domain.raw_object_key("s", "a", b"x") == domain.raw_object_key("s", "a", b"x")


# -- partner status ---------------------------------------------------------------------------


def test_status_moves_forward_within_a_revision() -> None:
    s = StatusState(1, Status.PUBLISHED)
    assert not domain.should_apply_status(s, 1, Status.IN_REVIEW)  # a late normalized event
    assert not domain.should_apply_status(s, 1, Status.APPROVED)
    assert not domain.should_apply_status(s, 1, Status.PUBLISHED)  # a repeat
    assert domain.should_apply_status(s, 1, Status.REJECTED)  # rejected after auto-publish
    assert domain.should_apply_status(s, 1, Status.RETRACTED)
    assert not domain.should_apply_status(StatusState(1, Status.RETRACTED), 1, Status.PUBLISHED)


def test_status_ignores_older_revisions_and_follows_newer_ones() -> None:
    s = StatusState(2, Status.RECEIVED)
    assert not domain.should_apply_status(s, 1, Status.PUBLISHED)
    assert domain.should_apply_status(s, 2, Status.IN_REVIEW)
    assert domain.should_apply_status(s, 3, Status.IN_REVIEW)


def test_pipeline_events_map_to_partner_statuses() -> None:
    assert domain.status_after_normalized(UPSERT) is Status.IN_REVIEW
    assert domain.status_after_normalized(RETRACT) is None
    assert domain.status_after_review(ReviewDecision.AUTO_PUBLISHED) is Status.APPROVED
    assert domain.status_after_review(ReviewDecision.REJECTED) is Status.REJECTED
    assert domain.status_after_review(ReviewDecision.RETRACTED) is Status.RETRACTED
    assert domain.status_after_published(PublishedState.PUBLISHED) is Status.PUBLISHED
    assert domain.status_after_published(PublishedState.RETRACTED) is Status.RETRACTED
    assert domain.status_on_ingest(RETRACT) is Status.RETRACTED


# -- paging -----------------------------------------------------------------------------------


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert domain.decode_cursor(domain.encode_cursor(12345)) == 12345
    forged = base64.urlsafe_b64encode(b"s1 OR 1=1").decode()
    for bad in ("", "zzz", "!!", forged):
        with pytest.raises(ValueError):
            domain.decode_cursor(bad)
