"""Dead letters of the pipeline, read for per-source health: pure logic, no I/O.

Ingest and normalize dead-letter what they cannot process (``partner.articles.dlq``,
``article.ingested.dlq``), and moderation its own (``article.normalized.dlq``). Later stages'
dead-letter topics hold what publishing and the read models could not take, and an article
event a service could never send (set aside by its outbox relay: too large for the broker)
arrives on its topic's dead-letter topic as a notice with the reason. The desk records each one
once (by its event id, and by its position), with the agency it came from when that can be told:
the dead letter's ``source``, else the partner topic it was written to, else the original
event's payload.
A record that cannot even be read is still recorded (as ``unreadable``): nothing is dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from portal_contracts import topics
from portal_contracts.codec import DecodeError, decode
from portal_contracts.deadletter import DeadLetter, DeadLetterEvent
from portal_contracts.topics import source_of_partner_topic
from portal_runtime.clock import utcnow

# The registry says which dead-letter topics the desk reads (and the broker allows exactly those).
DEAD_LETTER_TOPICS: tuple[str, ...] = tuple(
    t.name for t in topics.DEAD_LETTER_TOPICS if "moderation" in t.consumers
)
MAX_REASON = 4000


def _clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _from_original(letter: DeadLetter) -> dict[str, str | None]:
    """Source, article and partner ids from the original bytes, as far as they can be read."""
    found: dict[str, str | None] = {}
    try:
        raw = base64.b64decode(letter.original_value_b64, validate=False)
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        return found
    if not isinstance(payload, dict):
        return found
    data = payload.get("data")
    if isinstance(data, dict):  # an event of the pipeline (article.ingested, article.normalized)
        for key in ("source", "article_id", "external_id"):
            if isinstance(data.get(key), str):
                found[key] = data[key]
    elif isinstance(payload.get("external_id"), str):  # a partner's own message
        found["external_id"] = payload["external_id"]
    return found


def record_of(
    topic: str, partition: int, offset: int, value: bytes | None, timestamp_ms: int | None
) -> dict[str, Any]:
    """The dead_letters row of one message of a dead-letter topic."""
    position = {"dlq_topic": topic, "dlq_partition": partition, "dlq_offset": offset}
    try:
        event = decode(value, expected=DeadLetterEvent)
    except DecodeError as exc:
        failed_at = datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms else utcnow()
        return {
            **position,
            "original_topic": None,
            "source": None,
            "article_id": None,
            "external_id": None,
            "error_type": "unreadable",
            "reason": _clip(f"dead letter not readable: {exc.reason}", MAX_REASON),
            "consumer_group": None,
            "failed_at": failed_at,
            "event_id": None,
        }
    assert isinstance(event, DeadLetterEvent)
    letter = event.data
    original = _from_original(letter)
    source = (
        letter.source or source_of_partner_topic(letter.original_topic) or original.get("source")
    )
    return {
        **position,
        "original_topic": _clip(letter.original_topic, 255),
        "source": _clip(source, 64),
        "article_id": _clip(original.get("article_id"), 64),
        "external_id": _clip(original.get("external_id"), 200),
        "error_type": _clip(letter.error_type, 64) or "unknown",
        "reason": _clip(letter.reason, MAX_REASON) or "",
        "consumer_group": _clip(letter.consumer_group, 255),
        "failed_at": letter.failed_at,
        "event_id": event.event_id,
    }
