"""Event sizes as the broker counts them (pure): checked before an event is stored."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_runtime.eventsize import (
    RECORD_OVERHEAD_BYTES,
    EventTooLarge,
    check_record,
    fit_dead_letter,
    record_bytes,
)
from portal_runtime.kafka import PermanentError


def test_a_record_counts_its_key_value_headers_and_framing() -> None:
    headers = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    size = record_bytes(b"k" * 36, b"v" * 1000, headers)
    content_type = len("content-type") + len("application/json") + 10
    trace = len("traceparent") + 55 + 10

    assert size == RECORD_OVERHEAD_BYTES + 36 + 1000 + content_type + trace


def test_an_event_just_under_the_limit_passes_and_one_byte_more_is_refused() -> None:
    fits = MAX_MESSAGE_BYTES - record_bytes(b"k", b"", {})
    assert check_record("article.ingested", b"k", b"v" * fits, {}) == MAX_MESSAGE_BYTES

    with pytest.raises(EventTooLarge) as refused:
        check_record("article.ingested", b"k", b"v" * (fits + 1), {})
    assert refused.value.size == MAX_MESSAGE_BYTES + 1
    assert refused.value.limit == MAX_MESSAGE_BYTES
    assert "article.ingested" in refused.value.reason
    assert f"{MAX_MESSAGE_BYTES:,} bytes" in refused.value.reason


def test_too_large_is_a_permanent_error_so_consumers_dead_letter_it() -> None:
    refused = EventTooLarge("article.normalized", 5_000_000, 4_000_000)
    assert isinstance(refused, PermanentError)
    assert refused.error_type == "too_large"


def test_a_lower_limit_is_honoured() -> None:
    with pytest.raises(EventTooLarge):
        check_record("t", None, b"x" * 2000, {}, limit=1000)


def _letter(original: bytes) -> DeadLetterEvent:
    return DeadLetterEvent(
        producer="normalize",
        subject="article.ingested/3/42",
        data=DeadLetter(
            original_topic="article.ingested",
            original_partition=3,
            original_offset=42,
            original_value_b64=base64.b64encode(original).decode(),
            consumer_group="normalize",
            reason="the normalized article is too large",
            error_type="too_large",
            failed_at=datetime.now(UTC),
        ),
    )


def test_a_dead_letter_that_fits_keeps_its_original_bytes() -> None:
    letter = _letter(b'{"a": 1}')
    fitted, value = fit_dead_letter("article.ingested.dlq", letter, {})
    assert fitted is letter
    assert value == encode(letter)


def test_a_dead_letter_too_large_for_its_topic_keeps_its_reason_without_the_original() -> None:
    original = b"x" * (MAX_MESSAGE_BYTES - 1000)  # fits a topic; base64 of it does not
    fitted, value = fit_dead_letter("article.ingested.dlq", _letter(original), {})

    assert fitted.data.original_value_b64 == ""
    assert fitted.data.reason.startswith("the normalized article is too large")
    assert f"original value of {len(original):,} bytes left out" in fitted.data.reason
    assert (fitted.data.original_topic, fitted.data.original_offset) == ("article.ingested", 42)
    assert len(value) < 10_000
