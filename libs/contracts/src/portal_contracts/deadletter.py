"""Dead-letter records: a message a consumer could not process, with the reason and its bytes.

The original key and value are kept byte for byte (base64), so a fixed consumer can re-drive them.
"""

from __future__ import annotations

import base64
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from portal_contracts.envelope import Envelope, Payload


class DeadLetter(Payload):
    original_topic: str
    original_partition: int
    original_offset: int
    original_timestamp_ms: int | None = None
    original_key_b64: str | None = Field(default=None, description="Original key bytes, base64.")
    original_value_b64: str = Field(description="Original value bytes, base64.")
    original_headers: dict[str, str] = Field(
        default_factory=dict, description="Original headers, values base64."
    )
    consumer_group: str
    reason: str = Field(description="Why it could not be processed, for a person.")
    error_type: str = Field(description="Class of the error, e.g. 'validation', 'decode'.")
    failed_at: AwareDatetime
    source: str | None = Field(
        default=None, description="Partner agency the message came from, when known."
    )

    def original_value(self) -> bytes:
        return base64.b64decode(self.original_value_b64)

    def original_key(self) -> bytes | None:
        return None if self.original_key_b64 is None else base64.b64decode(self.original_key_b64)


class DeadLetterEvent(Envelope):
    EVENT_TYPE: ClassVar[str] = "dead_letter"
    type: Literal["dead_letter"] = "dead_letter"
    data: DeadLetter
