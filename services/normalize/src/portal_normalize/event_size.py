"""Whether an event is certainly under a size as JSON, without encoding it (pure logic).

Normalize refuses an article whose event would be too large for the broker. Nearly every
article is far below the limit, and showing that needs no encoding: JSON spends at most six
bytes on one character (``\\u001f``), so a bound on the event's text decides. Only an event the
bound cannot clear is encoded to be measured (the outbox encodes every event once anyway).
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel

# A field's name with its quotes, colon and comma: every model's field names are shorter.
_KEY_BYTES = 64


def _text(value: str) -> int:
    if not value.isascii():
        value.encode()  # a lone surrogate raises: the encoder would refuse it
    return 6 * len(value) + 2


def _bound(value: object) -> int:
    """At least the bytes of ``value`` as pydantic writes it in JSON. Raises
    UnicodeEncodeError for a string JSON cannot hold (a lone surrogate). Types are compared
    exactly (an ``isinstance`` of an abstract class costs more than the rest), and a model's
    strings and nulls are counted in place (most of its fields)."""
    kind = type(value)
    if kind is str:
        return _text(cast(str, value))
    if value is None or kind is bool:
        return 5  # null, true, false
    if kind is list or kind is tuple:
        return 2 + sum(_bound(v) + 1 for v in cast("list[object]", value))
    if kind is dict:
        items = cast("dict[object, object]", value).items()
        return 2 + sum(_text(str(k)) + 1 + _bound(v) + 1 for k, v in items)
    if getattr(kind, "__pydantic_fields__", None) is not None:
        total = 2
        for field in cast(BaseModel, value).__dict__.values():
            if type(field) is str:
                total += _KEY_BYTES + _text(field)
            elif field is None:
                total += _KEY_BYTES + 5
            else:
                total += _KEY_BYTES + _bound(field)
        return total
    # Numbers, times, ids, enums: their text (a float or a time as JSON is no longer).
    return 6 * len(str(value)) + 8


def certainly_fits(event: BaseModel, limit: int) -> bool:
    """True when ``event`` as JSON is certainly at most ``limit`` bytes; False when only its
    encoding can tell."""
    try:
        return _bound(event) <= limit
    except UnicodeEncodeError:
        return False
