"""Contracts: envelopes round-trip, bad bytes give a precise reason, docs are never stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from portal_contracts import export
from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.codec import DecodeError, decode, encode
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import (
    ALL_TOPICS,
    EVENT_TOPICS,
    partner_topic,
    source_of_partner_topic,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _ingested(revision: int = 1) -> ArticleIngestedEvent:
    aid = article_id_for("tinh-ha-noi", "bai-123")
    return ArticleIngestedEvent(
        producer="ingest",
        subject=aid,
        data=ArticleIngested(
            article_id=aid,
            source="tinh-ha-noi",
            external_id="bai-123",
            revision=revision,
            action=ArticleAction.UPSERT,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=ArticleContent(
                title="Hội nghị Ban Chấp hành Đảng bộ thành phố",
                body_html="<p>Đảng Cộng sản Việt Nam</p>",
            ),
        ),
    )


def test_event_round_trips_through_bytes() -> None:
    event = _ingested()
    decoded = decode(encode(event), expected=ArticleIngestedEvent)
    assert decoded == event
    assert isinstance(decoded, ArticleIngestedEvent)
    assert decoded.data.content is not None
    assert decoded.data.content.title == "Hội nghị Ban Chấp hành Đảng bộ thành phố"


def test_occurred_at_is_stored_in_utc() -> None:
    ict = timezone(timedelta(hours=7))
    event = _ingested().model_copy(update={"occurred_at": datetime(2026, 1, 1, 7, tzinfo=ict)})
    again = ArticleIngestedEvent.model_validate(event.model_dump())
    assert again.occurred_at == datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert again.occurred_at.utcoffset() == timedelta(0)


def test_article_id_is_stable_per_source_and_external_id() -> None:
    assert article_id_for("bo-y-te", "42") == article_id_for("bo-y-te", "42")
    assert article_id_for("bo-y-te", "42") != article_id_for("bo-tai-chinh", "42")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "tombstone"),
        (b"\xff\xfe not json", "not valid UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "article.unknown"}', "unknown event type"),
        (b'{"type": "article.ingested", "schema_version": 9}', "unknown event type"),
        # Found by fuzzing: an unhashable type or version crashed the registry look-up.
        (b'{"type": ["article.ingested"]}', "type must be a string"),
        (b'{"type": {"a": 1}}', "type must be a string"),
        (b'{"type": "article.ingested", "schema_version": [1]}', "schema_version an integer"),
        (b'{"type": "article.ingested", "schema_version": true}', "schema_version an integer"),
    ],
)
def test_decode_rejects_bad_bytes_with_a_reason(value: bytes | None, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(value)
    assert fragment in info.value.reason


def test_decode_names_the_invalid_field() -> None:
    raw = json.loads(encode(_ingested()))
    raw["data"]["revision"] = 0
    with pytest.raises(DecodeError) as info:
        decode(json.dumps(raw).encode())
    assert info.value.error_type == "validation"
    assert "data.revision" in info.value.reason


def test_decode_refuses_an_event_on_the_wrong_topic() -> None:
    with pytest.raises(DecodeError, match="does not belong"):
        decode(encode(_ingested()), expected=ArticleNormalizedEvent)


def test_unknown_fields_are_refused() -> None:
    raw = json.loads(encode(_ingested()))
    raw["data"]["source_override"] = "bo-quoc-phong"
    with pytest.raises(DecodeError, match="source_override"):
        decode(json.dumps(raw).encode())


def test_partner_message_requires_content_for_upsert_but_not_retract() -> None:
    with pytest.raises(ValidationError, match="content is required"):
        PartnerArticleMessage(external_id="a-1")
    retract = PartnerArticleMessage(external_id="a-1", action=ArticleAction.RETRACT)
    assert retract.content is None


def test_registry_topics_are_unique_and_events_match_their_topic() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    for spec in EVENT_TOPICS:
        assert spec.name == spec.model.EVENT_TYPE
        assert spec.dead_letter_topic in names


def test_compacted_topics_keep_forever_and_others_expire() -> None:
    by_name = {t.name: t for t in ALL_TOPICS}
    assert by_name["article.published"].config["cleanup.policy"] == "compact"
    assert by_name["article.published"].config["retention.ms"] == "-1"
    assert by_name["article.ingested"].config["cleanup.policy"] == "delete"
    assert int(by_name["article.ingested"].config["retention.ms"]) > 0


def test_partner_topic_identity_comes_from_the_topic_name() -> None:
    assert source_of_partner_topic(partner_topic("bo-y-te")) == "bo-y-te"
    assert source_of_partner_topic("article.ingested") is None
    assert source_of_partner_topic("partner.../articles") is None


def test_committed_docs_match_the_code() -> None:
    """Fails when a model changed without `make contracts` (docs/ regenerated)."""
    stale = []
    for rel, content in export.render().items():
        path = DOCS / rel
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            stale.append(rel)
    committed = {str(p.relative_to(DOCS)) for p in (DOCS / "schemas").glob("*.json")}
    extra = committed - {rel for rel in export.render() if rel.startswith("schemas/")}
    assert not stale, f"stale generated docs (run `make contracts`): {stale}"
    assert not extra, f"docs/schemas has files the code no longer generates: {extra}"


def test_asyncapi_lists_every_topic_with_its_message() -> None:
    doc = export.asyncapi()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {t.name for t in ALL_TOPICS} <= addresses
    assert "partner.{source}.articles" in addresses
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["$ref"].rsplit("/", 1)[-1]
        assert ref in doc["components"]["schemas"]


def test_partner_text_loses_its_nul_characters_and_nothing_else() -> None:
    content = ArticleContent(title="Tin\x00 mới", body_html="<p>Đảng bộ\x00</p>", summary="Tóm tắt")
    assert (content.title, content.body_html, content.summary) == (
        "Tin mới",
        "<p>Đảng bộ</p>",
        "Tóm tắt",
    )
