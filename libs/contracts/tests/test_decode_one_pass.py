"""``decode``'s one-pass path (a consumer's, which knows its topic's model) accepts exactly what
the checked two-pass decoding accepts, gives the same event, and refuses the rest with its
reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_contracts.articles import (
    ArticleAction,
    ArticleNormalized,
    ArticleNormalizedEvent,
    NormalizedArticle,
    QualityReport,
)
from portal_contracts.codec import DecodeError, decode, decode_checked, encode
from portal_contracts.envelope import Envelope
from portal_contracts.topics import MAX_MESSAGE_BYTES

MODEL = ArticleNormalizedEvent
EVENT = ArticleNormalizedEvent(
    producer="normalize",
    subject="bao-a:1",
    data=ArticleNormalized(
        article_id="bao-a:1",
        source="bao-a",
        external_id="tin-1",
        revision=2,
        action=ArticleAction.UPSERT,
        received_at=datetime(2026, 12, 4, 8, 30, tzinfo=UTC),
        article=NormalizedArticle(
            title="Hội nghị Trung ương",
            summary="Tóm tắt.",
            body_html="<p>Nội dung bài viết.</p>",
            body_text="Nội dung bài viết.",
        ),
        quality=QualityReport(score=0.9),
    ),
)
RAW: dict[str, Any] = json.loads(encode(EVENT))


def outcome(decoder: Any, value: bytes | None) -> Envelope | tuple[str, str]:
    try:
        result: Envelope = decoder(value, MODEL)
    except DecodeError as exc:
        return (exc.error_type, exc.reason)
    return result


def one_pass(value: bytes | None, model: type[Envelope]) -> Envelope:
    return decode(value, expected=model)


def checked(value: bytes | None, model: type[Envelope]) -> Envelope:
    return decode_checked(value, expected=model)


def same_as_contract(value: bytes | None) -> Envelope | tuple[str, str]:
    ours = outcome(one_pass, value)
    assert ours == outcome(checked, value)
    return ours


def with_field(path: tuple[str, ...], value: Any) -> bytes:
    raw = json.loads(json.dumps(RAW))
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(raw).encode()


def test_a_valid_event_decodes_to_the_contracts_event() -> None:
    assert same_as_contract(encode(EVENT)) == EVENT
    assert same_as_contract(b"\xef\xbb\xbf" + encode(EVENT)) == EVENT  # a byte-order mark
    # What only the lax contract accepts is still accepted (a number as text), as it says.
    lax = same_as_contract(with_field(("data", "revision"), "2"))
    assert isinstance(lax, MODEL)
    assert lax.data.revision == 2


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\xff\xfe not utf-8",
        encode(EVENT) + b" trailing",
        b"[1, 2]",
        with_field(("schema_version",), 1.0),
        with_field(("schema_version",), True),
        with_field(("schema_version",), 2),
        with_field(("type",), "article.published"),
        json.dumps({k: v for k, v in RAW.items() if k != "type"}).encode(),
        with_field(("data", "quality", "score"), float("nan")),
        with_field(("data", "title_extra"), "x"),
        with_field(("data", "article", "title"), "\ud800"),
        b" " * (MAX_MESSAGE_BYTES + 1),
    ],
)
def test_what_the_contract_refuses_is_refused_with_its_reason(value: bytes | None) -> None:
    assert isinstance(same_as_contract(value), tuple)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
paths = st.sampled_from(
    [
        ("event_id",),
        ("schema_version",),
        ("occurred_at",),
        ("subject",),
        ("data", "revision"),
        ("data", "action"),
        ("data", "received_at"),
        ("data", "duplicate_of"),
        ("data", "article", "title"),
        ("data", "article", "images"),
        ("data", "quality", "score"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(path=paths, value=json_values)
def test_any_field_changed_decodes_as_the_contract_says(path: tuple[str, ...], value: Any) -> None:
    same_as_contract(with_field(path, value))
