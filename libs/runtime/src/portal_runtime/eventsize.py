"""The size of an event as the broker counts it, checked before the event is stored.

Kafka refuses a record batch larger than the topic's ``max.message.bytes``. A producer that
stored such an event in its outbox would have a row that can never leave, so every event is
measured where it is added to the outbox (``Outbox.add``), with the same arithmetic the relay
uses before sending a row. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from portal_contracts.codec import encode
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_runtime.kafka import PermanentError

# A record batch holding one record: the batch header (61 bytes) and the record's own length,
# attributes, timestamp and offset deltas, and the varints of key, value and header lengths
# (at most 5 bytes each). Rounded up.
RECORD_OVERHEAD_BYTES = 128
# Headers every published event carries besides its trace context (the relay adds them).
STANDARD_HEADERS: Mapping[str, str] = {"content-type": "application/json"}


def record_bytes(key: bytes | None, value: bytes, headers: Mapping[str, str]) -> int:
    """Bytes of a record batch holding this one record, as the broker measures it."""
    size = RECORD_OVERHEAD_BYTES + len(value) + (len(key) if key else 0)
    for name, text in {**STANDARD_HEADERS, **headers}.items():
        size += len(name.encode()) + len(text.encode()) + 10  # two length varints
    return size


class EventTooLarge(PermanentError):
    """An event too large for the broker: it is refused where it is made, never stored.

    A ``PermanentError``: a consumer whose handler raises it dead-letters the message; an HTTP
    request gets 413; each service may also catch it and answer in its own terms.
    """

    def __init__(self, topic: str, size: int, limit: int) -> None:
        reason = (
            f"the {topic} event would be {size:,} bytes, over the broker's limit of {limit:,} bytes"
        )
        super().__init__(reason, error_type="too_large")
        self.topic = topic
        self.size = size
        self.limit = limit


def check_record(
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Mapping[str, str],
    limit: int = MAX_MESSAGE_BYTES,
) -> int:
    """The record's size; raises ``EventTooLarge`` when the broker would refuse it."""
    size = record_bytes(key, value, headers)
    if size > limit:
        raise EventTooLarge(topic, size, limit)
    return size


def fit_dead_letter(
    topic: str, letter: DeadLetterEvent, headers: Mapping[str, str], limit: int = MAX_MESSAGE_BYTES
) -> tuple[DeadLetterEvent, bytes]:
    """A dead letter that fits its topic, encoded: the reason must get there even when the
    original bytes (base64, a third larger) cannot; then they are left out, and the reason says
    so. Raises ``EventTooLarge`` only if even that does not fit."""
    value = encode(letter)
    key = letter.subject.encode()
    if record_bytes(key, value, headers) <= limit:
        return letter, value
    original = len(base64.b64decode(letter.data.original_value_b64))
    data = letter.data.model_copy(
        update={
            "original_value_b64": "",
            "reason": (
                f"{letter.data.reason} (original value of {original:,} bytes left out: too "
                "large for the dead-letter topic)"
            )[:4000],
        }
    )
    letter = letter.model_copy(update={"data": data})
    value = encode(letter)
    check_record(topic, key, value, headers, limit)
    return letter, value
