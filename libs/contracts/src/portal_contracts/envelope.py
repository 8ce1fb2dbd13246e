"""The event envelope every Kafka message value carries (see ARCHITECTURE.md).

Trace context is never in the envelope: it travels in Kafka headers (W3C ``traceparent``).
Schemas evolve by adding optional fields; a breaking change is a new ``schema_version`` that
consumers handle side by side (the registry maps ``(type, schema_version)`` to a model).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def utcnow() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every typed ``data`` payload: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Envelope(BaseModel):
    """Common fields of every event. Concrete events fix ``type`` and type ``data``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The event name, equal to the topic it is published on; concrete events override it.
    EVENT_TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4, description="Unique id of this event.")
    type: str = Field(description="The event name (the topic's event type).")
    schema_version: int = Field(default=1, ge=1, description="Version of the payload schema.")
    occurred_at: AwareDatetime = Field(
        default_factory=utcnow, description="When the event happened (UTC)."
    )
    producer: str = Field(min_length=1, max_length=64, description="Service that produced it.")
    subject: str = Field(
        min_length=1,
        max_length=200,
        description="Id of the thing the event is about (article id, question id); the Kafka key.",
    )

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)
