"""Rows as column arrays: the parameters of a statement that ``unnest``s them.

A statement written once over arrays takes any number of rows in one round trip and is
prepared once. Its parameters are named after the rows' fields (with a prefix when it takes
two kinds of rows); enum members are sent by value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from enum import Enum
from typing import Any


def columns(kind: type[Any], rows: Sequence[Any], prefix: str = "") -> dict[str, list[Any]]:
    """``rows`` (dataclasses of ``kind``) as one list per field, named ``prefix + field``."""
    return {prefix + f.name: [_value(getattr(row, f.name)) for row in rows] for f in fields(kind)}


def _value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
