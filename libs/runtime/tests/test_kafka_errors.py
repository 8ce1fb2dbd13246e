"""Which failures are retried and what a dead letter keeps."""

from __future__ import annotations

import base64

from sqlalchemy.exc import IntegrityError, OperationalError

from portal_runtime.batch import Record
from portal_runtime.kafka import PermanentError, dead_letter_for, is_transient


def test_dependency_failures_are_transient_and_bugs_are_not() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert not is_transient(ValueError("bad"))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_transient(PermanentError("rule"))


def test_wrapped_dependency_failure_is_transient() -> None:
    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as inner:
            raise RuntimeError("while indexing") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_dead_letter_keeps_original_bytes_headers_and_reason() -> None:
    raw = b"\x00\xffnot json at all"
    record = Record(
        topic="article.ingested",
        partition=3,
        offset=42,
        timestamp_ms=1_700_000_000_000,
        key=b"article-1",
        value=raw,
        headers=(("traceparent", b"00-abc-def-01"),),
    )
    dl = dead_letter_for(
        record,
        group="normalize",
        reason="not valid UTF-8 JSON",
        error_type="decode",
        producer="normalize",
        source="tinh-ha-noi",
    )
    assert dl.type == "dead_letter"
    assert dl.data.original_value() == raw
    assert dl.data.original_key() == b"article-1"
    assert base64.b64decode(dl.data.original_headers["traceparent"]) == b"00-abc-def-01"
    assert (dl.data.original_topic, dl.data.original_partition, dl.data.original_offset) == (
        "article.ingested",
        3,
        42,
    )
    assert dl.data.reason == "not valid UTF-8 JSON"
    assert dl.subject == "article.ingested/3/42"
    # The same record's dead letter is recognisably the same one (written once per group).
    again = dead_letter_for(
        record, group="normalize", reason="x", error_type="decode", producer="normalize"
    )
    assert again.event_id == dl.event_id
