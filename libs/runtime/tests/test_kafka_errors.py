"""Which failures are retried and what a dead letter keeps."""

from __future__ import annotations

import asyncio
import base64
import socket

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from portal_runtime.batch import Record
from portal_runtime.kafka import PermanentError, dead_letter_for, is_transient, started


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


# -- a client whose start fails or is cut short --------------------------------------------------


async def test_a_client_whose_start_fails_is_stopped_again() -> None:
    # Nothing listens on this loopback port: the start fails at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=2000)
    with pytest.raises(KafkaConnectionError):
        await started(consumer)
    assert consumer._closed  # no "Unclosed AIOKafkaConsumer" when it is collected


async def test_a_client_whose_start_times_out_is_stopped_again() -> None:
    # A broker that accepts and never answers: the start is cut short by the caller's timeout
    # (the bulk lane's gate measures within one), with the client half started.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client hangs up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=30_000)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await started(consumer)
        assert consumer._closed
    finally:
        server.close()
        await server.wait_closed()
