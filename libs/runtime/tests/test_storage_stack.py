"""The object store's writes, against the stack's S3 gateway (SeaweedFS)."""

from __future__ import annotations

import os
import uuid

import pytest

from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_runtime.settings import ServiceSettings
from portal_runtime.storage import ObjectStore, ObjectStoreUnavailable

pytestmark = pytest.mark.stack


def _ingest_store(stack: StackSettings, **update: str) -> ObjectStore:
    env = {k.lower(): v for k, v in service_environment(stack, "ingest").items()}
    settings = ServiceSettings(**env).model_copy(update=update)  # type: ignore[arg-type]
    return ObjectStore(settings, bucket=stack.s3_raw_bucket)


async def test_a_written_object_reads_back_byte_for_byte_under_its_exact_key(
    stack_settings: StackSettings,
) -> None:
    store = _ingest_store(stack_settings)
    # Raw archive keys hold percent-escapes and colons: they are names, never decoded.
    key = f"raw/test/bai%2F{uuid.uuid4().hex}:1/{uuid.uuid4().hex}.json"
    body = os.urandom(5000)
    try:
        await store.put(key, body, "application/json")
        assert await store.get(key) == body
        # The escape is part of the name: the decoded path is another object.
        with pytest.raises(Exception, match="NoSuchKey"):
            await store.get(key.replace("%2F", "/"))
    finally:
        await store.close()


async def test_a_refused_write_is_an_os_error_naming_the_key(
    stack_settings: StackSettings,
) -> None:
    # Ingest's key may write only its own bucket: the gateway refuses, the caller sees the store
    # as unavailable (as when it does not answer), with the server's reason.
    store = _ingest_store(stack_settings)
    store.bucket = stack_settings.s3_bucket
    try:
        with pytest.raises(ObjectStoreUnavailable, match="AccessDenied") as refused:
            await store.put("images/refused.webp", b"x", "image/webp")
        assert isinstance(refused.value, OSError)
        assert "images/refused.webp" in str(refused.value)
    finally:
        await store.close()


async def test_an_endpoint_that_does_not_answer_is_an_os_error(
    stack_settings: StackSettings,
) -> None:
    store = _ingest_store(stack_settings, s3_endpoint="http://127.0.0.1:9")
    try:
        with pytest.raises(OSError):
            await store.put("raw/test/x.json", b"{}", "application/json")
    finally:
        await store.close()


async def test_a_ranged_read_returns_exactly_those_bytes(stack_settings: StackSettings) -> None:
    # A pack of originals: Vietnamese UTF-8 beside bytes of every value; each read alone.
    store = _ingest_store(stack_settings)
    parts = [
        "Hội nghị lần thứ mười bốn Ban Chấp hành Trung ương".encode(),
        bytes(range(256)),
        b"",
        os.urandom(7000),
    ]
    key = f"raw/test/{uuid.uuid4().hex}.pack"
    try:
        await store.put(key, b"".join(parts), "application/octet-stream")
        offset = 0
        for part in parts:
            assert await store.get_range(key, offset, len(part)) == part
            offset += len(part)
        with pytest.raises(ValueError, match="not 10"):  # past the end: never fewer bytes
            await store.get_range(key, offset - 5, 10)
    finally:
        await store.close()
